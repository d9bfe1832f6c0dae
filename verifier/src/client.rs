//! The log's HTTP API (docs/api.md) for the CLI, on the workspace's one
//! HTTP client (custody-client): every response body is read with a cap
//! chosen for what it should hold, *before* anything parses it, so a
//! hostile log cannot make the client allocate without bound; reads are
//! retried on overload and dropped connections. Nothing here is trusted:
//! callers verify what they get with `custody-standards`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use custody_client::blocking::{Client, Download};
use custody_client::{ClientConfig, ClientError, Request};
use custody_standards::tiles::CHECKPOINT_PATH;
use custody_standards::Hash;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Largest checkpoint note accepted (core's signed-note cap).
pub const MAX_CHECKPOINT: u64 = 1 << 20;
/// Largest JSON answer (queries, proofs).
pub const MAX_JSON: u64 = 16 << 20;
/// Largest entry (the tlog-tiles entry cap).
pub const MAX_ENTRY: u64 = 65_535;
/// Largest hash tile (256 hashes).
pub const MAX_TILE: u64 = 256 * 32;
/// Largest entry bundle (256 entries, each with its 2-byte length).
pub const MAX_ENTRY_BUNDLE: u64 = 256 * (2 + 65_535);
/// How long an upload or download of a large artifact may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A client for one log's HTTP API.
#[derive(Debug, Clone)]
pub struct LogClient {
    http: Client,
    base: String,
    /// Where checkpoints, tiles and entry bundles are read (`--tiles-url`),
    /// when not from `base`.
    read_path: Option<String>,
}

/// What the log answered to a submitted statement or upload.
#[derive(Debug, Clone, Deserialize)]
pub struct Submitted {
    /// Leaf index of the statement (of the original one when `duplicate`).
    pub index: u64,
    /// Whether the statement was already logged (idempotent publish).
    #[serde(default)]
    pub duplicate: bool,
}

/// What the log answered to an upload.
#[derive(Debug, Clone)]
pub enum Uploaded {
    /// Stored and its publish logged.
    Published(Submitted),
    /// Stored and verified, but the publish statement could not be logged
    /// because the upload outlasted the statement window (202). A fresh
    /// publish of the same digest by the same actor claims the bytes.
    StoredOnly,
    /// A directory's manifest is stored, but these of its files (digests,
    /// `sha256:<hex>`) are not yet (202 `files_missing`): upload them, then
    /// submit the publish.
    FilesMissing(Vec<String>),
}

#[derive(Deserialize)]
struct UploadJson {
    #[serde(default = "yes")]
    published: bool,
    index: Option<u64>,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    missing: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct ProofJson {
    proof: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorJson {
    error: String,
    #[serde(default)]
    detail: String,
}

impl LogClient {
    /// A client for the log at `base` (no trailing slash). `timeout` bounds
    /// each attempt of a request; uploads and downloads of large artifacts
    /// use their own through [`LogClient::upload`] and
    /// [`LogClient::download`]. `ca_cert` is a PEM file of extra CAs to
    /// trust for an `https://` log (`--ca-cert`).
    pub fn new(base: &str, timeout: Duration, ca_cert: Option<PathBuf>) -> Result<Self> {
        let cfg = ClientConfig::new(concat!("custody/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .ca_cert(ca_cert);
        let http = Client::new(cfg).map_err(|e| match e {
            ClientError::CaCert { .. } => Error::Config(e.to_string()),
            e => Error::Network(format!("HTTP client: {e}")),
        })?;
        Ok(LogClient { http, base: base.trim_end_matches('/').to_owned(), read_path: None })
    }

    /// Reads the static tlog-tiles resources (`checkpoint`, `tile/...`)
    /// from `url` instead of the log. Nothing read there is trusted more
    /// than the log's own answers: checkpoints are verified against the
    /// trust policy and tiles against checkpoints, as always.
    pub fn with_read_path(mut self, url: &str) -> Self {
        self.read_path = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// The log's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match &self.read_path {
            Some(read) if path == CHECKPOINT_PATH || path.starts_with("tile/") => format!("{read}/{path}"),
            _ => format!("{}/{path}", self.base),
        }
    }

    /// GET `path`, body capped at `cap` bytes.
    pub fn get(&self, path: &str, cap: u64) -> Result<Vec<u8>> {
        let what = format!("GET /{}", path.trim_start_matches('/'));
        let reply = self.http.fetch(&Request::get(self.url(path), cap)).map_err(|e| refused(&what, e))?;
        Ok(reply.body)
    }

    /// GET `path` as JSON, capped at [`MAX_JSON`].
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let body = self.get(path, MAX_JSON)?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::Network(format!("GET /{path}: malformed answer: {e}")))
    }

    /// The latest published checkpoint note (unverified).
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        self.get("checkpoint", MAX_CHECKPOINT)
    }

    /// A consistency proof between two sizes (unverified).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        let p: ProofJson = self.get_json(&format!("proof/consistency?old={old}&new={new}"))?;
        decode_hashes(&p.proof)
    }

    /// An inclusion proof of entry `index` in the tree of `size` (unverified).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let p: ProofJson = self.get_json(&format!("proof/inclusion?index={index}&size={size}"))?;
        decode_hashes(&p.proof)
    }

    /// The bytes of entry `index` (unverified).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>> {
        self.get(&format!("entries/{index}"), MAX_ENTRY)
    }

    /// `POST /state/proofs` for `keys` (hex of their encodings) at tree
    /// size `size` (unverified: see [`crate::state`]). Read-only, so
    /// retry-safe.
    pub fn state_proofs(&self, size: u64, keys: &[String]) -> Result<StateProofsJson> {
        let what = "POST /state/proofs";
        let body = serde_json::json!({ "size": size, "keys": keys });
        let req = Request::post(self.url("state/proofs"), body.to_string().into_bytes(), MAX_JSON)
            .retry_safe(true)
            .header("content-type", "application/json")
            .map_err(|e| Error::Network(format!("{what}: {e}")))?;
        let reply = self.http.fetch(&req).map_err(|e| refused(what, e))?;
        parse_json(reply.body, what)
    }

    /// `POST /statements`. Retry-safe: the log answers a statement it has
    /// already logged with its index and `duplicate: true`.
    pub fn post_statement(&self, envelope: &[u8]) -> Result<Submitted> {
        let what = "POST /statements";
        let req = Request::post(self.url("statements"), envelope.to_vec(), MAX_JSON).retry_safe(true);
        let reply = self.http.fetch(&req).map_err(|e| refused(what, e))?;
        parse_json(reply.body, what)
    }

    /// `PUT /blobs/<digest>` streaming `len` bytes from `body`, with the
    /// publish statement in the `Custody-Statement` header. Sent once.
    pub fn upload<R: Read + Send + 'static>(
        &self,
        digest: &str,
        body: R,
        len: u64,
        envelope: &[u8],
    ) -> Result<Uploaded> {
        let what = format!("PUT /blobs/{digest}");
        let req =
            Request::new(custody_client::Method::PUT, self.url(&format!("blobs/{digest}")), None, MAX_JSON)
                .timeout(TRANSFER_TIMEOUT)
                .header("custody-statement", &custody_standards::encoding::encode_base64(envelope))
                .map_err(|e| Error::Network(format!("{what}: {e}")))?;
        let reply = self.http.upload(&req, body, len).map_err(|e| refused(&what, e))?;
        let answer: UploadJson = parse_json(reply.body, &what)?;
        match (answer.published, answer.index) {
            (false, _) if answer.reason.as_deref() == Some("files_missing") => {
                Ok(Uploaded::FilesMissing(answer.missing))
            }
            (false, _) => Ok(Uploaded::StoredOnly),
            (true, Some(index)) => Ok(Uploaded::Published(Submitted { index, duplicate: answer.duplicate })),
            (true, None) => Err(Error::Network(format!("{what}: malformed answer: no index"))),
        }
    }

    /// `GET /blobs/<digest>` with an access statement. Returns the body
    /// (the caller streams and hashes it) and the access leaf index. Sent
    /// once: each download logs an access.
    pub fn download(&self, digest: &str, envelope: &[u8]) -> Result<(Download, Option<u64>)> {
        self.download_as(digest, envelope, None)
    }

    /// `GET /blobs/<file>` of a directory, under the access statement of
    /// its manifest already logged at `access_index` (nothing new is
    /// logged, so it may be retried).
    pub fn download_file(&self, digest: &str, envelope: &[u8], access_index: u64) -> Result<Download> {
        self.download_as(digest, envelope, Some(access_index)).map(|(body, _)| body)
    }

    fn download_as(
        &self,
        digest: &str,
        envelope: &[u8],
        access_index: Option<u64>,
    ) -> Result<(Download, Option<u64>)> {
        let what = format!("GET /blobs/{digest}");
        let mut req = Request::get(self.url(&format!("blobs/{digest}")), 0)
            .retry_safe(access_index.is_some())
            // A log that keeps artifacts in object storage may answer with a
            // presigned URL; the bytes are verified here all the same.
            .follow_presigned(true)
            .timeout(TRANSFER_TIMEOUT)
            .header("custody-statement", &custody_standards::encoding::encode_base64(envelope))
            .map_err(|e| Error::Network(format!("{what}: {e}")))?;
        if let Some(i) = access_index {
            req = req
                .header("custody-access-index", &i.to_string())
                .map_err(|e| Error::Network(format!("{what}: {e}")))?;
        }
        let body = self.http.download(&req).map_err(|e| refused(&what, e))?;
        let index =
            body.header("custody-leaf-index").and_then(custody_standards::encoding::parse_decimal_u64);
        Ok((body, index))
    }
}

/// Maps a client failure of `what`: an HTTP error answer becomes
/// [`Error::Refused`] with the log's error code, anything else a network
/// failure (the message names the cause, e.g. the certificate problem).
fn refused(what: &str, e: ClientError) -> Error {
    match e {
        ClientError::Status { status, body, .. } => {
            let (code, detail) = match serde_json::from_slice::<ErrorJson>(&body) {
                Ok(e) => (e.error, e.detail),
                Err(_) => {
                    ("http_error".to_owned(), String::from_utf8_lossy(&body).chars().take(200).collect())
                }
            };
            Error::Refused { what: what.to_owned(), status, code, detail }
        }
        e => Error::Network(format!("{what}: {e}")),
    }
}

fn parse_json<T: DeserializeOwned>(body: Vec<u8>, what: &str) -> Result<T> {
    serde_json::from_slice(&body).map_err(|e| Error::Network(format!("{what}: malformed answer: {e}")))
}

fn decode_hashes(v: &[String]) -> Result<Vec<Hash>> {
    if v.len() > 64 {
        return Err(Error::verify("proof longer than 64 hashes"));
    }
    v.iter().map(|h| Hash::from_base64(h).map_err(|e| Error::verify(format!("proof hash: {e}")))).collect()
}

/// The answer of `POST /state/proofs`, as sent (nothing in it is trusted
/// before [`crate::state`] verifies it).
#[derive(Debug, serde::Deserialize)]
pub struct StateProofsJson {
    /// Tree size the proofs are for.
    pub size: u64,
    /// One per key asked, in order.
    pub proofs: Vec<StateProofJson>,
}

/// One key's value and proof, as sent.
#[derive(Debug, serde::Deserialize)]
pub struct StateProofJson {
    /// Hex of the key encoding.
    pub key: String,
    /// Hex of the value encoding, or `None` for an absent key.
    pub value: Option<String>,
    /// Base64 of the proof encoding.
    pub proof: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_static_read_path_goes_to_the_tiles_url() {
        let c = LogClient::new("https://log.example/", Duration::from_secs(1), None).unwrap();
        assert_eq!(c.url("checkpoint"), "https://log.example/checkpoint");
        let c = c.with_read_path("https://cdn.example/log/");
        for (path, url) in [
            ("checkpoint", "https://cdn.example/log/checkpoint"),
            ("/tile/0/000", "https://cdn.example/log/tile/0/000"),
            ("tile/entries/001.p/3", "https://cdn.example/log/tile/entries/001.p/3"),
            ("proof/consistency?old=1&new=2", "https://log.example/proof/consistency?old=1&new=2"),
            ("state/proofs", "https://log.example/state/proofs"),
            ("checkpoints", "https://log.example/checkpoints"),
            ("blobs/abc", "https://log.example/blobs/abc"),
        ] {
            assert_eq!(c.url(path), url, "{path}");
        }
    }
}
