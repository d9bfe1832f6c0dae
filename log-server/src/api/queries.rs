//! Registry queries. Every answer names the leaf indexes that prove it, so
//! a client never has to take it on the server's word: it fetches those
//! entries and their inclusion proofs and checks them itself.
//!
//! Models, versions, tags and actors come from the in-memory registry;
//! access history and the entries per name, digest and actor, which grow
//! with the log, come from the `registry_index` rows, a page at a time.

use actix_web::{web, HttpResponse};
use custody_registry::names::{ActorName, Digest, ModelName, Reference};
use custody_registry::registry::{KeyEnd, ModelRecord, Registry, VersionRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_u64, ApiError, AppState};
use crate::registry::{access_prefix, actor_prefix, row_index};

/// Largest page of an index listing.
pub const MAX_PAGE: usize = 1000;

/// Pagination of index listings: entries after leaf `after`, at most
/// `limit` (default and cap [`MAX_PAGE`]).
#[derive(Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<String>,
}

impl Page {
    fn parse(&self) -> Result<(Option<u64>, usize), ApiError> {
        let after = self.after.as_deref().map(|a| parse_u64("after", a)).transpose()?;
        let limit = match self.limit.as_deref() {
            None => MAX_PAGE,
            Some(l) => match parse_u64("limit", l)? {
                0 => return Err(ApiError::BadRequest("limit must be at least 1".into())),
                n => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
            },
        };
        Ok((after, limit))
    }
}

fn bad(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("bad {what}: {e}"))
}

/// Leaf indexes of the index rows under `prefix`, one page.
async fn index_page(state: &AppState, prefix: Vec<u8>, page: &Page) -> Result<Value, ApiError> {
    let (after, limit) = page.parse()?;
    let rows = state
        .blocking(move |store| {
            let after_key = after.map(|a| {
                let mut k = prefix.clone();
                k.extend_from_slice(&a.to_be_bytes());
                k
            });
            Ok(store.scan_index(&prefix, after_key.as_deref(), limit)?)
        })
        .await?;
    let indexes: Vec<u64> = rows.iter().filter_map(|r| row_index(r)).collect();
    let next = (indexes.len() == limit).then(|| indexes.last().copied()).flatten();
    Ok(json!({ "indexes": indexes, "next_after": next }))
}

fn version_json(version: &str, v: &VersionRecord) -> Value {
    json!({
        "version": version,
        "digest": v.digest.to_string(),
        "size": v.size,
        "kind": v.kind,
        "media_type": v.media_type.as_str(),
        "publisher": v.publisher.as_str(),
        "published_index": v.published_at,
        "status": v.state.as_str(),
        "status_history": v.history.iter().map(|c| json!({"status": c.state.as_str(), "index": c.index})).collect::<Vec<_>>(),
        "approvals": v.approvals.iter().map(|a| json!({"actor": a.actor.as_str(), "index": a.index})).collect::<Vec<_>>(),
        "lineage": v.lineage,
    })
}

fn model_json(name: &ModelName, m: &ModelRecord) -> Value {
    json!({
        "name": name.as_str(),
        "production": m.production.as_ref().map(|v| v.as_str()),
        "versions": m.versions.iter().map(|(k, v)| version_json(k.as_str(), v)).collect::<Vec<_>>(),
        "tags": m.tags.iter().map(|(t, r)| json!({
            "tag": t.as_str(),
            "digest": r.current().digest.to_string(),
            "index": r.current().index,
            "history": r.moves.iter().map(|m| json!({"index": m.index, "digest": m.digest.to_string()})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "protections": m.protections().iter().map(|(t, p)| json!({
            "tag": t.as_str(),
            "statuses": p.statuses,
            "index": p.index,
        })).collect::<Vec<_>>(),
    })
}

async fn with_registry<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Registry) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let registry = state.registry()?.registry.clone();
    web::block(move || f(&registry.read())).await?
}

/// `GET /registry/models`: every model name with its production version.
pub async fn models(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = with_registry(&state, |r| {
        let mut names: Vec<_> = r
            .models()
            .map(|(n, m)| json!({"name": n.as_str(), "versions": m.versions.len(), "production": m.production.as_ref().map(|v| v.as_str())}))
            .collect();
        names.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(json!({ "models": names }))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /registry/models/{org}/{model}`: versions (status, lineage,
/// approvals) and tags with their full history.
pub async fn model(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (org, model) = path.into_inner();
    let name = ModelName::new(&format!("{org}/{model}")).map_err(|e| bad("model name", e))?;
    let body = with_registry(&state, move |r| {
        let m = r.model(&name).ok_or_else(|| ApiError::NotFound(format!("no model {}", name.as_str())))?;
        Ok(model_json(&name, m))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Query of `/registry/resolve`.
#[derive(Deserialize)]
pub struct ResolveQuery {
    r#ref: String,
}

/// `GET /registry/resolve?ref=name@version|name:tag|sha256:<hex>`. A
/// disqualified protected tag is 409 `tag_disqualified`, never a digest.
pub async fn resolve(
    query: web::Query<ResolveQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let text = query.into_inner().r#ref;
    let body = if text.starts_with("sha256:") {
        let digest = Digest::new(&text).map_err(|e| bad("digest", e))?;
        with_registry(&state, move |r| publishes_json(r, &digest, None)).await?
    } else if let Some((name, digest)) = text.split_once('@').filter(|(_, d)| d.starts_with("sha256:")) {
        // OCI-style `name@sha256:<hex>`: the digest's publishes under that
        // name only (a version never contains `:`).
        let name = ModelName::new(name).map_err(|e| bad("reference", e))?;
        let digest = Digest::new(digest).map_err(|e| bad("digest", e))?;
        with_registry(&state, move |r| publishes_json(r, &digest, Some(&name))).await?
    } else {
        let reference = Reference::parse(&text).map_err(|e| bad("reference", e))?;
        with_registry(&state, move |r| {
            let res = r.resolve(&reference).ok_or_else(|| ApiError::NotFound(format!("{text} does not resolve")))?;
            if let Some(d) = &res.disqualified {
                return Err(ApiError::TagDisqualified(format!("{text}: {d}")));
            }
            let (Reference::Version(name, _) | Reference::Tag(name, _)) = &reference;
            let status = |v| r.version(name, v).map(|rec| rec.state.as_str());
            Ok(json!({
                "ref": text,
                "digest": res.digest.to_string(),
                "versions": res.versions.iter().map(|(v, i)| json!({"version": v.as_str(), "published_index": i, "status": status(v)})).collect::<Vec<_>>(),
                "tag_index": res.tag_move,
            }))
        })
        .await?
    };
    Ok(HttpResponse::Ok().json(body))
}

/// The publishes of `digest` (under `name` only, when given), or 404.
fn publishes_json(r: &Registry, digest: &Digest, name: Option<&ModelName>) -> Result<Value, ApiError> {
    let pubs: Vec<_> =
        r.publishes_of(digest).iter().filter(|(n, _)| name.map_or(true, |want| n == want)).collect();
    if pubs.is_empty() {
        let under = name.map(|n| format!(" under {}", n.as_str())).unwrap_or_default();
        return Err(ApiError::NotFound(format!("no publish of {digest}{under}")));
    }
    let list: Vec<Value> = pubs
        .iter()
        .filter_map(|(n, v)| {
            r.version(n, v).map(|rec| json!({"name": n.as_str(), "version": v.as_str(), "published_index": rec.published_at, "status": rec.state.as_str()}))
        })
        .collect();
    Ok(json!({ "digest": digest.to_string(), "publishes": list }))
}

/// `GET /registry/artifacts/{digest}[?after=&limit=]`: who published it
/// under which names, and the leaf indexes of its access history.
pub async fn artifact(
    path: web::Path<String>,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let digest = Digest::new(&path).map_err(|e| bad("digest", e))?;
    let mut body = with_registry(&state, move |r| publishes_json(r, &digest, None)).await?;
    body["accesses"] = index_page(&state, access_prefix(&digest), &page).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /registry/models/{org}/{model}/entries[?after=&limit=]`: the leaf
/// indexes of every entry about the name, in log order (the list the
/// committed entries chain of the name proves complete).
pub async fn model_entries(
    path: web::Path<(String, String)>,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (org, model) = path.into_inner();
    let name = ModelName::new(&format!("{org}/{model}")).map_err(|e| bad("model name", e))?;
    state.registry()?;
    Ok(HttpResponse::Ok().json(index_page(&state, crate::registry::name_prefix(&name), &page).await?))
}

/// `GET /registry/artifacts/{digest}/entries[?after=&limit=]`: the leaf
/// indexes of every publish and access of the artifact, in log order (the
/// list the committed entries chain of the digest proves complete).
pub async fn digest_entries(
    path: web::Path<String>,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let digest = Digest::new(&path).map_err(|e| bad("digest", e))?;
    state.registry()?;
    Ok(HttpResponse::Ok().json(index_page(&state, crate::registry::digest_prefix(&digest), &page).await?))
}

/// `GET /registry/actors/{actor}/entries[?after=&limit=]`: the leaf
/// indexes of every entry the actor signed, in log order (the list the
/// committed entries chain of the actor proves complete).
pub async fn actor_entries(
    path: web::Path<String>,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let actor = ActorName::new(&path).map_err(|e| bad("actor name", e))?;
    state.registry()?;
    Ok(HttpResponse::Ok().json(index_page(&state, actor_prefix(&actor), &page).await?))
}

/// `GET /registry/actors/{actor}[?after=&limit=]`: keys (with the leaves
/// that bound and ended them), grants, and the leaf indexes of the actor's
/// entries.
pub async fn actor(
    path: web::Path<String>,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = ActorName::new(&path).map_err(|e| bad("actor name", e))?;
    let prefix = actor_prefix(&name);
    let mut body = with_registry(&state, move |r| {
        let a = r.actor(&name).ok_or_else(|| ApiError::NotFound(format!("no actor {}", name.as_str())))?;
        let keys: Vec<Value> = a
            .keys
            .iter()
            .filter_map(|id| r.key(id))
            .map(|k| {
                let (ended, end_index) = match k.ended {
                    Some(KeyEnd::Rotated(i)) => (Some("rotated"), Some(i)),
                    Some(KeyEnd::Revoked(i)) => (Some("revoked"), Some(i)),
                    None => (None, None),
                };
                json!({"key": k.key.to_string(), "bound_index": k.bound_at, "ended": ended, "end_index": end_index})
            })
            .collect();
        let grants: Vec<Value> =
            a.grants.iter().map(|g| json!({"role": g.role.as_str(), "pattern": g.pattern.to_string(), "index": g.index})).collect();
        Ok(json!({"actor": a.name.as_str(), "keys": keys, "grants": grants}))
    })
    .await?;
    body["entries"] = index_page(&state, prefix, &page).await?;
    Ok(HttpResponse::Ok().json(body))
}
