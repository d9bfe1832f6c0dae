//! The dashboard's static files, compiled into the binary so the server
//! needs no files beside it and the browser loads nothing from elsewhere
//! (no CDN: the pages' Content-Security-Policy allows only this origin).
//!
//! The list is exact: `/ui/assets/{path}` serves these paths and nothing
//! else (404 for any other). Each answer carries a strong ETag (the
//! content's SHA-256) and `Cache-Control: no-cache`, so a browser keeps
//! its copy but revalidates it, and a new binary's files are never
//! mixed with an old one's.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// One served file.
pub struct Asset {
    /// Path under `/ui/assets/`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// Every served file. JavaScript modules import each other by relative
/// path (`./verify.js`), so they share `js/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../ui/dashboard.css"),
    },
    Asset {
        path: "js/verify.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../ui/js/verify.js"),
    },
    Asset {
        path: "js/leaf.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../ui/js/leaf.js"),
    },
    Asset {
        path: "js/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../ui/js/dashboard.js"),
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../ui/favicon.svg"),
    },
];

/// The strong ETag of each asset, in [`ASSETS`] order, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &custody_standards::hash::sha256(a.body).to_hex()[..32]))
            .collect()
    })
}

/// The asset at `path` (exact match), with its ETag.
pub fn find(path: &str) -> Option<(&'static Asset, &'static str)> {
    ASSETS.iter().zip(etags()).find(|(a, _)| a.path == path).map(|(a, t)| (a, t.as_str()))
}

/// The response for `asset`: 304 when the request's `If-None-Match`
/// names its ETag, else the bytes.
pub fn response(req: &HttpRequest, asset: &Asset, etag: &str) -> HttpResponse {
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_TYPE, asset.content_type));
    super::headers::apply(&mut resp);
    if fresh {
        resp.finish()
    } else {
        resp.body(asset.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_with_its_type_and_only_them() {
        for a in ASSETS {
            let (found, tag) = find(a.path).unwrap();
            assert_eq!(found.path, a.path);
            assert!(tag.starts_with('"') && tag.len() == 34);
        }
        assert_eq!(find("js/verify.js").unwrap().0.content_type, "text/javascript; charset=utf-8");
        for missing in ["", "js", "js/", "../Cargo.toml", "js/../dashboard.css", "DASHBOARD.CSS"] {
            assert!(find(missing).is_none(), "{missing}");
        }
    }
}
