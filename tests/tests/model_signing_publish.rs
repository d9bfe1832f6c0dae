//! The OpenSSF model-signing round trip through Custody, on the real
//! binaries and the real `model_signing` 1.1.1 (venv of
//! `scripts/python-env`): a directory signed with `model_signing sign key`
//! is published with its signature, pulled with `--oms-key`, and the pulled
//! directory with its `model.sig` verifies with `model_signing verify key`
//! unchanged. One changed byte of one shard: Custody refuses and
//! `model_signing verify` fails too. A signature that does not sign the
//! directory, or a key that is not the signer's, is refused before
//! anything is published, and by the log.

use custody_testkit::python::{openssl_p256_keypair, output_text, sign_key, venv, verify_key, write_files};
use custody_testkit::scenario::*;

fn model_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("config.json".into(), br#"{"architectures":["TinyLlama"]}"#.to_vec()),
        ("model-00001-of-00002.safetensors".into(), noise(300_000, 1)),
        ("model-00002-of-00002.safetensors".into(), noise(200_000, 2)),
        ("tokenizer/tokenizer.json".into(), br#"{"model":{"type":"BPE"}}"#.to_vec()),
    ]
}

#[test]
fn a_signed_directory_round_trips_and_both_tools_refuse_a_changed_shard() {
    venv();
    let tmp = tempfile::tempdir().unwrap();
    let (_d, _admin, alice, dave, _) = demo_team(tmp.path());
    let model = tmp.path().join("tiny-llama");
    write_files(&model, &model_files());
    let keys = openssl_p256_keypair(tmp.path(), "signer");
    let other = openssl_p256_keypair(tmp.path(), "other");
    let sig = tmp.path().join("tiny-llama.sig");
    sign_key(&model, &keys.private, &sig);
    let (m, s, k, o) = (
        model.to_str().unwrap(),
        sig.to_str().unwrap(),
        keys.public.to_str().unwrap(),
        other.public.to_str().unwrap(),
    );

    // The wrong key, or a signature of other bytes, is refused before
    // anything is published.
    alice
        .cli(&["publish", m, "--name", "demo/tiny", "--version", "1", "--oms-signature", s, "--oms-key", o])
        .fails(2, "refusing to publish");
    let tampered = tmp.path().join("tampered");
    write_files(&tampered, &model_files());
    std::fs::write(tampered.join("config.json"), b"{}").unwrap();
    alice
        .cli(&[
            "publish",
            tampered.to_str().unwrap(),
            "--name",
            "demo/tiny",
            "--version",
            "1",
            "--oms-signature",
            s,
            "--oms-key",
            k,
        ])
        .fails(2, "config.json");

    alice.ok(&["publish", m, "--name", "demo/tiny", "--version", "1", "--oms-signature", s, "--oms-key", k]);
    let out = tmp.path().join("pulled");
    let o_out = out.to_str().unwrap();
    dave.ok(&["pull", "demo/tiny@1", "-o", o_out, "--oms-key", k]);
    let pulled_sig = out.join("model.sig");
    assert_eq!(std::fs::read(&pulled_sig).unwrap(), std::fs::read(&sig).unwrap());
    let verified = verify_key(&out, &keys.public, &pulled_sig);
    assert!(
        verified.status.success(),
        "model_signing verify of the pulled directory: {}",
        output_text(&verified)
    );
    // The signature is part of what --verify-only checks, not an extra file.
    dave.ok(&["pull", "demo/tiny@1", "--verify-only", "-o", o_out, "--oms-key", k]);
    // Another key than the signer's is refused, even with intact files.
    dave.cli(&["pull", "demo/tiny@1", "--verify-only", "-o", o_out, "--oms-key", o]).fails(2, "another key");

    let shard = out.join("model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[777] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    dave.cli(&["pull", "demo/tiny@1", "--verify-only", "-o", o_out, "--oms-key", k])
        .fails(2, "modified: model-00002-of-00002.safetensors");
    let refused = verify_key(&out, &keys.public, &pulled_sig);
    assert!(!refused.status.success(), "model_signing accepted a changed shard: {}", output_text(&refused));
}

#[test]
fn the_log_refuses_a_manifest_whose_signature_does_not_hold() {
    venv();
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, _dave, _) = demo_team(tmp.path());
    let model = tmp.path().join("m");
    write_files(&model, &model_files());
    let keys = openssl_p256_keypair(tmp.path(), "signer");
    let other = openssl_p256_keypair(tmp.path(), "other");
    let sig = tmp.path().join("m.sig");
    sign_key(&model, &keys.private, &sig);
    let bundle = std::fs::read(&sig).unwrap();
    // A manifest naming the other key: a client that skipped its own check.
    let pem = custody_registry::oms::OmsPublicKey::from_pem(&std::fs::read_to_string(&other.public).unwrap())
        .unwrap()
        .to_pem();
    let files: Vec<String> = model_files()
        .iter()
        .map(|(p, b)| format!(r#"{{"path":"{p}","size":{},"digest":"{}"}}"#, b.len(), digest_of(b)))
        .collect();
    let manifest = format!(
        r#"{{"schema":1,"files":[{}],"signature":{{"format":"oms","path":"model.sig","size":{},"digest":"{}","public_key":{}}}}}"#,
        files.join(","),
        bundle.len(),
        digest_of(&bundle),
        serde_json::to_string(&pem).unwrap()
    );
    custody_registry::manifest::Manifest::parse(manifest.as_bytes()).expect("a canonical manifest");
    let a = user_signer(&alice);
    let e = publish_directory("demo/m", "1", manifest.as_bytes());
    let stmt = signed(&a, e);
    let (c, url) = (http(), d.log.url.clone());
    let (status, body) = upload(&c, &url, manifest.as_bytes(), &stmt);
    assert_eq!(status, 202, "{body}");
    for (_, bytes) in model_files() {
        let (status, body) = upload(&c, &url, &bytes, &stmt);
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = upload(&c, &url, &bundle, &stmt);
    assert_eq!(status, 201, "{body}");
    let before = tree_size(&c, &url);
    let (status, body) = post_statement(&c, &url, stmt.clone());
    assert_eq!((status, body["error"].as_str()), (422, Some("bad_model_signature")), "{body}");
    assert_eq!(tree_size(&c, &url), before, "nothing is logged");
}
