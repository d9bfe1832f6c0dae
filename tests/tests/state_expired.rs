//! A log answers 410 `state_expired` for a checkpoint whose registry state
//! it no longer keeps (a restart, or more than 1,024 batches since). That is
//! no verdict: every client that proves state (`pull`, `history`, `report`
//! on a subject, `monitor` on watched names) asks again under the next
//! checkpoint and succeeds, on the real binaries, behind a proxy that
//! answers 410 to every state proof at a size up to the log's size when
//! the test began, as a just-restarted log does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use custody_testkit::hostile::{proxy, Response};
use custody_testkit::scenario::*;

/// The log's tree size now, from `/health`.
fn size_now(d: &Deployment) -> u64 {
    let h: serde_json::Value =
        custody_testkit::http::http().get(format!("{}/health", d.log.url)).send().unwrap().json().unwrap();
    h["sequencer"]["tree_size"].as_u64().unwrap()
}

/// A proxy in front of the log refusing, with 410 `state_expired`, every
/// state proof at a size up to the log's current one; and the count of
/// its refusals.
fn expiring(d: &Deployment) -> (String, Arc<AtomicU64>) {
    let expired = size_now(d);
    let refusals = Arc::new(AtomicU64::new(0));
    let n = Arc::clone(&refusals);
    let url = proxy(
        d.log.url.clone(),
        Arc::new(move |req, r| {
            let size =
                serde_json::from_slice::<serde_json::Value>(&req.body).ok().and_then(|v| v["size"].as_u64());
            match size {
                Some(s) if req.path.starts_with("/state/proofs") && s <= expired => {
                    n.fetch_add(1, Ordering::SeqCst);
                    let body = serde_json::json!({"error": "state_expired", "detail": "the state at this size is no longer served"});
                    Response::json(410, &body)
                }
                _ => r,
            }
        }),
    );
    (url, refusals)
}

/// Runs `args` as `u` through `url` in a thread; once the proxy refused a
/// state proof, alice logs a new version (so a new checkpoint comes), and
/// the run must then succeed. Returns its stdout.
fn succeeds_after_a_refusal(
    tmp: &std::path::Path,
    alice: &User,
    u: &User,
    url: &str,
    refusals: &Arc<AtomicU64>,
    args: &[&str],
) -> String {
    let run: JoinHandle<std::process::Output> = {
        let u = User { home: u.home.clone() };
        let mut all: Vec<String> = vec!["--log".into(), url.into()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        std::thread::spawn(move || u.run(&all.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    eventually("a refused state proof", 30, || (refusals.load(Ordering::SeqCst) > 0).then_some(()));
    let v2 = write_file(tmp, "v2.bin", b"v2 ".repeat(100).as_slice());
    alice.ok(&["publish", &v2, "--name", "demo/model", "--version", "2"]);
    let out = run.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn published(tmp: &std::path::Path) -> (Deployment, User, User, Vec<u8>) {
    let (d, _admin, alice, dave, _) = demo_team(tmp);
    let v1 = b"weights ".repeat(3000);
    alice.ok(&["publish", &write_file(tmp, "v1.bin", &v1), "--name", "demo/model", "--version", "1"]);
    (d, alice, dave, v1)
}

#[test]
fn a_pull_meeting_an_expired_state_verifies_again_under_the_next_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, alice, dave, v1) = published(tmp.path());
    let (url, refusals) = expiring(&d);
    let out = tmp.path().join("p.bin");
    succeeds_after_a_refusal(
        tmp.path(),
        &alice,
        &dave,
        &url,
        &refusals,
        &["pull", "demo/model@1", "-o", out.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&out).unwrap(), v1);
}

#[test]
fn history_meeting_an_expired_state_proves_the_list_under_the_next_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, alice, dave, _) = published(tmp.path());
    let (url, refusals) = expiring(&d);
    let out = succeeds_after_a_refusal(
        tmp.path(),
        &alice,
        &dave,
        &url,
        &refusals,
        &["history", "demo/model", "--json"],
    );
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = h.to_string();
    assert!(text.contains("\"1\""), "version 1 in the proven history: {text}");
}

#[test]
fn a_subject_report_meeting_an_expired_state_proves_under_the_next_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, alice, dave, _) = published(tmp.path());
    let (url, refusals) = expiring(&d);
    let args = [
        "report",
        "demo/model",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2999-01-01T00:00:00Z",
        "--format",
        "json",
    ];
    let out = succeeds_after_a_refusal(tmp.path(), &alice, &dave, &url, &refusals, &args);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(r.to_string().contains("publish"), "the publish is reported: {r}");
}

#[test]
fn a_monitor_pass_meeting_an_expired_state_runs_again_under_the_next_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, alice, dave, _) = published(tmp.path());
    let (url, refusals) = expiring(&d);
    let watch = write_file(tmp.path(), "watch.json", br#"{"names": ["demo/model"]}"#);
    succeeds_after_a_refusal(
        tmp.path(),
        &alice,
        &dave,
        &url,
        &refusals,
        &["monitor", "--watch", &watch, "--once"],
    );
    // The position is saved: a second pass through the honest log is quiet.
    assert_eq!(dave.ok(&["monitor", "--watch", &watch, "--once"]), "");
}
