//! Integrity violations the log detects are entries signed by the log's
//! own key: a tampered artifact on disk yields exactly one such entry,
//! however often it is read and however often the log restarts or crashes
//! meanwhile, and a second one only after a verified read of the repaired
//! artifact; `custody audit` verifies it and `history` shows it; an
//! integrity entry signed by any other key is named by `custody audit` and
//! stops `custody monitor --rules` (exit 2) without an alert.

use std::path::Path;

use custody_registry::leaf::{CommitmentLeaf, LogLeaf};
use custody_registry::log_event::{IntegrityViolation, LogEvent, LogEventBody, LogEventLeaf, SignedLogEvent};
use custody_registry::registry::{Auditor, Role};
use custody_registry::statement::{Schema, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::SignerKey;
use custody_testkit::scenario::raw_log::RawLog;
use custody_testkit::scenario::*;
use custody_testkit::webhook::Receiver;

/// Every log-event leaf of the log at `base`, with its index.
fn log_events(c: &reqwest::blocking::Client, base: &str) -> Vec<(u64, Vec<u8>)> {
    let size = tree_size(c, base);
    (0..size)
        .filter_map(|i| {
            let entry = get_entry(c, base, i);
            matches!(LogLeaf::decode(&entry), Ok(LogLeaf::LogEvent(_))).then_some((i, entry))
        })
        .collect()
}

fn get_entry(c: &reqwest::blocking::Client, base: &str, i: u64) -> Vec<u8> {
    let r = c.get(format!("{base}/entries/{i}")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "entry {i}");
    r.bytes().unwrap().to_vec()
}

#[test]
fn a_tampered_artifact_yields_one_log_signed_entry_that_audit_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    let bytes = b"weights that will rot on disk ".repeat(300);
    alice.ok(&[
        "publish",
        &write_file(tmp.path(), "m.bin", &bytes),
        "--name",
        "demo/model",
        "--version",
        "1",
    ]);
    let out = tmp.path().join("ok.bin");
    dave.ok(&["pull", "demo/model@1", "-o", out.to_str().unwrap()]);
    let c = http();
    assert!(log_events(&c, &d.log.url).is_empty());

    // The stored file is changed behind the server's back.
    let path = stored_artifact(&d.dir.join("log"), &bytes);
    eprintln!("tampering with {}", path.display());
    rot(&path, |n| n / 2, 0x40);

    // Every read is refused; only the first opens the episode.
    for i in 0..3 {
        let bad = tmp.path().join(format!("bad{i}.bin"));
        let run = dave.cli(&["pull", "demo/model@1", "-o", bad.to_str().unwrap()]);
        assert_ne!(run.code, 0, "a tampered artifact was served: {}", run.stdout);
        assert!(!bad.exists());
    }
    let events = eventually("the integrity entry", 30, || {
        let e = log_events(&c, &d.log.url);
        (!e.is_empty()).then_some(e)
    });
    // Let any (wrong) second entry land before counting.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let events_after = log_events(&c, &d.log.url);
    let at: Vec<u64> = events_after.iter().map(|(i, _)| *i).collect();
    assert_eq!(at.len(), 1, "one entry per digest per episode, found them at {at:?}");
    let (index, entry) = &events[0];
    let LogLeaf::LogEvent(leaf) = LogLeaf::decode(entry).unwrap() else { unreachable!() };
    let signed = SignedLogEvent::parse(leaf.envelope).unwrap();
    let LogEventBody::IntegrityViolation(v) = &signed.event.event;
    assert_eq!(v.digest.0, custody_standards::hash::sha256(&bytes));
    assert!(v.access_index < *index);

    // The audit verifies it with the log key of the policy, and history
    // shows it among the name's entries.
    let audit = dave.cli(&["audit"]);
    audit.ok();
    let h: serde_json::Value =
        serde_json::from_str(&dave.ok(&["--output", "json", "history", "demo/model"])).unwrap();
    let rows: Vec<_> =
        h["rows"].as_array().unwrap().iter().filter(|r| r["event"] == "integrity_violation").collect();
    assert_eq!(rows.len(), 1, "{h:#}");
    assert_eq!(rows[0]["index"].as_u64(), Some(*index));
    assert_eq!(rows[0]["version"], "1");
    assert!(rows[0]["actor"].as_str().unwrap().starts_with("log "));
}

/// The commitment a registry appends after `leaves`, log events verified
/// with `key`.
fn commitment_with(leaves: &[Vec<u8>], key: &SignerKey) -> Vec<u8> {
    let mut a = Auditor::new(Default::default()).log_key(key.verifier());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    a.feed(&refs).unwrap();
    let mut state = a.state().clone();
    CommitmentLeaf { index: leaves.len() as u64, root: state.seal().root }.encode()
}

fn integrity_leaf(
    key: &SignerKey,
    origin: &str,
    digest: custody_registry::names::Digest,
    access: u64,
) -> Vec<u8> {
    let event = LogEvent {
        schema: Schema::V1,
        origin: origin.to_owned(),
        time: Timestamp::from_unix_secs(now_secs()).unwrap(),
        event: LogEventBody::IntegrityViolation(IntegrityViolation {
            digest,
            observed: Text::new("sha256:0000").unwrap(),
            access_index: access,
        }),
    };
    let public = key.verifier().public_key();
    let envelope = SignedLogEvent::sign(&event, &public, |m| key.sign_ed25519(m)).unwrap();
    LogEventLeaf { receive_time_ms: now_secs() * 1000, envelope: &envelope }.encode()
}

#[test]
fn an_integrity_entry_signed_by_another_key_is_caught_by_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let log = RawLog::start(tmp.path(), "events");
    let key = custody_log::init::load_key(&tmp.path().join("events")).unwrap();
    let origin = key.name().to_owned();
    let (root, alice) = (signer("root"), signer("alice"));
    let weights = digest_of(b"weights the log says it found rotten");
    let mut leaves = vec![
        leaf_now(&root, grant(&root, Role::Admin, "*")),
        leaf_now(&root, grant(&alice, Role::Publisher, "demo/*")),
        leaf_now(&alice, publish("demo/model", "1", weights, 4096)),
    ];
    // A genuine one, signed with the log's own key: the audit accepts it.
    leaves.push(integrity_leaf(&key, &origin, weights, 2));
    leaves.push(commitment_with(&leaves, &key));
    log.append(&leaves);
    log.audit_at(leaves.len() as u64, &[]).ok();

    // One signed by another key under the same origin name.
    let other = SignerKey::from_seed(&origin, SIG_TYPE_ED25519, &[9; 32]).unwrap();
    let forged_at = leaves.len() as u64;
    let forged = integrity_leaf(&other, &origin, weights, 2);
    // The commitment a log accepting it would append: the honest state
    // with the forged event in the digest's and the name's entries.
    let mut a = Auditor::new(Default::default()).log_key(key.verifier());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    a.feed(&refs).unwrap();
    let LogLeaf::LogEvent(leaf) = LogLeaf::decode(&forged).unwrap() else { unreachable!() };
    let event = SignedLogEvent::parse(leaf.envelope).unwrap().event;
    let mut state = a.state().clone();
    state.record_log_event(a.registry(), &event, forged_at);
    let commitment = CommitmentLeaf { index: forged_at + 1, root: state.seal().root }.encode();
    log.append(&[forged, commitment]);
    let run = log.audit_at(forged_at + 2, &[]);
    run.fails(2, &format!("audit: entry {forged_at}"));
    assert!(run.stderr.contains("not signed by the log's key"), "{}", run.stderr);
}

#[test]
fn a_large_artifact_failing_its_digest_mid_stream_is_logged_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    // Over the 1 MiB served from memory: hashed while it is streamed.
    let bytes = noise(3 << 20, 5);
    alice.ok(&[
        "publish",
        &write_file(tmp.path(), "big.bin", &bytes),
        "--name",
        "demo/big",
        "--version",
        "1",
    ]);
    let path = stored_artifact(&d.dir.join("log"), &bytes);
    rot(&path, |n| n - 100, 0x01);
    let c = http();
    for i in 0..2 {
        let bad = tmp.path().join(format!("big{i}.bin"));
        assert_ne!(dave.cli(&["pull", "demo/big@1", "-o", bad.to_str().unwrap()]).code, 0);
        assert!(!bad.exists());
    }
    eventually("the integrity entry", 30, || (!log_events(&c, &d.log.url).is_empty()).then_some(()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(log_events(&c, &d.log.url).len(), 1);
    dave.cli(&["audit"]).ok();
}

/// Pulls `demo/model@1` as `u` into `dir/out`: whether it was served
/// (false: refused as an integrity violation). Nothing is retried here: a
/// pull right after a kill -9 may first meet a checkpoint whose state the
/// restarted log no longer serves (410 `state_expired`), and the client
/// itself must then verify again under the next one.
fn served(u: &User, dir: &Path, out: &str) -> bool {
    let out = dir.join(out);
    let run = u.cli(&["pull", "demo/model@1", "-o", out.to_str().unwrap()]);
    assert_eq!(run.code == 0, out.exists(), "{}", run.stderr);
    assert!(run.code == 0 || run.stderr.contains("500 integrity_violation"), "{}", run.stderr);
    run.code == 0
}

/// The indexes of the log's log events once at least `want` have landed
/// and any (wrong) further one had time to.
fn settled_events(c: &reqwest::blocking::Client, base: &str, want: usize) -> Vec<u64> {
    eventually("the integrity entries", 30, || (log_events(c, base).len() >= want).then_some(()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    log_events(c, base).into_iter().map(|(i, _)| i).collect()
}

#[test]
fn an_open_episode_survives_restarts_and_a_repair_ends_it_durably() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut d, _admin, alice, dave, _) = demo_team(dir);
    let bytes = b"weights whose episode outlives the server ".repeat(300);
    alice.ok(&["publish", &write_file(dir, "m.bin", &bytes), "--name", "demo/model", "--version", "1"]);
    let path = stored_artifact(&d.dir.join("log"), &bytes);
    let original = std::fs::read(&path).unwrap();
    rot(&path, |n| n / 2, 0x40);
    let rotten = std::fs::read(&path).unwrap();
    std::fs::write(&path, &original).unwrap();
    let c = http();

    // The stored file rots: the first read opens the episode.
    std::fs::write(&path, &rotten).unwrap();
    assert!(!served(&dave, dir, "bad0.bin"));
    let first = settled_events(&c, &d.log.url, 1);
    assert_eq!(first.len(), 1, "{first:?}");

    // Neither a graceful restart nor a kill -9 reopens it.
    assert!(d.log.stop_gracefully());
    relaunch_log(&mut d);
    assert!(!served(&dave, dir, "bad1.bin"));
    assert_eq!(settled_events(&c, &d.log.url, 1), first, "a restart logged the open episode again");
    d.log.kill9();
    relaunch_log(&mut d);
    assert!(!served(&dave, dir, "bad2.bin"));
    assert_eq!(settled_events(&c, &d.log.url, 1), first, "a kill -9 logged the open episode again");

    // Repaired, a whole read verifies and ends the episode, durably (a
    // kill -9 right after does not bring it back); rotting again opens a
    // second one.
    std::fs::write(&path, &original).unwrap();
    assert!(served(&dave, dir, "good.bin"));
    assert_eq!(std::fs::read(dir.join("good.bin")).unwrap(), bytes);
    d.log.kill9();
    relaunch_log(&mut d);
    std::fs::write(&path, &rotten).unwrap();
    assert!(!served(&dave, dir, "bad3.bin"));
    let both = settled_events(&c, &d.log.url, 2);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], first[0]);
    dave.cli(&["audit"]).ok();
}

#[test]
fn the_monitor_alerts_on_the_logs_integrity_entry_and_stops_at_a_forged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let log = RawLog::start(tmp.path(), "events");
    let key = custody_log::init::load_key(&tmp.path().join("events")).unwrap();
    let origin = key.name().to_owned();
    let (root, alice) = (signer("root"), signer("alice"));
    let weights = digest_of(b"weights the monitor hears about");
    let mut leaves = vec![
        leaf_now(&root, grant(&root, Role::Admin, "*")),
        leaf_now(&root, grant(&alice, Role::Publisher, "demo/*")),
        leaf_now(&alice, publish("demo/model", "1", weights, 4096)),
    ];
    leaves.push(commitment_with(&leaves, &key));
    log.append(&leaves);
    log.audit_at(leaves.len() as u64, &[]).ok();
    let hook = Receiver::start();
    let rules = write_file(
        tmp.path(),
        "rules.toml",
        format!(
            "[[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\n[rules.integrity_violation]\n",
            hook.url
        )
        .as_bytes(),
    );
    let monitor = || log.auditor.cli(&["monitor", "--rules", &rules, "--once"]);
    assert_eq!(monitor().ok().stdout, "");

    // Signed by the log's own key: one alert.
    let genuine_at = leaves.len() as u64;
    leaves.push(integrity_leaf(&key, &origin, weights, 2));
    leaves.push(commitment_with(&leaves, &key));
    log.append(&leaves[genuine_at as usize..]);
    let got = eventually("the integrity alert", 30, || {
        monitor().ok();
        let got = hook.accepted();
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["id"], serde_json::Value::from(format!("integrity_violation:{genuine_at}")));
    assert_eq!(
        got[0].body["event"]["integrity_violation"]["digest"],
        serde_json::Value::from(weights.to_string())
    );

    // The same event signed by another key under the log's name: the
    // monitor stops there (exit 2) and alerts nobody, on every pass.
    let other = SignerKey::from_seed(&origin, SIG_TYPE_ED25519, &[9; 32]).unwrap();
    let forged_at = log.append(&[integrity_leaf(&other, &origin, weights, 2)]);
    // (Waits for a checkpoint covering it; the audit refuses it too.)
    log.audit_at(forged_at + 1, &[]).fails(2, "not signed by the log's key");
    for _ in 0..2 {
        let run = monitor();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(
            hook.ids(),
            vec![format!("integrity_violation:{genuine_at}")],
            "alerted on a forged entry"
        );
        run.fails(2, &format!("entry {forged_at}"));
        assert!(run.stderr.contains("not signed by the log's key"), "{}", run.stderr);
    }
}
