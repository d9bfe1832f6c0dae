//! HTTP client for one log (docs/api.md). Every response body is read with
//! a cap chosen for what it should hold, *before* anything parses it, so a
//! hostile log cannot make the client allocate without bound. Nothing here
//! is trusted: callers verify what they get with `custody-standards`.

use std::io::Read;
use std::time::Duration;

use custody_standards::Hash;
use reqwest::blocking::{Body, Client, Response};
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
/// Largest error body read.
const MAX_ERROR: u64 = 64 * 1024;

/// A client for one log's HTTP API.
#[derive(Debug, Clone)]
pub struct LogClient {
    http: Client,
    base: String,
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
}

#[derive(Deserialize)]
struct UploadJson {
    #[serde(default = "yes")]
    published: bool,
    index: Option<u64>,
    #[serde(default)]
    duplicate: bool,
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
    /// each whole request; uploads and downloads of large artifacts use
    /// their own (none) through [`LogClient::upload`] and [`LogClient::download`].
    pub fn new(base: &str, timeout: Duration) -> Result<Self> {
        let http = Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("custody/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Network(format!("HTTP client: {e}")))?;
        Ok(LogClient { http, base: base.trim_end_matches('/').to_owned() })
    }

    /// The log's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// Sends `req`, maps an HTTP error answer to [`Error::Refused`].
    fn send(&self, what: &str, req: reqwest::blocking::RequestBuilder) -> Result<Response> {
        let resp = req.send().map_err(|e| Error::Network(format!("{what}: {e}")))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = read_capped(resp, MAX_ERROR, what).unwrap_or_default();
        let (code, detail) = match serde_json::from_slice::<ErrorJson>(&body) {
            Ok(e) => (e.error, e.detail),
            Err(_) => ("http_error".to_owned(), String::from_utf8_lossy(&body).chars().take(200).collect()),
        };
        Err(Error::Refused { what: what.to_owned(), status, code, detail })
    }

    /// GET `path`, body capped at `cap` bytes.
    pub fn get(&self, path: &str, cap: u64) -> Result<Vec<u8>> {
        let what = format!("GET /{}", path.trim_start_matches('/'));
        let resp = self.send(&what, self.http.get(self.url(path)))?;
        read_capped(resp, cap, &what)
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

    /// `POST /statements`.
    pub fn post_statement(&self, envelope: &[u8]) -> Result<Submitted> {
        let what = "POST /statements";
        let resp = self.send(what, self.http.post(self.url("statements")).body(envelope.to_vec()))?;
        parse_json(read_capped(resp, MAX_JSON, what)?, what)
    }

    /// `PUT /blobs/<digest>` streaming `len` bytes from `body`, with the
    /// publish statement in the `Custody-Statement` header.
    pub fn upload<R: Read + Send + 'static>(
        &self,
        digest: &str,
        body: R,
        len: u64,
        envelope: &[u8],
    ) -> Result<Uploaded> {
        let what = format!("PUT /blobs/{digest}");
        let req = self
            .http
            .put(self.url(&format!("blobs/{digest}")))
            .timeout(Duration::from_secs(24 * 3600))
            .header("Custody-Statement", custody_standards::encoding::encode_base64(envelope))
            .body(Body::sized(body, len));
        let resp = self.send(&what, req)?;
        let answer: UploadJson = parse_json(read_capped(resp, MAX_JSON, &what)?, &what)?;
        match (answer.published, answer.index) {
            (false, _) => Ok(Uploaded::StoredOnly),
            (true, Some(index)) => Ok(Uploaded::Published(Submitted { index, duplicate: answer.duplicate })),
            (true, None) => Err(Error::Network(format!("{what}: malformed answer: no index"))),
        }
    }

    /// `GET /blobs/<digest>` with an access statement. Returns the response
    /// (the caller streams and hashes the body) and the access leaf index.
    pub fn download(&self, digest: &str, envelope: &[u8]) -> Result<(Response, Option<u64>)> {
        let what = format!("GET /blobs/{digest}");
        let req = self
            .http
            .get(self.url(&format!("blobs/{digest}")))
            .timeout(Duration::from_secs(24 * 3600))
            .header("Custody-Statement", custody_standards::encoding::encode_base64(envelope));
        let resp = self.send(&what, req)?;
        let index = resp
            .headers()
            .get("Custody-Leaf-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(custody_standards::encoding::parse_decimal_u64);
        Ok((resp, index))
    }
}

fn parse_json<T: DeserializeOwned>(body: Vec<u8>, what: &str) -> Result<T> {
    serde_json::from_slice(&body).map_err(|e| Error::Network(format!("{what}: malformed answer: {e}")))
}

/// Reads a body, failing if it exceeds `cap` bytes.
fn read_capped(resp: Response, cap: u64, what: &str) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(Error::Network(format!("{what}: answer larger than {cap} bytes")));
    }
    let mut out = Vec::new();
    resp.take(cap + 1).read_to_end(&mut out).map_err(|e| Error::Network(format!("{what}: {e}")))?;
    if out.len() as u64 > cap {
        return Err(Error::Network(format!("{what}: answer larger than {cap} bytes")));
    }
    Ok(out)
}

fn decode_hashes(v: &[String]) -> Result<Vec<Hash>> {
    if v.len() > 64 {
        return Err(Error::verify("proof longer than 64 hashes"));
    }
    v.iter().map(|h| Hash::from_base64(h).map_err(|e| Error::verify(format!("proof hash: {e}")))).collect()
}
