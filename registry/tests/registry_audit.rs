//! The auditor: replays a log in chunks with batched signature checks,
//! reaches the server's state, and reports the first leaf an honest log
//! would never have appended.

mod common;

use common::*;
use custody_registry::actor_key::ActorSigner;
use custody_registry::dsse::Envelope;
use custody_registry::leaf::{Leaf, LeafError};
use custody_registry::registry::{AuditProblem, Auditor, Config, Effect, Rejection, Role};
use custody_registry::statement::{Context, Event, Nonce, Statement, StatementError, Text};
use custody_registry::timestamp::Timestamp;

fn sample_log() -> World {
    let mut w = World::new();
    w.grant("alice", Role::Publisher, "acme/*");
    w.grant("bob", Role::Reader, "acme/*");
    w.ok("alice", publish_event("acme/m", "1", digest("m1")));
    for _ in 0..5 {
        w.advance(1000);
        w.ok("bob", access_event("acme/m", "1", digest("m1")));
    }
    let alice1 = signer("alice", 1);
    w.ok("alice", rotate_event(&alice1));
    w.signers.insert("alice".into(), alice1);
    w.ok("alice", publish_event("acme/m", "2", digest("m2")));
    w
}

fn refs(w: &World) -> Vec<&[u8]> {
    w.leaves.iter().map(Vec::as_slice).collect()
}

#[test]
fn replay_in_chunks_reaches_the_server_state() {
    let w = sample_log();
    for chunk in [1, 3, 64] {
        for exact in [false, true] {
            let mut a = Auditor::new(Config::default());
            if exact {
                a = a.exact();
            }
            let mut effects = Vec::new();
            for c in refs(&w).chunks(chunk) {
                effects.extend(a.feed(c).unwrap());
            }
            assert_eq!(a.next_index(), w.leaves.len() as u64);
            assert_eq!(effects.iter().filter(|e| matches!(e.effect, Effect::Accessed { .. })).count(), 5);
            assert_eq!(a.registry().model(&name("acme/m")), w.reg.model(&name("acme/m")));
            for actor in w.reg.actors() {
                assert_eq!(a.registry().actor(&actor.name), Some(actor));
            }
        }
    }
}

#[test]
fn findings() {
    let w = sample_log();
    let n = w.leaves.len();

    // A flipped signature byte: found at its index, earlier leaves applied.
    let mut leaves = w.leaves.clone();
    let env = Leaf::decode(&leaves[6]).unwrap();
    let mut e = Envelope::parse(env.envelope).unwrap();
    e.signatures[0].sig[0] ^= 1;
    leaves[6] = Leaf::new(env.receive_time_ms, &e.to_json()).unwrap().encode();
    let mut a = Auditor::new(Config::default());
    let f = a.feed(&leaves.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap_err();
    assert_eq!((f.index, f.problem), (6, AuditProblem::BadSignature));
    assert_eq!(a.next_index(), 6);

    // Garbage leaf.
    let mut leaves = w.leaves.clone();
    leaves[2] = b"not a leaf at all, really".to_vec();
    let f = Auditor::new(Config::default())
        .feed(&leaves.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap_err();
    assert_eq!((f.index, f.problem), (2, AuditProblem::Leaf(LeafError::Magic)));

    // A leaf whose envelope is not a statement.
    let mut leaves = w.leaves.clone();
    let other = Envelope::sign("application/x.other", b"{}".to_vec(), &w.signers["bob"]);
    leaves[n - 1] = Leaf::new(T0_MS, &other.to_json()).unwrap().encode();
    let f = Auditor::new(Config::default())
        .feed(&leaves.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap_err();
    assert_eq!((f.index, f.problem), (n as u64 - 1, AuditProblem::Statement(StatementError::PayloadType)));

    // A dishonest server appends a statement the rules refuse: bob (reader)
    // publishing, correctly signed by bob.
    let bytes = sign_as(&w, &w.signers["bob"], publish_event("acme/x", "1", digest("x")));
    let mut leaves = w.leaves.clone();
    leaves.push(Leaf::new(w.now_ms, &bytes).unwrap().encode());
    let mut a = Auditor::new(Config::default());
    let f = a.feed(&leaves.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap_err();
    assert_eq!(f.index, n as u64);
    assert!(matches!(f.problem, AuditProblem::Rejected(Rejection::Forbidden { .. })), "{f}");

    // ...or a second copy of a publish (which must be answered, not appended).
    let mut leaves = w.leaves.clone();
    let dup = sign_as(&w, &w.signers["alice"], publish_event("acme/m", "2", digest("m2")));
    leaves.push(Leaf::new(w.now_ms, &dup).unwrap().encode());
    let f = Auditor::new(Config::default())
        .feed(&leaves.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap_err();
    assert_eq!((f.index, f.problem), (n as u64, AuditProblem::Duplicate { original: n as u64 - 1 }));

    // A leaf signed by a key no grant ever introduced.
    let mut leaves = w.leaves.clone();
    let bytes = sign_as(&w, &signer("zed", 0), access_event("acme/m", "1", digest("m1")));
    leaves.push(Leaf::new(w.now_ms, &bytes).unwrap().encode());
    let f = Auditor::new(Config::default())
        .feed(&leaves.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap_err();
    assert!(matches!(f.problem, AuditProblem::Rejected(Rejection::UnknownKey(_))), "{f}");
}

/// A statement by `s`, timed at the log's current time, with a nonce the
/// log has not seen.
fn sign_as(w: &World, s: &ActorSigner, event: Event) -> Vec<u8> {
    let time = Timestamp::from_unix_secs(w.now_ms / 1000).unwrap();
    let stmt =
        Statement::new(s, time, Nonce([0xee; 16]), Context::reason(Text::new("audit test").unwrap()), event);
    stmt.sign(s).unwrap()
}

/// Verification spread over threads gives the single-threaded verdicts:
/// the same first bad signature and decode error, wherever they fall
/// relative to the chunk boundaries.
#[test]
fn threads_do_not_change_the_verdicts() {
    let mut w = World::new();
    w.grant("alice", Role::Publisher, "acme/*");
    w.grant("bob", Role::Reader, "acme/*");
    w.ok("alice", publish_event("acme/m", "1", digest("m1")));
    for _ in 0..300 {
        w.advance(10);
        w.ok("bob", access_event("acme/m", "1", digest("m1")));
    }
    let n = w.leaves.len();
    let replay = |leaves: &[Vec<u8>], threads: usize| {
        let mut a = Auditor::new(Config::default()).threads(threads);
        let r = a.feed(&leaves.iter().map(Vec::as_slice).collect::<Vec<_>>());
        (r.map(|applied| applied.len()), a.next_index())
    };
    for threads in [1, 2, 3, 8] {
        assert_eq!(replay(&w.leaves, threads), (Ok(n), n as u64), "{threads} threads");
    }
    for bad in [3, 40, n / 2, n / 2 + 1, n - 1] {
        let mut leaves = w.leaves.clone();
        let env = Leaf::decode(&leaves[bad]).unwrap();
        let mut e = Envelope::parse(env.envelope).unwrap();
        e.signatures[0].sig[5] ^= 0x40;
        leaves[bad] = Leaf::new(env.receive_time_ms, &e.to_json()).unwrap().encode();
        // A garbage leaf after the bad signature must not hide it.
        if bad + 7 < n {
            leaves[bad + 7] = b"garbage".to_vec();
        }
        for threads in [1, 2, 3, 8] {
            let (r, next) = replay(&leaves, threads);
            let f = r.unwrap_err();
            assert_eq!((f.index, f.problem, next), (bad as u64, AuditProblem::BadSignature, bad as u64));
        }
    }
    let mut leaves = w.leaves.clone();
    leaves[200] = b"garbage".to_vec();
    for threads in [1, 2, 8] {
        let (r, next) = replay(&leaves, threads);
        assert_eq!(r.unwrap_err().index, 200);
        assert_eq!(next, 200);
    }
}

/// `leaves` with the signature of leaf `at` altered.
fn with_bad_signature(leaves: &[Vec<u8>], at: usize) -> Vec<Vec<u8>> {
    let mut leaves = leaves.to_vec();
    let env = Leaf::decode(&leaves[at]).unwrap();
    let mut e = Envelope::parse(env.envelope).unwrap();
    e.signatures[0].sig[9] ^= 0x10;
    leaves[at] = Leaf::new(env.receive_time_ms, &e.to_json()).unwrap().encode();
    leaves
}

/// Preparing every chunk before applying any (as a pipelined audit may)
/// reaches the verdicts and the state of `feed`.
#[test]
fn chunks_prepared_ahead_give_the_feed_verdicts() {
    let w = sample_log();
    for chunk in [1, 2, 5] {
        let mut a = Auditor::new(Config::default());
        let mut p = a.preparer();
        let prepared: Vec<_> = refs(&w).chunks(chunk).map(|c| p.prepare(c)).collect();
        for c in prepared {
            a.apply(c).unwrap();
        }
        assert_eq!(a.next_index(), w.leaves.len() as u64);
        assert_eq!(a.registry().model(&name("acme/m")), w.reg.model(&name("acme/m")));

        let bad = with_bad_signature(&w.leaves, 6);
        let refs: Vec<&[u8]> = bad.iter().map(Vec::as_slice).collect();
        let mut a = Auditor::new(Config::default());
        let mut p = a.preparer();
        let prepared: Vec<_> = refs.chunks(chunk).map(|c| p.prepare(c)).collect();
        let f = prepared.into_iter().find_map(|c| a.apply(c).err()).expect("a finding");
        assert_eq!((f.index, f.problem, a.next_index()), (6, AuditProblem::BadSignature, 6));
    }
}

/// A preparer that never saw the grants (made before them and not fed
/// them) cannot check the grantees' signatures; the replay checks those
/// itself, so a forged one is still found.
#[test]
fn a_stale_preparer_does_not_let_a_bad_signature_through() {
    let w = sample_log();
    let mut a = Auditor::new(Config::default());
    let mut stale = a.preparer();
    a.feed(&refs(&w)[..6]).unwrap();
    let bad = with_bad_signature(&w.leaves, 6);
    let rest: Vec<&[u8]> = bad[6..].iter().map(Vec::as_slice).collect();
    let prepared = stale.prepare(&rest);
    assert_eq!(prepared.len(), rest.len());
    let f = a.apply(prepared).unwrap_err();
    assert_eq!((f.index, f.problem), (6, AuditProblem::BadSignature));

    let mut a = Auditor::new(Config::default());
    let mut stale = a.preparer();
    a.feed(&refs(&w)[..6]).unwrap();
    a.apply(stale.prepare(&refs(&w)[6..])).unwrap();
    assert_eq!(a.registry().model(&name("acme/m")), w.reg.model(&name("acme/m")));
}
