//! The persisted form of the registry (`registry::snapshot`): a server that
//! rewrites only the records each statement touches, appends each nonce
//! and drops whole expired seconds, then restores, must get exactly the
//! registry a replay builds (equal fingerprints), at every step.

mod common;

use std::collections::BTreeMap;

use common::*;
use custody_registry::registry::nonces::{NonceId, NonceWindow};
use custody_registry::registry::{
    Lifecycle, Position, Record, RecordKey, Registry, RestoreError, Role, Verdict, DEFAULT_WINDOW_MS,
};
use custody_registry::statement::Event;

/// What a server keeps in its store, maintained incrementally.
#[derive(Default)]
struct Persisted {
    records: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Expiry second -> pairs.
    nonces: BTreeMap<u64, Vec<(NonceId, u64)>>,
    position: Position,
}

impl Persisted {
    fn restore(&self, w: &World) -> Registry {
        let records = self.records.values().map(|v| Record::decode(v).unwrap());
        let nonces: Vec<_> = self.nonces.values().flatten().copied().collect();
        Registry::restore(w.reg.config(), records, &nonces, self.position).unwrap()
    }
}

/// The server path, keeping `p` up to date from what `apply` reports.
fn submit(w: &mut World, p: &mut Persisted, who: &str, event: Event) {
    let stmt = w.statement(who, event);
    let Verdict::Append(accepted) = w.reg.check(&stmt, w.next_index, w.now_ms).unwrap() else {
        panic!("expected an append");
    };
    let (id, expiry) = accepted.nonce();
    let applied = w.reg.apply(accepted).unwrap();
    w.next_index += 1;
    for key in Registry::records_touched_by(&applied) {
        let record = w.reg.export_record(&key).expect("a touched record exists");
        p.records.insert(key.to_bytes(), record.encode());
    }
    p.nonces.entry(expiry / 1000).or_default().push((id, expiry));
    let clock = w.reg.clock_ms();
    p.nonces.retain(|s, _| !NonceWindow::second_expired(*s, clock));
    p.position = w.reg.position();
}

fn check(w: &World, p: &Persisted) {
    let restored = p.restore(w);
    assert_eq!(restored.first_difference(&w.reg), None);
    assert_eq!(restored.fingerprint(), w.reg.fingerprint());
    // The incremental records are all the records: nothing a statement
    // changed went unreported by `records_touched_by`.
    let all: BTreeMap<Vec<u8>, Vec<u8>> =
        w.reg.export_records().iter().map(|r| (r.key().to_bytes(), r.encode())).collect();
    assert_eq!(all, p.records);
}

#[test]
fn incremental_records_and_nonce_rows_restore_the_replayed_registry() {
    let mut w = World::empty();
    let mut p = Persisted::default();
    let root = w.add_signer("root", 0);
    submit(&mut w, &mut p, "root", grant_event("root", &root, Role::Admin, "*"));
    check(&w, &p);
    for (who, role) in [("mia", Role::Publisher), ("mia", Role::Maintainer), ("pat", Role::Approver)] {
        let s = w.signers.get(who).cloned().unwrap_or_else(|| w.add_signer(who, 0));
        submit(&mut w, &mut p, "root", grant_event(who, &s, role, "acme/*"));
    }
    submit(&mut w, &mut p, "mia", publish_event("acme/m", "1", digest("m1")));
    submit(&mut w, &mut p, "mia", publish_event("acme/m", "2", digest("m1")));
    submit(&mut w, &mut p, "mia", tag_event("acme/m", "latest", digest("m1"), None));
    submit(&mut w, &mut p, "mia", promote_event("acme/m", "1", Lifecycle::Staging));
    w.advance(1_500);
    submit(&mut w, &mut p, "pat", access_event("acme/m", "1", digest("m1")));
    check(&w, &p);
    // A rotation touches the actor and both keys; a key revocation too.
    let mia2 = w.add_signer("mia2", 0);
    submit(&mut w, &mut p, "root", grant_event("mia2", &mia2, Role::Reader, "acme/*"));
    let new = signer("pat", 1);
    submit(&mut w, &mut p, "pat", rotate_event(&new));
    w.signers.insert("pat".into(), new);
    submit(&mut w, &mut p, "root", revoke_key_event("mia2", &mia2));
    submit(&mut w, &mut p, "root", revoke_event("mia", Role::Maintainer, "acme/*"));
    check(&w, &p);
    // Time passes: earlier nonces expire second by second, and the rows
    // dropped by the rule the window prunes by leave the same window.
    for _ in 0..40 {
        w.advance(DEFAULT_WINDOW_MS / 30);
        submit(&mut w, &mut p, "pat", access_event("acme/m", "2", digest("m1")));
        check(&w, &p);
    }
    assert!(w.reg.nonces_remembered() < 40, "early nonces expired");
}

#[test]
fn a_dropped_nonce_or_an_altered_record_changes_the_fingerprint() {
    let mut w = World::empty();
    let mut p = Persisted::default();
    let root = w.add_signer("root", 0);
    submit(&mut w, &mut p, "root", grant_event("root", &root, Role::Admin, "*"));
    let mia = w.add_signer("mia", 0);
    submit(&mut w, &mut p, "root", grant_event("mia", &mia, Role::Publisher, "acme/*"));
    submit(&mut w, &mut p, "mia", publish_event("acme/m", "1", digest("m1")));
    let good = p.restore(&w).fingerprint();
    assert_eq!(good, w.reg.fingerprint());

    let second = *p.nonces.keys().next().unwrap();
    let dropped = p.nonces.get_mut(&second).unwrap().pop().unwrap();
    let restored = p.restore(&w);
    assert_ne!(restored.fingerprint(), good);
    assert!(restored.first_difference(&w.reg).unwrap().contains("replay window"));
    p.nonces.get_mut(&second).unwrap().push(dropped);

    let key = RecordKey::Model(name("acme/m")).to_bytes();
    let saved = p.records[&key].clone();
    let text = String::from_utf8(saved.clone()).unwrap().replace("\"development\"", "\"production\"");
    p.records.insert(key.clone(), text.into_bytes());
    let restored = p.restore(&w);
    assert_ne!(restored.fingerprint(), good);
    assert!(restored.first_difference(&w.reg).unwrap().starts_with("record m"));
    p.records.insert(key, saved);
    assert_eq!(p.restore(&w).fingerprint(), good);
}

#[test]
fn records_that_do_not_make_one_state_are_refused() {
    let mut w = World::empty();
    let mut p = Persisted::default();
    let root = w.add_signer("root", 0);
    submit(&mut w, &mut p, "root", grant_event("root", &root, Role::Admin, "*"));
    let records: Vec<Record> = p.records.values().map(|v| Record::decode(v).unwrap()).collect();
    let config = w.reg.config();
    let twice = records.iter().chain(&records).cloned();
    assert!(matches!(Registry::restore(config, twice, &[], p.position), Err(RestoreError::Duplicate(_))));
    let no_key = records.iter().filter(|r| !matches!(r, Record::Key { .. })).cloned();
    assert!(matches!(Registry::restore(config, no_key, &[], p.position), Err(RestoreError::Dangling(_))));
    assert!(matches!(Record::decode(b"{\"type\":\"actor\"}"), Err(RestoreError::Decode(_))));
}
