//! The `custody` CLI against a real `custody-log`: every statement command
//! with its inclusion verified, clean pulls of each reference form, the
//! refusals a client must make on its own (tampered bytes, wrong tag,
//! missing artifact), and offline receipt verification with no server.

use std::path::Path;

use custody_testkit::cli::*;
use custody_testkit::http::http;
use custody_testkit::logserver::*;

/// Writes an artifact file.
fn artifact(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn publish_tag_promote_rotate_pull_and_offline_receipts() {
    let LogWithAdmin { dir, data, server, policy, admin, .. } = log_with_admin();
    let who = admin.cli(&["whoami"]);
    assert!(who.ok().stdout.contains("actor: root"), "{}", who.stdout);

    let (alice, carol) = (User::new(dir.path(), "alice"), User::new(dir.path(), "carol"));
    for u in [&alice, &carol] {
        u.configure(&policy, &server.url);
    }
    let alice_key = alice.keygen("alice");
    let carol_key = carol.keygen("carol");
    assert!(alice_key.starts_with("alice+"), "{alice_key}");
    // Grants, each proven in the log.
    for (key, role) in [(&alice_key, "publisher"), (&alice_key, "maintainer"), (&carol_key, "approver")] {
        let r = admin.cli(&["grant", key, "--role", role, "--pattern", "acme/*"]);
        assert!(r.ok().stdout.contains("logged grant"), "{}", r.stdout);
    }

    // Publish v1 with a tag and a receipt, then v2.
    let v1 = b"weights v1 ".repeat(20_000);
    let v2 = b"weights v2 ".repeat(20_000);
    let f1 = artifact(dir.path(), "v1.bin", &v1);
    let f2 = artifact(dir.path(), "v2.bin", &v2);
    let receipt = dir.path().join("v1.tlog-proof");
    let r = alice.cli(&[
        "publish",
        &f1,
        "--name",
        "acme/model",
        "--version",
        "1.0",
        "--metadata",
        r#"{"framework":"pytorch"}"#,
        "--tag",
        "prod",
        "--bundle",
        receipt.to_str().unwrap(),
    ]);
    r.ok();
    // Genesis and three grants, each batch ended by its commitment leaf.
    assert!(r.stdout.contains("logged publish acme/model@1.0 at entry 8"), "{}", r.stdout);
    assert!(r.stdout.contains("logged tag acme/model:prod"), "{}", r.stdout);
    alice.cli(&["publish", &f2, "--name", "acme/model", "--version", "2.0"]).ok();
    // Publishing the same thing again is idempotent and still proven.
    let again = alice.cli(&["publish", &f2, "--name", "acme/model", "--version", "2.0"]);
    assert!(again.ok().stdout.contains("(already logged)"), "{}", again.stdout);

    // A tag moved twice: the second move names the first as `previous`.
    let t1 = alice.cli(&["tag", "acme/model@2.0", "latest"]);
    assert!(t1.ok().stdout.contains("logged tag latest -> acme/model@2.0"), "{}", t1.stdout);
    let t2 = alice.cli(&["tag", "acme/model@1.0", "latest"]);
    t2.ok();
    assert!(logged_index(&t2.stdout) > logged_index(&t1.stdout));
    let latest = dir.path().join("latest.bin");
    alice.cli(&["pull", "acme/model:latest", "-o", latest.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&latest).unwrap(), v1);

    // Lifecycle with two people.
    alice.cli(&["promote", "acme/model@1.0", "--to", "staging"]).ok();
    alice.cli(&["promote", "acme/model@1.0", "--to", "production"]).fails(1, "approval_required");
    carol.cli(&["approve", "acme/model@1.0"]).ok();
    alice.cli(&["promote", "acme/model@1.0", "--to", "production"]).ok();
    alice.cli(&["rollback", "acme/model@1.0"]).fails(1, "rollback_target");

    // Clean pulls, each form of reference.
    let out = dir.path().join("pulled.bin");
    let p = alice.cli(&["pull", "acme/model:prod", "-o", out.to_str().unwrap()]);
    p.ok();
    assert!(p.stdout.contains("published by alice at entry 8, tag move at entry"), "{}", p.stdout);
    assert_eq!(std::fs::read(&out).unwrap(), v1);
    let out2 = dir.path().join("v2.pulled");
    alice.cli(&["pull", "acme/model@2.0", "-o", out2.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out2).unwrap(), v2);
    let digest = format!("sha256:{}", custody_standards::hash::sha256(&v2).to_hex());
    let out3 = dir.path().join("by-digest.bin");
    alice.cli(&["pull", &digest, "-o", out3.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out3).unwrap(), v2);

    // Verify-only: a file on disk that is not what the reference names.
    alice.cli(&["pull", "acme/model@1.0", "--verify-only", "-o", &f1]).ok();
    alice
        .cli(&["pull", "acme/model:prod", "--verify-only", "-o", &f2])
        .fails(2, "not the published artifact");
    let mut evil = v1.clone();
    evil[100] ^= 1;
    let tampered = artifact(dir.path(), "tampered.bin", &evil);
    alice
        .cli(&["pull", "acme/model@1.0", "--verify-only", "-o", &tampered])
        .fails(2, "not the published artifact");
    // Unknown tag or version: nothing written.
    let nothing = dir.path().join("nothing.bin");
    alice.cli(&["pull", "acme/model:nope", "-o", nothing.to_str().unwrap()]).fails(2, "not in the log");
    alice.cli(&["pull", "acme/model@9", "-o", nothing.to_str().unwrap()]).fails(2, "not in the log");
    assert!(!nothing.exists());

    // Key rotation: the new key publishes, and pulls follow the rotate entry.
    let rot = alice.cli(&["rotate-key"]);
    rot.ok();
    assert!(alice.home.join("key.old").exists());
    let v3 = b"weights v3".repeat(100);
    let f3 = artifact(dir.path(), "v3.bin", &v3);
    alice.cli(&["publish", &f3, "--name", "acme/model", "--version", "3.0"]).ok();
    let out4 = dir.path().join("v3.pulled");
    alice.cli(&["pull", "acme/model@3.0", "-o", out4.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out4).unwrap(), v3);

    // Revocation: alice can no longer tag.
    admin.cli(&["revoke", "alice", "--role", "maintainer", "--pattern", "acme/*"]).ok();
    alice.cli(&["tag", "acme/model@3.0", "prod"]).fails(1, "forbidden");

    // A blob tampered on the server is refused and nothing is written.
    let hex = custody_standards::hash::sha256(&v2).to_hex();
    let blob = data.join("blobs/sha256").join(&hex[..2]).join(&hex);
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut bad = v2.clone();
    bad[0] ^= 1;
    std::fs::write(&blob, &bad).unwrap();
    let out5 = dir.path().join("never.bin");
    alice.cli(&["pull", "acme/model@2.0", "-o", out5.to_str().unwrap()]).fails(1, "integrity_violation");
    assert!(!out5.exists());

    // A stolen key is killed by an admin: its next statement is refused.
    let dave = User::new(dir.path(), "dave");
    dave.configure(&policy, &server.url);
    let dave_key = dave.keygen("dave");
    admin.cli(&["grant", &dave_key, "--role", "reader", "--pattern", "acme/*"]).ok();
    let r = admin.cli(&["revoke-key", &dave_key]);
    assert!(r.ok().stdout.contains("revoke key"), "{}", r.stdout);
    let out6 = dir.path().join("dave.bin");
    dave.cli(&["pull", "acme/model@3.0", "-o", out6.to_str().unwrap()]).fails(1, "key_revoked");
    assert!(!out6.exists());

    // Offline: the receipt verifies with the server gone.
    let entry4 = dir.path().join("entry8");
    std::fs::write(&entry4, http().get(format!("{}/entries/8", server.url)).send().unwrap().bytes().unwrap())
        .unwrap();
    drop(server);
    // A bundle without the entry in `extra` needs --entry.
    let bare = dir.path().join("bare.tlog-proof");
    let text = std::fs::read_to_string(&receipt).unwrap();
    let without_extra: String =
        text.lines().filter(|l| !l.starts_with("extra ")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&bare, without_extra).unwrap();
    alice.cli(&["verify", "bundle", bare.to_str().unwrap()]).fails(64, "--entry");
    let r = alice.cli(&["verify", "bundle", bare.to_str().unwrap(), "--entry", entry4.to_str().unwrap()]);
    assert!(r.ok().stdout.contains("statement: publish by alice"), "{}", r.stdout);
    // An artifact verdict needs the expected signer.
    alice.cli(&["verify", "bundle", receipt.to_str().unwrap(), "--artifact", &f1]).fails(2, "--signer");
    let v = alice.cli(&[
        "verify",
        "bundle",
        receipt.to_str().unwrap(),
        "--artifact",
        &f1,
        "--signer",
        &alice_key,
    ]);
    v.ok();
    assert!(v.stdout.contains("bundle OK: entry 8"), "{}", v.stdout);
    assert!(v.stdout.contains("signature OK: by alice"), "{}", v.stdout);
    assert!(v.stdout.contains("artifact OK"), "{}", v.stdout);
    assert!(v.stdout.contains("not established offline"), "{}", v.stdout);
    alice
        .cli(&["verify", "bundle", receipt.to_str().unwrap(), "--artifact", &f1, "--signer", &carol_key])
        .fails(2, "not of the expected signer carol");
    alice
        .cli(&["verify", "bundle", receipt.to_str().unwrap(), "--artifact", &f2, "--signer", &alice_key])
        .fails(2, "is not acme/model@1.0");
    let mut forged = std::fs::read(&receipt).unwrap();
    let line = String::from_utf8_lossy(&forged).find("index 8").unwrap();
    forged[line + 6] = b'9';
    let forged_path = dir.path().join("forged.tlog-proof");
    std::fs::write(&forged_path, forged).unwrap();
    alice.cli(&["verify", "bundle", forged_path.to_str().unwrap()]).fails(2, "verification failed");
}

#[test]
fn help_exists_for_every_command_and_usage_errors_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let u = User::new(dir.path(), "u");
    for cmd in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["keygen", "--help"],
        vec!["whoami", "--help"],
        vec!["checkpoint", "--help"],
        vec!["publish", "--help"],
        vec!["tag", "--help"],
        vec!["promote", "--help"],
        vec!["approve", "--help"],
        vec!["rollback", "--help"],
        vec!["grant", "--help"],
        vec!["revoke", "--help"],
        vec!["rotate-key", "--help"],
        vec!["revoke-key", "--help"],
        vec!["pull", "--help"],
        vec!["audit", "--help"],
        vec!["monitor", "--help"],
        vec!["history", "--help"],
        vec!["report", "--help"],
        vec!["verify", "--help"],
        vec!["verify", "bundle", "--help"],
        vec!["verify", "checkpoint", "--help"],
        vec!["verify", "inclusion", "--help"],
        vec!["verify", "consistency", "--help"],
        vec!["verify", "evidence", "--help"],
    ] {
        let r = u.cli(&cmd);
        assert_eq!(r.code, 0, "{cmd:?}: {}", r.stderr);
        assert!(r.stdout.contains("Usage"), "{cmd:?}: {}", r.stdout);
    }
    assert_eq!(u.cli(&["frobnicate"]).code, 64);
    assert_eq!(u.cli(&["pull"]).code, 64);
    // No config yet: a clear line, generic failure.
    u.cli(&["checkpoint"]).fails(1, "custody init");
    u.cli(&["whoami"]).fails(1, "custody keygen");
}
