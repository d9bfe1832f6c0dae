//! The outer two layers of a model-signing signature: the Sigstore bundle
//! (v0.3, key-signed) and the DSSE envelope inside it, parsed strictly and
//! verified with an [`OmsPublicKey`].

use p256::ecdsa::Signature;
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::key::OmsPublicKey;
use super::statement::{parse_statement, OmsStatement};
use super::{hex32, OmsError, OmsFiles, BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, MAX_BUNDLE_BYTES};
use crate::dsse::pae;
use custody_standards::encoding::{decode_base64_strict, encode_hex};

/// Longest DER ECDSA P-256 signature: SEQUENCE of two INTEGERs of at most
/// 33 bytes each is 2 + 2 * 35 = 72 bytes, 96 base64 characters. Checked
/// before decoding.
const MAX_SIG_BASE64: usize = 96;
/// Longest `keyid` accepted. model_signing writes `""`; DSSE says the field
/// is an unauthenticated hint, so only its size matters.
const MAX_KEYID_BYTES: usize = 256;

// Sigstore bundle v0.3 (sigstore/protobuf-specs, sigstore_bundle.proto),
// in the proto3 JSON mapping. Unknown fields are refused: nothing outside
// the DSSE payload is signed, and a field we would silently skip (a
// timestamp, a transparency log entry) is a claim nobody checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBundle {
    #[serde(rename = "mediaType")]
    media_type: String,
    #[serde(rename = "verificationMaterial")]
    verification_material: WireMaterial,
    #[serde(rename = "dsseEnvelope")]
    dsse_envelope: Option<WireEnvelope>,
    #[serde(rename = "messageSignature")]
    message_signature: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMaterial {
    #[serde(rename = "publicKey")]
    public_key: Option<WirePublicKey>,
    certificate: Option<IgnoredAny>,
    #[serde(rename = "x509CertificateChain")]
    x509_certificate_chain: Option<IgnoredAny>,
    #[serde(rename = "tlogEntries", default)]
    tlog_entries: Vec<IgnoredAny>,
    #[serde(rename = "timestampVerificationData")]
    timestamp_verification_data: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePublicKey {
    hint: String,
}

// DSSE envelope.md's JSON envelope.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<WireSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignature {
    sig: String,
    #[serde(default)]
    keyid: String,
}

/// The DSSE envelope of a bundle, decoded but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsEnvelope {
    /// `payloadType`; always [`IN_TOTO_PAYLOAD_TYPE`] once parsed.
    pub payload_type: String,
    /// The decoded payload: the in-toto statement's exact bytes.
    pub payload: Vec<u8>,
    /// The one signature, ASN.1 DER as the tool wrote it.
    pub signature_der: Vec<u8>,
    /// The signature's `keyid` (empty from model_signing; unauthenticated).
    pub keyid: String,
    signature: Signature,
}

/// A parsed, *unverified* model-signing bundle: nothing in it is to be
/// believed before [`OmsBundle::verify`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsBundle {
    key_hint: String,
    envelope: OmsEnvelope,
    statement: OmsStatement,
}

impl OmsBundle {
    /// Parses a bundle as `model_signing sign key` writes it.
    ///
    /// Refused, each with its own [`OmsError`]: more than
    /// [`MAX_BUNDLE_BYTES`] (checked first); anything that is not the
    /// v0.3 bundle JSON with a `publicKey` hint, no certificate, no
    /// transparency-log entry and no timestamp; an envelope whose
    /// `payloadType` is not in-toto JSON or that does not carry exactly one
    /// DER signature; base64 that is not canonical standard base64; and a
    /// statement [`OmsStatement`] cannot hold (types, subject, resources,
    /// paths, algorithms, serialization).
    pub fn parse(bytes: &[u8]) -> Result<Self, OmsError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(OmsError::TooLarge { size: bytes.len() });
        }
        let wire: WireBundle = serde_json::from_slice(bytes)
            .map_err(|e| OmsError::Malformed { layer: "bundle", reason: e.to_string() })?;
        if wire.media_type != BUNDLE_MEDIA_TYPE {
            return Err(OmsError::MediaType(shown(&wire.media_type)));
        }
        let material = wire.verification_material;
        if material.certificate.is_some() || material.x509_certificate_chain.is_some() {
            return Err(OmsError::UnsupportedMaterial(
                "a certificate (only key-signed bundles are supported)",
            ));
        }
        if !material.tlog_entries.is_empty() {
            return Err(OmsError::UnsupportedMaterial(
                "transparency log entries (not checked, so not accepted)",
            ));
        }
        if material.timestamp_verification_data.is_some() {
            return Err(OmsError::UnsupportedMaterial(
                "timestamp verification data (not checked, so not accepted)",
            ));
        }
        let key_hint = material.public_key.ok_or(OmsError::UnsupportedMaterial("no publicKey hint"))?.hint;
        if hex32(&key_hint).is_none() {
            return Err(OmsError::KeyHint(shown(&key_hint)));
        }
        if wire.message_signature.is_some() {
            return Err(OmsError::Malformed {
                layer: "bundle",
                reason: "a messageSignature bundle, not a DSSE one".into(),
            });
        }
        let env = wire
            .dsse_envelope
            .ok_or_else(|| OmsError::Malformed { layer: "bundle", reason: "no dsseEnvelope".into() })?;
        // DSSE protocol.md, "To verify": "Reject if PAYLOAD_TYPE is not a
        // supported type." Checked before the signature too, since nothing
        // else could be parsed anyway.
        if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(OmsError::PayloadType(shown(&env.payload_type)));
        }
        // model_signing signs once and checks `signatures[0]` only; a second
        // signature would be one nobody verified.
        let [sig] = <[WireSignature; 1]>::try_from(env.signatures)
            .map_err(|sigs: Vec<WireSignature>| OmsError::SignatureCount(sigs.len()))?;
        if sig.keyid.len() > MAX_KEYID_BYTES {
            return Err(OmsError::Malformed { layer: "envelope", reason: "keyid too long".into() });
        }
        if sig.sig.len() > MAX_SIG_BASE64 {
            return Err(OmsError::SignatureEncoding(format!("{} base64 characters", sig.sig.len())));
        }
        let signature_der = decode_base64_strict(&sig.sig).ok_or(OmsError::Base64("sig"))?;
        let signature =
            Signature::from_der(&signature_der).map_err(|e| OmsError::SignatureEncoding(e.to_string()))?;
        let payload = decode_base64_strict(&env.payload).ok_or(OmsError::Base64("payload"))?;
        let statement = parse_statement(&payload)?;
        Ok(OmsBundle {
            key_hint,
            envelope: OmsEnvelope {
                payload_type: env.payload_type,
                payload,
                signature_der,
                keyid: sig.keyid,
                signature,
            },
            statement,
        })
    }

    /// Verifies the bundle with `key` and returns the files it signs.
    ///
    /// The steps, in order:
    /// 1. the bundle's `publicKey.hint` must equal [`OmsPublicKey::id`]
    ///    (model_signing's `verify key` refuses a mismatch the same way);
    /// 2. DSSE protocol.md: "Verify SIGNATURE against
    ///    PAE(UTF8(PAYLOAD_TYPE), SERIALIZED_BODY). Reject if the
    ///    verification fails." ECDSA P-256 with SHA-256, DER signature;
    /// 3. the subject digest must be SHA-256 over the concatenated raw
    ///    resource digests in the order the predicate lists them
    ///    (model_signing `signing.py`, `dsse_payload_to_manifest`: "Manifest
    ///    is inconsistent" otherwise).
    pub fn verify(&self, key: &OmsPublicKey) -> Result<OmsFiles, OmsError> {
        let id = key.id();
        if self.key_hint != id {
            return Err(OmsError::KeyMismatch { hint: self.key_hint.clone(), key: id });
        }
        let message = pae(self.envelope.payload_type.as_bytes(), &self.envelope.payload);
        if !key.verify(&message, &self.envelope.signature) {
            return Err(OmsError::BadSignature);
        }
        let computed = self.statement.recompute_subject_digest();
        if computed != self.statement.subject_sha256 {
            return Err(OmsError::SubjectDigest {
                signed: encode_hex(&self.statement.subject_sha256),
                computed: encode_hex(&computed),
            });
        }
        Ok(OmsFiles {
            model_name: self.statement.model_name.clone(),
            files: self.files(),
            serialization: self.statement.serialization.clone(),
        })
    }

    /// The signed files, sorted by path (byte order), *unverified*.
    pub fn files(&self) -> Vec<(String, [u8; 32])> {
        let mut files: Vec<(String, [u8; 32])> =
            self.statement.resources.iter().map(|r| (r.path.clone(), r.sha256)).collect();
        files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        files
    }

    /// The DSSE envelope.
    pub fn envelope(&self) -> &OmsEnvelope {
        &self.envelope
    }

    /// The in-toto statement the envelope carries.
    pub fn statement(&self) -> &OmsStatement {
        &self.statement
    }

    /// `verificationMaterial.publicKey.hint`: the [`OmsPublicKey::id`] of
    /// the key the signer claims to have used (unauthenticated).
    pub fn key_hint(&self) -> &str {
        &self.key_hint
    }
}

/// SHA-256 over the raw resource digests, concatenated in order.
pub(super) fn subject_digest<'a>(digests: impl Iterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for d in digests {
        h.update(d);
    }
    h.finalize().into()
}

/// A value quoted in an error, cut to 80 characters so a hostile bundle
/// cannot make error messages megabytes long.
pub(super) fn shown(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(80).collect();
        out.push('…');
        out
    }
}
