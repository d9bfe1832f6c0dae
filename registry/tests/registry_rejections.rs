//! Every rejection the registry can give, each made to happen, with its
//! category and HTTP status; plus replay, idempotency, compare-and-swap,
//! clock and check/apply discipline. `World::reject` also asserts that a
//! rejected statement appends nothing and changes nothing.

mod common;

use common::*;
use custody_registry::actor_key::ActorSigner;
use custody_registry::dsse::Envelope;
use custody_registry::registry::{
    ApplyError, Category, Config, Lifecycle, Outcome, Registry, Rejection, Role, Verdict, DEFAULT_WINDOW_MS,
};
use custody_registry::statement::metadata::{Lineage, LineageRef};
use custody_registry::statement::{Context, SignedStatement, Text, PAYLOAD_TYPE};

fn status(r: &Rejection) -> u16 {
    r.http_status()
}

/// root admin; alice publisher, bob maintainer, carol approver on acme/*;
/// acme/m@1 published (digest "m1").
fn world() -> World {
    let mut w = World::new();
    w.grant("alice", Role::Publisher, "acme/*");
    w.grant("bob", Role::Maintainer, "acme/*");
    w.grant("carol", Role::Approver, "acme/*");
    w.ok("alice", publish_event("acme/m", "1", digest("m1")));
    w
}

#[test]
fn genesis_rules() {
    // Nothing but a self-signed admin grant on * starts a log.
    let mut w = World::empty();
    let root = w.add_signer("root", 0);
    assert_eq!(
        w.reject("root", access_event("acme/m", "1", digest("x"))),
        Rejection::UnknownKey(root.key_id())
    );
    let r = w.reject("root", grant_event("root", &root, Role::Publisher, "*"));
    assert_eq!(r, Rejection::InvalidGenesis("the first statement must grant admin on *"));
    assert_eq!(r.category(), Category::Unprocessable);
    assert_eq!(w.reject("root", grant_event("root", &root, Role::Admin, "acme/*")).http_status(), 422);
    // The signer's key, written for another actor.
    let same_key_other_name = ActorSigner::from_seed(&actor("x"), &seed_of("root", 0));
    let r = w.reject("root", grant_event("x", &same_key_other_name, Role::Admin, "*"));
    assert_eq!(r, Rejection::InvalidGenesis("the genesis grant must be to its own signer"));
    // A grant of someone else's key is not self-signed: the signer is unknown.
    let other = signer("other", 0);
    assert_eq!(
        w.reject("root", grant_event("other", &other, Role::Admin, "*")),
        Rejection::UnknownKey(root.key_id())
    );
    w.ok("root", grant_event("root", &root, Role::Admin, "*"));
    // After genesis, a second self-signed admin grant is just an unknown key.
    let eve = w.add_signer("eve", 0);
    let r = w.reject("eve", grant_event("eve", &eve, Role::Admin, "*"));
    assert_eq!((r.clone(), status(&r)), (Rejection::UnknownKey(eve.key_id()), 401));
}

#[test]
fn unauthenticated_401() {
    let mut w = world();
    // Unknown key.
    let mallory = w.add_signer("mallory", 0);
    let r = w.reject("mallory", access_event("acme/m", "1", digest("m1")));
    assert_eq!(
        (r, Rejection::UnknownKey(mallory.key_id()).http_status()),
        (Rejection::UnknownKey(mallory.key_id()), 401)
    );

    // A key used under another actor's name: alice's key, actor "bob".
    let mut stmt = w.statement("alice", access_event("acme/m", "1", digest("m1")));
    stmt.actor = actor("bob");
    let bytes = Envelope::sign(PAYLOAD_TYPE, stmt.to_json(), &w.signers["alice"]).to_json();
    let r = w.submit_bytes(&bytes).unwrap_err();
    assert_eq!(r, Rejection::KeyActorMismatch { key_id: w.signers["alice"].key_id(), owner: actor("alice") });
    assert_eq!(r.http_status(), 401);

    // Bad signature: a valid envelope whose signature is by another key.
    let stmt = w.statement("alice", access_event("acme/m", "1", digest("m1")));
    let mut env = Envelope::sign(PAYLOAD_TYPE, stmt.to_json(), &signer("alice", 7));
    env.signatures[0].keyid = w.signers["alice"].key_id();
    let r = w.submit_bytes(&env.to_json()).unwrap_err();
    assert_eq!((r.clone(), r.http_status()), (Rejection::BadSignature, 401));

    // Timestamps: too old and too far in the future, by one second.
    let stmt = w.statement("alice", access_event("acme/m", "1", digest("m1")));
    w.advance(DEFAULT_WINDOW_MS + 1000);
    let r = w.submit_statement("alice", &stmt).unwrap_err();
    assert!(matches!(r, Rejection::TimestampOutsideWindow { .. }), "{r:?}");
    assert_eq!(r.http_status(), 401);
    w.advance(DEFAULT_WINDOW_MS + 1000);
    let future = w.statement("alice", access_event("acme/m", "1", digest("m1")));
    w.now_ms -= DEFAULT_WINDOW_MS + 1000;
    let r = w.submit_statement("alice", &future).unwrap_err();
    assert!(matches!(r, Rejection::TimestampOutsideWindow { .. }), "{r:?}");
    // Exactly at the window's edge is accepted.
    let edge = w.statement("alice", access_event("acme/m", "1", digest("m1")));
    w.advance(DEFAULT_WINDOW_MS);
    assert!(w.submit_statement("alice", &edge).is_ok());

    // Replay: the same bytes twice.
    let bytes =
        w.statement("alice", access_event("acme/m", "1", digest("m1"))).sign(&w.signers["alice"]).unwrap();
    w.submit_bytes(&bytes).unwrap();
    let r = w.submit_bytes(&bytes).unwrap_err();
    assert_eq!((r.clone(), r.http_status(), r.code()), (Rejection::Replay, 401, "replay"));
    // Same nonce in another statement (other reason) within the window: replay too.
    let mut again = w.statement("alice", access_event("acme/m", "1", digest("m1")));
    again.context = Context::reason(Text::new("another reason").unwrap());
    again.nonce = SignedStatement::parse(&bytes).unwrap().statement.nonce;
    assert_eq!(w.submit_statement("alice", &again).unwrap_err(), Rejection::Replay);
    // After the window the nonce is forgotten, and the old statement is
    // refused for its time instead.
    w.advance(DEFAULT_WINDOW_MS + 1000);
    assert!(matches!(w.submit_bytes(&bytes).unwrap_err(), Rejection::TimestampOutsideWindow { .. }));
}

#[test]
fn server_clock_stepping_back_cannot_reopen_the_window() {
    let mut w = world();
    let old = w.statement("alice", access_event("acme/m", "1", digest("m1")));
    w.advance(DEFAULT_WINDOW_MS + 60_000);
    w.ok("alice", access_event("acme/m", "1", digest("m1")));
    // The server's clock jumps back ten minutes: the effective time does not.
    w.now_ms -= 600_000;
    let r = w.submit_statement("alice", &old).unwrap_err();
    assert!(matches!(r, Rejection::TimestampOutsideWindow { .. }), "{r:?}");
}

#[test]
fn forbidden_403() {
    let mut w = world();
    w.grant("dave", Role::Reader, "other/*");
    w.grant("orgadmin", Role::Admin, "acme/*");
    let cases = [
        ("dave", publish_event("acme/m", "2", digest("m2")), Role::Publisher, "acme/m"),
        ("alice", tag_event("acme/m", "latest", digest("m1"), None), Role::Maintainer, "acme/m"),
        ("alice", promote_event("acme/m", "1", Lifecycle::Staging), Role::Maintainer, "acme/m"),
        ("alice", rollback_event("acme/m", "1"), Role::Maintainer, "acme/m"),
        ("bob", approve_event("acme/m", "1"), Role::Approver, "acme/m"),
        ("alice", publish_event("beta/m", "1", digest("b")), Role::Publisher, "beta/m"),
    ];
    for (who, ev, role, scope) in cases {
        let r = w.reject(who, ev);
        assert_eq!(r, Rejection::Forbidden { actor: actor(who), role, scope: scope.into() });
        assert_eq!((r.category(), r.http_status(), r.code()), (Category::Forbidden, 403, "forbidden"));
    }
    // Access needs reader on the name it names.
    let r = w.reject("dave", access_event("acme/m", "1", digest("m1")));
    assert_eq!(r, Rejection::Forbidden { actor: actor("dave"), role: Role::Reader, scope: "acme/m".into() });
    // Admins are scoped: acme/* cannot grant beyond it, nor revoke there.
    let eve = w.add_signer("eve", 0);
    for p in ["*", "beta/*", "beta/m"] {
        let r = w.reject("orgadmin", grant_event("eve", &eve, Role::Reader, p));
        assert_eq!(r, Rejection::Forbidden { actor: actor("orgadmin"), role: Role::Admin, scope: p.into() });
    }
    w.ok("orgadmin", grant_event("eve", &eve, Role::Reader, "acme/m"));
    w.ok("orgadmin", grant_event("eve", &eve, Role::Admin, "acme/*"));
    assert_eq!(w.reject("orgadmin", revoke_event("dave", Role::Reader, "other/*")).http_status(), 403);
    // Non-admins cannot grant; only root may kill another actor's key.
    assert_eq!(w.reject("alice", grant_event("eve", &eve, Role::Reader, "acme/m")).http_status(), 403);
    let dave = w.signers["dave"].clone();
    let r = w.reject("orgadmin", revoke_key_event("dave", &dave));
    assert_eq!(r, Rejection::Forbidden { actor: actor("orgadmin"), role: Role::Admin, scope: "*".into() });
}

#[test]
fn conflicts_409() {
    let mut w = world();
    // Version exists with another digest (or size).
    let r = w.reject("alice", publish_event("acme/m", "1", digest("other")));
    assert_eq!(r, Rejection::VersionExists { name: name("acme/m"), version: ver("1"), index: 4 });
    assert_eq!((r.http_status(), r.code()), (409, "version_exists"));

    // Tag compare-and-swap.
    let r = w.reject("bob", tag_event("acme/m", "latest", digest("m1"), Some(3)));
    assert_eq!(r, Rejection::StaleTag { given: Some(3), current: None });
    let t = w.ok("bob", tag_event("acme/m", "latest", digest("m1"), None));
    let r = w.reject("bob", tag_event("acme/m", "latest", digest("m1"), None));
    assert_eq!((r.clone(), r.http_status()), (Rejection::StaleTag { given: None, current: Some(t) }, 409));
    assert_eq!(w.reject("bob", tag_event("acme/m", "latest", digest("m1"), Some(t - 1))).http_status(), 409);
    w.ok("bob", tag_event("acme/m", "latest", digest("m1"), Some(t)));

    // Grants: already held, absent, keys in use / mismatched / dead.
    let alice = w.signers["alice"].clone();
    let r = w.reject("root", grant_event("alice", &alice, Role::Publisher, "acme/*"));
    assert_eq!(
        r,
        Rejection::AlreadyGranted {
            actor: actor("alice"),
            role: Role::Publisher,
            pattern: pat("acme/*"),
            index: 1
        }
    );
    let r = w.reject("root", revoke_event("alice", Role::Publisher, "acme/m"));
    assert_eq!(
        r,
        Rejection::NoSuchGrant { actor: actor("alice"), role: Role::Publisher, pattern: pat("acme/m") }
    );
    let alice_as_eve = ActorSigner::from_seed(&actor("eve"), &seed_of("alice", 0));
    assert_eq!(
        w.reject("root", grant_event("eve", &alice_as_eve, Role::Reader, "acme/*")),
        Rejection::KeyInUse(alice.key_id())
    );
    let alice_new = signer("alice", 5);
    assert_eq!(
        w.reject("root", grant_event("alice", &alice_new, Role::Reader, "beta/*")),
        Rejection::KeyMismatch { actor: actor("alice"), current: alice.key_id() }
    );
    // Rotate to a key already bound.
    let bob_as_alice = ActorSigner::from_seed(&actor("alice"), &seed_of("bob", 0));
    assert_eq!(w.reject("alice", rotate_event(&bob_as_alice)), Rejection::KeyInUse(bob_as_alice.key_id()));
    // A rotated key is dead: it cannot be granted again nor revoked again.
    w.ok("alice", rotate_event(&alice_new));
    w.signers.insert("alice".into(), alice_new);
    let r = w.reject("root", grant_event("alice", &alice, Role::Reader, "beta/*"));
    assert_eq!((r.clone(), r.http_status()), (Rejection::KeyDead(alice.key_id()), 409));
    assert_eq!(w.reject("root", revoke_key_event("alice", &alice)), Rejection::KeyDead(alice.key_id()));

    // Approval twice by the same approver.
    let a = w.ok("carol", approve_event("acme/m", "1"));
    let r = w.reject("carol", approve_event("acme/m", "1"));
    assert_eq!((r.clone(), r.http_status()), (Rejection::AlreadyApproved(a), 409));
}

fn seed_of(actor_name: &str, generation: u8) -> [u8; 32] {
    let mut input = actor_name.as_bytes().to_vec();
    input.push(generation);
    custody_standards::hash::sha256(&input).0
}

#[test]
fn unprocessable_422() {
    let mut w = world();
    let m1 = digest("m1");
    // Lineage must be published unless external.
    let lineage = Lineage {
        parents: vec![LineageRef { digest: digest("ghost"), external: false }],
        ..Lineage::default()
    };
    let r = w.reject("alice", publish_with("acme/m", "2", digest("m2"), lineage));
    assert_eq!((r.clone(), r.http_status()), (Rejection::UnknownLineage(digest("ghost")), 422));
    let ext = Lineage {
        datasets: vec![LineageRef { digest: digest("ghost"), external: true }],
        ..Lineage::default()
    };
    w.ok("alice", publish_with("acme/m", "2", digest("m2"), ext));
    let ok = Lineage { parents: vec![LineageRef { digest: m1, external: false }], ..Lineage::default() };
    w.ok("alice", publish_with("acme/m", "3", digest("m3"), ok));

    // Unknown digest, version, tag target.
    assert_eq!(
        w.reject("alice", access_event("acme/m", "1", digest("ghost"))),
        Rejection::UnknownDigest(digest("ghost"))
    );
    assert_eq!(w.reject("alice", access_event("acme/m", "9", m1)).code(), "unknown_version");
    let unknown = Rejection::UnknownVersion { name: name("acme/m"), version: ver("9") };
    assert_eq!(w.reject("bob", promote_event("acme/m", "9", Lifecycle::Staging)), unknown);
    assert_eq!(w.reject("carol", approve_event("acme/m", "9")), unknown);
    assert_eq!(w.reject("bob", rollback_event("acme/m", "9")), unknown);
    assert_eq!(w.reject("bob", rollback_event("acme/nope", "1")).http_status(), 422);
    w.grant("alice", Role::Publisher, "beta/*");
    w.ok("alice", publish_event("beta/x", "1", digest("bx")));
    let r = w.reject("bob", tag_event("acme/m", "latest", digest("bx"), None));
    assert_eq!(
        (r.clone(), r.http_status()),
        (Rejection::TagTarget { name: name("acme/m"), digest: digest("bx") }, 422)
    );
    assert_eq!(w.reject("bob", tag_event("acme/none", "t", m1, None)).http_status(), 422);

    // Lifecycle: no skipping, no going back except staging -> development.
    let r = w.reject("bob", promote_event("acme/m", "1", Lifecycle::Production));
    assert_eq!(
        (r.clone(), r.http_status()),
        (Rejection::IllegalTransition { from: Lifecycle::Development, to: Lifecycle::Production }, 422)
    );
    for to in [Lifecycle::Development, Lifecycle::Deprecated, Lifecycle::Archived] {
        assert!(matches!(
            w.reject("bob", promote_event("acme/m", "1", to)),
            Rejection::IllegalTransition { .. }
        ));
    }
    w.ok("bob", promote_event("acme/m", "1", Lifecycle::Staging));

    // Two-person rule: no approval; approval only by the promoter; an
    // approver whose role was revoked.
    assert_eq!(
        w.reject("bob", promote_event("acme/m", "1", Lifecycle::Production)),
        Rejection::ApprovalRequired
    );
    w.grant("bob", Role::Approver, "acme/*");
    w.ok("bob", approve_event("acme/m", "1"));
    let r = w.reject("bob", promote_event("acme/m", "1", Lifecycle::Production));
    assert_eq!(
        (r.clone(), r.http_status(), r.code()),
        (Rejection::ApprovalRequired, 422, "approval_required")
    );
    w.ok("carol", approve_event("acme/m", "1"));
    w.ok("root", revoke_event("carol", Role::Approver, "acme/*"));
    assert_eq!(
        w.reject("bob", promote_event("acme/m", "1", Lifecycle::Production)),
        Rejection::ApprovalRequired
    );
    w.grant("carol", Role::Approver, "acme/m");
    w.ok("bob", promote_event("acme/m", "1", Lifecycle::Production));

    // Rollback targets: never in production, or currently in production.
    assert_eq!(w.reject("bob", rollback_event("acme/m", "2")), Rejection::RollbackTarget);
    assert_eq!(w.reject("bob", rollback_event("acme/m", "1")), Rejection::RollbackTarget);
    w.ok("bob", promote_event("acme/m", "1", Lifecycle::Deprecated));
    assert_eq!(w.reg.model(&name("acme/m")).unwrap().production, None);
    w.ok("carol", approve_event("acme/m", "1"));
    w.ok("bob", rollback_event("acme/m", "1"));
    w.ok("bob", promote_event("acme/m", "1", Lifecycle::Deprecated));
    w.ok("bob", promote_event("acme/m", "1", Lifecycle::Archived));
    let r = w.reject("bob", rollback_event("acme/m", "1"));
    assert_eq!((r.clone(), r.http_status()), (Rejection::RollbackTarget, 422));

    // The last live root admin cannot remove itself.
    let root = w.signers["root"].clone();
    assert_eq!(w.reject("root", revoke_event("root", Role::Admin, "*")), Rejection::LastAdmin);
    assert_eq!(w.reject("root", revoke_key_event("root", &root)), Rejection::LastAdmin);
    w.grant("root2", Role::Admin, "*");
    w.ok("root", revoke_event("root", Role::Admin, "*"));

    // revoke_key of a key the actor does not own; revoke for unknown actors.
    let alice = w.signers["alice"].clone();
    let r = w.reject("root2", revoke_key_event("bob", &alice));
    assert_eq!(
        (r.clone(), r.http_status()),
        (Rejection::NotKeyOwner { actor: actor("bob"), key_id: alice.key_id() }, 422)
    );
    assert_eq!(
        w.reject("root2", revoke_event("nobody", Role::Reader, "acme/*")),
        Rejection::UnknownActor(actor("nobody"))
    );
    assert_eq!(
        w.reject("root2", revoke_key_event("nobody", &alice)),
        Rejection::UnknownActor(actor("nobody"))
    );
    // Self-revocation of a key is allowed without admin.
    w.ok("alice", revoke_key_event("alice", &alice));
    assert!(matches!(w.reject("alice", access_event("acme/m", "1", m1)), Rejection::KeyRevoked { .. }));
}

#[test]
fn publish_is_idempotent_only_for_the_same_content() {
    let mut w = world();
    // Same digest and size by another publisher, new nonce: already logged.
    w.grant("alice2", Role::Publisher, "acme/m");
    assert_eq!(
        w.submit("alice2", publish_event("acme/m", "1", digest("m1"))).unwrap(),
        Outcome::AlreadyLogged { index: 4 }
    );
    // ...but authorization still comes first.
    w.grant("reader", Role::Reader, "acme/*");
    assert_eq!(w.reject("reader", publish_event("acme/m", "1", digest("m1"))).http_status(), 403);
    // Same digest, other size: conflict.
    let mut ev = publish_event("acme/m", "1", digest("m1"));
    if let custody_registry::statement::Event::Publish(p) = &mut ev {
        p.size += 1;
    }
    assert_eq!(w.reject("alice", ev).http_status(), 409);
    // The same digest under a new version is a new publish.
    w.ok("alice", publish_event("acme/m", "1-copy", digest("m1")));
    assert_eq!(w.reg.publishes_of(&digest("m1")).len(), 2);
}

#[test]
fn check_does_not_mutate_and_apply_refuses_stale_or_out_of_order() {
    let mut w = world();
    let s1 = w.statement("alice", publish_event("acme/m", "2", digest("m2")));
    let s2 = w.statement("alice", publish_event("acme/m", "3", digest("m3")));
    let idx = w.next_index;
    let Verdict::Append(a1) = w.reg.check(&s1, idx, w.now_ms).unwrap() else { panic!() };
    let Verdict::Append(a2) = w.reg.check(&s2, idx + 1, w.now_ms).unwrap() else { panic!() };
    assert!(w.reg.version(&name("acme/m"), &ver("2")).is_none(), "check changed nothing");
    assert_eq!(a1.index(), idx);
    w.reg.apply(a1.clone()).unwrap();
    assert_eq!(w.reg.apply(a2), Err(ApplyError::Stale));
    assert_eq!(w.reg.apply(a1), Err(ApplyError::Stale));
    let Verdict::Append(a3) = w.reg.check(&s2, idx, w.now_ms).unwrap() else { panic!() };
    assert_eq!(w.reg.apply(a3), Err(ApplyError::IndexOrder { last: idx, given: idx }));
    // The effect of a check is what apply reports.
    let Verdict::Append(a4) = w.reg.check(&s2, idx + 1, w.now_ms).unwrap() else { panic!() };
    let effect = a4.effect().clone();
    assert_eq!(w.reg.apply(a4).unwrap().effect, effect);
}

#[test]
fn window_is_configurable_and_shared_by_replay() {
    let mut reg = Registry::new(Config { window_ms: 1000 });
    let root = signer("root", 0);
    let mut w = World::empty();
    w.signers.insert("root".into(), root.clone());
    let genesis = w.statement("root", grant_event("root", &root, Role::Admin, "*"));
    let r = reg.process(&genesis, 0, T0_MS + 1001).unwrap_err();
    assert!(matches!(r, Rejection::TimestampOutsideWindow { window_ms: 1000, .. }));
    assert!(matches!(reg.process(&genesis, 0, T0_MS + 1000).unwrap(), Outcome::Applied(_)));
}
