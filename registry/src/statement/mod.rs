//! Signed statements: the JSON payload an actor signs into a DSSE envelope
//! of type [`PAYLOAD_TYPE`].
//!
//! ```json
//! {"schema":1,
//!  "actor":"alice",
//!  "key_id":"<hex SHA-256 of alice's public key>",
//!  "time":"2026-11-23T07:00:00Z",
//!  "nonce":"<32 lowercase hex, 16 random bytes>",
//!  "context":{"reason":"nightly evaluation","environment":"prod-eu","pipeline":"eval#812","source":"10.0.0.7"},
//!  "event":{"access":{"name":"acme/model","version":"1.0","digest":"sha256:<64 hex>"}}}
//! ```
//!
//! Parsing is strict: unknown fields and duplicate fields are errors at
//! every level, every identifier is validated ([`crate::names`]), free
//! text has no control characters, sizes and counts are capped, and the
//! payload must be a single JSON value (serde_json: no trailing data, no
//! comments, no lone surrogates). Whitespace and key order are free: the
//! log keeps the envelope bytes verbatim, so there is nothing to
//! canonicalise, only ambiguity to refuse.
//!
//! Who, when, where from and why: `actor`/`key_id`, `time`, `context`
//! (`reason` is required; `environment`, `pipeline` and `source` are
//! optional).

pub mod events;
pub mod metadata;
pub mod text;

use serde::{Deserialize, Serialize};

use crate::actor_key::{ActorKey, ActorSigner, KeyId};
use crate::dsse::{DsseError, Envelope, MAX_ENVELOPE_SIZE};
use crate::names::ActorName;
use crate::timestamp::Timestamp;

pub use events::Event;
pub use text::{Nonce, Schema, Text};

/// DSSE payload type of a Custody statement, schema 1.
pub const PAYLOAD_TYPE: &str = "application/vnd.custody.statement.v1+json";

/// Why a statement was rejected before any registry rule was applied. All
/// map to HTTP 400, except an oversized envelope (413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The envelope itself is malformed or too large.
    #[error(transparent)]
    Envelope(#[from] DsseError),
    /// `payloadType` is not [`PAYLOAD_TYPE`].
    #[error("payloadType must be {PAYLOAD_TYPE}")]
    PayloadType,
    /// A statement envelope carries exactly one signature.
    #[error("a statement carries exactly one signature, not {0}")]
    SignatureCount(usize),
    /// The envelope's `keyid` differs from the payload's `key_id`.
    #[error("envelope keyid does not match the statement's key_id")]
    KeyIdMismatch,
    /// The payload is not a valid statement (JSON error, unknown or
    /// duplicate field, invalid identifier...). The message says which.
    #[error("invalid statement: {0}")]
    Invalid(String),
}

impl StatementError {
    /// The HTTP status a server answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            StatementError::Envelope(DsseError::TooLarge { .. }) => 413,
            _ => 400,
        }
    }
}

/// Where, from what and why a statement was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Why (required).
    pub reason: Text,
    /// Deployment environment, e.g. `prod-eu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Text>,
    /// Pipeline or job, e.g. `train#4411`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Text>,
    /// Where from: host, address or service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
}

impl Context {
    /// A context with only a reason.
    pub fn reason(reason: Text) -> Self {
        Context { reason, environment: None, pipeline: None, source: None }
    }
}

/// A statement payload (schema 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always 1.
    pub schema: Schema,
    /// Who.
    pub actor: ActorName,
    /// Which of the actor's keys signs (must equal the envelope `keyid`).
    pub key_id: KeyId,
    /// When, by the actor's clock; must be within the registry's window
    /// of the log's receive time.
    pub time: Timestamp,
    /// Random, never reused: replay protection.
    pub nonce: Nonce,
    /// Where from and why.
    pub context: Context,
    /// What.
    pub event: Event,
}

impl Statement {
    /// A statement by `signer`'s actor and key. Time and nonce come from
    /// the caller (this crate has no clock and no randomness).
    pub fn new(signer: &ActorSigner, time: Timestamp, nonce: Nonce, context: Context, event: Event) -> Self {
        Statement {
            schema: Schema::V1,
            actor: signer.actor().clone(),
            key_id: signer.key_id(),
            time,
            nonce,
            context,
            event,
        }
    }

    /// Parses a payload strictly and checks the caps serde cannot express.
    pub fn parse(payload: &[u8]) -> Result<Self, StatementError> {
        let s: Statement =
            serde_json::from_slice(payload).map_err(|e| StatementError::Invalid(e.to_string()))?;
        s.check()?;
        Ok(s)
    }

    /// The rules beyond field syntax: metadata size, finite metrics,
    /// lineage caps and uniqueness, a canonical non-empty `protect` status
    /// set, and that a key named in the body is
    /// written for the actor the body names.
    pub fn check(&self) -> Result<(), StatementError> {
        let bad = |m: &str| Err(StatementError::Invalid(m.to_owned()));
        match &self.event {
            Event::Publish(p) => {
                if p.metadata.content_size() > metadata::MAX_METADATA_SIZE {
                    return bad("metadata exceeds 16384 bytes");
                }
                if !p.metadata.metrics_finite() {
                    return bad("metrics must be finite numbers");
                }
                p.lineage.check().map_err(|m| StatementError::Invalid(m.to_owned()))?;
            }
            Event::Protect(p) => {
                if p.statuses.is_empty() {
                    return bad("protect statuses must not be empty");
                }
                if !p.statuses.windows(2).all(|w| w[0] < w[1]) {
                    return bad("protect statuses must be in lifecycle order without duplicates");
                }
            }
            Event::Grant(g) if g.key.actor() != &g.actor => {
                return bad("grant key is written for another actor");
            }
            Event::Rotate(r) if r.new_key.actor() != &self.actor => {
                return bad("rotate new_key is written for another actor");
            }
            _ => {}
        }
        Ok(())
    }

    /// The payload JSON (compact, fields in declaration order).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("statement serialization cannot fail")
    }

    /// Signs the statement into envelope JSON bytes, ready to send. Fails if
    /// the signer is not the statement's actor and key, if the statement
    /// breaks a rule [`Statement::parse`] would refuse, or if the envelope
    /// would exceed [`MAX_ENVELOPE_SIZE`].
    pub fn sign(&self, signer: &ActorSigner) -> Result<Vec<u8>, StatementError> {
        if signer.key_id() != self.key_id || signer.actor() != &self.actor {
            return Err(StatementError::KeyIdMismatch);
        }
        self.check()?;
        let bytes = Envelope::sign(PAYLOAD_TYPE, self.to_json(), signer).to_json();
        if bytes.len() > MAX_ENVELOPE_SIZE {
            return Err(DsseError::TooLarge { size: bytes.len() }.into());
        }
        Ok(bytes)
    }
}

/// A parsed envelope and its statement, signature not yet verified.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedStatement {
    /// The envelope (payload type checked, one signature).
    pub envelope: Envelope,
    /// The statement it carries.
    pub statement: Statement,
}

impl SignedStatement {
    /// Parses envelope bytes and the statement inside. Does not verify the
    /// signature: the key comes from the registry
    /// ([`crate::registry::Registry::signing_key`]), and auditors verify in
    /// batches ([`crate::dsse::verify_batch`]).
    pub fn parse(envelope: &[u8]) -> Result<Self, StatementError> {
        let envelope = Envelope::parse(envelope)?;
        Self::from_envelope(envelope)
    }

    /// Checks a parsed envelope carries a statement.
    pub fn from_envelope(envelope: Envelope) -> Result<Self, StatementError> {
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(StatementError::PayloadType);
        }
        if envelope.signatures.len() != 1 {
            return Err(StatementError::SignatureCount(envelope.signatures.len()));
        }
        let statement = Statement::parse(&envelope.payload)?;
        if envelope.signatures[0].keyid != statement.key_id {
            return Err(StatementError::KeyIdMismatch);
        }
        Ok(SignedStatement { envelope, statement })
    }

    /// The signing key ID.
    pub fn key_id(&self) -> KeyId {
        self.statement.key_id
    }

    /// Verifies the one signature with `key` (whose ID must be the
    /// statement's `key_id`).
    pub fn verify(&self, key: &ActorKey) -> Result<(), DsseError> {
        self.envelope.verify(key)
    }

    /// The signature bytes (for batch verification with
    /// [`SignedStatement::pae`]).
    pub fn signature(&self) -> &[u8; 64] {
        &self.envelope.signatures[0].sig
    }

    /// The message the signature covers.
    pub fn pae(&self) -> Vec<u8> {
        self.envelope.pae()
    }
}
