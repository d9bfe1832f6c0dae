//! The two JSON endpoints the dashboard's JavaScript verifies with.
//!
//! - `GET /ui/api/trust`: the origin, the log's verifier key and the
//!   policy text the log runs with: what the browser verifies against when
//!   the user has pinned nothing (and says so).
//! - `GET /ui/api/proofs?size=S&index=I&index=J...`: for each index, the
//!   exact leaf bytes and the RFC 6962 inclusion proof at size S, so the
//!   browser hashes every leaf itself, decodes the values it shows from
//!   the proven bytes, and checks the proof against the checkpoint it
//!   verified. S may not exceed the latest published checkpoint: a size
//!   no checkpoint covers cannot be verified by anyone. The leaf bytes are
//!   RFC 6962's `d(i)`: "The hash of a list with one entry (also known as
//!   a leaf hash) is: MTH({d(0)}) = SHA-256(0x00 || d(0))" (section 2.1),
//!   and the proof is the section 2.1.1 audit path, "the shortest list of
//!   additional nodes in the Merkle Tree required to compute the Merkle
//!   Tree Hash for that tree".
//!
//! Errors are the API's JSON errors (400 `bad_request` for any malformed
//! or out-of-range request), answered before any store read.

use actix_web::{web, HttpRequest, HttpResponse};
use custody_standards::encoding::encode_base64;
use custody_standards::proof::inclusion_proof;
use serde_json::json;

use super::leaves::read_entries;
use crate::api::{hashes_b64, parse_u64, ApiError, AppState};

/// Most indexes in one proofs request.
pub const MAX_INDEXES: usize = 1000;
/// Longest accepted query string: 1000 `index=` pairs of 20 digits and a
/// size, with room to spare. Longer is refused before it is parsed.
const MAX_QUERY: usize = 32 * 1024;

fn json_response(body: serde_json::Value) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    resp.insert_header(("Cache-Control", "no-store"));
    super::headers::apply(&mut resp);
    resp.json(body)
}

/// `GET /ui/api/trust`.
pub async fn trust(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let t = &state.trust;
    Ok(json_response(json!({
        "origin": t.origin(),
        "log_vkey": t.log_key.to_string(),
        "policy": t.policy.as_ref().map(|(_, text)| text.as_str()),
    })))
}

/// A parsed proofs request.
#[derive(Debug, PartialEq, Eq)]
pub struct ProofsQuery {
    /// The tree size to prove against.
    pub size: u64,
    /// The indexes, in request order (repeats allowed).
    pub indexes: Vec<u64>,
}

/// Parses `size=S&index=I&index=J...`: exactly one `size`, 1 to
/// [`MAX_INDEXES`] `index`, each a canonical decimal below S, and nothing
/// else.
pub fn parse_proofs_query(q: &str) -> Result<ProofsQuery, ApiError> {
    if q.len() > MAX_QUERY {
        return Err(ApiError::BadRequest(format!("query longer than {MAX_QUERY} bytes")));
    }
    let mut size = None;
    let mut indexes = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| ApiError::BadRequest(format!("bad query parameter {pair:?}")))?;
        match key {
            "size" if size.is_none() => size = Some(parse_u64("size", value)?),
            "size" => return Err(ApiError::BadRequest("give size once".into())),
            "index" if indexes.len() < MAX_INDEXES => indexes.push(parse_u64("index", value)?),
            "index" => {
                return Err(ApiError::BadRequest(format!("at most {MAX_INDEXES} indexes per request")))
            }
            other => return Err(ApiError::BadRequest(format!("unknown query parameter {other:?}"))),
        }
    }
    let size = size.ok_or_else(|| ApiError::BadRequest("missing query parameter size".into()))?;
    if indexes.is_empty() {
        return Err(ApiError::BadRequest("give at least one index".into()));
    }
    if let Some(i) = indexes.iter().find(|&&i| i >= size) {
        return Err(ApiError::BadRequest(format!("index {i} is not below size {size}")));
    }
    Ok(ProofsQuery { size, indexes })
}

/// `GET /ui/api/proofs?size=S&index=I...`.
pub async fn proofs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let q = parse_proofs_query(req.query_string())?;
    let published = state.published()?.size;
    if q.size > published {
        return Err(ApiError::BadRequest(format!(
            "size {} is beyond the latest published checkpoint ({published})",
            q.size
        )));
    }
    let size = q.size;
    let entries = state
        .blocking(move |store| {
            let mut wanted = q.indexes.clone();
            wanted.sort_unstable();
            wanted.dedup();
            let leaves = read_entries(store, &wanted)?;
            let mut out = Vec::with_capacity(q.indexes.len());
            for index in &q.indexes {
                let pos = leaves.binary_search_by_key(index, |(i, _)| *i).map_err(|_| {
                    ApiError::Internal(format!("entry {index} below the published size is missing"))
                })?;
                let proof = inclusion_proof(*index, size, &store)?;
                out.push(json!({
                    "index": index,
                    "leaf": encode_base64(&leaves[pos].1),
                    "proof": hashes_b64(&proof),
                }));
            }
            Ok(out)
        })
        .await?;
    Ok(json_response(json!({ "size": size, "entries": entries })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_queries_are_parsed_strictly() {
        assert_eq!(
            parse_proofs_query("size=10&index=3&index=0&index=3").unwrap(),
            ProofsQuery { size: 10, indexes: vec![3, 0, 3] }
        );
        for bad in [
            "",
            "size=10",
            "index=1",
            "size=10&index=10",
            "size=10&size=10&index=1",
            "size=10&index=01",
            "size=10&index=-1",
            "size=10&index=1&foo=2",
            "size=10&index",
            "size=1e3&index=1",
            "size=10&index=%31",
        ] {
            assert!(parse_proofs_query(bad).is_err(), "{bad}");
        }
        let many = format!("size=5000{}", "&index=1".repeat(MAX_INDEXES));
        assert_eq!(parse_proofs_query(&many).unwrap().indexes.len(), MAX_INDEXES);
        let too_many = format!("{many}&index=2");
        assert!(parse_proofs_query(&too_many).unwrap_err().to_string().contains("at most 1000"));
        assert!(parse_proofs_query(&"&".repeat(MAX_QUERY + 1)).is_err());
    }
}
