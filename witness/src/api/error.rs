//! The one place where every failure becomes an HTTP status (like
//! sunlight's witness: one switch, so a new error cannot silently get a
//! different status in a different handler).
//!
//! add-checkpoint (C2SP tlog-witness):
//! - 400: malformed body or checkpoint, or `old` > checkpoint size;
//! - 403: no valid signature from a trusted key for the origin;
//! - 404: unknown origin;
//! - 409: `old` is not our latest cosigned size; body `<size>\n`,
//!   `Content-Type: text/x.tlog.size` (the only non-JSON error);
//! - 408: the body did not arrive within `--body-timeout` (connection
//!   closed);
//! - 413: body above the request cap;
//! - 422: consistency proof fails, non-empty proof with `old` 0, or a
//!   second root for a size we cosigned;
//! - 503: the origin is frozen by split-view evidence, or storage failed;
//! - 500: our own key could not sign, or storage is corrupt; the body
//!   carries only an opaque `reference` (the request id, also sent in
//!   `X-Request-Id`), the detail is in the log.
//!
//! Other endpoints: 400 malformed, 403 push not from a peer, 404 unknown,
//! 422 evidence that does not verify, 500/503 storage.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use custody_standards::witness::{format_size_body, WitnessBodyError, SIZE_CONTENT_TYPE};

use crate::add_checkpoint::AddError;
use crate::evidence::{CompareError, RecordError};
use crate::gossip::PushError;
use crate::store::StoreError;

/// Every error an HTTP handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// add-checkpoint refused.
    #[error(transparent)]
    Add(#[from] AddError),
    /// A pushed checkpoint was refused.
    #[error(transparent)]
    Push(#[from] PushError),
    /// Body over the cap.
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    /// Malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The body did not arrive within this many milliseconds.
    #[error("the request body did not arrive within {0} ms")]
    RequestTimeout(u64),
    /// The blocking pool is gone (shutdown).
    #[error("shutting down")]
    Unavailable,
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::Unavailable
    }
}

fn compare_status(e: &CompareError) -> StatusCode {
    match e {
        CompareError::Malformed(_) => StatusCode::BAD_REQUEST,
        CompareError::UnknownOrigin(_) | CompareError::Record(RecordError::UnknownOrigin(_)) => {
            StatusCode::NOT_FOUND
        }
        CompareError::Unauthorized(_) => StatusCode::FORBIDDEN,
        CompareError::Record(RecordError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        CompareError::Record(RecordError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        if let ApiError::Add(AddError::RootConflict(_)) = self {
            return "root_conflict";
        }
        match self.status_code() {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::UNPROCESSABLE_ENTITY => "inconsistent",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Add(e) => match e {
                AddError::Body(WitnessBodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
                AddError::Body(_) | AddError::Malformed(_) | AddError::OldAboveSize { .. } => {
                    StatusCode::BAD_REQUEST
                }
                AddError::UnknownOrigin(_) => StatusCode::NOT_FOUND,
                AddError::Unauthorized { .. } => StatusCode::FORBIDDEN,
                AddError::Conflict(_) | AddError::RootConflict(_) => StatusCode::CONFLICT,
                AddError::Inconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
                AddError::Frozen(_) | AddError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                AddError::Cosign(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Push(PushError::NotFromPeer) => StatusCode::FORBIDDEN,
            ApiError::Push(PushError::Compare(e)) => compare_status(e),
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // tlog-witness: "The response body MUST consist of the tree size of
        // the latest cosigned checkpoint in decimal, followed by a newline
        // (U+000A). The response MUST have a Content-Type of
        // text/x.tlog.size."
        if let ApiError::Add(AddError::Conflict(size)) = self {
            return HttpResponse::Conflict().content_type(SIZE_CONTENT_TYPE).body(format_size_body(*size));
        }
        let status = self.status_code();
        if let ApiError::RequestTimeout(_) = self {
            // The rest of the body may still be on its way: close rather
            // than wait for it.
            return HttpResponse::build(status)
                .force_close()
                .json(serde_json::json!({ "error": self.code(), "detail": self.to_string() }));
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The detail may name the witness's files or key handling: it
            // goes to the log, the client gets a reference to it.
            return custody_service::internal_error::response(self.code(), self);
        }
        HttpResponse::build(status)
            .json(serde_json::json!({ "error": self.code(), "detail": self.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_standards::note::NoteError;

    #[test]
    fn one_mapping_for_every_source() {
        let cases: Vec<(ApiError, u16)> = vec![
            (AddError::Body(WitnessBodyError::OldSizeLine).into(), 400),
            (AddError::Body(WitnessBodyError::TooLarge(1 << 20)).into(), 413),
            (AddError::OldAboveSize { old: 3, size: 2 }.into(), 400),
            (AddError::UnknownOrigin("x".into()).into(), 404),
            (AddError::Unauthorized { origin: "x".into(), reason: NoteError::UnverifiedNote }.into(), 403),
            (AddError::Conflict(7).into(), 409),
            (AddError::RootConflict(7).into(), 409),
            (AddError::Inconsistent("bad proof".into()).into(), 422),
            (AddError::Frozen("id".into()).into(), 503),
            (AddError::Store(StoreError::Closed("x".into())).into(), 503),
            (PushError::NotFromPeer.into(), 403),
            (ApiError::TooLarge(10), 413),
            (ApiError::RequestTimeout(10), 408),
            (ApiError::NotFound("x".into()), 404),
        ];
        for (err, want) in cases {
            assert_eq!(err.status_code().as_u16(), want, "{err}");
            assert_eq!(err.error_response().status().as_u16(), want);
        }
        let conflict = ApiError::Add(AddError::Conflict(42)).error_response();
        assert_eq!(conflict.headers().get("content-type").unwrap(), SIZE_CONTENT_TYPE);
        // A second root is no retry hint: no size body a client would act on.
        let fork = ApiError::Add(AddError::RootConflict(7));
        assert_eq!(fork.code(), "root_conflict");
        let fork = fork.error_response();
        assert_eq!(fork.headers().get("content-type").unwrap(), "application/json");
    }

    #[test]
    fn internal_errors_carry_only_a_reference() {
        let err = ApiError::Store(StoreError::Corrupt("bad row in /var/lib/witness/db/000042.sst".into()));
        let resp = err.error_response();
        assert_eq!(resp.status().as_u16(), 500);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let body = rt.block_on(actix_web::body::to_bytes(resp.into_body())).unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("/var/lib") && !text.contains("bad row"), "{text}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let reference = v["reference"].as_str().unwrap();
        assert_eq!(reference.len(), 16);
        assert!(v["detail"].as_str().unwrap().contains(reference), "{text}");
        assert_eq!(v["error"], "internal");
    }
}
