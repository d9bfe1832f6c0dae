//! `custody monitor` on state proofs, on the real binaries: with rules
//! that watch only exact names it reports a watched tag move while
//! fetching only the entries about the watched name (not the whole log),
//! and refuses (exit 2) a name listing that hides or invents an entry,
//! because the proven entries chain of the name does not match.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use custody_testkit::hostile::proxy;
use custody_testkit::scenario::*;
use serde_json::Value;

/// The deployment with alice (publisher and maintainer on `demo/*`), who
/// publishes `demo/model@1` and a dozen versions of `demo/noise`.
fn setup(tmp: &std::path::Path) -> (Deployment, User) {
    let d = Deployment::start(tmp);
    let admin = d.admin();
    let alice = d.user("alice");
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &ka, "--role", "maintainer", "--pattern", "demo/*"]);
    let model = write_file(tmp, "model.bin", &b"watched weights ".repeat(300));
    alice.ok(&["publish", &model, "--name", "demo/model", "--version", "1"]);
    for v in 1..=12 {
        let f = write_file(tmp, &format!("noise{v}.bin"), format!("noise {v}").as_bytes());
        alice.ok(&["publish", &f, "--name", "demo/noise", "--version", &v.to_string()]);
    }
    (d, alice)
}

/// A proxy in front of the log counting the entries read (one per
/// `/entries/I`, the page's length for `/entries?start=&end=`), and
/// applying `edit` to the `indexes` of `demo/model`'s listing.
fn counting(d: &Deployment, edit: fn(&mut Vec<Value>)) -> (String, Arc<AtomicU64>) {
    let reads = Arc::new(AtomicU64::new(0));
    let counter = reads.clone();
    let url = proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path.starts_with("/entries/") {
                counter.fetch_add(1, Ordering::SeqCst);
            } else if req.path.starts_with("/entries?") && r.status == 200 {
                let page: Value = serde_json::from_slice(&r.body).unwrap();
                counter.fetch_add(page["entries"].as_array().map_or(0, |e| e.len() as u64), Ordering::SeqCst);
            }
            if req.path.starts_with("/registry/models/demo/model/entries") && r.status == 200 {
                let mut v: Value = serde_json::from_slice(&r.body).unwrap();
                edit(v["indexes"].as_array_mut().unwrap());
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
    );
    (url, reads)
}

fn watcher(d: &Deployment, tmp: &std::path::Path, name: &str) -> (User, String) {
    let u = d.user(name);
    let rules = write_file(tmp, &format!("{name}.json"), br#"{"names": ["demo/model"]}"#);
    (u, rules)
}

fn alerts(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn monitor_on_state_proofs_reports_a_watched_tag_move_and_reads_only_its_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, alice) = setup(tmp.path());
    let (url, reads) = counting(&d, |_| {});
    let (w, rules) = watcher(&d, tmp.path(), "watcher");
    // First pass: starts at the current checkpoint, reports nothing.
    assert_eq!(w.ok(&["monitor", &url, "--watch", &rules, "--once"]), "");

    let tag = logged_index(&alice.ok(&["tag", "demo/model@1", "latest"]));
    alice.ok(&["tag", "demo/noise@3", "latest"]);
    let f = write_file(tmp.path(), "late.bin", b"late noise");
    alice.ok(&["publish", &f, "--name", "demo/noise", "--version", "13"]);
    let out = w.ok(&["monitor", &url, "--watch", &rules, "--once"]);
    let got = alerts(&out);
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!((got[0]["rule"].as_str(), got[0]["index"].as_u64()), (Some("tag_move"), Some(tag)), "{out}");
    assert_eq!(
        (got[0]["event"]["tag"]["name"].as_str(), got[0]["event"]["tag"]["tag"].as_str()),
        (Some("demo/model"), Some("latest"))
    );
    // Read so far: the commitment leaf ending each proven checkpoint and
    // the tag move, where a scan reads the six new entries (three
    // statements, three commitments).
    let n = reads.load(Ordering::SeqCst);
    assert!(n <= 3, "{n} entries read for one watched entry");
    // Nothing new: nothing read, nothing reported.
    assert_eq!(w.ok(&["monitor", &url, "--watch", &rules, "--once"]), "");
    assert_eq!(reads.load(Ordering::SeqCst), n);

    // From the start: the entries about the name (publish and tag) and one
    // commitment are read, not the log; only the tag move is reported.
    let size = tree_size(&http(), &d.log.url);
    assert!(size > 30, "the log should hold far more entries: {size}");
    let (late, _) = watcher(&d, tmp.path(), "late");
    let out = late.ok(&["monitor", &url, "--watch", &rules, "--once", "--from-start"]);
    assert_eq!(alerts(&out).len(), 1, "{out}");
    let from_start = reads.load(Ordering::SeqCst) - n;
    assert!(from_start <= 3, "{from_start} entries read from the start of a log of {size}");
}

#[test]
fn monitor_on_state_proofs_refuses_a_listing_that_hides_or_invents_an_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, alice) = setup(tmp.path());
    let (honest, _) = counting(&d, |_| {});
    let (hiding, _) = counting(&d, |l| l.retain(|_| false));
    let (inventing, _) = counting(&d, |l| l.insert(0, Value::from(2)));
    for (what, url) in [("hides", &hiding), ("invents", &inventing)] {
        let (w, rules) = watcher(&d, tmp.path(), &format!("w-{what}"));
        assert_eq!(w.ok(&["monitor", &honest, "--watch", &rules, "--once"]), "");
        alice.ok(&["tag", "demo/model@1", &format!("t-{what}")]);
        let run = w.cli(&["monitor", url, "--watch", &rules, "--once"]);
        assert!(
            run.code == 2 && run.stderr.contains("is not complete"),
            "a listing that {what} an entry: exit {}\n{}{}",
            run.code,
            run.stdout,
            run.stderr
        );
        // The honest log then reports the move: the refused pass saved
        // nothing.
        let out = w.ok(&["monitor", &honest, "--watch", &rules, "--once"]);
        assert_eq!(alerts(&out).len(), 1, "{out}");
    }
}
