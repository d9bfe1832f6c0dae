//! `custody audit` is incremental, on the real binaries: a second audit
//! replays only the entries after the first one's checkpoint, from the
//! replay state the first one saved, and reaches the same verdict and state
//! root as a full `--refetch` audit. The saved state is not trusted: one
//! whose registry records were altered (and its digest file rewritten to
//! match) is refused against the log's commitment, the audit replays from
//! entry 0 and still names the entry a dishonest log accepted (exit 2).

use std::path::{Path, PathBuf};

use custody_registry::commitment::StateCommitter;
use custody_registry::leaf::{CommitmentLeaf, Leaf};
use custody_registry::registry::{Auditor, Config, Outcome, Record, Registry, Role};
use custody_registry::statement::SignedStatement;
use custody_testkit::scenario::dos::{init_log, serve_alone};
use custody_testkit::scenario::*;
use serde_json::Value;

/// The saved replay state under `home` (one audited log).
fn saved_state(home: &Path) -> PathBuf {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n == "state")
                && p.parent().and_then(Path::parent).and_then(Path::file_name).is_some_and(|n| n == "audit")
            {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(home, &mut found);
    assert_eq!(found.len(), 1, "one saved audit state under {}: {found:?}", home.display());
    found.remove(0)
}

fn audit_json(u: &User, args: &[&str]) -> Value {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = u.ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_second_audit_replays_only_new_entries_and_agrees_with_a_full_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let admin = d.admin();
    let (alice, auditor) = (d.user("alice"), d.user("auditor"));
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);

    let first = audit_json(&auditor, &[]);
    let n = first["size"].as_u64().unwrap();
    assert!(first["violation"].is_null(), "{first}");
    assert_eq!(first["replay_from"], 0, "{first}");
    assert_eq!(first["entries_replayed"].as_u64(), Some(n), "{first}");
    assert!(first["full_replay"].as_str().is_some_and(|w| w.contains("no earlier")), "{first}");

    let out = alice.ok(&[
        "publish",
        &write_file(tmp.path(), "m.bin", b"weights"),
        "--name",
        "demo/m",
        "--version",
        "1",
    ]);
    let last = logged_index(&out);
    assert!(last >= n, "the publish is after the first audit: {last} < {n}");

    // Each audit resumes from the one before it, until one covers the
    // publish.
    let mut previous = n;
    let second = eventually("an audit covering the publish", 30, || {
        let r = audit_json(&auditor, &[]);
        assert!(r["violation"].is_null(), "{r}");
        assert!(r["full_replay"].is_null(), "the saved state is used: {r}");
        assert_eq!(r["replay_from"].as_u64(), Some(previous), "{r}");
        let size = r["size"].as_u64().unwrap();
        assert_eq!(r["entries_replayed"].as_u64(), Some(size), "every entry replayed clean: {r}");
        previous = size;
        (size > last).then_some(r)
    });
    let text = auditor.ok(&["audit"]);
    assert!(text.contains(&format!("replay: from entry {previous}")), "{text}");
    assert!(text.contains(&format!("audit OK: {previous} entries replayed (0 by this audit)")), "{text}");

    let full = audit_json(&auditor, &["--refetch"]);
    assert_eq!(full["full_replay"], "--refetch", "{full}");
    assert_eq!(full["replay_from"], 0, "{full}");
    assert_eq!(full["size"], second["size"], "no entry was added meanwhile: {full}");
    for field in ["root", "state_root", "violation"] {
        assert_eq!(full[field], second[field], "{field}: {full} against {second}");
    }
    assert_eq!(full["entries_replayed"], second["size"], "{full}");
}

#[test]
fn a_tampered_saved_state_is_refused_and_the_bad_entry_is_still_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, alice, dave) = (signer("root"), signer("alice"), signer("dave"));
    // A log that applies no registry rule, holding an honest history: dave
    // may publish demo/a only.
    let data = tmp.path().join("log");
    let vkey = init_log(&data, true);
    let server = serve_alone(&data, &["--allow-raw-append"], None, &[]);
    let (c, base) = (http(), server.proc.url.clone());
    let mut honest = vec![
        leaf_now(&root, grant(&root, Role::Admin, "*")),
        leaf_now(&root, grant(&alice, Role::Publisher, "demo/*")),
        leaf_now(&root, grant(&dave, Role::Publisher, "demo/a")),
        leaf_now(&alice, publish("demo/m", "1", digest_of(b"m"), 1)),
    ];
    honest.push(commitment_after(&honest));
    let n = append_raw(&c, &base, &honest) + 1;
    let policy = tmp.path().join("policy");
    std::fs::write(&policy, format!("log {vkey}\nquorum none\n")).unwrap();
    let auditor = User::init(tmp.path(), "auditor", &policy, &base);
    let audited = |size: u64, args: &[&str]| {
        eventually("a checkpoint covering every entry", 30, || {
            let note = c.get(format!("{base}/checkpoint")).send().ok()?.text().ok()?;
            (note.lines().nth(1)?.parse::<u64>().ok()? == size).then_some(())
        });
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        auditor.cli(&all)
    };
    audited(n, &[]).ok();

    // The saved state, altered as an attacker would: dave's grant widened
    // from demo/a to demo/* (same length), and the digest file rewritten.
    let state = saved_state(&auditor.home);
    let bytes = std::fs::read(&state).unwrap();
    let (from, to) = (&b"\"demo/a\""[..], &b"\"demo/*\""[..]);
    let at: Vec<usize> =
        bytes.windows(from.len()).enumerate().filter(|(_, w)| *w == from).map(|(i, _)| i).collect();
    assert_eq!(at.len(), 1, "dave's grant is the only JSON `demo/a`");
    let mut tampered = bytes.clone();
    tampered[at[0]..at[0] + to.len()].copy_from_slice(to);
    std::fs::write(&state, &tampered).unwrap();
    let digest = hex::encode(custody_standards::hash::sha256(&tampered).0);
    std::fs::write(state.with_file_name("state.sha256"), format!("{digest}\n")).unwrap();

    // The log then takes dave's publish of demo/b, which his grant forbids,
    // and commits to the state a registry holding the altered grant would
    // have: an audit that trusted the saved state would pass it.
    let bad_leaf = leaf_now(&dave, publish("demo/b", "1", digest_of(b"b"), 1));
    let widened = widened_registry(&honest);
    let mut map = honest_map(&honest);
    let signed_bad = SignedStatement::parse(Leaf::decode(&bad_leaf).unwrap().envelope).unwrap();
    let mut reg = widened;
    match reg.process(&signed_bad.statement, n, now_secs() * 1000).unwrap() {
        Outcome::Applied(a) => map.record(&reg, &signed_bad.statement, &a),
        other => panic!("{other:?}"),
    }
    let bad = append_raw(&c, &base, &[bad_leaf]);
    assert_eq!(bad, n);
    let dishonest = CommitmentLeaf { index: bad + 1, root: map.seal().root }.encode();
    let end = append_raw(&c, &base, &[dishonest]) + 1;

    let run = audited(end, &[]);
    run.fails(2, &format!("audit: entry {bad}"));
    assert!(run.stdout.contains("replay: from entry 0 (the saved state was refused"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("audit FAILED at entry {bad}")), "{}", run.stdout);
    // A saved state cut short is not used either.
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    let run = audited(end, &[]);
    run.fails(2, &format!("audit: entry {bad}"));
    assert!(
        run.stdout.contains("replay: from entry 0 (the saved state is not the one saved"),
        "{}",
        run.stdout
    );
}

/// The state map after replaying `leaves` (statements only).
fn honest_map(leaves: &[Vec<u8>]) -> StateCommitter {
    let mut a = Auditor::new(Config::default());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    a.feed(&refs).unwrap();
    a.state().clone()
}

/// The registry after `leaves` (and their commitment), with dave's grant
/// on demo/a widened to demo/*, as the tampered state file holds it.
fn widened_registry(leaves: &[Vec<u8>]) -> Registry {
    let mut a = Auditor::new(Config::default());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    a.feed(&refs).unwrap();
    let reg = a.registry();
    let records = reg.export_records().into_iter().map(|mut r| {
        if let Record::Actor { actor } = &mut r {
            for g in &mut actor.grants {
                if g.pattern.to_string() == "demo/a" {
                    g.pattern = serde_json::from_value(Value::String("demo/*".into())).unwrap();
                }
            }
        }
        r
    });
    Registry::restore(Config::default(), records, &reg.nonce_pairs(), reg.position()).unwrap()
}
