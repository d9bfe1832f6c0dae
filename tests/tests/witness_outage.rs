//! Scenario 5, witness outage, on the real binaries with a 2-of-3 policy:
//! with one witness killed, publishes still get cosigned checkpoints; with
//! two killed, the log keeps sequencing (entries acknowledged, tree grows)
//! but the published checkpoint freezes and `/health` says why; once the
//! witnesses are restarted on their addresses, publication resumes with a
//! checkpoint covering everything, consistent with the frozen one.

use std::time::{Duration, Instant};

use custody_registry::statement::{Event, SignedStatement};
use custody_testkit::scenario::*;

const W: [&str; 3] = ["w1.scenario.example", "w2.scenario.example", "w3.scenario.example"];

/// `/health`: (HTTP status, body).
fn health(c: &reqwest::blocking::Client, d: &Deployment) -> (u16, serde_json::Value) {
    get_json(c, &format!("{}/health", d.log.url))
}

/// The `cosigned by:` line of a `custody` receipt.
fn cosigners_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("cosigned by: "))
        .unwrap_or_else(|| panic!("not cosigned: {stdout}"))
}

/// A publish the log acknowledges but no policy-satisfying checkpoint
/// covers within 1 s: `custody` refuses to call it done and names the
/// entry. Returns the entry index.
fn publish_unwitnessed(u: &User, file: &str, version: &str) -> u64 {
    let out = u.run(&["--wait", "1", "publish", file, "--name", "demo/model", "--version", version]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "without a quorum a publish cannot be proven: {}", text(&out.stdout));
    let msg = "no checkpoint satisfying the policy covers entry ";
    let at = err.find(msg).unwrap_or_else(|| panic!("unexpected failure: {err}")) + msg.len();
    err[at..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn two_of_three_survives_one_outage_freezes_on_two_and_recovers() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Deployment::start(tmp.path());
    let c = http();
    let admin = d.admin();
    let alice = d.user("alice");
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    let files: Vec<String> = (1..=5)
        .map(|v| {
            write_file(
                tmp.path(),
                &format!("model-{v}.bin"),
                format!("weights v{v} ").repeat(4000).as_bytes(),
            )
        })
        .collect();

    // All three up.
    let out = alice.ok(&["publish", &files[0], "--name", "demo/model", "--version", "1"]);
    let (cp, cosigners, _) = published(&c, &d).expect("a published checkpoint");
    assert!(cp.size > logged_index(&out) && cosigners.len() >= 2, "{cosigners:?}");

    // w1 killed: 2 of 3 are still up, so a publish gets a cosigned checkpoint.
    kill9(&mut d.witnesses[0]);
    let out = alice.ok(&["publish", &files[1], "--name", "demo/model", "--version", "2"]);
    let line = cosigners_line(&out);
    assert!(line.contains(W[1]) && line.contains(W[2]) && !line.contains(W[0]), "{line}");
    let (status, h) = health(&c, &d);
    assert_eq!((status, h["status"].as_str()), (200, Some("ok")), "quorum still met: {h}");
    let w1 = &h["checkpoint"]["witnesses"][0];
    assert_eq!((w1["name"].as_str(), w1["ok"].as_bool()), (Some(W[0]), Some(false)), "{h}");
    assert!(w1["last_error"].is_string(), "the dead witness's error is shown: {h}");

    // w2 killed too: one witness left, the quorum is lost.
    kill9(&mut d.witnesses[1]);
    let (frozen, _, frozen_note) = published(&c, &d).unwrap();
    let i3 = publish_unwitnessed(&alice, &files[2], "3");
    let i4 = publish_unwitnessed(&alice, &files[3], "4");
    assert!(i3 >= frozen.size && i4 > i3, "entries {i3}, {i4} after frozen size {}", frozen.size);
    // Sequencing went on: both publishes are durable at their indexes.
    for (i, version) in [(i3, "3"), (i4, "4")] {
        let entry = get_bytes(&c, &format!("{}/entries/{i}", d.log.url)).expect("acknowledged entry");
        match SignedStatement::parse(&envelope_of(&entry)).unwrap().statement.event {
            Event::Publish(p) => assert_eq!(p.version.as_str(), version),
            other => panic!("entry {i} is not the publish: {other:?}"),
        }
    }
    let size_now = tree_size(&c, &d.log.url);
    assert!(size_now > i4, "the tree grew to {size_now}");
    // /health says why, once a round has tried to publish the new tree.
    let h = eventually("/health to report the lost quorum for the grown tree", 15, || {
        let (status, h) = health(&c, &d);
        let signed = h["checkpoint"]["last_signed_size"].as_u64()?;
        (status == 503 && signed > i4).then_some(h)
    });
    let cp = &h["checkpoint"];
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(cp["quorum_ok"], false, "{h}");
    let reason = cp["reason"].as_str().unwrap_or_else(|| panic!("no reason: {h}"));
    assert!(reason.contains("not published") && reason.contains(W[0]) && reason.contains(W[1]), "{reason}");
    assert!(!reason.contains(&format!("{}:", W[2])), "w3 is not blamed: {reason}");
    assert_eq!(cp["last_published_size"].as_u64(), Some(frozen.size), "{h}");
    assert_eq!(h["sequencer"]["tree_size"].as_u64(), Some(size_now), "{h}");
    let oks: Vec<Option<bool>> = (0..3).map(|i| cp["witnesses"][i]["ok"].as_bool()).collect();
    assert_eq!(oks, [Some(false), Some(false), Some(true)], "{h}");
    assert!(cp["witnesses"][1]["last_error"].is_string(), "{h}");
    let metrics = c.get(format!("{}/metrics", d.log.url)).send().unwrap().text().unwrap();
    assert!(metrics.lines().any(|l| l == "custody_quorum_ok 0"), "{metrics}");
    // The published checkpoint stays frozen, byte for byte, for many rounds.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(get_bytes(&c, &format!("{}/checkpoint", d.log.url)), Some(frozen_note.clone()));
        std::thread::sleep(Duration::from_millis(100));
    }
    let dave = d.user("dave");
    let out = dave.ok(&["checkpoint"]);
    assert!(out.contains(&format!(" size {} ", frozen.size)), "clients see the frozen checkpoint: {out}");

    // Recovery: both witnesses restart on their addresses with their state.
    relaunch_witness(&mut d, 0);
    relaunch_witness(&mut d, 1);
    let (after, cosigners, _) = eventually("a checkpoint covering everything", 30, || {
        published(&c, &d).filter(|(cp, _, _)| cp.size >= size_now)
    });
    assert!(cosigners.len() >= 2, "{cosigners:?}");
    check_consistent(&c, &d.log.url, &frozen, &after);
    for i in [i3, i4] {
        proven_entry(&c, &d.log.url, i, &after);
    }
    let (status, h) = eventually("/health to recover", 15, || {
        let (s, h) = health(&c, &d);
        (s == 200).then_some((s, h))
    });
    assert_eq!(
        (status, h["status"].as_str(), h["checkpoint"]["reason"].is_null()),
        (200, Some("ok"), true),
        "{h}"
    );
    // The publish made during the outage is now provable end to end: the
    // pull checks it against alice's remembered (frozen) checkpoint too.
    let got = tmp.path().join("v3.bin");
    let out = alice.ok(&["pull", "demo/model@3", "-o", got.to_str().unwrap()]);
    assert!(out.contains("verified demo/model@3"), "{out}");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&files[2]).unwrap());
    let out = alice.ok(&["publish", &files[4], "--name", "demo/model", "--version", "5"]);
    assert!(cosigners_line(&out).split(", ").count() >= 2, "{out}");
    // Every witness, the restarted ones included, ends up holding the log's
    // checkpoint (nothing is appended any more, so it settles).
    let vkey = custody_standards::VerifierKey::parse(&d.log_vkey).unwrap();
    let origin_hex = custody_standards::hash::sha256(d.origin.as_bytes()).to_hex();
    eventually("every witness to hold the log's checkpoint", 30, || {
        let (log_cp, _, _) = published(&c, &d)?;
        d.witnesses
            .iter()
            .all(|w| {
                get_bytes(&c, &format!("{}/{origin_hex}/checkpoint", w.url))
                    .and_then(|n| custody_standards::checkpoint::open_checkpoint(&n, &vkey).ok())
                    .is_some_and(|o| o.checkpoint.size == log_cp.size && o.checkpoint.root == log_cp.root)
            })
            .then_some(())
    });
    eprintln!("witness outage scenario: {:?}", started.elapsed());
}
