//! Client side of the C2SP tlog-witness `add-checkpoint` call.
//!
//! The log asks each policy witness to cosign every new checkpoint. This
//! module only speaks the protocol: it frames the request with
//! [`AddCheckpointRequest`], bounds every wait and every response body,
//! retries transient failures (timeouts, transport errors, 5xx, 429), and
//! turns each HTTP outcome into a [`WitnessCallError`] variant the
//! checkpointer can act on (a 409 teaches the witness's real size, a 4xx is
//! permanent for this checkpoint).
//! Verifying the returned cosignature lines is the caller's job, because only
//! the caller knows which witness key it trusts for that URL.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use custody_client::{Client, ClientConfig, ClientError, Request, RetryPolicy};
use custody_standards::note::{open_note, NoteSignature, NoteVerifier};
use custody_standards::witness::{
    parse_size_body, split_cosignature_response, AddCheckpointRequest, MAX_PROOF_LINES, SIZE_CONTENT_TYPE,
};
use custody_standards::{Hash, VerifierKey};

/// Largest response body read from a witness. A reply is a few signature
/// lines (or one decimal); anything bigger is hostile or broken, and reading
/// it fully would let a witness make the log buffer unbounded data.
pub const MAX_RESPONSE_SIZE: usize = 64 * 1024;

/// Longest excerpt of an error body kept for logs and `/health`.
const BODY_EXCERPT: usize = 200;

/// Cosignature timestamps further in the future than this are refused: a
/// witness with a broken clock would make our checkpoint look forged.
const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// Why an `add-checkpoint` call produced no cosignature.
#[derive(Debug, thiserror::Error)]
pub enum WitnessCallError {
    /// 409 with a `text/x.tlog.size` body: the witness's latest cosigned size
    /// differs from the `old` size we sent. The caller retries with the
    /// right old size (or raises an alarm if the witness is ahead of us).
    #[error("witness has cosigned size {latest_size}, not the old size we sent")]
    Conflict {
        /// The witness's latest cosigned tree size.
        latest_size: u64,
    },
    /// Any other non-200 status (403 bad signature, 404 unknown origin,
    /// 422 bad proof, 409 without a size body, 5xx ...).
    #[error("witness answered HTTP {status}: {body}")]
    Rejected {
        /// HTTP status code.
        status: u16,
        /// Start of the response body (lossy UTF-8, at most 200 bytes).
        body: String,
    },
    /// No complete answer within the per-request timeout.
    #[error("witness did not answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, reset, bad URL, ...
    #[error("transport error talking to witness: {0}")]
    Transport(String),
    /// The witness answered, but not in the protocol's format (or too much).
    #[error("malformed witness response: {0}")]
    Malformed(String),
    /// We could not build a valid request (e.g. a proof longer than the 63
    /// lines the spec allows); nothing was sent.
    #[error("invalid add-checkpoint request: {0}")]
    InvalidRequest(&'static str),
}

impl WitnessCallError {
    /// Whether retrying the same request later may succeed: timeouts,
    /// transport failures and server-side (5xx) errors. 4xx answers are
    /// about this checkpoint and would be repeated verbatim.
    pub fn is_transient(&self) -> bool {
        match self {
            WitnessCallError::Timeout(_) | WitnessCallError::Transport(_) => true,
            WitnessCallError::Rejected { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A keep-alive HTTP client for witnesses (the spec asks clients to reuse
/// connections), with a timeout on every attempt so one stuck witness can
/// never stall checkpoint publication. Built on the workspace's one HTTP
/// client (custody-client): capped reads, HTTPS with `--ca-cert`, and
/// retries of transient failures with jittered backoff and `Retry-After`.
#[derive(Clone, Debug)]
pub struct WitnessClient {
    http: Client,
}

impl WitnessClient {
    /// A client whose every attempt gives up after `timeout` (connect,
    /// request and reading the whole response), retrying a transient
    /// failure (timeout, transport, 5xx, 429) up to `retries` times, and
    /// trusting the CAs in `ca_cert` besides the system roots.
    pub fn new(timeout: Duration, retries: u32, ca_cert: Option<PathBuf>) -> Result<Self, ClientError> {
        let cfg = ClientConfig::new(concat!("custody-log/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .ca_cert(ca_cert)
            .retry(RetryPolicy::with_retries(retries));
        Ok(WitnessClient { http: Client::new(cfg)? })
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        self.http.config().timeout
    }

    /// `POST <url>/add-checkpoint` where `url` is the witness's submission
    /// prefix (as in the policy file). `proof` is the consistency proof from
    /// `old` to the checkpoint's size (empty when `old` is 0).
    ///
    /// Returns the cosignature lines of a 200 reply, each ending in `\n`,
    /// unverified.
    pub async fn add_checkpoint(
        &self,
        url: &str,
        old: u64,
        proof: &[Hash],
        signed_checkpoint: &[u8],
    ) -> Result<Vec<String>, WitnessCallError> {
        if proof.len() > MAX_PROOF_LINES {
            return Err(WitnessCallError::InvalidRequest("consistency proof longer than 63 lines"));
        }
        if old == 0 && !proof.is_empty() {
            return Err(WitnessCallError::InvalidRequest("proof must be empty when old size is 0"));
        }
        let body = AddCheckpointRequest {
            old_size: old,
            proof: proof.to_vec(),
            checkpoint: signed_checkpoint.to_vec(),
        }
        .to_bytes();
        let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
        // Retry-safe: the witness answers a repeat of a request it already
        // cosigned with 409 and its size, which the checkpointer handles.
        let req = Request::post(endpoint, body, MAX_RESPONSE_SIZE as u64)
            .retry_safe(true)
            .header("content-type", "text/plain; charset=utf-8")
            .map_err(|e| WitnessCallError::Transport(e.to_string()))?;
        let reply = self.http.send(&req).await.map_err(classify)?;
        match reply.status {
            200 => {
                let lines = split_cosignature_response(&reply.body)
                    .map_err(|e| WitnessCallError::Malformed(e.to_string()))?;
                Ok(lines.into_iter().map(str::to_owned).collect())
            }
            409 if reply.media_type().as_deref() == Some(SIZE_CONTENT_TYPE) => {
                let latest_size = parse_size_body(&reply.body)
                    .map_err(|e| WitnessCallError::Malformed(format!("409 size body: {e}")))?;
                Err(WitnessCallError::Conflict { latest_size })
            }
            status => Err(WitnessCallError::Rejected { status, body: excerpt(&reply.body) }),
        }
    }
}

/// Maps a failure with no answer to the protocol's error classes.
fn classify(e: ClientError) -> WitnessCallError {
    match e {
        ClientError::Timeout { timeout, .. } => WitnessCallError::Timeout(timeout),
        ClientError::TooLarge { .. } => {
            WitnessCallError::Malformed(format!("response body over {MAX_RESPONSE_SIZE} bytes"))
        }
        e => WitnessCallError::Transport(e.to_string()),
    }
}

/// Why a witness's reply carried no usable cosignature.
#[derive(Debug, thiserror::Error)]
pub enum CosignatureLineError {
    /// A reply line is not a signed-note signature line.
    #[error("unparseable signature line")]
    Unparseable,
    /// A line from the policy key does not verify.
    #[error("cosignature rejected: {0}")]
    Rejected(#[from] custody_standards::note::NoteError),
    /// A line from the policy key is dated ahead of our clock.
    #[error("cosignature timestamp {timestamp} is in the future (now {now})")]
    FromTheFuture {
        /// The cosignature's timestamp.
        timestamp: u64,
        /// Our clock.
        now: u64,
    },
    /// No line is from the policy key.
    #[error("no cosignature from the policy key in the reply")]
    NoneFromKey,
}

/// Keeps the returned lines that are valid cosignatures by `key` on `note`'s
/// checkpoint. Lines from other keys are ignored (the spec says so); a line
/// from `key` that does not verify, or with a timestamp from the future, is
/// an error. Succeeds only with at least one good line.
pub fn verify_cosignature_lines(
    note: &[u8],
    key: &VerifierKey,
    lines: &[String],
) -> Result<Vec<String>, CosignatureLineError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let mut good = Vec::new();
    for line in lines {
        let Ok(sig) = NoteSignature::from_line(line.trim_end_matches('\n')) else {
            return Err(CosignatureLineError::Unparseable);
        };
        if sig.name != key.name() || sig.key_id != key.key_id() {
            continue;
        }
        let mut msg = note.to_vec();
        msg.extend_from_slice(line.as_bytes());
        let opened = open_note(&msg, &[key as &dyn NoteVerifier])?;
        let ts = opened.verified.first().and_then(|v| v.timestamp).unwrap_or(0);
        if ts > now + MAX_CLOCK_SKEW_SECS {
            return Err(CosignatureLineError::FromTheFuture { timestamp: ts, now });
        }
        good.push(line.clone());
    }
    if good.is_empty() {
        return Err(CosignatureLineError::NoneFromKey);
    }
    Ok(good)
}

/// A printable, bounded prefix of an error body.
fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_EXCERPT)];
    String::from_utf8_lossy(cut).chars().filter(|c| !c.is_control() || *c == ' ').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        assert!(WitnessCallError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(WitnessCallError::Transport("refused".into()).is_transient());
        assert!(WitnessCallError::Rejected { status: 503, body: String::new() }.is_transient());
        assert!(!WitnessCallError::Rejected { status: 422, body: String::new() }.is_transient());
        assert!(!WitnessCallError::Conflict { latest_size: 3 }.is_transient());
    }

    #[test]
    fn excerpt_is_bounded_and_printable() {
        let body = [b"bad\nproof\x07".as_slice(), &[b'x'; 500]].concat();
        let e = excerpt(&body);
        assert!(e.starts_with("badproof"));
        assert!(e.len() <= BODY_EXCERPT);
    }

    #[tokio::test]
    async fn refuses_invalid_requests_without_sending() {
        let c = WitnessClient::new(Duration::from_millis(100), 0, None).unwrap();
        let proof = vec![Hash([0; 32]); 64];
        let err = c.add_checkpoint("http://127.0.0.1:9", 1, &proof, b"x").await.unwrap_err();
        assert!(matches!(err, WitnessCallError::InvalidRequest(_)), "{err}");
        let err = c.add_checkpoint("http://127.0.0.1:9", 0, &proof[..1], b"x").await.unwrap_err();
        assert!(matches!(err, WitnessCallError::InvalidRequest(_)), "{err}");
    }
}
