//! Interop with the real OpenSSF `model_signing` 1.1.1 (from the venv of
//! `scripts/python-env`): a directory the tool signs verifies in Rust and
//! in the tool; after one byte of one shard changes, or a file is added or
//! removed, `OmsFiles::compare` names that path and the tool's
//! `verify key` fails too. Keys come from OpenSSL, as the tool's
//! documentation makes them.

use std::path::Path;

use custody_registry::oms::{OmsBundle, OmsError, OmsFiles, OmsMismatch, OmsPublicKey};
use custody_testkit::python::{
    hash_dir, openssl_p256_keypair, output_text, sign_key, venv, verify_key, write_files, EcKeyPair,
};
use custody_testkit::statements::noise;
use custody_testkit::tempdir;

const SHARD_2: &str = "model-00002-of-00003.safetensors";

/// A small sharded model: three shards (one over 1 MiB), a config, a
/// nested tokenizer directory with an empty file. Content is a fixed
/// pseudo-random stream (`noise`), so every run signs the same bytes.
fn model_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("config.json".into(), br#"{"architectures":["TinyLlama"],"hidden_size":64}"#.to_vec()),
        ("model-00001-of-00003.safetensors".into(), noise(1_100_000, 1)),
        (SHARD_2.into(), noise(700_000, 2)),
        ("model-00003-of-00003.safetensors".into(), noise(333, 3)),
        ("tokenizer/tokenizer.json".into(), br#"{"version":"1.0","model":{"type":"BPE"}}"#.to_vec()),
        ("tokenizer/special/added_tokens.json".into(), Vec::new()),
    ]
}

struct Signed {
    _tmp: custody_testkit::TempDir,
    model: std::path::PathBuf,
    sig: std::path::PathBuf,
    keys: EcKeyPair,
    other: EcKeyPair,
}

/// Lays out the model, makes two key pairs and signs with the first; the
/// signature is written beside the directory, not inside it.
fn signed_model() -> Signed {
    venv();
    let tmp = tempdir().unwrap();
    let model = tmp.path().join("tiny-llama");
    write_files(&model, &model_files());
    let keys = openssl_p256_keypair(tmp.path(), "signer");
    let other = openssl_p256_keypair(tmp.path(), "other");
    let sig = tmp.path().join("model.sig");
    sign_key(&model, &keys.private, &sig);
    Signed { _tmp: tmp, model, sig, keys, other }
}

fn rust_verify(sig: &Path, public: &Path) -> Result<OmsFiles, OmsError> {
    let key = OmsPublicKey::from_pem(&std::fs::read_to_string(public).unwrap()).unwrap();
    OmsBundle::parse(&std::fs::read(sig).unwrap())?.verify(&key)
}

fn tool_accepts(s: &Signed) -> bool {
    let out = verify_key(&s.model, &s.keys.public, &s.sig);
    out.status.success()
}

#[test]
fn the_tool_and_custody_agree_on_a_signed_directory() {
    let s = signed_model();

    let files = rust_verify(&s.sig, &s.keys.public).unwrap();
    assert_eq!(files.model_name, "tiny-llama");
    assert_eq!(files.serialization.method, "files");
    files.compare(&hash_dir(&s.model)).unwrap();
    assert_eq!(files.files, hash_dir(&s.model));
    let out = verify_key(&s.model, &s.keys.public, &s.sig);
    assert!(out.status.success(), "model_signing verify key: {}", output_text(&out));

    // The key id is the tool's hint, and the PEM OpenSSL wrote is the one
    // Rust writes.
    let pem = std::fs::read_to_string(&s.keys.public).unwrap();
    let key = OmsPublicKey::from_pem(&pem).unwrap();
    assert_eq!(key.to_pem(), pem);
    assert_eq!(OmsBundle::parse(&std::fs::read(&s.sig).unwrap()).unwrap().key_hint(), key.id());

    // Another key: refused by both.
    assert!(matches!(rust_verify(&s.sig, &s.other.public), Err(OmsError::KeyMismatch { .. })));
    let out = verify_key(&s.model, &s.other.public, &s.sig);
    assert!(!out.status.success(), "model_signing accepted another key: {}", output_text(&out));
}

#[test]
fn one_changed_byte_of_one_shard_is_named_and_fails_the_tool() {
    let s = signed_model();
    assert!(tool_accepts(&s));
    let shard = s.model.join(SHARD_2);
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[350_000] ^= 0x01;
    std::fs::write(&shard, bytes).unwrap();

    // The signature itself is still valid: it is the directory that changed.
    let files = rust_verify(&s.sig, &s.keys.public).unwrap();
    match files.compare(&hash_dir(&s.model)) {
        Err(OmsMismatch::Different { path, .. }) => assert_eq!(path, SHARD_2),
        other => panic!("expected {SHARD_2} to differ, got {other:?}"),
    }
    let out = verify_key(&s.model, &s.keys.public, &s.sig);
    assert!(!out.status.success(), "model_signing accepted a changed shard: {}", output_text(&out));
}

#[test]
fn an_added_or_removed_file_is_named_and_fails_the_tool() {
    let s = signed_model();
    let added = s.model.join("tokenizer/merges.txt");
    std::fs::write(&added, b"a b\n").unwrap();
    let files = rust_verify(&s.sig, &s.keys.public).unwrap();
    assert_eq!(
        files.compare(&hash_dir(&s.model)),
        Err(OmsMismatch::Extra { path: "tokenizer/merges.txt".into() })
    );
    assert!(!tool_accepts(&s), "model_signing accepted an unsigned extra file");

    std::fs::remove_file(&added).unwrap();
    assert!(tool_accepts(&s));
    std::fs::remove_file(s.model.join("tokenizer/special/added_tokens.json")).unwrap();
    assert_eq!(
        files.compare(&hash_dir(&s.model)),
        Err(OmsMismatch::Missing { path: "tokenizer/special/added_tokens.json".into() })
    );
    assert!(!tool_accepts(&s), "model_signing accepted a missing file");
}
