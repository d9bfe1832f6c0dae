//! The opaque 500 answer both servers give.
//!
//! The detail of an internal failure may name the server's files, keys or
//! state; it goes to the server's log, and the client gets only a
//! reference to that log line: the request id ([`crate::request_id`]),
//! which the client also sees in the `X-Request-Id` header. Outside a
//! request (a unit test, a background task) a fresh id is used.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use crate::request_id::{self, RequestId};

/// The reference a 500 answered now carries: the current request's id.
pub fn reference() -> String {
    request_id::current().unwrap_or_else(RequestId::generate).to_string()
}

/// Logs `error` under the current request id and answers 500 with a JSON
/// body `{"error": code, "detail": "...reference...", "reference": id}`.
pub fn response(code: &str, error: &dyn std::fmt::Display) -> HttpResponse {
    response_with_status(StatusCode::INTERNAL_SERVER_ERROR, code, error)
}

/// [`response`] with another server-error status.
pub fn response_with_status(status: StatusCode, code: &str, error: &dyn std::fmt::Display) -> HttpResponse {
    let reference = reference();
    tracing::error!(reference = reference.as_str(), error = %error, "request failed");
    HttpResponse::build(status).json(serde_json::json!({
        "error": code,
        "detail": format!("internal error; the server's log has the detail under reference {reference}"),
        "reference": reference,
    }))
}
