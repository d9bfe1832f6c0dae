//! Scenario 3, ledger tampering: with the log server stopped, its operator
//! rewrites one entry in RocksDB so that a logged publish names other
//! weights (which it also plants in the blob store), then restarts the
//! server. `custody-log fsck` and `custody audit` both fail and both name
//! the altered index, and a verified pull refuses the rewritten entry.
//! Before the tampering the same checks pass, so the test can fail.
//!
//! A log that signs a checkpoint whose commitment leaf carries a wrong state
//! root (or names another position) is named by `custody audit` with the
//! first such checkpoint and exit 2, after the same audit passed the honest
//! prefix.

use std::path::Path;
use std::process::Command;

use custody_registry::dsse::Envelope;
use custody_registry::leaf::CommitmentLeaf;
use custody_registry::leaf::Leaf;
use custody_registry::registry::Role;
use custody_testkit::scenario::raw_log::RawLog;
use custody_testkit::scenario::*;

/// `custody-log fsck` on the stopped server's data directory.
fn fsck(data: &Path) -> (Option<i32>, String) {
    let out = Command::new(bin("custody-log")).args(["fsck", "--data-dir"]).arg(data).output().unwrap();
    (out.status.code(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

/// Rewrites the publish at `index`: every occurrence of `from` in its signed
/// payload becomes `to`. The envelope keeps its (now invalid) signature and
/// the leaf its receive time; no stored hash is touched.
fn rewrite_entry(db_dir: &Path, index: u64, from: &str, to: &str) {
    custody_log::store::testing::rewrite_entry(db_dir, index, |old| {
        let leaf = Leaf::decode(old).unwrap();
        let mut envelope = Envelope::parse(leaf.envelope).unwrap();
        let payload = String::from_utf8(envelope.payload.clone()).unwrap();
        assert!(
            payload.contains("\"publish\"") && payload.contains(from),
            "entry {index} is not that publish: {payload}"
        );
        envelope.payload = payload.replace(from, to).into_bytes();
        let json = envelope.to_json();
        let altered = Leaf::new(leaf.receive_time_ms, &json).unwrap().encode();
        assert_ne!(altered, old);
        altered
    })
    .unwrap();
}

#[test]
fn an_entry_rewritten_in_rocksdb_is_named_by_fsck_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("log");
    let mut d = Deployment::start(tmp.path());
    let admin = d.admin();
    let (alice, dave) = (d.user("alice"), d.user("dave"));
    let (ka, kd) = (alice.keygen("alice"), dave.keygen("dave"));
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &kd, "--role", "reader", "--pattern", "demo/*"]);

    // Three publishes; the middle one is the operator's target.
    let mut published = Vec::new();
    for version in ["1", "2", "3"] {
        let bytes = format!("weights of demo/model@{version}\n").repeat(2000).into_bytes();
        let file = tmp.path().join(format!("model-{version}.bin"));
        std::fs::write(&file, &bytes).unwrap();
        let out =
            alice.ok(&["publish", file.to_str().unwrap(), "--name", "demo/model", "--version", version]);
        published.push((logged_index(&out), bytes));
    }
    let (target, honest) = published[1].clone();
    let honest_hex = custody_standards::hash::sha256(&honest).to_hex();
    // Keep the index distinctive: neither the first nor the last entry.
    assert!(target > 2 && target < published[2].0, "{published:?}");
    // Dave pulls another version (an access of the target's digest would
    // make the rewritten log unreplayable, and the server would refuse to
    // start on it).
    let pulled = tmp.path().join("pulled.bin");
    dave.ok(&["pull", "demo/model@1", "-o", pulled.to_str().unwrap()]);
    assert_eq!(std::fs::read(&pulled).unwrap(), published[0].1);
    std::fs::remove_file(&pulled).unwrap();

    // Before tampering: the audit passes, and so does fsck on the stopped
    // server.
    let auditor = d.user("auditor");
    // Every entry so far: the last publish and dave's access, each with
    // its commitment.
    let size = tree_size(&http(), &d.log.url);
    assert_eq!(size, published[2].0 + 4, "the last publish, then dave's access, each with its commitment");
    let report = eventually("an audit covering every publish", 30, || {
        let out = auditor.ok(&["audit"]);
        out.contains(&format!("audit OK: {size} entries replayed")).then_some(out)
    });
    assert!(!report.contains(&format!("entry {target}:")), "{report}");
    d.log.stop();
    let (code, report) = fsck(&data);
    assert_eq!(code, Some(0), "fsck before tampering: {report}");
    assert!(report.contains("ok: tree size"), "{report}");

    // The operator rewrites the publish of demo/model@2 to name other
    // weights, and plants those weights in the blob store.
    let evil = b"backdoored weights\n".repeat(2000);
    let evil_hex = custody_standards::hash::sha256(&evil).to_hex();
    rewrite_entry(&data.join("db"), target, &honest_hex, &evil_hex);
    let blob_dir = data.join("blobs/sha256").join(&evil_hex[..2]);
    std::fs::create_dir_all(&blob_dir).unwrap();
    std::fs::write(blob_dir.join(&evil_hex), &evil).unwrap();

    // fsck: exit 1, naming the entry.
    let (code, report) = fsck(&data);
    assert_eq!(code, Some(1), "fsck after tampering: {report}");
    assert!(report.contains(&format!("at entry {target}:")), "fsck must name entry {target}: {report}");

    // The server still starts (from its persisted state, without reading
    // the entries again), and every client check refuses what it now
    // serves.
    d.restart_log();
    let url = d.log.url.clone();
    let fresh = d.user("fresh");
    let out = fresh.run(&["audit", &url]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "a fresh audit fails verification: {stdout}{stderr}");
    assert!(stdout.contains(&format!("audit FAILED at entry {target}")), "{stdout}");
    assert!(stderr.contains(&format!("audit: entry {target}")), "{stderr}");
    // So does the earlier auditor when it checks what the log serves now
    // (--refetch: its cache holds the entries as they were verified).
    let out = auditor.run(&["audit", &url, "--refetch"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("audit FAILED at entry {target}")), "{}", text(&out.stdout));
    // The JSON report carries the index for programs.
    let out = fresh.run(&["audit", &url, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["violation"]["index"], target, "{v}");
    // One object: the report, and the error it ends with.
    assert_eq!((v["error"]["exit"].as_i64(), v["error"]["kind"].as_str()), (Some(2), Some("verification")));

    // The server starts from its persisted state (the history as it was
    // sequenced) and still resolves demo/model@2 to the honest digest, but
    // serves the rewritten entry: a verified pull refuses it and leaves
    // nothing behind.
    let http = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let resolved: serde_json::Value =
        http.get(format!("{url}/registry/resolve?ref=demo/model@2")).send().unwrap().json().unwrap();
    assert!(resolved.to_string().contains(&honest_hex), "{resolved}");
    let out = dave.run(&["--log", &url, "pull", "demo/model@2", "-o", pulled.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("entry {target}")), "{}", text(&out.stderr));
    assert!(!pulled.exists(), "a refused pull leaves nothing at the destination");
    // The untouched versions still verify.
    dave.ok(&["--log", &url, "pull", "demo/model@3", "-o", pulled.to_str().unwrap()]);
    assert_eq!(std::fs::read(&pulled).unwrap(), published[2].1);
}

#[test]
fn custody_audit_names_the_first_checkpoint_with_a_wrong_state_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, alice) = (signer("root"), signer("alice"));
    let weights = digest_of(b"weights whose state the log misreports");
    type Corrupt = fn(CommitmentLeaf) -> CommitmentLeaf;
    let cases: [(&str, Corrupt); 2] = [
        ("wrong-root", |mut c| {
            c.root.0[0] ^= 1;
            c
        }),
        ("wrong-index", |mut c| {
            c.index += 2;
            c
        }),
    ];
    for (case, corrupt) in cases {
        // A generic log fed what a registry would append: statements, each
        // batch ended by the commitment to the state after it.
        let log = RawLog::start(tmp.path(), case);
        let mut leaves = vec![
            leaf_now(&root, grant(&root, Role::Admin, "*")),
            leaf_now(&root, grant(&alice, Role::Publisher, "demo/*")),
        ];
        leaves.push(commitment_after(&leaves));
        log.append(&leaves);
        let run = log.audit_at(leaves.len() as u64, &[]);
        run.ok();
        assert!(
            run.stdout.contains(&format!("audit OK: {} entries replayed", leaves.len())),
            "{}",
            run.stdout
        );

        // The next batch is genuine; its commitment is not.
        leaves.push(leaf_now(&alice, publish("demo/model", "1", weights, 4096)));
        let honest = CommitmentLeaf::decode(&commitment_after(&leaves)).unwrap();
        let bad = log.append(&leaves[leaves.len() - 1..]) + 1;
        assert_eq!(bad, honest.index);
        log.append(&[corrupt(honest).encode()]);
        let run = log.audit_at(bad + 1, &[]);
        run.fails(2, &format!("audit: entry {bad}"));
        assert!(run.stdout.contains(&format!("audit FAILED at entry {bad}")), "{case}: {}", run.stdout);
        assert!(
            run.stderr.contains(&format!("the state commitment ending checkpoint {}", bad + 1)),
            "{case}: {}",
            run.stderr
        );
    }
}
