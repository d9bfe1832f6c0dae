//! The registry's whole story in one log: genesis, grants, publish with
//! lineage, tags, approval, promotion, rollback, access, rotation and
//! revocation; then an auditor replays the leaves (batch-verifying the
//! signatures) and must reach the same state.

mod common;

use std::collections::HashMap;

use common::*;
use custody_registry::actor_key::{ActorKey, KeyId};
use custody_registry::dsse::{verify_batch, BatchItem};
use custody_registry::leaf::Leaf;
use custody_registry::names::{Reference, TagName};
use custody_registry::registry::state::KeyEnd;
use custody_registry::registry::{Config, Effect, Lifecycle, Outcome, Registry, Rejection, Role};
use custody_registry::statement::metadata::{Lineage, LineageRef};
use custody_registry::statement::SignedStatement;

#[test]
fn full_lifecycle_then_auditor_replay() {
    let mut w = World::new();
    // Genesis: root is admin on * from leaf 0.
    let root = w.reg.actor(&actor("root")).unwrap().clone();
    assert_eq!(root.grants.len(), 1);
    assert_eq!((root.grants[0].role, root.grants[0].index), (Role::Admin, 0));
    assert_eq!(root.current_key, Some(w.signers["root"].key_id()));

    // Grants.
    w.grant("alice", Role::Publisher, "acme/*");
    w.grant("bob", Role::Maintainer, "acme/*");
    w.grant("carol", Role::Approver, "acme/*");
    let dave_grant = w.grant("dave", Role::Reader, "acme/m");

    // Publish a base model, then a fine-tune whose lineage points at it.
    let (d_base, d1, d2) = (digest("base"), digest("m-1.0"), digest("m-1.1"));
    let base = w.ok("alice", publish_event("acme/base", "1", d_base));
    let lineage = Lineage {
        parents: vec![LineageRef { digest: d_base, external: false }],
        datasets: vec![LineageRef { digest: digest("imagenet"), external: true }],
        ..Lineage::default()
    };
    let p1 = w.ok("alice", publish_with("acme/m", "1.0", d1, lineage.clone()));
    let v1 = w.reg.version(&name("acme/m"), &ver("1.0")).unwrap();
    assert_eq!(
        (v1.state, v1.published_at, v1.lineage.clone()),
        (Lifecycle::Development, p1, lineage.clone())
    );

    // Idempotent publish: a new statement, and the byte-identical resubmission.
    let size = w.next_index;
    assert_eq!(
        w.submit("alice", publish_with("acme/m", "1.0", d1, lineage.clone())).unwrap(),
        Outcome::AlreadyLogged { index: p1 }
    );
    let again = w.leaves[p1 as usize].clone();
    let envelope = Leaf::decode(&again).unwrap().envelope.to_vec();
    assert_eq!(w.submit_bytes(&envelope).unwrap(), Outcome::AlreadyLogged { index: p1 });
    assert_eq!(w.next_index, size, "nothing appended");

    // Tags: first move, then a compare-and-swap move.
    let t1 = w.ok("bob", tag_event("acme/m", "latest", d1, None));
    let p2 = w.ok("alice", publish_event("acme/m", "1.1", d2));
    let t2 = w.ok("bob", tag_event("acme/m", "latest", d2, Some(t1)));
    let tag = w.reg.tag(&name("acme/m"), &TagName::new("latest").unwrap()).unwrap();
    assert_eq!(tag.moves.iter().map(|m| (m.index, m.digest)).collect::<Vec<_>>(), vec![(t1, d1), (t2, d2)]);

    // Promotion with the two-person rule.
    w.ok("bob", promote_event("acme/m", "1.0", Lifecycle::Staging));
    w.ok("bob", promote_event("acme/m", "1.0", Lifecycle::Development));
    w.ok("bob", promote_event("acme/m", "1.0", Lifecycle::Staging));
    let a1 = w.ok("carol", approve_event("acme/m", "1.0"));
    let prod1 = w.ok("bob", promote_event("acme/m", "1.0", Lifecycle::Production));
    let model = w.reg.model(&name("acme/m")).unwrap();
    assert_eq!(model.production, Some(ver("1.0")));
    let v1 = &model.versions[&ver("1.0")];
    assert_eq!(v1.approvals[0].index, a1);
    assert_eq!(
        v1.history.iter().map(|c| c.state).collect::<Vec<_>>(),
        [
            Lifecycle::Development,
            Lifecycle::Staging,
            Lifecycle::Development,
            Lifecycle::Staging,
            Lifecycle::Production
        ]
    );

    // A second version to production demotes the first.
    w.ok("bob", promote_event("acme/m", "1.1", Lifecycle::Staging));
    w.ok("carol", approve_event("acme/m", "1.1"));
    match w.submit("bob", promote_event("acme/m", "1.1", Lifecycle::Production)).unwrap() {
        Outcome::Applied(a) => assert_eq!(
            a.effect,
            Effect::Promoted {
                name: name("acme/m"),
                version: ver("1.1"),
                from: Lifecycle::Staging,
                to: Lifecycle::Production,
                demoted: Some(ver("1.0")),
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.reg.version(&name("acme/m"), &ver("1.0")).unwrap().state, Lifecycle::Deprecated);

    // Rollback returns 1.0 and deprecates 1.1, with a fresh approval.
    w.ok("carol", approve_event("acme/m", "1.0"));
    let rb = w.ok("bob", rollback_event("acme/m", "1.0"));
    let model = w.reg.model(&name("acme/m")).unwrap();
    assert_eq!(model.production, Some(ver("1.0")));
    assert_eq!(model.versions[&ver("1.1")].state, Lifecycle::Deprecated);
    assert_eq!(model.versions[&ver("1.0")].history.last().unwrap().index, rb);
    assert!(prod1 < rb);

    // Access: dave reads 1.0 through his reader grant on acme/m.
    let nonces_before = w.reg.nonces_remembered();
    let acc = w.ok("dave", access_event("acme/m", "1.0", d1));
    assert_eq!(w.reg.nonces_remembered(), nonces_before + 1);
    match w.submit("dave", access_event("acme/m", "1.1", d2)).unwrap() {
        Outcome::Applied(a) => {
            assert_eq!(a.effect, Effect::Accessed { digest: d2 });
            assert_eq!((a.index, a.actor.as_str()), (acc + 1, "dave"));
        }
        other => panic!("{other:?}"),
    }

    // Rotation: alice's roles carry over; the old key is dead.
    let alice0 = w.signers["alice"].clone();
    let alice1 = signer("alice", 1);
    let rot = w.ok("alice", rotate_event(&alice1));
    w.signers.insert("alice".into(), alice1.clone());
    w.ok("alice", publish_event("acme/m", "1.2", digest("m-1.2")));
    assert_eq!(w.reg.key(&alice0.key_id()).unwrap().ended, Some(KeyEnd::Rotated(rot)));
    let alice = w.reg.actor(&actor("alice")).unwrap();
    assert_eq!(alice.keys, vec![alice0.key_id(), alice1.key_id()]);
    w.signers.insert("alice".into(), alice0.clone());
    assert_eq!(
        w.reject("alice", access_event("acme/m", "1.0", d1)),
        Rejection::KeyRotated { key_id: alice0.key_id(), index: rot }
    );
    w.signers.insert("alice".into(), alice1);

    // Revocations: a role, then a key (and a fresh key granted back).
    w.ok("root", revoke_event("bob", Role::Maintainer, "acme/*"));
    assert_eq!(w.reject("bob", tag_event("acme/m", "latest", d1, Some(t2))).http_status(), 403);
    let dave0 = w.signers["dave"].clone();
    let rk = w.ok("root", revoke_key_event("dave", &dave0));
    assert_eq!(
        w.reject("dave", access_event("acme/m", "1.0", d1)),
        Rejection::KeyRevoked { key_id: dave0.key_id(), index: rk }
    );
    let dave1 = w.add_signer("dave", 1);
    w.ok("root", grant_event("dave", &dave1, Role::Reader, "acme/*"));
    w.ok("dave", access_event("acme/base", "1", d_base));
    let dave = w.reg.actor(&actor("dave")).unwrap();
    assert_eq!(dave.grants.len(), 2, "roles survive a key revocation");
    assert_eq!(dave.grants[0].index, dave_grant);

    // Queries with proving indexes.
    let r = w.reg.resolve(&Reference::parse("acme/m:latest").unwrap()).unwrap();
    assert_eq!((r.digest, r.tag_move, r.versions.clone()), (d2, Some(t2), vec![(ver("1.1"), p2)]));
    let r = w.reg.resolve(&Reference::parse("acme/base@1").unwrap()).unwrap();
    assert_eq!((r.digest, r.versions.clone(), r.tag_move), (d_base, vec![(ver("1"), base)], None));
    assert!(w.reg.resolve(&Reference::parse("acme/m@9").unwrap()).is_none());
    assert!(w.reg.resolve(&Reference::parse("acme/m:nope").unwrap()).is_none());
    assert_eq!(w.reg.publishes_of(&d1), &[(name("acme/m"), ver("1.0"))]);
    assert!(w.reg.publishes_of(&digest("nothing")).is_empty());
    assert_eq!(w.reg.models().count(), 2);
    assert_eq!(w.reg.actors().count(), 5);

    auditor_replay(&w);
}

/// What the verifier's audit does: decode every leaf, learn keys from
/// grants and rotations, batch-verify all signatures, replay.
fn auditor_replay(w: &World) {
    let signed: Vec<(Leaf, SignedStatement)> = w
        .leaves
        .iter()
        .map(|l| {
            let leaf = Leaf::decode(l).unwrap();
            (leaf, SignedStatement::parse(leaf.envelope).unwrap())
        })
        .collect();
    let mut keys: HashMap<KeyId, ActorKey> = HashMap::new();
    for (_, s) in &signed {
        if let Some(k) = s.statement.event.introduced_key() {
            keys.insert(k.id(), k.clone());
        }
    }
    let paes: Vec<Vec<u8>> = signed.iter().map(|(_, s)| s.pae()).collect();
    let items: Vec<BatchItem> = signed
        .iter()
        .zip(&paes)
        .map(|((_, s), m)| BatchItem { message: m, sig: s.signature(), key: &keys[&s.key_id()] })
        .collect();
    assert!(verify_batch(&items), "every logged signature verifies");

    let mut replay = Registry::new(Config::default());
    for (i, (leaf, s)) in signed.iter().enumerate() {
        match replay.process(&s.statement, i as u64, leaf.receive_time_ms) {
            Ok(Outcome::Applied(a)) => assert_eq!(a.index, i as u64),
            other => panic!("leaf {i} does not replay: {other:?}"),
        }
    }
    for (n, m) in w.reg.models() {
        assert_eq!(replay.model(n), Some(m));
    }
    for a in w.reg.actors() {
        assert_eq!(replay.actor(&a.name), Some(a));
    }
    assert_eq!(replay.nonces_remembered(), w.reg.nonces_remembered());
    assert_eq!(replay.clock_ms(), w.reg.clock_ms());
}

#[test]
fn nonce_memory_stays_bounded_over_a_long_log() {
    let mut w = World::new();
    w.grant("alice", Role::Publisher, "acme/*");
    let d = digest("x");
    w.ok("alice", publish_event("acme/m", "1", d));
    // Two hours of one access per second: the window holds ~300 of them.
    for _ in 0..7200 {
        w.advance(1000);
        w.ok("alice", access_event("acme/m", "1", d));
    }
    let n = w.reg.nonces_remembered();
    assert!((300..=302).contains(&n), "{n} nonces remembered");
    // State did not grow with accesses.
    assert_eq!(w.reg.model(&name("acme/m")).unwrap().versions.len(), 1);
}
