//! The state map the log commits to, against a derivation written
//! separately from it: after any sequence of accepted statements, sealed at
//! any points, the committed root equals the root of the map computed from
//! scratch from the registry's records and the list of statements, and a
//! map restored from the sealed records has the same root.

mod common;
#[path = "invariants/ops.rs"]
mod ops;
#[path = "invariants/strategy.rs"]
mod strategy;

use std::collections::BTreeMap;

use custody_registry::commitment::{
    CodecError, EntriesValue, KeyValue, StateCommitter, StateKey, StateValue, TagValue, VersionValue,
};
use custody_registry::leaf::{CommitmentLeaf, Leaf, LeafError, LogLeaf};
use custody_registry::registry::{AuditProblem, Auditor, Config, KeyEnd, Lifecycle, Registry, Role};
use custody_registry::state_map::{verify, Tree};
use custody_registry::statement::{Event, Statement};
use custody_standards::hash::Hash;
use ops::{Driver, Op, Step};
use proptest::prelude::*;
use strategy::op;

/// The map computed from scratch: every record of the registry, and entry
/// lists from the statements in log order.
fn derive(reg: &Registry, log: &[(u64, Statement)]) -> BTreeMap<Hash, (StateKey, StateValue)> {
    let mut map = BTreeMap::new();
    let mut put = |k: StateKey, v: StateValue| {
        map.insert(k.hash(), (k, v));
    };
    for (name, model) in reg.models() {
        for (version, v) in &model.versions {
            put(
                StateKey::Version { name: name.clone(), version: version.clone() },
                StateValue::Version(VersionValue {
                    publish_index: v.published_at,
                    digest: v.digest,
                    size: v.size,
                    publisher: v.publisher.clone(),
                    status: v.state,
                    status_index: v.history.last().unwrap().index,
                    approvals: v.approvals.iter().map(|a| a.index).collect(),
                }),
            );
        }
        for (tag, p) in model.protections() {
            put(
                StateKey::Protection { name: name.clone(), tag: tag.clone() },
                StateValue::Protection(custody_registry::commitment::ProtectionValue {
                    statuses: p.statuses.clone(),
                    index: p.index,
                }),
            );
        }
        for (tag, t) in &model.tags {
            let m = t.current();
            put(
                StateKey::Tag { name: name.clone(), tag: tag.clone() },
                StateValue::Tag(TagValue { digest: m.digest, index: m.index }),
            );
        }
    }
    for a in reg.actors() {
        for g in &a.grants {
            put(
                StateKey::Grant { actor: a.name.clone(), role: g.role, pattern: g.pattern.clone() },
                StateValue::Grant(g.index),
            );
        }
        for id in &a.keys {
            let k = reg.key(id).unwrap();
            put(
                StateKey::ActorKey { key_id: *id },
                StateValue::ActorKey(KeyValue { actor: k.actor.clone(), bound_at: k.bound_at, end: k.ended }),
            );
        }
    }
    let mut lists: BTreeMap<Vec<u8>, (StateKey, Vec<u64>)> = BTreeMap::new();
    let mut add = |k: StateKey, i: u64| lists.entry(k.encode()).or_insert_with(|| (k, Vec::new())).1.push(i);
    for (i, s) in log {
        add(StateKey::ActorEntries { actor: s.actor.clone() }, *i);
        if let Some(n) = s.event.name() {
            add(StateKey::NameEntries { name: n.clone() }, *i);
        }
        match &s.event {
            Event::Publish(p) => add(StateKey::DigestEntries { digest: p.digest }, *i),
            Event::Access(a) => add(StateKey::DigestEntries { digest: a.digest }, *i),
            _ => {}
        }
    }
    for (_, (k, idx)) in lists {
        put(k, StateValue::Entries(EntriesValue::of(idx)));
    }
    map
}

fn root_of(map: &BTreeMap<Hash, (StateKey, StateValue)>) -> Hash {
    Tree::from_entries(map.iter().map(|(h, (_, v))| (*h, v.hash()))).root()
}

fn check_run(ops: &[Op], seal_every: usize) -> Result<(), TestCaseError> {
    let mut d = Driver::new();
    let mut c = StateCommitter::new();
    let mut log = Vec::new();
    // The genesis is leaf 0: record it as the server would.
    let genesis = d.genesis.clone();
    let applied0 = custody_registry::registry::Applied {
        index: 0,
        actor: genesis.actor.clone(),
        key_id: genesis.key_id,
        effect: custody_registry::registry::Effect::Genesis {
            actor: genesis.actor.clone(),
            key: match &genesis.event {
                Event::Grant(g) => g.key.clone(),
                _ => unreachable!(),
            },
        },
    };
    c.record(&d.reg, &genesis, &applied0);
    log.push((0, genesis));
    let mut since_seal = 0;
    for op in ops {
        if let Step::Applied { stmt, applied } = d.step(*op) {
            c.record(&d.reg, &stmt, &applied);
            log.push((applied.index, *stmt));
            since_seal += 1;
            if since_seal >= seal_every {
                since_seal = 0;
                let root = c.seal().root;
                let derived = derive(&d.reg, &log);
                prop_assert_eq!(root, root_of(&derived), "after {} statements", log.len());
                prop_assert_eq!(c.len(), derived.len());
            }
        }
    }
    let root = c.seal().root;
    let derived = derive(&d.reg, &log);
    prop_assert_eq!(root, root_of(&derived));
    let restored = StateCommitter::restore(derived.into_values());
    prop_assert_eq!(restored.root(), root);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn committed_root_equals_the_derived_map(
        ops in proptest::collection::vec(op(), 1..300),
        seal_every in 1usize..20,
    ) {
        check_run(&ops, seal_every)?;
    }
}

/// Replays `w`'s leaves, sealing after each statement, and compares every
/// root with the derivation.
fn check_world(w: &common::World) {
    let mut reg = Registry::new(Config::default());
    let mut c = StateCommitter::new();
    let mut log = Vec::new();
    for (i, bytes) in w.leaves.iter().enumerate() {
        let leaf = Leaf::decode(bytes).unwrap();
        let signed = custody_registry::statement::SignedStatement::parse(leaf.envelope).unwrap();
        match reg.process(&signed.statement, i as u64, leaf.receive_time_ms).unwrap() {
            custody_registry::registry::Outcome::Applied(a) => c.record(&reg, &signed.statement, &a),
            other => panic!("{other:?}"),
        }
        log.push((i as u64, signed.statement));
        assert_eq!(c.seal().root, root_of(&derive(&reg, &log)), "after leaf {i}");
    }
}

#[test]
fn every_effect_of_a_full_lifecycle_is_committed() {
    use common::*;
    let mut w = World::new();
    w.grant("alice", Role::Publisher, "acme/*");
    w.grant("bob", Role::Maintainer, "acme/*");
    w.grant("carol", Role::Approver, "acme/*");
    w.grant("dave", Role::Reader, "acme/m");
    let (d1, d2) = (digest("m-1.0"), digest("m-1.1"));
    w.ok("alice", publish_event("acme/m", "1.0", d1));
    let t1 = w.ok("bob", tag_event("acme/m", "latest", d1, None));
    w.ok("alice", publish_event("acme/m", "1.1", d2));
    w.ok("bob", tag_event("acme/m", "latest", d2, Some(t1)));
    w.ok("bob", promote_event("acme/m", "1.0", Lifecycle::Staging));
    w.ok("carol", approve_event("acme/m", "1.0"));
    w.ok("bob", promote_event("acme/m", "1.0", Lifecycle::Production));
    w.ok("bob", promote_event("acme/m", "1.1", Lifecycle::Staging));
    w.ok("carol", approve_event("acme/m", "1.1"));
    // Demotes 1.0: two versions change in one statement.
    w.ok("bob", promote_event("acme/m", "1.1", Lifecycle::Production));
    w.ok("carol", approve_event("acme/m", "1.0"));
    w.ok("bob", rollback_event("acme/m", "1.0"));
    w.ok("dave", access_event("acme/m", "1.0", d1));
    let alice1 = signer("alice", 1);
    w.ok("alice", rotate_event(&alice1));
    w.signers.insert("alice".into(), alice1);
    w.ok("alice", publish_event("acme/m", "1.2", digest("m-1.2")));
    w.ok("root", revoke_event("bob", Role::Maintainer, "acme/*"));
    let dave0 = w.signers["dave"].clone();
    w.ok("root", revoke_key_event("dave", &dave0));
    let dave1 = w.add_signer("dave", 1);
    w.ok("root", grant_event("dave", &dave1, Role::Reader, "acme/*"));
    check_world(&w);
}

#[test]
fn proofs_from_the_committer_verify_and_name_values() {
    let mut w = common::World::new();
    let pub_signer = w.add_signer("pub", 0);
    w.ok("root", common::grant_event("pub", &pub_signer, Role::Publisher, "acme/*"));
    w.ok("pub", common::publish_event("acme/m", "1.0", common::digest("m1")));
    let mut a = Auditor::new(Config::default());
    let leaves: Vec<&[u8]> = w.leaves.iter().map(Vec::as_slice).collect();
    a.feed(&leaves).unwrap();
    // The auditor's committer has recorded everything; seal as a
    // commitment leaf would and prove against its root.
    let mut c = a.state().clone();
    let root = c.seal().root;
    let key = StateKey::Version { name: common::name("acme/m"), version: common::ver("1.0") };
    let value = c.value(&key).unwrap().clone();
    let StateValue::Version(v) = &value else { panic!("{value:?}") };
    assert_eq!((v.status, v.size > 0), (Lifecycle::Development, true));
    let proof = c.tree().prove(&key.hash());
    verify(&root, &key.hash(), Some(&value.hash()), &proof).unwrap();
    let absent = StateKey::Version { name: common::name("acme/m"), version: common::ver("2.0") };
    verify(&root, &absent.hash(), None, &c.tree().prove(&absent.hash())).unwrap();
    assert!(verify(&root, &absent.hash(), Some(&value.hash()), &c.tree().prove(&absent.hash())).is_err());
}

#[test]
fn the_auditor_checks_every_commitment_leaf() {
    let mut w = common::World::new();
    let alice = w.add_signer("alice", 0);
    w.ok("root", common::grant_event("alice", &alice, Role::Publisher, "acme/*"));
    // Commitments after leaf 0 and after leaf 1, as a server would write.
    let mut honest = Auditor::new(Config::default());
    honest.feed(&[&w.leaves[0]]).unwrap();
    let mut shadow = honest.state().clone();
    let c1 = CommitmentLeaf { index: 1, root: shadow.seal().root };
    let mut leaves = vec![w.leaves[0].clone(), c1.encode()];
    // The grant, first sequenced at 1, replays at its new index 2.
    leaves.push(w.leaves[1].clone());
    let mut a = Auditor::new(Config::default());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    let applied = a.feed(&refs).unwrap();
    assert_eq!(applied.len(), 2);
    assert_eq!(a.last_commitment(), Some(c1));
    // A wrong root, and a right root at the wrong index, are findings.
    for bad in [CommitmentLeaf { index: 1, root: Hash([7; 32]) }, CommitmentLeaf { index: 5, root: c1.root }]
    {
        let mut leaves = leaves.clone();
        leaves[1] = bad.encode();
        let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
        let f = Auditor::new(Config::default()).feed(&refs).unwrap_err();
        assert_eq!(f.index, 1);
        assert!(matches!(f.problem, AuditProblem::StateRoot { .. }), "{f}");
    }
}

#[test]
fn commitment_leaves_are_exact() {
    let c = CommitmentLeaf { index: 0x0102, root: Hash([9; 32]) };
    let b = c.encode();
    assert_eq!(b.len(), 48);
    assert_eq!(&b[..8], b"CUSTODY\x02");
    assert_eq!(LogLeaf::decode(&b).unwrap(), LogLeaf::Commitment(c));
    assert_eq!(Leaf::decode(&b), Err(LeafError::Commitment));
    assert_eq!(CommitmentLeaf::decode(&b[..47]), Err(LeafError::CommitmentSize(47)));
    let mut long = b.clone();
    long.push(0);
    assert_eq!(CommitmentLeaf::decode(&long), Err(LeafError::CommitmentSize(49)));
    let stmt = Leaf::new(1, b"{}").unwrap().encode();
    assert!(matches!(LogLeaf::decode(&stmt), Ok(LogLeaf::Statement(_))));
}

fn every_key() -> Vec<StateKey> {
    vec![
        StateKey::Tag {
            name: common::name("acme/m"),
            tag: custody_registry::names::TagName::new("prod").unwrap(),
        },
        StateKey::Version { name: common::name("acme/m"), version: common::ver("1.0") },
        StateKey::ActorKey { key_id: custody_registry::actor_key::KeyId(Hash([3; 32])) },
        StateKey::Grant {
            actor: common::actor("alice"),
            role: Role::Maintainer,
            pattern: common::pat("acme/*"),
        },
        StateKey::Protection {
            name: common::name("acme/m"),
            tag: custody_registry::names::TagName::new("prod").unwrap(),
        },
        StateKey::NameEntries { name: common::name("acme/m") },
        StateKey::DigestEntries { digest: common::digest("x") },
        StateKey::ActorEntries { actor: common::actor("alice") },
    ]
}

fn every_value() -> Vec<StateValue> {
    vec![
        StateValue::Tag(TagValue { digest: common::digest("x"), index: 7 }),
        StateValue::Version(VersionValue {
            publish_index: 1,
            digest: common::digest("x"),
            size: 42,
            publisher: common::actor("alice"),
            status: Lifecycle::Production,
            status_index: 9,
            approvals: vec![5, 6],
        }),
        StateValue::ActorKey(KeyValue {
            actor: common::actor("bob"),
            bound_at: 3,
            end: Some(KeyEnd::Revoked(8)),
        }),
        StateValue::ActorKey(KeyValue { actor: common::actor("bob"), bound_at: 3, end: None }),
        StateValue::Grant(4),
        StateValue::Protection(custody_registry::commitment::ProtectionValue {
            statuses: vec![Lifecycle::Staging, Lifecycle::Production],
            index: 11,
        }),
        StateValue::Entries(EntriesValue::of([1, 5, 9])),
    ]
}

#[test]
fn keys_and_values_round_trip_and_refuse_everything_else() {
    for k in every_key() {
        let enc = k.encode();
        assert_eq!(StateKey::decode(&enc).unwrap(), k);
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(StateKey::decode(&long), Err(CodecError::Trailing(1)));
        for n in 0..enc.len() {
            assert!(StateKey::decode(&enc[..n]).is_err(), "{k:?} truncated to {n}");
        }
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<StateKey>(&json).unwrap(), k);
    }
    for v in every_value() {
        let enc = v.encode();
        assert_eq!(StateValue::decode(&enc).unwrap(), v);
        for n in 0..enc.len() {
            assert!(StateValue::decode(&enc[..n]).is_err(), "{v:?} truncated to {n}");
        }
    }
    assert_eq!(StateKey::decode(&[0x7f]), Err(CodecError::Kind(0x7f)));
    // A name the registry would refuse is not a key.
    let mut bad = vec![0x10, 0, 3];
    bad.extend_from_slice(b"A B");
    assert!(matches!(StateKey::decode(&bad), Err(CodecError::Field { .. })));
    // A key end that is live but names an index is not canonical.
    let mut v =
        StateValue::ActorKey(KeyValue { actor: common::actor("bob"), bound_at: 3, end: None }).encode();
    let n = v.len();
    v[n - 1] = 1;
    assert!(StateValue::decode(&v).is_err());
    // Distinct kinds never share a hash, even with equal fields.
    let hashes: std::collections::HashSet<_> = every_key().iter().map(StateKey::hash).collect();
    assert_eq!(hashes.len(), every_key().len());
}

/// Known-answer vectors, also printed in docs/protocol.md ("Registry
/// state"): a third party's encoder must produce these bytes and hashes.
#[test]
fn known_answer_vectors_match_the_docs() {
    let key = StateKey::Tag {
        name: common::name("acme/model"),
        tag: custody_registry::names::TagName::new("production").unwrap(),
    };
    let value = StateValue::Tag(TagValue { digest: common::digest("weights"), index: 41 });
    let entries = StateValue::Entries(EntriesValue::of([3, 17]));
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md")).unwrap();
    let mut missing = Vec::new();
    for (what, hex) in [
        ("tag key encoding", hex::encode(key.encode())),
        ("tag key hash", key.hash().to_hex()),
        ("tag value encoding", hex::encode(value.encode())),
        ("tag value hash", value.hash().to_hex()),
        ("entries value for [3, 17]", hex::encode(entries.encode())),
    ] {
        if !docs.contains(&hex) {
            missing.push(format!("{what}: {hex}"));
        }
    }
    assert!(missing.is_empty(), "docs/protocol.md lacks:\n{}", missing.join("\n"));
}
