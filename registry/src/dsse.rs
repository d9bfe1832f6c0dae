//! DSSE (Dead Simple Signing Envelope) v1 with Ed25519, as Custody uses it
//! for signed statements.
//!
//! Envelope (DSSE envelope.md), one JSON object:
//!
//! ```json
//! {"payloadType":"<type>","payload":"<base64(body)>","signatures":[{"keyid":"<key ID>","sig":"<base64(sig)>"}]}
//! ```
//!
//! Each signature is Ed25519 over the pre-authentication encoding
//! (DSSE protocol.md):
//!
//! ```text
//! PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//! ```
//!
//! where `LEN` is the byte length in ASCII decimal without leading zeros.
//!
//! Custody's profile is stricter than DSSE in ways that only remove
//! ambiguity, never meaning:
//! - base64 is standard, padded, with zero trailing bits (DSSE verifiers
//!   "MUST accept" URL-safe base64 too; we do not, so each envelope has one
//!   spelling of its payload and signatures, like every other format in
//!   core);
//! - every signature has a `keyid`, which must be a Custody key ID
//!   ([`KeyId`]), and a 64-byte Ed25519 `sig`;
//! - no other fields, no duplicate fields, 1..=[`MAX_SIGNATURES`] signatures,
//!   at most [`MAX_ENVELOPE_SIZE`] bytes, checked before parsing.
//!
//! The parsed [`Envelope`] does not re-encode anything: the log stores the
//! bytes the client sent ([`crate::leaf`]), so parsing only has to be
//! strict, not canonicalising.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::actor_key::{ActorKey, ActorSigner, KeyId};
use custody_standards::encoding::{decode_base64_strict, encode_base64};
use custody_standards::keys::ED25519_SIGNATURE_SIZE;

/// Largest envelope accepted, in bytes. A leaf is the envelope plus a
/// 20-byte header ([`crate::leaf::LEAF_HEADER_SIZE`]) and must fit the
/// log's 65,535-byte entry cap; 64,000 leaves 1,515 bytes of headroom for a
/// future leaf version with a larger header.
pub const MAX_ENVELOPE_SIZE: usize = 64_000;
/// Most signatures an envelope may carry. Statements use exactly one; the
/// cap bounds the work a hostile envelope can cause.
pub const MAX_SIGNATURES: usize = 8;
/// Longest payload type accepted.
pub const MAX_PAYLOAD_TYPE_LEN: usize = 256;

/// Why an envelope was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsseError {
    /// More than [`MAX_ENVELOPE_SIZE`] bytes.
    #[error("envelope is {size} bytes, the limit is {MAX_ENVELOPE_SIZE}")]
    TooLarge {
        /// Size found.
        size: usize,
    },
    /// Not the envelope JSON shape: bad JSON, unknown or duplicate or
    /// missing field, wrong type.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// `payloadType` empty or longer than [`MAX_PAYLOAD_TYPE_LEN`].
    #[error("payloadType must be 1..={MAX_PAYLOAD_TYPE_LEN} bytes")]
    PayloadType,
    /// `payload` or `sig` is not canonical standard base64.
    #[error("{0} is not canonical standard base64")]
    Base64(&'static str),
    /// No signatures, or more than [`MAX_SIGNATURES`].
    #[error("an envelope carries 1..={MAX_SIGNATURES} signatures, not {0}")]
    SignatureCount(usize),
    /// A `sig` that is not 64 bytes.
    #[error("signature is {0} bytes, Ed25519 signatures are 64")]
    SignatureLength(usize),
    /// A `keyid` that is not a Custody key ID.
    #[error("keyid is not a Custody key ID (64 lowercase hex digits)")]
    KeyId,
    /// No signature carries the key ID asked for.
    #[error("no signature with key ID {0}")]
    NoSignatureForKey(KeyId),
    /// The signature does not verify.
    #[error("signature by {0} does not verify")]
    BadSignature(KeyId),
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// The signer's key ID (DSSE says it is only a hint; the statement
    /// repeats it inside the signed payload, which is what we trust).
    pub keyid: KeyId,
    /// Raw Ed25519 signature.
    pub sig: [u8; ED25519_SIGNATURE_SIZE],
}

/// A parsed, *unverified* envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `payloadType`.
    pub payload_type: String,
    /// The decoded payload bytes (the serialized body).
    pub payload: Vec<u8>,
    /// Signatures in envelope order.
    pub signatures: Vec<EnvelopeSignature>,
}

// The base64 fields borrow from the input unless they contain JSON escapes
// (legal, e.g. `\/`), so a typical parse copies only the decoded bytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope<'a> {
    #[serde(rename = "payloadType")]
    payload_type: String,
    #[serde(borrow)]
    payload: Cow<'a, str>,
    #[serde(borrow)]
    signatures: Vec<WireSignature<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignature<'a> {
    #[serde(borrow)]
    keyid: Cow<'a, str>,
    #[serde(borrow)]
    sig: Cow<'a, str>,
}

#[derive(Serialize)]
struct WireEnvelopeOut<'a> {
    #[serde(rename = "payloadType")]
    payload_type: &'a str,
    payload: String,
    signatures: Vec<WireSignatureOut>,
}

#[derive(Serialize)]
struct WireSignatureOut {
    keyid: String,
    sig: String,
}

/// `PAE(type, body)`, the exact bytes every DSSE signature covers.
///
/// Built once per statement an audit checks, so the lengths are written
/// without an intermediate `String` each.
pub fn pae(payload_type: &[u8], body: &[u8]) -> Vec<u8> {
    // "DSSEv1", three spaces and two lengths of at most 20 digits.
    let mut out = Vec::with_capacity(6 + 3 + 40 + payload_type.len() + 1 + body.len());
    out.extend_from_slice(b"DSSEv1 ");
    push_decimal(&mut out, payload_type.len());
    out.push(b' ');
    out.extend_from_slice(payload_type);
    out.push(b' ');
    push_decimal(&mut out, body.len());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

/// Appends `n` in ASCII decimal, no leading zeros (as `n.to_string()`).
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

impl Envelope {
    /// Parses envelope JSON strictly (see the module doc for the rules).
    pub fn parse(bytes: &[u8]) -> Result<Self, DsseError> {
        if bytes.len() > MAX_ENVELOPE_SIZE {
            return Err(DsseError::TooLarge { size: bytes.len() });
        }
        let wire: WireEnvelope =
            serde_json::from_slice(bytes).map_err(|e| DsseError::Malformed(e.to_string()))?;
        if wire.payload_type.is_empty() || wire.payload_type.len() > MAX_PAYLOAD_TYPE_LEN {
            return Err(DsseError::PayloadType);
        }
        if wire.signatures.is_empty() || wire.signatures.len() > MAX_SIGNATURES {
            return Err(DsseError::SignatureCount(wire.signatures.len()));
        }
        let payload = decode_base64_strict(&wire.payload).ok_or(DsseError::Base64("payload"))?;
        let mut signatures = Vec::with_capacity(wire.signatures.len());
        for s in &wire.signatures {
            let keyid = KeyId::parse(&s.keyid).map_err(|_| DsseError::KeyId)?;
            // 64 bytes are 88 base64 characters; refuse anything else before
            // decoding.
            if s.sig.len() != 88 {
                return Err(match decode_base64_strict(&s.sig) {
                    Some(raw) => DsseError::SignatureLength(raw.len()),
                    None => DsseError::Base64("sig"),
                });
            }
            let raw = decode_base64_strict(&s.sig).ok_or(DsseError::Base64("sig"))?;
            let sig = raw.try_into().map_err(|r: Vec<u8>| DsseError::SignatureLength(r.len()))?;
            signatures.push(EnvelopeSignature { keyid, sig });
        }
        Ok(Envelope { payload_type: wire.payload_type, payload, signatures })
    }

    /// Compact envelope JSON with fields in the order of the module doc.
    /// Used by signers; verifiers never re-encode.
    pub fn to_json(&self) -> Vec<u8> {
        let out = WireEnvelopeOut {
            payload_type: &self.payload_type,
            payload: encode_base64(&self.payload),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSignatureOut { keyid: s.keyid.to_string(), sig: encode_base64(&s.sig) })
                .collect(),
        };
        serde_json::to_vec(&out).expect("envelope serialization cannot fail")
    }

    /// The PAE of this envelope's type and payload.
    pub fn pae(&self) -> Vec<u8> {
        pae(self.payload_type.as_bytes(), &self.payload)
    }

    /// The signature carrying `keyid` (the first, if several do).
    pub fn signature_by(&self, keyid: &KeyId) -> Option<&EnvelopeSignature> {
        self.signatures.iter().find(|s| &s.keyid == keyid)
    }

    /// Verifies the signature made by `key` (found by its key ID) over the
    /// PAE. Uses dalek's `verify` like the rest of core (Go-compatible;
    /// weak keys were refused when the key was parsed).
    pub fn verify(&self, key: &ActorKey) -> Result<(), DsseError> {
        let sig = self.signature_by(&key.id()).ok_or(DsseError::NoSignatureForKey(key.id()))?;
        if key.verify(&self.pae(), &sig.sig) {
            Ok(())
        } else {
            Err(DsseError::BadSignature(key.id()))
        }
    }

    /// Signs `payload` as `payload_type` with `signer`, giving a
    /// one-signature envelope.
    pub fn sign(payload_type: &str, payload: Vec<u8>, signer: &ActorSigner) -> Envelope {
        let sig = signer.sign(&pae(payload_type.as_bytes(), &payload));
        Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures: vec![EnvelopeSignature { keyid: signer.key_id(), sig }],
        }
    }
}

/// One signature to check in a batch: the PAE, the signature, the key.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// Signed message (the PAE).
    pub message: &'a [u8],
    /// Raw signature.
    pub sig: &'a [u8; ED25519_SIGNATURE_SIZE],
    /// Public key.
    pub key: &'a ActorKey,
}

/// Checks many signatures at once ([`crate::ed25519_batch`]: one equation
/// for the batch, one term per distinct key, roughly twice as fast per
/// signature as one-by-one checks and faster still when keys repeat).
/// `true` means every signature is valid. On `false`, call
/// [`verify_each`] to find the culprits.
///
/// Caveat, documented in docs/protocol.md: the batch equation is
/// cofactorless with 128-bit weights fixed by the batch (ed25519-dalek's
/// equation; the weights are derived as [`crate::ed25519_batch`] says), so
/// a *malicious signer* can craft a signature with a small-order component
/// that a batch accepts with probability up to 1/8 (more by grinding)
/// while single verification rejects it. That only lets an actor confuse
/// auditors about its *own* statements; an auditor that must match the
/// server exactly verifies one by one.
pub fn verify_batch(items: &[BatchItem<'_>]) -> bool {
    let signed: Vec<crate::ed25519_batch::Signed<'_>> = items
        .iter()
        .map(|i| crate::ed25519_batch::Signed { message: i.message, signature: i.sig, key: i.key.ed25519() })
        .collect();
    crate::ed25519_batch::verify_batch(&signed)
}

/// Checks each signature on its own, same result as [`Envelope::verify`]:
/// element `i` is whether `items[i]` is valid.
pub fn verify_each(items: &[BatchItem<'_>]) -> Vec<bool> {
    items.iter().map(|i| i.key.verify(i.message, i.sig)).collect()
}

#[cfg(test)]
mod tests {
    use super::push_decimal;

    /// PAE's lengths are ASCII decimal without leading zeros, as
    /// `to_string` writes them: every value to 100,000, each power of ten
    /// and its neighbours, and the largest.
    #[test]
    fn decimal_lengths_are_to_string() {
        let powers = (0..20).map(|e| 10usize.pow(e)).flat_map(|p| [p - 1, p, p + 1]);
        for n in (0..=100_000).chain(powers).chain([usize::MAX]) {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes(), "{n}");
        }
    }
}
