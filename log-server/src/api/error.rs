//! The one place where every failure becomes an HTTP status.
//!
//! Handlers return `Result<_, ApiError>`; errors from the store, the
//! sequencer and `custody-standards` convert into [`ApiError`] with `?`, and
//! `ApiError::status_code` (its `ResponseError` impl) decides the status for all of them. Keeping the
//! mapping in one match means a new error variant cannot silently become a
//! 500 in one handler and a 400 in another.
//!
//! Status rule (documented in docs/api.md):
//! - 400: the request is malformed or contradicts itself (bad query, bad
//!   tile path, `index >= size`, `old > new`, range too large);
//! - 401: unauthenticated statement (unknown, revoked or wrong key, bad
//!   signature, time outside the window, replayed nonce, missing header);
//! - 403: raw append is disabled, or the actor lacks the role on that name,
//!   or claims stored bytes nobody published without having uploaded them;
//! - 409: registry conflict (version exists with another digest, stale tag
//!   `previous`, ...), a protected tag that is disqualified (its target
//!   left the status the tag requires: `tag_disqualified`), or an upload
//!   of that version is already running;
//! - 408: the request body did not arrive within `--body-timeout` (the
//!   connection is closed);
//! - 410: a state proof asked at a size whose state is no longer served
//!   (`state_expired`: fetch a newer checkpoint);
//! - 411: artifact upload without `Content-Length`;
//! - 429: the actor's rate limit is exhausted, or the download caps are
//!   reached (`Retry-After` says when);
//! - 404: the log does not have it (yet): unknown route, entry or leaf hash,
//!   a size beyond the durable tree, a tile beyond the published checkpoint;
//! - 413: entry larger than the configured maximum;
//! - 422: well-formed but unacceptable entry (empty), a registry rule
//!   (lifecycle, two-person approval, unknown lineage), or an upload whose
//!   bytes do not match its digest or size;
//! - 503: not available right now (no checkpoint yet, shutting down,
//!   waiting for a checkpoint timed out);
//! - 500: a bug or storage failure. The body carries only an opaque
//!   reference, the request id (also in the `X-Request-Id` header); the
//!   detail (which may name files on the server) goes to the server's log
//!   under that reference ([`custody_service::internal_error`]).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use custody_standards::proof::ProofError;
use custody_standards::stored::ReadError;
use custody_standards::tile_data::TileDataError;
use custody_standards::tiles::TileError;

use custody_registry::registry::Rejection;
use custody_registry::statement::StatementError;

use crate::blobs::BlobError;
use crate::directory::DirectoryError;
use crate::download_slots::TooManyDownloads;
use crate::sequencer::{Refusal, SequenceError};
use crate::state_snapshots::SnapshotError;
use crate::store::StoreError;
use crate::uploads::UploadError;

/// Every error an HTTP handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or self-contradictory request.
    #[error("{0}")]
    BadRequest(String),
    /// The resource does not exist (yet).
    #[error("{0}")]
    NotFound(String),
    /// The operation is disabled on this server.
    #[error("{0}")]
    Forbidden(String),
    /// Body larger than the entry size limit.
    #[error("entry of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Bytes sent (or announced), at least `max + 1`.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// Well-formed but unacceptable input.
    #[error("{0}")]
    Unprocessable(String),
    /// Temporarily unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// Server-side failure.
    #[error("{0}")]
    Internal(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Sequencing failed or was refused.
    #[error("sequencer: {0}")]
    Sequence(#[from] SequenceError),
    /// A proof could not be built.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// A tile path or coordinate was rejected.
    #[error("tile: {0}")]
    Tile(#[from] TileError),
    /// A tile body could not be built.
    #[error("tile data: {0}")]
    TileData(#[from] TileDataError),
    /// The request carries no usable statement.
    #[error("{0}")]
    Unauthorized(String),
    /// A statement envelope or payload is malformed (or too large).
    #[error("statement: {0}")]
    Statement(#[from] StatementError),
    /// The registry refused the statement.
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// A protected tag's target left the status the tag requires.
    #[error("{0}")]
    TagDisqualified(String),
    /// The actor exceeded its rate limit; retry after this many seconds.
    #[error("rate limit exceeded; retry in {0:.2} s")]
    RateLimited(f64),
    /// An upload without a declared length.
    #[error("{0}")]
    LengthRequired(String),
    /// The request body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// Artifact storage failed or refused.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// An upload or a claim of stored bytes was refused.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// A download cap is reached.
    #[error(transparent)]
    TooManyDownloads(#[from] TooManyDownloads),
    /// A state proof the log cannot serve at that size.
    #[error(transparent)]
    State(#[from] SnapshotError),
    /// A model directory's manifest, files or access grant.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::Unavailable("blocking thread pool is shut down".into())
    }
}

fn read_status(e: &ReadError) -> StatusCode {
    match e {
        // Inside the durable/published size every hash exists; a missing
        // one is corruption, not a client mistake.
        ReadError::Missing(_) | ReadError::Unauthenticated(_) | ReadError::Backend(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        // The standards' errors are non-exhaustive: a kind added there is a
        // server fault until it is mapped here.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::Registry(r) => status(r.http_status()),
        Refusal::Malformed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    /// The hash-read failure inside this error, if that is what it is.
    pub(crate) fn read_error(&self) -> Option<&ReadError> {
        match self {
            ApiError::Proof(ProofError::Read(r)) | ApiError::TileData(TileDataError::Read(r)) => Some(r),
            _ => None,
        }
    }

    /// Short stable machine-readable code for the `error` field: the
    /// registry's own code for a refused statement, else one per status.
    fn code(&self) -> &'static str {
        match self {
            ApiError::Rejected(r) | ApiError::Sequence(SequenceError::Refused(Refusal::Registry(r))) => {
                return r.code()
            }
            ApiError::Blob(BlobError::Integrity { .. }) => return "integrity_violation",
            ApiError::Blob(BlobError::Key(_)) => return "artifact_key_unavailable",
            ApiError::TagDisqualified(_) => return "tag_disqualified",
            ApiError::Upload(UploadError::InProgress { .. }) => return "upload_in_progress",
            ApiError::Upload(UploadError::UploadRequired { .. }) => return "upload_required",
            ApiError::TooManyDownloads(_) => return "too_many_downloads",
            ApiError::State(SnapshotError::Expired { .. }) => return "state_expired",
            ApiError::Directory(e) => match e {
                DirectoryError::BadManifest { .. } => return "bad_manifest",
                DirectoryError::Signature { .. } => return "bad_model_signature",
                DirectoryError::ManifestRequired(_) => return "manifest_required",
                DirectoryError::NotListed { .. } | DirectoryError::NotCovered { .. } => {
                    return "not_in_manifest"
                }
                DirectoryError::FilesMissing { .. } => return "files_missing",
                DirectoryError::NotLogged(_) => return "access_not_logged",
                DirectoryError::Expired { .. } => return "access_expired",
                DirectoryError::Blob(BlobError::Integrity { .. }) => return "integrity_violation",
                DirectoryError::Blob(_) | DirectoryError::Store(_) => {}
            },
            _ => {}
        }
        match self.status_code() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::CONFLICT => "conflict",
            StatusCode::LENGTH_REQUIRED => "length_required",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::PAYLOAD_TOO_LARGE => "entry_too_large",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Sequence(e) => match e {
                SequenceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                SequenceError::Empty => StatusCode::UNPROCESSABLE_ENTITY,
                SequenceError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                // The bucket of --recovery-point-zero is unreachable: the
                // entry is not logged, and a retry may succeed.
                SequenceError::Store(StoreError::Bucket(_)) => StatusCode::SERVICE_UNAVAILABLE,
                SequenceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                SequenceError::Refused(r) => refusal_status(r),
            },
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Statement(e) => status(e.http_status()),
            ApiError::Rejected(r) => status(r.http_status()),
            ApiError::TagDisqualified(_) => StatusCode::CONFLICT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::LengthRequired(_) => StatusCode::LENGTH_REQUIRED,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Blob(e) => match e {
                BlobError::DigestMismatch { .. } | BlobError::SizeMismatch { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                BlobError::NotFound(_) => StatusCode::NOT_FOUND,
                BlobError::Integrity { .. } | BlobError::Io { .. } | BlobError::Key(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                // The artifact bucket failed; its details (endpoint, bucket)
                // stay in the server's log, the client gets a reference.
                BlobError::Bucket(_) => StatusCode::BAD_GATEWAY,
            },
            ApiError::Upload(e) => match e {
                UploadError::InProgress { .. } => StatusCode::CONFLICT,
                UploadError::UploadRequired { .. } => StatusCode::FORBIDDEN,
                UploadError::Record { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::TooManyDownloads(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Directory(e) => match e {
                DirectoryError::BadManifest { .. }
                | DirectoryError::NotListed { .. }
                | DirectoryError::Signature { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                DirectoryError::ManifestRequired(_) | DirectoryError::FilesMissing { .. } => {
                    StatusCode::CONFLICT
                }
                DirectoryError::NotCovered { .. }
                | DirectoryError::NotLogged(_)
                | DirectoryError::Expired { .. } => StatusCode::FORBIDDEN,
                DirectoryError::Blob(_) | DirectoryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::State(e) => match e {
                SnapshotError::NoCommitment(_) => StatusCode::NOT_FOUND,
                SnapshotError::Expired { .. } => StatusCode::GONE,
            },
            ApiError::Proof(e) => match e {
                ProofError::IndexOutOfRange { .. } | ProofError::SizeOrder { .. } => StatusCode::BAD_REQUEST,
                ProofError::Read(r) => read_status(r),
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Tile(e) => match e {
                TileError::BadPath(_) | TileError::Level(_) | TileError::Width(_) => StatusCode::BAD_REQUEST,
                TileError::OutOfRange(_) | TileError::NotInTile { .. } => StatusCode::NOT_FOUND,
                TileError::DataLength { .. } | TileError::Partial(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::TileData(e) => match e {
                TileDataError::Tile(TileError::OutOfRange(_)) => StatusCode::NOT_FOUND,
                TileDataError::Tile(_) => StatusCode::BAD_REQUEST,
                TileDataError::Read(r) => read_status(r),
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut resp = HttpResponse::build(status);
        match self {
            ApiError::RateLimited(secs) => {
                resp.insert_header(("Retry-After", secs.ceil().max(1.0).to_string()));
            }
            ApiError::TooManyDownloads(e) => {
                resp.insert_header(("Retry-After", e.retry_after_secs.to_string()));
            }
            // The rest of the body may still be on its way: close rather
            // than wait for it.
            ApiError::RequestTimeout(_) => {
                resp.force_close();
            }
            _ => {}
        }
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            return custody_service::internal_error::response_with_status(status, self.code(), self);
        }
        resp.json(serde_json::json!({ "error": self.code(), "detail": self.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mapping_for_every_source() {
        let cases: Vec<(ApiError, u16)> = vec![
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::TooLarge { size: 70000, max: 65535 }, 413),
            (SequenceError::TooLarge { size: 2, max: 1 }.into(), 413),
            (SequenceError::Empty.into(), 422),
            (SequenceError::ShuttingDown.into(), 503),
            (ProofError::IndexOutOfRange { index: 5, size: 5 }.into(), 400),
            (ProofError::SizeOrder { old: 6, new: 5 }.into(), 400),
            (TileError::BadPath("tile/x".into()).into(), 400),
            (StoreError::Corrupt("bad".into()).into(), 500),
            (ApiError::Unauthorized("no statement".into()), 401),
            (ApiError::RateLimited(0.5), 429),
            (ApiError::LengthRequired("x".into()), 411),
            (Rejection::BadSignature.into(), 401),
            (SequenceError::Refused(Refusal::Registry(Rejection::BadSignature)).into(), 401),
            (SequenceError::Refused(Refusal::Malformed("x".into())).into(), 422),
            (SequenceError::Refused(Refusal::Unavailable("x".into())).into(), 503),
            (BlobError::NotFound("x".into()).into(), 404),
            (BlobError::SizeMismatch { declared: 1, actual: 2 }.into(), 422),
            (BlobError::Integrity { expected: "a".into(), actual: "b".into() }.into(), 500),
            (
                BlobError::from(crate::bucket::BucketError::Url { url: "s3://b".into(), reason: "x".into() })
                    .into(),
                502,
            ),
            (UploadError::InProgress { name: "a/b".into(), version: "1".into() }.into(), 409),
            (
                UploadError::UploadRequired { digest: "00".into(), actor: "a".into(), grace_secs: 1 }.into(),
                403,
            ),
            (TooManyDownloads { scope: "in total", running: 1, max: 1, retry_after_secs: 2 }.into(), 429),
        ];
        for (err, want) in cases {
            assert_eq!(err.status_code().as_u16(), want, "{err}");
            let resp = err.error_response();
            assert_eq!(resp.status().as_u16(), want);
        }
        let timeout = ApiError::RequestTimeout("slow".into()).error_response();
        assert_eq!(timeout.status().as_u16(), 408);
        assert!(timeout.head().connection_type() == actix_web::http::ConnectionType::Close);
    }

    #[test]
    fn internal_errors_carry_only_a_reference() {
        let path = "/var/lib/custody/blobs/tmp/42-0";
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let errors: Vec<ApiError> = vec![
            BlobError::Io { path: path.into(), source: io }.into(),
            ApiError::Internal(format!("cannot open {path}")),
            StoreError::Corrupt(format!("bad row in {path}")).into(),
        ];
        for err in errors {
            let resp = err.error_response();
            assert_eq!(resp.status().as_u16(), 500);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let body = rt.block_on(actix_web::body::to_bytes(resp.into_body())).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("/var/lib") && !text.contains("No such file"), "{text}");
            let reference = v["reference"].as_str().unwrap();
            assert_eq!(reference.len(), 16, "{text}");
            assert!(v["detail"].as_str().unwrap().contains(reference), "{text}");
        }
    }
}
