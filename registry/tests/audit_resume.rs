//! Resuming an audit from a saved state: an honest state resumes to the
//! same verdicts and state as a replay from leaf 0, and a saved state that
//! differs from what the log committed to, in any committed field, is
//! refused before a single leaf is replayed on top of it.

mod common;

use common::{access_event, digest, grant_event, publish_event, signer, tag_event, World};
use custody_registry::commitment::{StateKey, StateValue};
use custody_registry::leaf::CommitmentLeaf;
use custody_registry::registry::{AuditProblem, Auditor, Config, Record, ResumeError, ResumeState, Role};
use custody_standards::hash::Hash;

/// Appends the commitment leaf an honest server would write now.
fn commit(w: &mut World) -> CommitmentLeaf {
    let mut a = Auditor::new(Config::default());
    let refs: Vec<&[u8]> = w.leaves.iter().map(Vec::as_slice).collect();
    a.feed(&refs).unwrap();
    let c = CommitmentLeaf { index: w.next_index, root: a.state().clone().seal().root };
    w.leaves.push(c.encode());
    w.next_index += 1;
    c
}

/// A log of two batches: grants, publishes and a tag, then a commitment
/// at `at`; then more statements and a final commitment.
fn two_batches() -> (World, u64, CommitmentLeaf) {
    let mut w = World::new();
    w.grant("alice", Role::Publisher, "acme/*");
    w.grant("bob", Role::Maintainer, "acme/*");
    w.grant("dave", Role::Reader, "acme/*");
    w.ok("alice", publish_event("acme/m", "1.0", digest("m-1.0")));
    w.ok("bob", tag_event("acme/m", "latest", digest("m-1.0"), None));
    let c = commit(&mut w);
    let at = c.index;
    w.ok("alice", publish_event("acme/m", "1.1", digest("m-1.1")));
    w.ok("dave", access_event("acme/m", "1.0", digest("m-1.0")));
    commit(&mut w);
    (w, at, c)
}

/// The state of an auditor that replayed `w`'s leaves through `at`.
fn saved(w: &World, at: u64) -> ResumeState {
    let mut a = Auditor::new(Config::default());
    let refs: Vec<&[u8]> = w.leaves[..=at as usize].iter().map(Vec::as_slice).collect();
    a.feed(&refs).unwrap();
    a.export().expect("the last leaf fed is a commitment")
}

fn resume(state: ResumeState, at: u64, c: CommitmentLeaf) -> Result<Auditor, ResumeError> {
    Auditor::resume(Config::default(), state, at, c)
}

#[test]
fn a_resumed_audit_ends_where_a_full_replay_ends() {
    let (w, at, c) = two_batches();
    let all: Vec<&[u8]> = w.leaves.iter().map(Vec::as_slice).collect();
    let mut full = Auditor::new(Config::default());
    full.feed(&all).unwrap();

    let mut resumed = resume(saved(&w, at), at, c).unwrap();
    assert_eq!(resumed.next_index(), at + 1);
    resumed.feed(&all[at as usize + 1..]).unwrap();
    assert_eq!(resumed.registry().fingerprint(), full.registry().fingerprint());
    assert_eq!(resumed.last_commitment(), full.last_commitment());
    assert_eq!(resumed.state().root(), full.state().root());
    // Export only right after a commitment.
    let mut mid = Auditor::new(Config::default());
    mid.feed(&all[..at as usize]).unwrap();
    assert!(mid.export().is_none());
}

#[test]
fn a_resumed_audit_still_finds_a_bad_leaf_after_the_saved_point() {
    let (mut w, at, c) = two_batches();
    // A statement signed by a key the registry never bound, appended by a
    // dishonest log after the saved point.
    let mallory = signer("mallory", 0);
    w.signers.insert("mallory".into(), mallory.clone());
    let stmt = w.statement("mallory", grant_event("mallory", &mallory, Role::Admin, "*"));
    let bytes = stmt.sign(&mallory).unwrap();
    let leaf = custody_registry::leaf::Leaf::new(w.now_ms, &bytes).unwrap().encode();
    w.leaves.push(leaf);
    let all: Vec<&[u8]> = w.leaves.iter().map(Vec::as_slice).collect();
    let mut resumed = resume(saved(&w, at), at, c).unwrap();
    let f = resumed.feed(&all[at as usize + 1..]).unwrap_err();
    assert_eq!(f.index, all.len() as u64 - 1);
    assert!(matches!(f.problem, AuditProblem::Rejected(_)), "{f}");
}

#[test]
fn a_saved_record_altered_in_a_committed_field_is_refused() {
    let (w, at, c) = two_batches();
    let honest = saved(&w, at);
    // dave's reader grant made an admin grant: the records would let dave
    // sign anything after the saved point.
    let mut s = honest.clone();
    let dave = s
        .records
        .iter_mut()
        .find_map(|r| match r {
            Record::Actor { actor } if actor.name.as_str() == "dave" => Some(actor),
            _ => None,
        })
        .unwrap();
    dave.grants[0].role = Role::Admin;
    let e = resume(s, at, c).unwrap_err();
    assert!(matches!(e, ResumeError::Disagrees(_)), "{e}");

    // A version's digest swapped.
    let mut s = honest.clone();
    for r in &mut s.records {
        if let Record::Model { model, .. } = r {
            for v in model.versions.values_mut() {
                v.digest = digest("other");
            }
        }
    }
    assert!(resume(s, at, c).is_err());

    // The position claims fewer statements applied.
    let mut s = honest.clone();
    s.position.generation -= 1;
    assert!(matches!(resume(s, at, c).unwrap_err(), ResumeError::Disagrees(_)));

    // The map itself altered (and the records with it, consistently):
    // the root is no longer the committed one.
    let mut s = honest.clone();
    let (_, v) = s.map.iter_mut().find(|(k, _)| matches!(k, StateKey::Grant { .. })).unwrap();
    *v = StateValue::Grant(999);
    assert!(matches!(resume(s, at, c).unwrap_err(), ResumeError::StateRoot { .. }));

    // A map entry dropped.
    let mut s = honest.clone();
    s.map.pop();
    assert!(matches!(resume(s, at, c).unwrap_err(), ResumeError::StateRoot { .. }));

    // The honest state against another commitment or position.
    let wrong = CommitmentLeaf { index: at, root: Hash([7; 32]) };
    assert!(matches!(resume(honest.clone(), at, wrong).unwrap_err(), ResumeError::StateRoot { .. }));
    assert!(matches!(resume(honest.clone(), at + 1, c).unwrap_err(), ResumeError::Position { .. }));
    assert!(resume(honest, at, c).is_ok());
}
