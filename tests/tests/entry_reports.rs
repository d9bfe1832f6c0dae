//! `custody report --actor` and `--digest` on the real binaries: every
//! statement an actor signed, every publish and access of an artifact,
//! each row from a signed statement proven in the log, and the list proven
//! complete by the entries chain the checkpoint's registry state commits
//! to. A log (or anything in front of it) that omits, adds or reorders an
//! entry of the listing is refused with exit 2.

use std::sync::Arc;

use custody_testkit::hostile::proxy;
use custody_testkit::scenario::*;
use serde_json::Value;

/// A lying proxy's edit of a listing's indexes.
type Edit = fn(&mut Vec<Value>);

const FROM: &str = "2000-01-01T00:00:00Z";
const TO: &str = "2999-01-01T00:00:00Z";

/// The deployment, alice (publisher and maintainer on `demo/*`) and dave
/// (reader); alice publishes one artifact under two names and tags one,
/// dave pulls it. Returns the artifact's digest and the publish and tag
/// indexes.
struct World {
    d: Deployment,
    alice: User,
    dave: User,
    digest: String,
    alice_entries: Vec<u64>,
}

fn world(tmp: &std::path::Path) -> World {
    let (d, _admin, alice, dave, _) = demo_team(tmp);
    let bytes = b"weights reported on ".repeat(500);
    let file = write_file(tmp, "w.bin", &bytes);
    let digest = digest_of(&bytes).to_string();
    let mut alice_entries = Vec::new();
    for name in ["demo/model", "demo/copy"] {
        alice_entries.push(logged_index(&alice.ok(&["publish", &file, "--name", name, "--version", "1"])));
    }
    alice_entries.push(logged_index(&alice.ok(&["tag", "demo/model@1", "latest"])));
    let other = write_file(tmp, "other.bin", b"another artifact");
    alice_entries.push(logged_index(&alice.ok(&[
        "publish",
        &other,
        "--name",
        "demo/other",
        "--version",
        "1",
    ])));
    let out = tmp.join("pulled.bin");
    dave.ok(&["pull", "demo/model:latest", "-o", out.to_str().unwrap()]);
    World { d, alice, dave, digest, alice_entries }
}

fn report_json(u: &User, args: &[&str]) -> Value {
    let mut all = vec!["report", "--from", FROM, "--to", TO, "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&u.ok(&all)).unwrap()
}

fn indexes(report: &Value) -> Vec<u64> {
    report["events"].as_array().unwrap().iter().map(|e| e["index"].as_u64().unwrap()).collect()
}

/// A proxy in front of the log that edits the `indexes` of the listing
/// answers (200s) under `prefix`.
fn lying_listing(
    d: &Deployment,
    prefix: String,
    edit: impl Fn(&mut Vec<Value>) + Send + Sync + 'static,
) -> String {
    proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path.starts_with(&prefix) && r.status == 200 {
                let mut v: Value = serde_json::from_slice(&r.body).unwrap();
                edit(v["indexes"].as_array_mut().unwrap());
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
    )
}

#[test]
fn actor_and_digest_reports_list_every_signed_statement() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());

    // Every statement alice signed, in log order, nothing else.
    let r = report_json(&w.alice, &["--actor", "alice"]);
    assert_eq!(r["actor"], "alice", "{r}");
    assert!(r.get("name").is_none() && r.get("digest").is_none(), "{r}");
    assert_eq!(indexes(&r), w.alice_entries, "{r}");
    assert_eq!(r["events_by_type"], serde_json::json!({"publish": 3, "tag": 1}));
    assert_eq!(r["actors"], serde_json::json!({"alice": 4}));
    assert_eq!(r["versions_affected"], serde_json::json!(["demo/copy@1", "demo/model@1", "demo/other@1"]));
    assert_eq!(r["log"]["consistency_verified"], true);
    // dave's report is his one access, read from his signed statement.
    let r = report_json(&w.alice, &["--actor", "dave"]);
    let events = r["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{r}");
    assert_eq!(
        (events[0]["event"].as_str(), events[0]["name"].as_str()),
        (Some("access"), Some("demo/model"))
    );
    let access = events[0]["index"].as_u64().unwrap();

    // The artifact: both publishes and the access; the tag names the
    // digest but neither publishes nor reads it.
    let r = report_json(&w.dave, &["--digest", &w.digest]);
    assert_eq!(r["digest"], w.digest.as_str(), "{r}");
    assert_eq!(indexes(&r), vec![w.alice_entries[0], w.alice_entries[1], access], "{r}");
    let names: Vec<&str> =
        r["events"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["demo/model", "demo/copy", "demo/model"]);

    // Markdown, and the flags from the environment like every other.
    let md = w.alice.ok(&["report", "--actor", "alice", "--from", FROM, "--to", TO]);
    assert!(md.contains("# Compliance report: actor alice"), "{md}");
    assert!(md.contains("| publish | 3 |") && md.contains("| demo/copy |"), "{md}");
    let out = w
        .alice
        .command()
        .args(["report", "--from", FROM, "--to", TO])
        .env("CUSTODY_DIGEST", &w.digest)
        .output();
    let run: Run = out.unwrap().into();
    assert!(
        run.ok().stdout.contains(&format!("# Compliance report: artifact {}", w.digest)),
        "{}",
        run.stdout
    );

    // Exactly one subject.
    w.alice
        .cli(&["report", "--actor", "alice", "--digest", &w.digest, "--from", FROM, "--to", TO])
        .fails(64, "");
    // No subject: the whole registry (tests/tests/compliance_report.rs).
    assert_eq!(report_json(&w.alice, &[])["scope"], "registry");
    w.alice.cli(&["report", "--digest", "sha256:abc", "--from", FROM, "--to", TO]).fails(64, "--digest");
    // Nothing logged: refused, not an empty report.
    w.alice.cli(&["report", "--actor", "nobody", "--from", FROM, "--to", TO]).fails(2, "not in the log");
}

#[test]
fn an_actor_or_digest_listing_that_omits_adds_or_reorders_an_entry_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let first = w.alice_entries[0];
    // Each edit of alice's listing, then of the artifact's (three entries
    // each, at least).
    let edits: [(&str, Edit); 3] = [
        ("omits", |l| {
            l.remove(1);
        }),
        ("adds", |l| l.insert(0, Value::from(2))),
        ("reorders", |l| l.swap(0, 1)),
    ];
    for (what, edit) in edits {
        let url = lying_listing(&w.d, "/registry/actors/alice/entries".into(), edit);
        let run = w.alice.cli(&["--log", &url, "report", "--actor", "alice", "--from", FROM, "--to", TO]);
        assert!(
            run.code == 2 && run.stderr.contains("is not complete"),
            "an actor listing that {what} an entry: {}{}",
            run.stdout,
            run.stderr
        );
        let prefix = format!("/registry/artifacts/{}/entries", w.digest);
        let url = lying_listing(&w.d, prefix, edit);
        let run = w.dave.cli(&["--log", &url, "report", "--digest", &w.digest, "--from", FROM, "--to", TO]);
        assert!(
            run.code == 2 && run.stderr.contains("is not complete"),
            "a digest listing that {what} an entry: {}{}",
            run.stdout,
            run.stderr
        );
    }
    // The honest listings still pass through a proxy that edits nothing.
    let url = lying_listing(&w.d, "/registry/actors/alice/entries".into(), |_| {});
    let r: Value = serde_json::from_str(
        &w.alice.ok(&["--log", &url, "report", "--actor", "alice", "--from", FROM, "--to", TO, "--json"]),
    )
    .unwrap();
    assert_eq!(indexes(&r)[0], first);
}
