//! How the log's routes map to the per-address budgets of
//! `custody_service::rate_limit`: every route is in one class, checked
//! before its handler runs.
//!
//! - write: `POST /statements`, `PUT /blobs/{digest}`, `POST /entries`
//!   (each carries a body, and the first two a signature to verify);
//! - read: everything else, tiles and proofs included.
//!
//! A 401 to a write is a failed authentication (unknown or revoked key,
//! bad signature: docs/api.md), charged to the address's
//! failed-authentication budget.

use actix_web::http::{Method, StatusCode};
use custody_service::rate_limit::RouteClass;

/// The budget class of a request to the log.
pub fn route_class(method: &Method, path: &str) -> RouteClass {
    let write = match *method {
        Method::POST => path == "/statements" || path == "/entries",
        Method::PUT => path.starts_with("/blobs/"),
        _ => false,
    };
    if write {
        RouteClass::Write
    } else {
        RouteClass::Read
    }
}

/// Whether the log answered a request of `class` with a failed
/// authentication.
pub fn is_auth_failure(class: RouteClass, status: StatusCode) -> bool {
    class == RouteClass::Write && status == StatusCode::UNAUTHORIZED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_class() {
        for (m, p) in
            [(Method::POST, "/statements"), (Method::PUT, "/blobs/sha256:ab"), (Method::POST, "/entries")]
        {
            assert_eq!(route_class(&m, p), RouteClass::Write, "{m} {p}");
        }
        for (m, p) in [
            (Method::GET, "/checkpoint"),
            (Method::GET, "/tile/0/000"),
            (Method::GET, "/proof/inclusion"),
            (Method::GET, "/entries"),
            (Method::GET, "/blobs/sha256:ab"),
            (Method::GET, "/metrics"),
            (Method::POST, "/nowhere"),
        ] {
            assert_eq!(route_class(&m, p), RouteClass::Read, "{m} {p}");
        }
        assert!(is_auth_failure(RouteClass::Write, StatusCode::UNAUTHORIZED));
        assert!(!is_auth_failure(RouteClass::Read, StatusCode::UNAUTHORIZED));
        assert!(!is_auth_failure(RouteClass::Write, StatusCode::FORBIDDEN));
    }
}
