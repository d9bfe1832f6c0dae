//! Scenario 2, model tampering: bytes of a stored artifact are changed on
//! the server's disk. The server refuses to serve them, `custody pull`
//! leaves nothing behind, `custody pull --verify-only` refuses a tampered
//! local copy, and `custody-log fsck` names the blob.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use custody_testkit::scenario::*;

#[test]
fn tampered_artifacts_are_refused_everywhere_and_fsck_names_the_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Deployment::start(tmp.path());
    let admin = d.admin();
    let alice = d.user("alice");
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    let bytes = b"honest weights ".repeat(20_000);
    let model = tmp.path().join("model.bin");
    std::fs::write(&model, &bytes).unwrap();
    alice.ok(&["publish", model.to_str().unwrap(), "--name", "demo/model", "--version", "1"]);

    // A verified copy on disk passes --verify-only; a tampered one does not.
    let copy = tmp.path().join("copy.bin");
    alice.ok(&["pull", "demo/model@1", "-o", copy.to_str().unwrap()]);
    alice.ok(&["pull", "demo/model@1", "-o", copy.to_str().unwrap(), "--verify-only"]);
    let mut local = std::fs::read(&copy).unwrap();
    local[100] ^= 1;
    std::fs::write(&copy, &local).unwrap();
    let out = alice.run(&["pull", "demo/model@1", "-o", copy.to_str().unwrap(), "--verify-only"]);
    assert_eq!(out.status.code(), Some(2), "a tampered local copy fails verification: {}", text(&out.stderr));

    // The stored blob is altered on the server's disk.
    let hex = custody_standards::hash::sha256(&bytes).to_hex();
    let blob = tmp.path().join("log/blobs/sha256").join(&hex[..2]).join(&hex);
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut evil = bytes.clone();
    evil[7] ^= 0x20;
    std::fs::write(&blob, &evil).unwrap();
    let target = tmp.path().join("never.bin");
    let out = alice.run(&["pull", "demo/model@1", "-o", target.to_str().unwrap()]);
    assert!(!out.status.success(), "the server must not serve tampered bytes");
    assert!(text(&out.stderr).contains("integrity_violation"), "{}", text(&out.stderr));
    assert!(!target.exists(), "a refused pull leaves nothing at the destination");

    // fsck on the stopped server names the blob.
    let _ = d.log.child.kill();
    let _ = d.log.child.wait();
    let out = Command::new(bin("custody-log"))
        .args(["fsck", "--data-dir"])
        .arg(tmp.path().join("log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&format!("blob sha256:{hex}")), "{}", text(&out.stdout));
}
