//! What the client must refuse on its own: a checkpoint without the witness
//! quorum, an entry no quorum checkpoint covers, a log inconsistent with
//! what the client saw before (split view: evidence and exit 3), and a
//! lying server (rewritten answers through a proxy in front of the real
//! log): bytes tampered in transit, a wrong tag, an unknown publisher key,
//! a fake grant.

use std::path::Path;
use std::sync::Arc;

use custody_testkit::cli::*;
use custody_testkit::fake_witness::Witness;
use custody_testkit::hostile::{proxy, Response, Rewrite};
use custody_testkit::http::http;
use custody_testkit::logserver::*;
use custody_testkit::{bin, spawn};

fn artifact(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

/// A registry with alice (publisher + maintainer on acme/*) who published
/// acme/model 1.0 (tagged prod) and 2.0 (tagged candidate).
fn seeded(dir: &Path, policy: &Path, url: &str, data: &Path) -> (User, Vec<u8>, Vec<u8>) {
    let admin = User::new(dir, "root");
    admin.configure(policy, url);
    admin.use_key(&data.join("admin.key"));
    let alice = User::new(dir, "alice");
    alice.configure(policy, url);
    let key = alice.keygen("alice");
    admin.cli(&["grant", &key, "--role", "publisher", "--pattern", "acme/*"]).ok();
    admin.cli(&["grant", &key, "--role", "maintainer", "--pattern", "acme/*"]).ok();
    let (v1, v2) = (b"model one".repeat(1000), b"model two".repeat(1000));
    let f1 = artifact(dir, "v1.bin", &v1);
    let f2 = artifact(dir, "v2.bin", &v2);
    alice.cli(&["publish", &f1, "--name", "acme/model", "--version", "1.0", "--tag", "prod"]).ok();
    alice.cli(&["publish", &f2, "--name", "acme/model", "--version", "2.0", "--tag", "candidate"]).ok();
    (alice, v1, v2)
}

#[test]
fn witnessed_checkpoints_are_required() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init_log(&data);
    let w = Witness::start("w1.example", 7, &vkey);
    let policy = dir.path().join("policy");
    std::fs::write(&policy, format!("log {vkey}\nwitness w1 {} {}\nquorum w1\n", w.vkey, w.url)).unwrap();
    let server = serve(&data, &["--policy", policy.to_str().unwrap()]);
    let (alice, v1, _) = seeded(dir.path(), &policy, &server.url, &data);
    let c = alice.cli(&["checkpoint"]);
    assert!(c.ok().stdout.contains("cosigned by: w1"), "{}", c.stdout);
    let out = dir.path().join("out.bin");
    alice.cli(&["pull", "acme/model:prod", "-o", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out).unwrap(), v1);

    // A client whose policy needs a witness the log does not use refuses
    // every checkpoint, so it never pulls.
    let strict = dir.path().join("strict-policy");
    let other = custody_standards::cosignature::CosignatureSigner::from_seed("w2.example", &[9; 32]).unwrap();
    std::fs::write(&strict, format!("log {vkey}\nwitness w2 {}\nquorum w2\n", other.verifier())).unwrap();
    let bob = User::new(dir.path(), "bob");
    bob.configure(&strict, &server.url);
    bob.keygen("bob");
    bob.cli(&["checkpoint"]).fails(2, "quorum");
    let never = dir.path().join("never.bin");
    bob.cli(&["pull", "acme/model:prod", "-o", never.to_str().unwrap()]).fails(2, "quorum");
    assert!(!never.exists());

    // The witness goes down: a new publish is logged but no quorum
    // checkpoint covers it, so the client refuses to call it done.
    w.set_down(true);
    let f3 = artifact(dir.path(), "v3.bin", b"model three");
    let r = alice.cli(&["--wait", "3", "publish", &f3, "--name", "acme/model", "--version", "3.0"]);
    r.fails(2, "no checkpoint satisfying the policy covers entry");
    let never3 = dir.path().join("never3.bin");
    alice
        .cli(&["--wait", "3", "pull", "acme/model@3.0", "-o", never3.to_str().unwrap()])
        .fails(2, "covers entry");
    assert!(!never3.exists());
}

#[test]
fn a_real_custody_witness_cosigns_what_the_client_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init_log(&data);
    let wdata = dir.path().join("witness");
    let out = std::process::Command::new(bin("custody-witness"))
        .args(["init", "--name", "witness.example.com/w1", "--data-dir"])
        .arg(&wdata)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wvkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let logs = dir.path().join("logs.txt");
    std::fs::write(&logs, format!("logs/v0\n\nvkey {vkey}\nqpd 86400\n")).unwrap();
    let witness = spawn(
        std::process::Command::new(bin("custody-witness"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&wdata)
            .arg("--logs")
            .arg(&logs)
            .env("CUSTODY_LOG", "warn"),
    );
    let policy = dir.path().join("policy");
    std::fs::write(&policy, format!("log {vkey}\nwitness w1 {wvkey} {}\nquorum w1\n", witness.url)).unwrap();
    let server = serve(&data, &["--policy", policy.to_str().unwrap()]);
    let (alice, v1, _) = seeded(dir.path(), &policy, &server.url, &data);
    let c = alice.cli(&["checkpoint"]);
    assert!(c.ok().stdout.contains("cosigned by: w1"), "{}", c.stdout);
    let out = dir.path().join("out.bin");
    alice.cli(&["pull", "acme/model:prod", "-o", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out).unwrap(), v1);
}

#[test]
fn a_forked_log_is_detected_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let data_a = dir.path().join("log-a");
    let vkey = init_log(&data_a);
    // Same key, same genesis: the operator can run two histories.
    let data_b = dir.path().join("log-b");
    let st = std::process::Command::new("cp").arg("-a").arg(&data_a).arg(&data_b).status().unwrap();
    assert!(st.success());
    let policy = log_only_policy(dir.path(), &vkey);

    let watcher = User::new(dir.path(), "watcher");
    let a = serve(&data_a, &[]);
    let admin_a = User::new(dir.path(), "admin-a");
    admin_a.configure(&policy, &a.url);
    admin_a.use_key(&data_a.join("admin.key"));
    let alice = User::new(dir.path(), "alice").keygen("alice");
    admin_a.cli(&["grant", &alice, "--role", "reader", "--pattern", "acme/*"]).ok();
    watcher.configure(&policy, &a.url);
    let seen = watcher.cli(&["checkpoint"]);
    // Genesis, its commitment, the grant and its commitment.
    assert!(seen.ok().stdout.contains("size 4"), "{}", seen.stdout);
    drop(a);

    let b = serve(&data_b, &[]);
    let admin_b = User::new(dir.path(), "admin-b");
    admin_b.configure(&policy, &b.url);
    admin_b.use_key(&data_b.join("admin.key"));
    let bob = User::new(dir.path(), "bob").keygen("bob");
    let evidence_files = |ext: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(watcher.home.join("evidence"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        v
    };
    let p = policy.to_str().unwrap();
    // Same size, different root: the two signed checkpoints are the proof.
    admin_b.cli(&["grant", &bob, "--role", "reader", "--pattern", "acme/*"]).ok();
    let r = watcher.cli(&["--log", &b.url, "checkpoint"]);
    r.fails(3, "same size with different roots");
    assert!(r.stderr.contains("custody inconsistency evidence v1"), "{}", r.stderr);
    let same = evidence_files("evidence");
    assert_eq!(same.len(), 1);
    let v = watcher.cli(&["--policy", p, "verify", "evidence", same[0].to_str().unwrap()]);
    assert!(v.ok().stdout.contains("split view proven"), "{}", v.stdout);

    // Different sizes: the served proof fails, and the log's own tiles give
    // the root its tree has at size 4, which is not the remembered one.
    admin_b.cli(&["grant", &bob, "--role", "publisher", "--pattern", "acme/*"]).ok();
    let r = watcher.cli(&["--log", &b.url, "checkpoint"]);
    r.fails(3, "inconsistent");
    assert!(r.stderr.contains("consistency proof served by the log (old 4, new 6)"), "{}", r.stderr);
    let txt = evidence_files("txt");
    assert_eq!(txt.len(), 2);
    let report = std::fs::read_to_string(&txt[1]).unwrap();
    assert!(
        report.contains("-- remembered checkpoint (size 4) --")
            && report.contains("-- served checkpoint (size 6) --")
    );
    let ev = evidence_files("evidence");
    assert_eq!(ev.len(), 2);
    let newest = ev.iter().find(|e| **e != same[0]).unwrap();
    let v = watcher.cli(&["--policy", p, "verify", "evidence", newest.to_str().unwrap()]);
    assert!(v.ok().stdout.contains("whose tree has root"), "{}", v.stdout);
    // Tampered evidence, or evidence checked against another log's key, fails.
    let mut bad = std::fs::read(newest).unwrap();
    let at = bad.len() - 10;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    let bad_f = dir.path().join("bad.evidence");
    std::fs::write(&bad_f, bad).unwrap();
    watcher.cli(&["--policy", p, "verify", "evidence", bad_f.to_str().unwrap()]).fails(2, "evidence");
    let other = dir.path().join("other-policy");
    let foreign =
        custody_standards::SignerKey::from_seed("other.example/log", 1, &[3; 32]).unwrap().verifier();
    std::fs::write(&other, format!("log {foreign}\nquorum none\n")).unwrap();
    watcher
        .cli(&["--policy", other.to_str().unwrap(), "verify", "evidence", newest.to_str().unwrap()])
        .fails(2, "no log key for origin");
    // A monitor on the fork stops with the same verdict.
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, r#"{"grants": true}"#).unwrap();
    watcher
        .cli(&["--log", &b.url, "monitor", "--watch", rules.to_str().unwrap(), "--once"])
        .fails(3, "inconsistent");
    // The remembered checkpoint is unchanged: the fork is refused again.
    watcher.cli(&["--log", &b.url, "checkpoint"]).fails(3, "inconsistent");
    let remembered =
        std::fs::read_dir(watcher.home.join("checkpoints")).unwrap().next().unwrap().unwrap().path();
    assert!(std::fs::read_to_string(remembered).unwrap().contains("\n4\n"));
}

#[test]
fn a_lying_server_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init_log(&data);
    let server = serve(&data, &[]);
    let policy = log_only_policy(dir.path(), &vkey);
    let (alice, v1, v2) = seeded(dir.path(), &policy, &server.url, &data);
    let digest2 = format!("sha256:{}", custody_standards::hash::sha256(&v2).to_hex());
    let honest: serde_json::Value = http()
        .get(format!("{}/registry/resolve?ref=acme/model:candidate", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();

    let pull_via = |rewrite: Rewrite, reference: &str| {
        let url = proxy(server.url.clone(), rewrite);
        let out = dir.path().join("lied.bin");
        let r = alice.cli(&["--log", &url, "pull", reference, "-o", out.to_str().unwrap()]);
        assert!(!out.exists(), "nothing may be written on a refused pull");
        r
    };
    let json = |resp: &Response| -> serde_json::Value { serde_json::from_slice(&resp.body).unwrap() };

    // Honest proxy: the pull works (the harness itself is sound).
    let url = proxy(server.url.clone(), Arc::new(|_, r| r));
    let out = dir.path().join("ok.bin");
    alice.cli(&["--log", &url, "pull", "acme/model:prod", "-o", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out).unwrap(), v1);

    // Bytes flipped in transit.
    pull_via(
        Arc::new(|req, mut r| {
            if req.path.starts_with("/blobs/") && r.status == 200 {
                r.body[10] ^= 1;
            }
            r
        }),
        "acme/model@1.0",
    )
    .fails(2, "not the published artifact");

    // Wrong tag: prod resolved to the candidate move (v2).
    let staging = honest.clone();
    pull_via(
        Arc::new(move |req, mut r| {
            if req.path.starts_with("/registry/resolve?ref=acme/model:prod") {
                r.body = serde_json::to_vec(&staging).unwrap();
            }
            r
        }),
        "acme/model:prod",
    )
    .fails(2, "moves another tag");

    // Unknown publisher key: the log's key list for alice does not hold the
    // key that signed the publish.
    pull_via(
        Arc::new(move |req, mut r| {
            if req.path.starts_with("/registry/actors/alice") {
                let mut v = json(&r);
                v["keys"] = serde_json::json!([]);
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
        &digest2,
    )
    .fails(2, "is not a key of alice in the log");

    // A grant index pointing at an entry that is not that grant.
    pull_via(
        Arc::new(move |req, mut r| {
            if req.path.starts_with("/registry/actors/alice") {
                let mut v = json(&r);
                for g in v["grants"].as_array_mut().unwrap() {
                    g["index"] = serde_json::json!(0);
                }
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
        "acme/model@2.0",
    )
    .fails(2, "is not the grant the log claims");

    // A forged publish entry: its inclusion proof fails.
    let v1_index = http()
        .get(format!("{}/registry/resolve?ref=acme/model@1.0", server.url))
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap()["versions"][0]["published_index"]
        .as_u64()
        .unwrap();
    let entry_path = format!("/entries/{v1_index}");
    pull_via(
        Arc::new(move |req, mut r| {
            if req.path == entry_path {
                let n = r.body.len();
                r.body[n - 3] ^= 1;
            }
            r
        }),
        "acme/model@1.0",
    )
    .fails(2, &format!("inclusion of entry {v1_index}"));
}
