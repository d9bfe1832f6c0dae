//! Scenario 1, the happy path: the quick-start story on the real binaries,
//! asserting every step, including that every witness's monitoring
//! endpoint ends up showing the checkpoint the log publishes. The same
//! story runs on the embedded default and with `--store s3://` on a real
//! 3-node Garage cluster (artifacts and the read path in the bucket).

use custody_standards::checkpoint::open_checkpoint;
use custody_standards::VerifierKey;
use custody_testkit::scenario::*;

#[test]
fn publish_approve_promote_tag_pull_audit_with_three_witnesses() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    happy_path(&tmp, &d);
}

#[test]
fn the_happy_path_with_the_store_on_a_garage_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = custody_testkit::garage::GarageCluster::start(&tmp.path().join("garage"));
    let extra = LogExtra {
        args: vec!["--store".into(), format!("s3://{}/happy", cluster.bucket)],
        env: cluster.s3_env(),
    };
    let d = Deployment::start_with_log(&tmp.path().join("deployment"), Setup::default(), extra);
    happy_path(&tmp, &d);
    assert!(
        !d.dir.join("log/blobs/sha256").exists(),
        "the artifacts are in the bucket, not on the log's disk"
    );
}

fn happy_path(tmp: &tempfile::TempDir, d: &Deployment) {
    let admin = d.admin();
    let (alice, carol, dave) = (d.user("alice"), d.user("carol"), d.user("dave"));
    let (ka, kc, kd) = (alice.keygen("alice"), carol.keygen("carol"), dave.keygen("dave"));
    for (key, role) in [(&ka, "publisher"), (&ka, "maintainer"), (&kc, "approver"), (&kd, "reader")] {
        let out = admin.ok(&["grant", key, "--role", role, "--pattern", "demo/*"]);
        assert!(out.contains("logged grant"), "{out}");
    }

    // A dataset, then a model whose lineage names it, each with a receipt.
    let dataset = tmp.path().join("corpus.bin");
    std::fs::write(&dataset, b"rows of training data\n".repeat(5000)).unwrap();
    let model_bytes = b"model weights ".repeat(40_000);
    let model = tmp.path().join("model.bin");
    std::fs::write(&model, &model_bytes).unwrap();
    let receipt = tmp.path().join("model.tlog-proof");
    alice.ok(&[
        "publish",
        dataset.to_str().unwrap(),
        "--name",
        "demo/corpus",
        "--version",
        "1",
        "--kind",
        "dataset",
    ]);
    let ds = custody_standards::hash::sha256(&std::fs::read(&dataset).unwrap()).to_hex();
    let lineage = format!("{{\"datasets\":[{{\"digest\":\"sha256:{ds}\"}}],\"pipeline\":\"train#1\"}}");
    let out = alice.ok(&[
        "publish",
        model.to_str().unwrap(),
        "--name",
        "demo/model",
        "--version",
        "1.0",
        "--lineage",
        &lineage,
        "--bundle",
        receipt.to_str().unwrap(),
    ]);
    assert!(out.contains("cosigned by"), "publish waits for a witnessed checkpoint: {out}");

    // Two-person rule: production needs carol's approval.
    alice.ok(&["promote", "demo/model@1.0", "--to", "staging"]);
    let refused = alice.run(&["promote", "demo/model@1.0", "--to", "production"]);
    assert!(!refused.status.success(), "production without approval must be refused");
    carol.ok(&["approve", "demo/model@1.0"]);
    alice.ok(&["promote", "demo/model@1.0", "--to", "production"]);
    alice.ok(&["tag", "demo/model@1.0", "production"]);

    // Dave pulls by tag with full verification.
    let pulled = tmp.path().join("pulled.bin");
    let out = dave.ok(&["pull", "demo/model:production", "-o", pulled.to_str().unwrap()]);
    assert!(out.contains("verified demo/model@1.0"), "{out}");
    assert_eq!(std::fs::read(&pulled).unwrap(), model_bytes);

    // The audit replays the whole log.
    let out = dave.ok(&["audit"]);
    assert!(out.contains("audit OK"), "{out}");

    // The receipt verifies offline.
    let out = dave.ok(&["verify", "bundle", receipt.to_str().unwrap()]);
    assert!(out.contains("bundle OK"), "{out}");

    // Every witness's monitoring endpoint shows the log's checkpoint.
    let vkey = VerifierKey::parse(&d.log_vkey).unwrap();
    let http = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let get = |url: String| -> Option<Vec<u8>> {
        let r = http.get(url).send().ok()?;
        r.status().is_success().then(|| r.bytes().ok().map(|b| b.to_vec()))?
    };
    let origin_hex = custody_standards::hash::sha256(d.origin.as_bytes()).to_hex();
    let open = |bytes: Option<Vec<u8>>| open_checkpoint(&bytes?, &vkey).ok().map(|o| o.checkpoint);
    // Nothing is appended any more, so the log's checkpoint settles and all
    // three witnesses (the third may be one round behind) must show it.
    let settled = eventually("all three witnesses to show the log's checkpoint", 30, || {
        let log_cp = open(get(format!("{}/checkpoint", d.log.url)))?;
        let all = d.witnesses.iter().all(|w| {
            open(get(format!("{}/{origin_hex}/checkpoint", w.url)))
                .is_some_and(|cp| cp.size == log_cp.size && cp.root == log_cp.root)
        });
        all.then_some(log_cp)
    });
    assert!(settled.size >= 11, "genesis, 4 grants, 2 publishes, 4 lifecycle steps: {}", settled.size);
}
