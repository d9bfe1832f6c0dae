//! Log events: entries the log signs with its *own* key, for what it
//! observes itself rather than what an actor asks. The one event so far is
//! an integrity violation: a stored artifact that no longer hashes to its
//! digest when it is read.
//!
//! ```text
//! offset  size  field
//!      0     7  magic, ASCII "CUSTODY"
//!      7     1  leaf version, 0x03
//!      8     8  receive time: ms since the Unix epoch, u64 big-endian
//!     16     4  envelope length N, u32 big-endian, 1 <= N <= 64000
//!     20     N  a DSSE envelope of type LOG_EVENT_PAYLOAD_TYPE
//! ```
//!
//! The envelope carries exactly one signature, by the Ed25519 key the log
//! signs its checkpoints with: `keyid` is the hex SHA-256 of its 32-byte
//! public key, and the payload names the key's name (the log's origin), so
//! anyone holding the log's verifier key (every client's policy does)
//! checks it, and nobody else can make one. The payload is strict JSON:
//!
//! ```json
//! {"schema":1,"origin":"log.example/registry","time":"2026-11-23T07:00:00Z",
//!  "event":{"integrity_violation":{"digest":"sha256:<hex>","observed":"sha256:<hex>","access_index":41}}}
//! ```
//!
//! Rules (the log before sequencing, the auditor on replay): the signature
//! verifies with the log's key, `origin` is that key's name, the digest is
//! published in the log, and `access_index` is before the event's own
//! index. An event is about the digest and every name that published it:
//! it joins their entry lists (docs/protocol.md section 8).

use serde::{Deserialize, Serialize};

use crate::actor_key::KeyId;
use crate::dsse::{pae, DsseError, Envelope, EnvelopeSignature, MAX_ENVELOPE_SIZE};
use crate::leaf::{LeafError, LEAF_HEADER_SIZE, LEAF_MAGIC};
use crate::names::Digest;
use crate::statement::text::{Schema, Text};
use crate::timestamp::Timestamp;
use custody_standards::VerifierKey;

/// DSSE payload type of a log event, schema 1.
pub const LOG_EVENT_PAYLOAD_TYPE: &str = "application/vnd.custody.log-event.v1+json";
/// The leaf version of a log event.
pub const LEAF_VERSION_LOG_EVENT: u8 = 0x03;

/// An artifact read by the log did not hash to its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrityViolation {
    /// The digest the artifact is published under.
    pub digest: Digest,
    /// What the stored bytes were found to be (their digest, or why they
    /// could not be read whole).
    pub observed: Text,
    /// The access entry under which the read was made.
    pub access_index: u64,
}

/// What a log event reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogEventBody {
    /// See [`IntegrityViolation`].
    IntegrityViolation(IntegrityViolation),
}

impl LogEventBody {
    /// The action as written in JSON.
    pub fn action(&self) -> &'static str {
        match self {
            LogEventBody::IntegrityViolation(_) => "integrity_violation",
        }
    }

    /// The digest the event is about.
    pub fn digest(&self) -> &Digest {
        match self {
            LogEventBody::IntegrityViolation(v) => &v.digest,
        }
    }
}

/// A log event payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEvent {
    /// Always 1.
    pub schema: Schema,
    /// The log's origin: the name of the key that signs.
    pub origin: String,
    /// When the log observed it.
    pub time: Timestamp,
    /// What.
    pub event: LogEventBody,
}

/// Why a log event is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogEventError {
    /// The leaf bytes are malformed.
    #[error(transparent)]
    Leaf(#[from] LeafError),
    /// The envelope is malformed.
    #[error(transparent)]
    Envelope(#[from] DsseError),
    /// Not the log-event payload type, or not exactly one signature.
    #[error("not a log event envelope: {0}")]
    Shape(&'static str),
    /// The payload does not parse.
    #[error("invalid log event: {0}")]
    Invalid(String),
    /// No log key to check it with.
    #[error("a log-signed entry, and no log key to verify it with")]
    NoKey,
    /// Not signed by the log's key (another key, or a bad signature).
    #[error("not signed by the log's key {0}")]
    NotTheLog(String),
    /// The event's rules: unknown digest, access index not before it.
    #[error("{0}")]
    Rule(String),
}

/// A log-event leaf, borrowing its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEventLeaf<'a> {
    /// When the log made it, ms since the Unix epoch.
    pub receive_time_ms: u64,
    /// The DSSE envelope JSON.
    pub envelope: &'a [u8],
}

impl<'a> LogEventLeaf<'a> {
    /// The leaf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEAF_HEADER_SIZE + self.envelope.len());
        out.extend_from_slice(LEAF_MAGIC);
        out.push(LEAF_VERSION_LOG_EVENT);
        out.extend_from_slice(&self.receive_time_ms.to_be_bytes());
        out.extend_from_slice(&(self.envelope.len().min(MAX_ENVELOPE_SIZE) as u32).to_be_bytes());
        out.extend_from_slice(self.envelope);
        out
    }

    /// Strict decode: magic, version 3, a length in range that matches.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, LeafError> {
        let (receive_time_ms, envelope) = crate::leaf::decode_envelope_leaf(bytes, LEAF_VERSION_LOG_EVENT)?;
        Ok(LogEventLeaf { receive_time_ms, envelope })
    }
}

/// A parsed log event and its envelope, signature not yet verified.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedLogEvent {
    /// The envelope.
    pub envelope: Envelope,
    /// The event it carries.
    pub event: LogEvent,
}

impl SignedLogEvent {
    /// Parses envelope bytes strictly (type, one signature, payload).
    pub fn parse(bytes: &[u8]) -> Result<Self, LogEventError> {
        let envelope = Envelope::parse(bytes)?;
        if envelope.payload_type != LOG_EVENT_PAYLOAD_TYPE {
            return Err(LogEventError::Shape("payload type"));
        }
        if envelope.signatures.len() != 1 {
            return Err(LogEventError::Shape("a log event carries exactly one signature"));
        }
        let event: LogEvent =
            serde_json::from_slice(&envelope.payload).map_err(|e| LogEventError::Invalid(e.to_string()))?;
        Ok(SignedLogEvent { envelope, event })
    }

    /// Verifies that `key` (the log's checkpoint key) signed it: the key's
    /// name is the event's origin, the key ID is the key's, the signature
    /// verifies over the PAE.
    pub fn verify(&self, key: &VerifierKey) -> Result<(), LogEventError> {
        let id = KeyId::of(&key.public_key());
        let sig = &self.envelope.signatures[0];
        let not_the_log = || LogEventError::NotTheLog(key.name().to_owned());
        if key.name() != self.event.origin || sig.keyid != id {
            return Err(not_the_log());
        }
        if !key.verify_ed25519(&self.envelope.pae(), &sig.sig) {
            return Err(not_the_log());
        }
        Ok(())
    }

    /// Signs `event` with the log's key (given as its public key and a
    /// signing function, so this crate holds no private key): the envelope
    /// bytes of a log-event leaf.
    pub fn sign(
        event: &LogEvent,
        public_key: &[u8; 32],
        sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> Result<Vec<u8>, LogEventError> {
        let payload = serde_json::to_vec(event).map_err(|e| LogEventError::Invalid(e.to_string()))?;
        let sig = sign(&pae(LOG_EVENT_PAYLOAD_TYPE.as_bytes(), &payload));
        let envelope = Envelope {
            payload_type: LOG_EVENT_PAYLOAD_TYPE.to_owned(),
            payload,
            signatures: vec![EnvelopeSignature { keyid: KeyId::of(public_key), sig }],
        };
        let bytes = envelope.to_json();
        if bytes.len() > MAX_ENVELOPE_SIZE {
            return Err(DsseError::TooLarge { size: bytes.len() }.into());
        }
        Ok(bytes)
    }
}

/// Parses and verifies a log-event leaf against `key`, then checks the
/// event's rules at leaf `index`: `published` says whether a digest is
/// published in the log before it.
pub fn check(
    bytes: &[u8],
    key: Option<&VerifierKey>,
    index: u64,
    published: impl Fn(&Digest) -> bool,
) -> Result<(u64, SignedLogEvent), LogEventError> {
    let leaf = LogEventLeaf::decode(bytes)?;
    let signed = SignedLogEvent::parse(leaf.envelope)?;
    signed.verify(key.ok_or(LogEventError::NoKey)?)?;
    match &signed.event.event {
        LogEventBody::IntegrityViolation(v) => {
            if !published(&v.digest) {
                return Err(LogEventError::Rule(format!("{} is not published", v.digest)));
            }
            if v.access_index >= index {
                return Err(LogEventError::Rule(format!(
                    "the access at {} is not before the event at {index}",
                    v.access_index
                )));
            }
        }
    }
    Ok((leaf.receive_time_ms, signed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_standards::keys::SIG_TYPE_ED25519;
    use custody_standards::SignerKey;

    fn key(seed: u8) -> SignerKey {
        SignerKey::from_seed("log.example/registry", SIG_TYPE_ED25519, &[seed; 32]).unwrap()
    }

    fn event(origin: &str) -> LogEvent {
        LogEvent {
            schema: Schema::V1,
            origin: origin.to_owned(),
            time: Timestamp::from_unix_secs(1_800_000_000).unwrap(),
            event: LogEventBody::IntegrityViolation(IntegrityViolation {
                digest: Digest(custody_standards::hash::sha256(b"w")),
                observed: Text::new("sha256:00").unwrap(),
                access_index: 3,
            }),
        }
    }

    fn leaf_by(k: &SignerKey, origin: &str) -> Vec<u8> {
        let envelope =
            SignedLogEvent::sign(&event(origin), &k.verifier().public_key(), |m| k.sign_ed25519(m)).unwrap();
        LogEventLeaf { receive_time_ms: 1_800_000_000_000, envelope: &envelope }.encode()
    }

    #[test]
    fn the_logs_key_verifies_and_no_other_does() {
        let (k, other) = (key(1), key(2));
        let bytes = leaf_by(&k, k.name());
        let (time, signed) = check(&bytes, Some(&k.verifier()), 4, |_| true).unwrap();
        assert_eq!(time, 1_800_000_000_000);
        assert_eq!(signed.event, event(k.name()));
        assert_eq!(check(&bytes, None, 4, |_| true).unwrap_err(), LogEventError::NoKey);
        // Another key, even under the log's name.
        let forged = leaf_by(&other, k.name());
        assert!(matches!(check(&forged, Some(&k.verifier()), 4, |_| true), Err(LogEventError::NotTheLog(_))));
        // The log's key, but another origin named.
        let elsewhere = leaf_by(&k, "other.example/log");
        assert!(matches!(
            check(&elsewhere, Some(&k.verifier()), 4, |_| true),
            Err(LogEventError::NotTheLog(_))
        ));
        // A flipped payload byte.
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 30] ^= 1;
        assert!(check(&flipped, Some(&k.verifier()), 4, |_| true).is_err());
        // The rules: a published digest, an earlier access.
        assert!(matches!(check(&bytes, Some(&k.verifier()), 4, |_| false), Err(LogEventError::Rule(_))));
        assert!(matches!(check(&bytes, Some(&k.verifier()), 3, |_| true), Err(LogEventError::Rule(_))));
    }

    #[test]
    fn the_leaf_format_is_strict() {
        let k = key(1);
        let bytes = leaf_by(&k, k.name());
        assert_eq!(&bytes[..8], b"CUSTODY\x03");
        let leaf = LogEventLeaf::decode(&bytes).unwrap();
        assert_eq!(leaf.encode(), bytes);
        assert!(matches!(crate::leaf::LogLeaf::decode(&bytes), Ok(crate::leaf::LogLeaf::LogEvent(_))));
        assert_eq!(crate::leaf::Leaf::decode(&bytes), Err(LeafError::LogEvent));
        for n in 0..LEAF_HEADER_SIZE {
            assert_eq!(LogEventLeaf::decode(&bytes[..n]), Err(LeafError::Truncated(n)));
        }
        let mut long = bytes.clone();
        long.push(b' ');
        assert!(matches!(LogEventLeaf::decode(&long), Err(LeafError::LengthMismatch { .. })));
        // A statement envelope in a log-event leaf is not a log event.
        let payload = serde_json::to_vec(&serde_json::json!({"schema": 1, "origin": "x", "time": "2027-01-15T08:00:00Z",
            "event": {"integrity_violation": {"digest": Digest(custody_standards::hash::sha256(b"w")).to_string(),
            "observed": "x", "access_index": 1}}, "extra": 1}))
        .unwrap();
        let envelope = Envelope {
            payload_type: LOG_EVENT_PAYLOAD_TYPE.into(),
            payload,
            signatures: vec![EnvelopeSignature {
                keyid: KeyId::of(&k.verifier().public_key()),
                sig: [0; 64],
            }],
        };
        assert!(matches!(SignedLogEvent::parse(&envelope.to_json()), Err(LogEventError::Invalid(_))));
        let wrong_type = Envelope { payload_type: crate::statement::PAYLOAD_TYPE.into(), ..envelope };
        assert!(matches!(SignedLogEvent::parse(&wrong_type.to_json()), Err(LogEventError::Shape(_))));
    }
}
