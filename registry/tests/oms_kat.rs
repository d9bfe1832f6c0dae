//! Known answer: a bundle the real `model_signing` 1.1.1 wrote
//! (registry/tests/data/oms/model.sig) over the directory described in
//! model-dir.txt verifies with the signer's key and lists exactly the files
//! hashed here; any flipped byte of its payload or signature, another key,
//! or a validly signed but inconsistent statement fails.

mod oms_support;

use custody_registry::oms::{OmsBundle, OmsError, OmsFiles, OmsKeyError, OmsMismatch, OmsPublicKey};
use oms_support::*;
use serde_json::Value;

fn key() -> OmsPublicKey {
    OmsPublicKey::from_pem(KEY_PUB).unwrap()
}

fn verify(bundle: &[u8]) -> Result<OmsFiles, OmsError> {
    OmsBundle::parse(bundle)?.verify(&key())
}

#[test]
fn tool_bundle_verifies_and_lists_the_files_hashed_in_rust() {
    let files = verify(BUNDLE).unwrap();
    let expected = hashed(&model_files());
    assert_eq!(files.files.len(), 6);
    files.compare(&expected).unwrap();
    assert_eq!(files.model_name, "tiny-model");
    assert_eq!(files.serialization.method, "files");
    assert_eq!(files.serialization.hash_type, "sha256");
    assert!(!files.serialization.allow_symlinks);
    // Sorted by path, byte order; the empty file is listed like any other.
    let paths: Vec<&str> = files.files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "config.json",
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors",
            "tokenizer/special/added_tokens.json",
            "tokenizer/tokenizer.json",
        ]
    );
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(files.files, sorted);
}

#[test]
fn key_pem_round_trips_and_its_id_is_the_tool_hint() {
    let k = key();
    assert_eq!(k.to_pem(), KEY_PUB, "to_pem is byte for byte what openssl and cryptography write");
    let bundle = OmsBundle::parse(BUNDLE).unwrap();
    assert_eq!(k.id(), bundle.key_hint());
    assert_eq!(OmsPublicKey::from_pem(&k.to_pem()).unwrap(), k);
    assert_ne!(OmsPublicKey::from_pem(OTHER_PUB).unwrap().id(), k.id());
}

#[test]
fn every_flipped_payload_byte_fails() {
    let payload = payload();
    let sig = signature_der();
    assert!(verify(&rebuild(&payload, &sig)).is_ok(), "the rebuilt bundle itself verifies");
    for i in 0..payload.len() {
        for mask in [0x01u8, 0x80] {
            let mut p = payload.clone();
            p[i] ^= mask;
            let r = verify(&rebuild(&p, &sig));
            assert!(r.is_err(), "payload byte {i} ^ {mask:#04x} still verifies");
        }
    }
}

#[test]
fn every_flipped_signature_byte_fails() {
    let payload = payload();
    let sig = signature_der();
    for i in 0..sig.len() {
        for mask in [0x01u8, 0x80] {
            let mut s = sig.clone();
            s[i] ^= mask;
            let r = verify(&rebuild(&payload, &s));
            assert!(r.is_err(), "signature byte {i} ^ {mask:#04x} still verifies");
        }
    }
}

#[test]
fn another_key_fails() {
    let other = OmsPublicKey::from_pem(OTHER_PUB).unwrap();
    let bundle = OmsBundle::parse(BUNDLE).unwrap();
    assert!(matches!(bundle.verify(&other), Err(OmsError::KeyMismatch { .. })));
    // Rewriting the (unsigned) hint to name the other key gets past the
    // hint check but not the signature.
    let mut b = bundle_value();
    b["verificationMaterial"]["publicKey"]["hint"] = Value::String(other.id());
    let forged = OmsBundle::parse(&serde_json::to_vec(&b).unwrap()).unwrap();
    assert_eq!(forged.verify(&other), Err(OmsError::BadSignature));
}

#[test]
fn p384_key_is_refused_naming_the_curve() {
    match OmsPublicKey::from_pem(P384_PUB) {
        Err(OmsKeyError::UnsupportedCurve(c)) => assert!(c.contains("secp384r1"), "{c}"),
        other => panic!("expected UnsupportedCurve, got {other:?}"),
    }
    let private = include_str!("data/oms/key.pem");
    assert!(matches!(OmsPublicKey::from_pem(private), Err(OmsKeyError::Label(_))));
    assert!(matches!(OmsPublicKey::from_pem("not a pem"), Err(OmsKeyError::Pem(_))));
    let big = "A".repeat(5000);
    assert!(matches!(OmsPublicKey::from_pem(&big), Err(OmsKeyError::TooLarge(5000))));
}

#[test]
fn resigned_statement_verifies_only_with_a_consistent_subject_digest() {
    // The helper's own signature verifies: the refusals below are the
    // statement's, not the harness's.
    let st = statement();
    assert_eq!(verify(&resigned(&st)).unwrap(), verify(BUNDLE).unwrap());

    // Another digest for one file, subject left as signed: inconsistent.
    let mut changed = st.clone();
    changed["predicate"]["resources"][2]["digest"] = Value::String("00".repeat(32));
    assert!(matches!(verify(&resigned(&changed)), Err(OmsError::SubjectDigest { .. })));
    // Dropping a resource: inconsistent too.
    let mut dropped = st.clone();
    dropped["predicate"]["resources"].as_array_mut().unwrap().remove(0);
    assert!(matches!(verify(&resigned(&dropped)), Err(OmsError::SubjectDigest { .. })));
    // Reordering the resources changes the subject digest model_signing
    // computes (it hashes in listed order).
    let mut reordered = st.clone();
    reordered["predicate"]["resources"].as_array_mut().unwrap().swap(0, 1);
    assert!(matches!(verify(&resigned(&reordered)), Err(OmsError::SubjectDigest { .. })));

    // Made consistent, the changed statement verifies and compare names the
    // file whose digest no longer matches the directory.
    let files = verify(&resigned(&consistent(changed))).unwrap();
    let name = st["predicate"]["resources"][2]["name"].as_str().unwrap();
    match files.compare(&hashed(&model_files())) {
        Err(OmsMismatch::Different { path, signed, .. }) => {
            assert_eq!(path, name);
            assert_eq!(signed, "00".repeat(32));
        }
        other => panic!("expected Different for {name}, got {other:?}"),
    }
}

#[test]
fn compare_names_the_first_missing_extra_or_different_path() {
    let files = verify(BUNDLE).unwrap();
    let good = hashed(&model_files());
    let mut reversed = good.clone();
    reversed.reverse();
    assert_eq!(files.compare(&reversed), Ok(()), "order of the expected list does not matter");

    let mut missing = good.clone();
    missing.retain(|(p, _)| p != "model-00002-of-00003.safetensors");
    assert_eq!(
        files.compare(&missing),
        Err(OmsMismatch::Missing { path: "model-00002-of-00003.safetensors".into() })
    );

    let mut extra = good.clone();
    extra.push(("model-00002-of-00003.safetensors.bak".into(), [0; 32]));
    extra.push(("zzz.bin".into(), [0; 32]));
    assert_eq!(
        files.compare(&extra),
        Err(OmsMismatch::Extra { path: "model-00002-of-00003.safetensors.bak".into() })
    );

    let mut twice = good.clone();
    twice.push(good[0].clone());
    assert_eq!(files.compare(&twice), Err(OmsMismatch::Extra { path: good[0].0.clone() }));

    let mut different = good.clone();
    different[4].1[0] ^= 1;
    different[1].1[31] ^= 1;
    let first = {
        let mut d = [different[1].0.clone(), different[4].0.clone()];
        d.sort();
        d[0].clone()
    };
    assert!(matches!(files.compare(&different), Err(OmsMismatch::Different { path, .. }) if path == first));
    assert_eq!(files.compare(&[]), Err(OmsMismatch::Missing { path: "config.json".into() }));
}
