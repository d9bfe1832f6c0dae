//! Holds, deploy and transfer records, and break-glass on the real
//! binaries: a hold refuses tag moves, promotions, deploys and pulls of
//! what it covers (the log with 423 `held`, `pull` from the committed
//! state, exit 2), a release lifts it, and every one of these statements
//! is shown by `history`. A log that serves a held artifact, or hides the
//! hold from its state proofs, is caught by `pull`.

use std::sync::Arc;

use custody_testkit::hostile::{proxy, Response};
use custody_testkit::scenario::*;

/// demo_team plus erin, approver on demo/*; demo/model@1 and @2
/// published by alice, `latest` on @1.
fn team_with_versions(tmp: &std::path::Path) -> (Deployment, User, User, User, User, Vec<u8>) {
    let (d, admin, alice, dave, _) = demo_team(tmp);
    let erin = d.user("erin");
    admin.ok(&["grant", &erin.keygen("erin"), "--role", "approver", "--pattern", "demo/*"]);
    let v1 = b"weights under investigation ".repeat(800);
    alice.ok(&["publish", &write_file(tmp, "v1.bin", &v1), "--name", "demo/model", "--version", "1"]);
    alice.ok(&["publish", &write_file(tmp, "v2.bin", b"second"), "--name", "demo/model", "--version", "2"]);
    alice.ok(&["tag", "demo/model@1", "latest"]);
    (d, admin, alice, dave, erin, v1)
}

fn history_rows(u: &User) -> Vec<serde_json::Value> {
    let out = u.ok(&["--output", "json", "history", "demo/model"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["rows"].as_array().unwrap().clone()
}

#[test]
fn a_hold_blocks_until_released_and_both_show_in_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (_d, _admin, alice, dave, erin, v1) = team_with_versions(tmp.path());
    let out = tmp.path().join("pulled.bin");
    let out_s = out.to_str().unwrap();

    // A hold needs a reason of its own, and an approver.
    erin.cli(&["hold", "demo/model@1"]).fails(64, "--reason");
    dave.cli(&["hold", "demo/model@1", "--reason", "curious"]).fails(1, "forbidden");
    erin.ok(&["hold", "demo/model@1", "--reason", "incident 7: suspected poisoning"]);
    erin.cli(&["hold", "demo/model@1", "--reason", "again"]).fails(1, "already_held");

    // The log refuses moving the tag away from it, promoting it, and
    // recording a deploy or transfer of it.
    alice.cli(&["tag", "demo/model@2", "latest"]).fails(1, "held");
    alice.cli(&["promote", "demo/model@1", "--to", "staging"]).fails(1, "held");
    dave.cli(&["deploy", "demo/model@1", "--target", "prod-eu"]).fails(1, "held");
    dave.cli(&["transfer", "demo/model@1", "--destination", "mirror"]).fails(1, "held");
    // pull proves the hold from the committed state and refuses (exit 2),
    // by version and by a tag pointing at it.
    dave.cli(&["pull", "demo/model@1", "-o", out_s]).fails(2, "is held");
    dave.cli(&["pull", "demo/model:latest", "-o", out_s]).fails(2, "is held");
    assert!(!out.exists());
    // The other version is not held.
    dave.ok(&["deploy", "demo/model@2", "--target", "staging-eu"]);

    erin.cli(&["release", "demo/model@2", "--reason", "x"]).fails(1, "not_held");
    erin.ok(&["release", "demo/model@1", "--reason", "incident 7 closed: weights verified"]);
    dave.ok(&["pull", "demo/model@1", "-o", out_s]);
    assert_eq!(std::fs::read(&out).unwrap(), v1);
    dave.ok(&["deploy", "demo/model@1", "--target", "prod-eu"]);
    let transfer = dave.ok(&[
        "--output",
        "json",
        "transfer",
        "demo/model@1",
        "--destination",
        "registry.example/mirror",
    ]);
    let t: serde_json::Value = serde_json::from_str(&transfer).unwrap();
    assert_eq!(t["action"], "transfer");
    assert_eq!(t["destination"], "registry.example/mirror");
    alice.ok(&["promote", "demo/model@1", "--to", "staging"]);
    alice.ok(&["tag", "demo/model@2", "latest"]);

    // A hold on the whole name covers every version.
    erin.ok(&["hold", "demo/model", "--reason", "legal hold"]);
    dave.cli(&["pull", "demo/model@2", "-o", out_s]).fails(2, "demo/model is held");
    erin.ok(&["release", "demo/model", "--reason", "legal hold lifted"]);

    let rows = history_rows(&dave);
    let find = |event: &str, reason: &str| {
        rows.iter()
            .find(|r| r["event"] == event && r["reason"] == reason)
            .unwrap_or_else(|| panic!("history lacks {event} with reason {reason:?}: {rows:#?}"))
    };
    let hold = find("hold", "incident 7: suspected poisoning");
    assert_eq!(hold["version"], "1");
    assert_eq!(hold["actor"], "erin");
    find("release", "incident 7 closed: weights verified");
    find("hold", "legal hold");
    find("release", "legal hold lifted");
    let deploys: Vec<_> = rows.iter().filter(|r| r["event"] == "deploy").collect();
    assert_eq!(deploys.len(), 2, "{rows:#?}");
    assert!(deploys.iter().any(|r| r["version"] == "1" && r["detail"].as_str().unwrap().contains("prod-eu")));
    let transfers: Vec<_> = rows.iter().filter(|r| r["event"] == "transfer").collect();
    assert_eq!(transfers.len(), 1);
    assert!(transfers[0]["detail"].as_str().unwrap().contains("registry.example/mirror"));
    // Refused statements left nothing behind.
    assert_eq!(rows.iter().filter(|r| r["event"] == "hold").count(), 2);
}

#[test]
fn break_glass_promotes_without_approval_only_for_an_admin_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (_d, admin, alice, dave, _erin, _) = team_with_versions(tmp.path());
    alice.ok(&["promote", "demo/model@1", "--to", "staging"]);
    admin.cli(&["promote", "demo/model@1", "--to", "production"]).fails(1, "approval_required");
    admin.cli(&["promote", "demo/model@1", "--to", "production", "--break-glass"]).fails(64, "--reason");
    alice
        .cli(&["promote", "demo/model@1", "--to", "production", "--break-glass", "--reason", "me too"])
        .fails(1, "forbidden");
    // Nothing to bypass: refused.
    admin
        .cli(&["promote", "demo/model@2", "--to", "staging", "--break-glass", "--reason", "why not"])
        .fails(1, "break_glass_unneeded");
    let out = admin.ok(&[
        "--output",
        "json",
        "promote",
        "demo/model@1",
        "--to",
        "production",
        "--break-glass",
        "--reason",
        "outage: approvers unreachable",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["action"], "break_glass");
    assert_eq!(v["promote"]["to"], "production");
    // The built-in production tag now accepts @1; moving it to @2
    // (development) needs break-glass too.
    alice.ok(&["tag", "demo/model@1", "production"]);
    alice.cli(&["tag", "demo/model@2", "production"]).fails(1, "tag_protected");
    admin.ok(&["tag", "demo/model@2", "production", "--break-glass", "--reason", "hotfix build"]);
    let rows = history_rows(&dave);
    let glass: Vec<_> = rows.iter().filter(|r| r["event"] == "break_glass").collect();
    assert_eq!(glass.len(), 2, "{rows:#?}");
    assert!(glass[0]["detail"].as_str().unwrap().contains("BREAK-GLASS promote"));
    assert_eq!(glass[0]["reason"], "outage: approvers unreachable");
    assert!(glass[1]["detail"].as_str().unwrap().contains("BREAK-GLASS production"));
}

/// A log (or anything in front of it) that serves a held artifact: it
/// answers the download with the bytes whatever the log said, and
/// optionally rewrites its state proofs to say no hold exists.
fn lying_log(d: &Deployment, bytes: Vec<u8>, digest: String, hide_hold: bool) -> String {
    proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path.starts_with("/blobs/") {
                return Response::new(200, bytes.clone())
                    .with_header("Content-Type", "application/octet-stream")
                    .with_header("Custody-Leaf-Index", "1")
                    .with_header("Custody-Digest", &digest);
            }
            if hide_hold && req.path.starts_with("/state/proofs") && r.status == 200 {
                let mut v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                for p in v["proofs"].as_array_mut().into_iter().flatten() {
                    // Hold keys are kind 0x06.
                    if p["key"].as_str().is_some_and(|k| k.starts_with("06")) {
                        p["value"] = serde_json::Value::Null;
                    }
                }
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
    )
}

#[test]
fn a_log_that_serves_a_held_artifact_or_hides_the_hold_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, _alice, dave, erin, v1) = team_with_versions(tmp.path());
    let digest = format!("sha256:{}", custody_standards::hash::sha256(&v1).to_hex());
    erin.ok(&["hold", "demo/model@1", "--reason", "incident 9"]);
    let out = tmp.path().join("held.bin");
    let out_s = out.to_str().unwrap();
    // The bytes are genuine and the log serves them: the committed state
    // still says held.
    let serving = lying_log(&d, v1.clone(), digest.clone(), false);
    dave.cli(&["--log", &serving, "pull", "demo/model@1", "-o", out_s]).fails(2, "is held");
    // Hiding the hold needs a proof the committed root does not give.
    let hiding = lying_log(&d, v1, digest, true);
    dave.cli(&["--log", &hiding, "pull", "demo/model@1", "-o", out_s]).fails(2, "hold on demo/model");
    assert!(!out.exists(), "a refused pull wrote {}", out.display());
}
