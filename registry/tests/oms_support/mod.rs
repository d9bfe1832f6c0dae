//! The known-answer model-signing bundle of registry/tests/data/oms/ (made
//! by the real `model_signing` 1.1.1, see regenerate.sh there), the files
//! it signs, and helpers that rebuild it around another statement signed
//! with the same key, so a test can change one signed field and still get
//! past the signature check.

#![allow(dead_code)]

use custody_standards::encoding::{decode_base64_strict, encode_base64};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::SecretKey;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The signature file `model_signing sign key` wrote.
pub const BUNDLE: &[u8] = include_bytes!("../data/oms/model.sig");
/// The signer's public key (`openssl ec -pubout`).
pub const KEY_PUB: &str = include_str!("../data/oms/key.pub.pem");
/// Another P-256 public key.
pub const OTHER_PUB: &str = include_str!("../data/oms/other.pub.pem");
/// A P-384 public key.
pub const P384_PUB: &str = include_str!("../data/oms/p384.pub.pem");
/// The signer's private key (`openssl ecparam -genkey`, SEC1 PEM); test
/// material only.
const KEY_PRIV: &str = include_str!("../data/oms/key.pem");
/// The directory description.
const MODEL_DIR: &str = include_str!("../data/oms/model-dir.txt");

/// The signed directory's files, `(path, content)`, generated from
/// model-dir.txt by the rule its header states.
pub fn model_files() -> Vec<(String, Vec<u8>)> {
    MODEL_DIR
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(n, line)| {
            let (path, size) = line.split_once(' ').expect("<path> <size>");
            let size: usize = size.parse().expect("size");
            let content = (0..size).map(|i| ((31 * i + 17 * n + 7) % 256) as u8).collect();
            (path.to_owned(), content)
        })
        .collect()
}

/// `(path, SHA-256)` of each file, hashed here.
pub fn hashed(files: &[(String, Vec<u8>)]) -> Vec<(String, [u8; 32])> {
    files.iter().map(|(p, c)| (p.clone(), Sha256::digest(c).into())).collect()
}

/// The bundle as a JSON value.
pub fn bundle_value() -> Value {
    serde_json::from_slice(BUNDLE).unwrap()
}

/// The decoded DSSE payload (the statement's exact bytes).
pub fn payload() -> Vec<u8> {
    let b = bundle_value();
    decode_base64_strict(b["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()
}

/// The decoded DER signature.
pub fn signature_der() -> Vec<u8> {
    let b = bundle_value();
    decode_base64_strict(b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap()).unwrap()
}

/// The statement as a JSON value.
pub fn statement() -> Value {
    serde_json::from_slice(&payload()).unwrap()
}

/// The KAT bundle with `payload` and `sig` in place of its own.
pub fn rebuild(payload: &[u8], sig: &[u8]) -> Vec<u8> {
    let mut b = bundle_value();
    b["dsseEnvelope"]["payload"] = Value::String(encode_base64(payload));
    b["dsseEnvelope"]["signatures"][0]["sig"] = Value::String(encode_base64(sig));
    serde_json::to_vec_pretty(&b).unwrap()
}

/// DER ECDSA P-256 / SHA-256 signature by the KAT key over
/// PAE(in-toto, payload), as model_signing makes it.
pub fn sign(payload: &[u8]) -> Vec<u8> {
    let key = SigningKey::from(SecretKey::from_sec1_pem(KEY_PRIV).unwrap());
    let pae = custody_registry::dsse::pae(b"application/vnd.in-toto+json", payload);
    let sig: Signature = key.sign(&pae);
    sig.to_der().as_bytes().to_vec()
}

/// A bundle carrying `statement`, validly signed by the KAT key.
pub fn resigned(statement: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec_pretty(statement).unwrap();
    rebuild(&payload, &sign(&payload))
}

/// A bundle carrying `payload` verbatim, validly signed by the KAT key.
pub fn resigned_raw(payload: &[u8]) -> Vec<u8> {
    rebuild(payload, &sign(payload))
}

/// The subject digest model_signing computes: SHA-256 over the raw
/// resource digests in predicate order.
pub fn subject_digest_of(statement: &Value) -> String {
    let mut h = Sha256::new();
    // Resources without a hex digest (made so by a test) add nothing.
    for r in statement["predicate"]["resources"].as_array().unwrap() {
        h.update(r["digest"].as_str().and_then(|d| hex::decode(d).ok()).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

/// `statement` with its subject digest recomputed, so only the change a
/// test made can be refused.
pub fn consistent(mut statement: Value) -> Value {
    statement["subject"][0]["digest"]["sha256"] = Value::String(subject_digest_of(&statement));
    statement
}
