//! Read path: `/checkpoint`, tiles, entry bundles and entries.
//!
//! Tiles and bundles are served only within the latest *published*
//! checkpoint: a client verifies tiles against that checkpoint's root, so a
//! tile from beyond it could not be authenticated anyway, and serving it
//! would leak a tree head nobody has cosigned.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use custody_standards::entries::encode_bundle;
use custody_standards::tile_data::read_tile_data;
use custody_standards::tiles::{
    parse_path, EntryBundle, Tile, TilePath, CHECKPOINT_CONTENT_TYPE, ENTRY_BUNDLE_CONTENT_TYPE,
    TILE_CONTENT_TYPE,
};

use super::{parse_u64, ApiError, AppState};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The checkpoint changes every interval; caches must revalidate.
const MUTABLE: &str = "no-cache";

/// `GET /checkpoint`: the newest published checkpoint note, verbatim with
/// every cosignature.
pub async fn checkpoint(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let published = state.published()?;
    Ok(HttpResponse::Ok()
        .content_type(CHECKPOINT_CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, MUTABLE))
        .body(published.note.clone()))
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`.
///
/// A partial tile `.p/W` is served whenever the tree at the published size
/// has at least `W` hashes (or entries) in that tile: a partial tile is a
/// prefix of the final tile and never changes, and clients holding an older
/// checkpoint need the width of *their* size (tlog-tiles: "Logs MUST serve
/// partial tiles corresponding to tree sizes for which a checkpoint was
/// produced"). A full tile is served only once it is full at the published
/// size. Anything else is 404.
pub async fn tile(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The raw (not percent-decoded) path, so only the canonical spelling is
    // accepted and each tile has exactly one URL.
    let path = req.path().strip_prefix('/').unwrap_or(req.path());
    let parsed = parse_path(path)?;
    let published =
        state.published().map_err(|_| ApiError::NotFound("no checkpoint published yet".into()))?;
    let size = published.size;
    let canonical = parsed.path();
    let full = match parsed {
        TilePath::Hash(t) => t.is_full(),
        TilePath::Entries(b) => b.is_full(),
    };
    if full {
        if let Some(body) = state.tile_cache.get(&canonical) {
            return Ok(tile_response(parsed, &body, true));
        }
    }
    let body = match parsed {
        TilePath::Hash(t) => {
            let exists = Tile::at_size(t.level(), t.index(), size).map(|e| e.width()).unwrap_or(0);
            if t.width() > exists {
                return Err(ApiError::NotFound(format!("{canonical} is beyond published tree size {size}")));
            }
            state.with_hashes(move |hashes| Ok(read_tile_data(&t, &hashes)?)).await?
        }
        TilePath::Entries(b) => {
            let exists = EntryBundle::at_size(b.index(), size).map(|e| e.width()).unwrap_or(0);
            if b.width() > exists {
                return Err(ApiError::NotFound(format!("{canonical} is beyond published tree size {size}")));
            }
            let start = b.index() * 256;
            let end = start + u64::from(b.width());
            state
                .blocking(move |store| {
                    let entries = store.entries(start, end)?;
                    if entries.len() as u64 != end - start {
                        return Err(ApiError::Internal(format!(
                            "store returned {} entries for [{start}, {end})",
                            entries.len()
                        )));
                    }
                    let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
                    encode_bundle(&refs).map_err(|e| ApiError::Internal(format!("entry bundle: {e}")))
                })
                .await?
        }
    };
    let body = Arc::new(body);
    if full {
        state.tile_cache.put(canonical, Arc::clone(&body));
    }
    Ok(tile_response(parsed, &body, full))
}

fn tile_response(parsed: TilePath, body: &Arc<Vec<u8>>, full: bool) -> HttpResponse {
    let content_type = match parsed {
        TilePath::Hash(_) => TILE_CONTENT_TYPE,
        TilePath::Entries(_) => ENTRY_BUNDLE_CONTENT_TYPE,
    };
    let mut resp = HttpResponse::Ok();
    resp.content_type(content_type);
    if full {
        resp.insert_header((header::CACHE_CONTROL, IMMUTABLE));
    } else {
        resp.insert_header((header::CACHE_CONTROL, MUTABLE));
    }
    resp.body(body.as_ref().clone())
}

/// `GET /entries/<I>`: one durable entry's bytes.
pub async fn entry(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let index = parse_u64("index", &path)?;
    let size = state.seq.tree_size();
    if index >= size {
        return Err(ApiError::NotFound(format!("entry {index} does not exist (tree size {size})")));
    }
    let entry = state.blocking(move |store| Ok(store.entry(index)?)).await?;
    let entry =
        entry.ok_or_else(|| ApiError::Internal(format!("entry {index} below tree size is missing")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .body(entry))
}

pub(crate) fn missing(name: &str) -> ApiError {
    ApiError::BadRequest(format!("missing query parameter {name}"))
}
