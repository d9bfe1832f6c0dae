//! What is *current*, proven on the real binaries: a log (or anything in
//! front of it) that serves an old tag move as current, hides a key
//! revocation or a revoked role, or tampers with a state proof is caught by
//! `custody pull` (exit 2, nothing written), because every such claim is
//! checked against the registry state committed by the checkpoint the
//! pull verified (docs/protocol.md section 8). The same holds for a tag the
//! log should refuse to resolve: its committed state, not its answer, says
//! whether the version qualifies.

use std::sync::Arc;

use custody_testkit::hostile::proxy;
use custody_testkit::scenario::*;

/// A proxy in front of the log that edits the JSON answers (200s) of the
/// paths starting with `prefix`: a log that lies in its queries.
fn lying(
    d: &Deployment,
    prefix: &'static str,
    edit: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
) -> String {
    proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path.starts_with(prefix) && r.status == 200 {
                let mut v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                edit(&mut v);
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
    )
}

/// alice publishes `bytes` as demo/model@1 and dave pulls it once: the
/// honest baseline before the log's state changes.
fn publish_and_pull_once(tmp: &std::path::Path, alice: &User, dave: &User, bytes: &[u8]) {
    alice.ok(&["publish", &write_file(tmp, "v1.bin", bytes), "--name", "demo/model", "--version", "1"]);
    let out = tmp.join("before.bin");
    dave.ok(&["pull", "demo/model@1", "-o", out.to_str().unwrap()]);
}

/// Runs a pull that must be refused with exit 2 saying `needle`, leaving
/// nothing at the destination.
fn refused_pull(u: &User, args: &[&str], out: &std::path::Path, needle: &str) {
    let mut all = args.to_vec();
    all.extend(["-o", out.to_str().unwrap()]);
    let run = u.run(&all);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "custody {all:?}: {}{stderr}", text(&run.stdout));
    assert!(stderr.contains(needle), "custody {all:?} should say {needle:?}: {stderr}");
    assert!(!out.exists(), "a refused pull wrote {}", out.display());
}

#[test]
fn an_old_tag_move_served_as_current_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    let (v1, v2) = (b"first weights ".repeat(2000), b"second weights ".repeat(2000));
    alice.ok(&["publish", &write_file(tmp.path(), "v1.bin", &v1), "--name", "demo/model", "--version", "1"]);
    alice.ok(&["tag", "demo/model@1", "latest"]);
    let c = http();
    let (status, old) = get_json(&c, &format!("{}/registry/resolve?ref=demo/model:latest", d.log.url));
    assert_eq!(status, 200, "{old}");
    alice.ok(&["publish", &write_file(tmp.path(), "v2.bin", &v2), "--name", "demo/model", "--version", "2"]);
    alice.ok(&["tag", "demo/model@2", "latest"]);

    // Honest: the current move, to v2.
    let out = tmp.path().join("honest.bin");
    dave.ok(&["pull", "demo/model:latest", "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), v2);

    // A log answering with the old move: every entry it names is genuine
    // and proven, but the committed state says the tag moved on.
    let url = lying(&d, "/registry/resolve", move |v| *v = old.clone());
    refused_pull(
        &dave,
        &["--log", &url, "pull", "demo/model:latest"],
        &tmp.path().join("old.bin"),
        "currently points at",
    );
}

#[test]
fn a_revoked_role_is_refused_even_when_the_log_hides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, admin, alice, dave, _) = demo_team(tmp.path());
    let v1 = b"weights published under a role later taken away ".repeat(500);
    publish_and_pull_once(tmp.path(), &alice, &dave, &v1);
    let c = http();
    let (_, before) = get_json(&c, &format!("{}/registry/actors/alice", d.log.url));
    admin.ok(&["revoke", "alice", "--role", "publisher", "--pattern", "demo/*"]);
    // The honest log no longer lists the grant: refused.
    refused_pull(&dave, &["pull", "demo/model@1"], &tmp.path().join("role.bin"), "no proven publisher grant");
    // A log that still lists it (the grant entry is genuine and proven) is
    // refused by the committed state, where the grant is gone.
    let grants = before["grants"].clone();
    let url = lying(&d, "/registry/actors/alice", move |v| v["grants"] = grants.clone());
    refused_pull(
        &dave,
        &["--log", &url, "pull", "demo/model@1"],
        &tmp.path().join("hidden.bin"),
        "was revoked",
    );
}

#[test]
fn a_revoked_key_is_refused_even_when_the_log_hides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, admin, alice, dave, ka) = demo_team(tmp.path());
    let v1 = b"weights signed by a key later found stolen ".repeat(500);
    publish_and_pull_once(tmp.path(), &alice, &dave, &v1);
    // Revoked after the publish: the entries alone still check out (the
    // key was live when it signed); the committed state says it is dead.
    admin.ok(&["revoke-key", &ka]);
    refused_pull(&dave, &["pull", "demo/model@1"], &tmp.path().join("key.bin"), "was revoked");
    let url = lying(&d, "/registry/actors/alice", |v| {
        for k in v["keys"].as_array_mut().into_iter().flatten() {
            k["end_index"] = serde_json::Value::Null;
            k["ended"] = serde_json::Value::Null;
        }
    });
    refused_pull(
        &dave,
        &["--log", &url, "pull", "demo/model@1"],
        &tmp.path().join("hidden.bin"),
        "was revoked",
    );
}

#[test]
fn a_tampered_state_proof_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    let v1 = b"weights ".repeat(3000);
    alice.ok(&["publish", &write_file(tmp.path(), "v1.bin", &v1), "--name", "demo/model", "--version", "1"]);
    // Flip one byte of the first value served: it no longer hashes to what
    // the proof and the committed root say.
    let url = lying(&d, "/state/proofs", |v| {
        let mut bytes = hex::decode(v["proofs"][0]["value"].as_str().unwrap()).unwrap();
        // Inside the version's digest: still a well-formed value.
        bytes[20] ^= 1;
        v["proofs"][0]["value"] = serde_json::Value::String(hex::encode(bytes));
    });
    refused_pull(
        &dave,
        &["--log", &url, "pull", "demo/model@1"],
        &tmp.path().join("t.bin"),
        "does not verify",
    );
    // And one that drops a key's proof to claim it absent.
    let url = lying(&d, "/state/proofs", |v| v["proofs"][0]["value"] = serde_json::Value::Null);
    refused_pull(
        &dave,
        &["--log", &url, "pull", "demo/model@1"],
        &tmp.path().join("a.bin"),
        "does not verify",
    );
}

/// The state a log that accepted an unqualified tag move would commit (the
/// tag on a version outside the statuses its protection requires) is the
/// state of a tag disqualified after the fact. A log that answers such a
/// tag as fine, with the version's status lied into one that qualifies, is
/// refused from the committed version status and protection.
#[test]
fn a_disqualified_tag_served_as_fine_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, admin, alice, dave, _) = demo_team(tmp.path());
    let v1 = b"weights never promoted ".repeat(1000);
    alice.ok(&["publish", &write_file(tmp.path(), "v1.bin", &v1), "--name", "demo/model", "--version", "1"]);
    alice.ok(&["tag", "demo/model@1", "release"]);
    let c = http();
    let (status, fine) = get_json(&c, &format!("{}/registry/resolve?ref=demo/model:release", d.log.url));
    assert_eq!((status, fine["versions"][0]["status"].as_str()), (200, Some("development")), "{fine}");
    admin.ok(&["protect", "demo/model", "release", "--statuses", "staging"]);
    let (status, _) = get_json(&c, &format!("{}/registry/resolve?ref=demo/model:release", d.log.url));
    assert_eq!(status, 409);

    // The tag move and the publish it names are genuine and proven; only
    // the refusal and the status are lies.
    let mut lie = fine.clone();
    lie["versions"][0]["status"] = "staging".into();
    let body = serde_json::to_vec(&lie).unwrap();
    let url = proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path.starts_with("/registry/resolve") && r.status == 409 {
                r.status = 200;
                r.body = body.clone();
            }
            r
        }),
    );
    refused_pull(
        &dave,
        &["--log", &url, "pull", "demo/model:release"],
        &tmp.path().join("lied.bin"),
        "the tag requires a version in staging, but 1 is development",
    );
}

/// OCI-style `org/model@sha256:<hex>` pulls the digest as published under
/// that name only: another name is "not in the log" (exit 2), and a log
/// that lists a publish under the asked name when the proven entry is
/// under another is refused (exit 2).
#[test]
fn a_digest_reference_with_a_name_is_held_to_that_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    let bytes = b"weights known by digest ".repeat(1000);
    alice.ok(&[
        "publish",
        &write_file(tmp.path(), "w.bin", &bytes),
        "--name",
        "demo/model",
        "--version",
        "1",
    ]);
    let digest = digest_of(&bytes).to_string();
    let out = tmp.path().join("oci.bin");
    let got = dave.ok(&["pull", &format!("demo/model@{digest}"), "-o", out.to_str().unwrap()]);
    assert!(got.contains("verified demo/model@1"), "{got}");
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let (status, _) = get_json(&http(), &format!("{}/registry/resolve?ref=demo/model@{digest}", d.log.url));
    assert_eq!(status, 200);
    let (status, _) = get_json(&http(), &format!("{}/registry/resolve?ref=demo/other@{digest}", d.log.url));
    assert_eq!(status, 404);

    refused_pull(
        &dave,
        &["pull", &format!("demo/other@{digest}")],
        &tmp.path().join("other.bin"),
        "not in the log",
    );
    // The log relabels demo/model's publish as demo/other's: the entry it
    // points at is proven, and it publishes under demo/model.
    let url = lying(&d, "/registry/resolve", |v| {
        for p in v["publishes"].as_array_mut().into_iter().flatten() {
            p["name"] = "demo/other".into();
        }
    });
    refused_pull(
        &dave,
        &["--log", &url, "pull", &format!("demo/other@{digest}")],
        &tmp.path().join("relabelled.bin"),
        "does not publish demo/other@sha256:",
    );
}
