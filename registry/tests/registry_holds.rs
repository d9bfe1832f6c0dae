//! Holds, deploy and transfer records, and break-glass: each refused
//! action while held, release lifting it, who may do what, what a
//! break-glass bypasses and what it does not, and the auditor agreeing
//! with the server on every refusal.

mod common;

use common::*;
use custody_registry::commitment::{StateCommitter, StateKey, StateValue};
use custody_registry::leaf::Leaf;
use custody_registry::names::{Digest, TagName};
use custody_registry::registry::{
    AuditProblem, Auditor, Config, Effect, Lifecycle, Outcome, Rejection, Role,
};
use custody_registry::statement::events::{
    BreakGlass, Deploy, HoldTarget, Promote, Rollback, TagMove, Transfer,
};
use custody_registry::statement::{Event, Statement, Text};

fn hold(n: &str, v: Option<&str>) -> Event {
    Event::Hold(HoldTarget { name: name(n), version: v.map(ver) })
}

fn release(n: &str, v: Option<&str>) -> Event {
    Event::Release(HoldTarget { name: name(n), version: v.map(ver) })
}

fn deploy(n: &str, v: &str, d: Digest) -> Event {
    Event::Deploy(Deploy { name: name(n), version: ver(v), digest: d, target: Text::new("prod-eu").unwrap() })
}

fn transfer(n: &str, v: &str, d: Digest) -> Event {
    Event::Transfer(Transfer {
        name: name(n),
        version: ver(v),
        digest: d,
        destination: Text::new("registry.example/mirror").unwrap(),
    })
}

fn glass_promote(n: &str, v: &str, to: Lifecycle) -> Event {
    Event::BreakGlass(BreakGlass::Promote(Promote { name: name(n), version: ver(v), to }))
}

fn glass_rollback(n: &str, v: &str) -> Event {
    Event::BreakGlass(BreakGlass::Rollback(Rollback { name: name(n), version: ver(v) }))
}

fn glass_tag(n: &str, t: &str, d: Digest, previous: Option<u64>) -> Event {
    Event::BreakGlass(BreakGlass::Tag(TagMove {
        name: name(n),
        tag: TagName::new(t).unwrap(),
        digest: d,
        previous,
    }))
}

/// acme/m with 1.0 (staging, tagged `latest`) and 2.0 (development);
/// pub publishes, maint maintains, appr approves, rd reads, adm is admin
/// over acme/*, other is approver elsewhere.
fn world() -> (World, Digest, Digest, u64) {
    let mut w = World::new();
    w.grant("pub", Role::Publisher, "acme/*");
    w.grant("maint", Role::Maintainer, "acme/*");
    w.grant("appr", Role::Approver, "acme/*");
    w.grant("rd", Role::Reader, "acme/*");
    w.grant("adm", Role::Admin, "acme/*");
    w.grant("other", Role::Approver, "beta/*");
    let (d1, d2) = (digest("one"), digest("two"));
    w.ok("pub", publish_event("acme/m", "1.0", d1));
    w.ok("pub", publish_event("acme/m", "2.0", d2));
    w.ok("maint", promote_event("acme/m", "1.0", Lifecycle::Staging));
    let latest = w.ok("maint", tag_event("acme/m", "latest", d1, None));
    (w, d1, d2, latest)
}

fn held(n: &str, v: Option<&str>, index: u64) -> Rejection {
    Rejection::Held { name: name(n), version: v.map(ver), index }
}

/// The log `w` holds plus `event` by `who` appended: the auditor's finding.
fn audit_appended(w: &mut World, who: &str, event: Event) -> Option<(u64, AuditProblem)> {
    let bytes = w.statement(who, event).sign(&w.signers[who]).unwrap();
    let mut leaves = w.leaves.clone();
    leaves.push(Leaf::new(w.now_ms, &bytes).unwrap().encode());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    Auditor::new(Config::default()).feed(&refs).err().map(|f| (f.index, f.problem))
}

#[test]
fn a_version_hold_refuses_every_action_on_it_until_released() {
    let (mut w, d1, d2, latest) = world();
    let h = w.ok("appr", hold("acme/m", Some("1.0")));
    let want = held("acme/m", Some("1.0"), h);
    assert_eq!((want.http_status(), want.code()), (423, "held"));
    for (who, event) in [
        ("rd", access_event("acme/m", "1.0", d1)),
        ("rd", deploy("acme/m", "1.0", d1)),
        ("rd", transfer("acme/m", "1.0", d1)),
        ("maint", promote_event("acme/m", "1.0", Lifecycle::Development)),
        // Moving a tag to the held version, or away from it.
        ("maint", tag_event("acme/m", "other", d1, None)),
        ("maint", tag_event("acme/m", "latest", d2, Some(latest))),
    ] {
        assert_eq!(w.reject(who, event.clone()), want, "{event:?}");
        assert_eq!(
            audit_appended(&mut w, who, event),
            Some((w.next_index, AuditProblem::Rejected(want.clone())))
        );
    }
    // The other version is not held.
    w.ok("rd", access_event("acme/m", "2.0", d2));
    w.ok("maint", tag_event("acme/m", "dev", d2, None));
    // A release by another approver lifts it.
    w.ok("adm", release("acme/m", Some("1.0")));
    w.ok("rd", access_event("acme/m", "1.0", d1));
    w.ok("rd", deploy("acme/m", "1.0", d1));
    w.ok("rd", transfer("acme/m", "1.0", d1));
    w.ok("maint", tag_event("acme/m", "latest", d2, Some(latest)));
    let clean: Vec<&[u8]> = w.leaves.iter().map(Vec::as_slice).collect();
    Auditor::new(Config::default()).feed(&clean).expect("the honest log audits clean");
}

#[test]
fn a_name_hold_covers_every_version_even_new_ones() {
    let (mut w, d1, d2, latest) = world();
    let h = w.ok("adm", hold("acme/m", None));
    let want = held("acme/m", None, h);
    for (who, event) in [
        ("rd", access_event("acme/m", "2.0", d2)),
        ("maint", tag_event("acme/m", "latest", d1, Some(latest))),
        ("maint", promote_event("acme/m", "2.0", Lifecycle::Staging)),
        ("rd", deploy("acme/m", "1.0", d1)),
    ] {
        assert_eq!(w.reject(who, event.clone()), want, "{event:?}");
    }
    // Publishing is not refused, but the new version is held too.
    let d3 = digest("three");
    w.ok("pub", publish_event("acme/m", "3.0", d3));
    assert_eq!(w.reject("rd", access_event("acme/m", "3.0", d3)), want);
    // Approving changes nothing that moves: allowed.
    w.ok("appr", approve_event("acme/m", "1.0"));
    // Another name is not held.
    w.ok("pub", publish_event("acme/x", "1", digest("x")));
    w.ok("rd", access_event("acme/x", "1", digest("x")));
    // A version hold under a name hold is its own hold; releasing the
    // name leaves it in force.
    let hv = w.ok("appr", hold("acme/m", Some("2.0")));
    w.ok("appr", release("acme/m", None));
    assert_eq!(w.reject("rd", access_event("acme/m", "2.0", d2)), held("acme/m", Some("2.0"), hv));
    w.ok("rd", access_event("acme/m", "1.0", d1));
}

#[test]
fn promotions_and_rollbacks_touching_a_held_production_version_are_refused() {
    let (mut w, _d1, _d2, _) = world();
    w.ok("appr", approve_event("acme/m", "1.0"));
    w.ok("maint", promote_event("acme/m", "1.0", Lifecycle::Production));
    w.ok("maint", promote_event("acme/m", "2.0", Lifecycle::Staging));
    w.ok("appr", approve_event("acme/m", "2.0"));
    let h = w.ok("appr", hold("acme/m", Some("1.0")));
    // Promoting 2.0 would demote the held 1.0.
    let r = w.reject("maint", promote_event("acme/m", "2.0", Lifecycle::Production));
    assert_eq!(r, held("acme/m", Some("1.0"), h));
    // Nor may break-glass move it: holds are not bypassed.
    let r = w.reject("adm", glass_promote("acme/m", "2.0", Lifecycle::Production));
    assert_eq!(r, held("acme/m", Some("1.0"), h));
    w.ok("appr", release("acme/m", Some("1.0")));
    w.ok("maint", promote_event("acme/m", "2.0", Lifecycle::Production));
    // 1.0 is deprecated now; a hold on it refuses its rollback.
    w.ok("appr", approve_event("acme/m", "1.0"));
    let h = w.ok("appr", hold("acme/m", Some("1.0")));
    assert_eq!(w.reject("maint", rollback_event("acme/m", "1.0")), held("acme/m", Some("1.0"), h));
    // ... and a hold on production refuses rolling away from it.
    w.ok("appr", release("acme/m", Some("1.0")));
    let h2 = w.ok("appr", hold("acme/m", Some("2.0")));
    assert_eq!(w.reject("maint", rollback_event("acme/m", "1.0")), held("acme/m", Some("2.0"), h2));
    w.ok("appr", release("acme/m", Some("2.0")));
    w.ok("maint", rollback_event("acme/m", "1.0"));
}

#[test]
fn hold_and_release_rules_and_authorization() {
    let (mut w, d1, _, _) = world();
    // Readers, maintainers, publishers and approvers of other names may
    // not hold or release.
    for who in ["rd", "maint", "pub", "other"] {
        let r = w.reject(who, hold("acme/m", None));
        assert_eq!(r.code(), "forbidden", "{who}");
        assert_eq!(r.http_status(), 403);
    }
    let r = w.reject("appr", hold("acme/m", Some("9.9")));
    assert_eq!(r, Rejection::UnknownVersion { name: name("acme/m"), version: ver("9.9") });
    assert_eq!(
        w.reject("appr", release("acme/m", None)),
        Rejection::NotHeld { name: name("acme/m"), version: None }
    );
    let h = w.ok("appr", hold("acme/m", Some("1.0")));
    let r = w.reject("adm", hold("acme/m", Some("1.0")));
    assert_eq!(r, Rejection::AlreadyHeld { name: name("acme/m"), version: Some(ver("1.0")), index: h });
    assert_eq!((r.http_status(), r.code()), (409, "already_held"));
    let r = w.reject("appr", release("acme/m", None));
    assert_eq!((r.http_status(), r.code()), (409, "not_held"));
    for who in ["rd", "maint"] {
        assert_eq!(w.reject(who, release("acme/m", Some("1.0"))).code(), "forbidden");
    }
    // root (admin on *) may release; the hold is gone from the state.
    w.ok("root", release("acme/m", Some("1.0")));
    assert!(w.reg.model(&name("acme/m")).unwrap().holds().is_empty());
    w.ok("rd", access_event("acme/m", "1.0", d1));
    // A name may be held before anything is published under it.
    w.ok("adm", hold("acme/new", None));
    assert_eq!(w.reject("appr", hold("acme/new", None)).code(), "already_held");
}

#[test]
fn deploy_and_transfer_need_reader_and_a_published_version() {
    let (mut w, d1, d2, _) = world();
    w.grant("stranger", Role::Reader, "beta/*");
    for event in [deploy("acme/m", "1.0", d1), transfer("acme/m", "1.0", d1)] {
        assert_eq!(w.reject("stranger", event.clone()).code(), "forbidden");
        // Every role on the name implies reader.
        for who in ["rd", "pub", "maint", "appr", "adm"] {
            match w.submit(who, event.clone()) {
                Ok(Outcome::Applied(a)) => {
                    assert!(matches!(a.effect, Effect::Deployed { .. } | Effect::Transferred { .. }))
                }
                other => panic!("{who}: {other:?}"),
            }
        }
    }
    assert_eq!(w.reject("rd", deploy("acme/m", "1.0", d2)), Rejection::UnknownDigest(d2));
    assert_eq!(w.reject("rd", transfer("acme/m", "1.0", d2)), Rejection::UnknownDigest(d2));
    assert_eq!(w.reject("rd", deploy("acme/m", "7", d1)).code(), "unknown_version");
}

#[test]
fn break_glass_promotes_without_approval_only_for_admins() {
    let (mut w, _, _, _) = world();
    // Without approval, production is refused for everyone.
    assert_eq!(
        w.reject("maint", promote_event("acme/m", "1.0", Lifecycle::Production)),
        Rejection::ApprovalRequired
    );
    // Only an admin over the name may break the glass.
    for who in ["maint", "appr", "rd", "pub"] {
        let r = w.reject(who, glass_promote("acme/m", "1.0", Lifecycle::Production));
        assert_eq!(
            r,
            Rejection::Forbidden { actor: actor(who), role: Role::Admin, scope: "acme/m".into() },
            "{who}"
        );
    }
    // Break-glass bypasses no other rule: the version must exist and the
    // transition be legal; a promote that bypasses nothing is refused.
    assert_eq!(
        w.reject("adm", glass_promote("acme/m", "9", Lifecycle::Production)).code(),
        "unknown_version"
    );
    let r = w.reject("adm", glass_promote("acme/m", "2.0", Lifecycle::Production));
    assert_eq!(r, Rejection::IllegalTransition { from: Lifecycle::Development, to: Lifecycle::Production });
    let r = w.reject("adm", glass_promote("acme/m", "2.0", Lifecycle::Staging));
    assert_eq!((r.http_status(), r.code()), (422, "break_glass_unneeded"));
    let i = w.ok("adm", glass_promote("acme/m", "1.0", Lifecycle::Production));
    assert_eq!(w.reg.model(&name("acme/m")).unwrap().production, Some(ver("1.0")));
    assert_eq!(w.reg.version(&name("acme/m"), &ver("1.0")).unwrap().history.last().unwrap().index, i);
    // With an approval that counts, break-glass is unneeded.
    w.ok("maint", promote_event("acme/m", "2.0", Lifecycle::Staging));
    w.ok("appr", approve_event("acme/m", "2.0"));
    assert_eq!(
        w.reject("adm", glass_promote("acme/m", "2.0", Lifecycle::Production)),
        Rejection::BreakGlassUnneeded("promote")
    );
    w.ok("maint", promote_event("acme/m", "2.0", Lifecycle::Production));
    // Rolling back to 1.0 needs a fresh approval; break-glass goes around
    // it, for an admin only.
    assert_eq!(w.reject("maint", rollback_event("acme/m", "1.0")), Rejection::ApprovalRequired);
    assert_eq!(w.reject("maint", glass_rollback("acme/m", "1.0")).code(), "forbidden");
    w.ok("adm", glass_rollback("acme/m", "1.0"));
    assert_eq!(w.reg.model(&name("acme/m")).unwrap().production, Some(ver("1.0")));
    // Not a rollback target: the rule stands.
    assert_eq!(w.reject("adm", glass_rollback("acme/m", "1.0")), Rejection::RollbackTarget);
    let clean: Vec<&[u8]> = w.leaves.iter().map(Vec::as_slice).collect();
    Auditor::new(Config::default()).feed(&clean).expect("the honest log audits clean");
    // A log that appends a maintainer's break-glass anyway is caught.
    let want = Rejection::Forbidden { actor: actor("maint"), role: Role::Admin, scope: "acme/m".into() };
    assert_eq!(
        audit_appended(&mut w, "maint", glass_rollback("acme/m", "1.0")),
        Some((w.next_index, AuditProblem::Rejected(want)))
    );
}

#[test]
fn break_glass_moves_a_protected_tag_and_nothing_else() {
    let (mut w, d1, d2, latest) = world();
    // `production` is built in: 2.0 (development) may not be its target.
    let r = w.reject("maint", tag_event("acme/m", "production", d2, None));
    assert_eq!(r.code(), "tag_protected");
    assert_eq!(w.reject("maint", glass_tag("acme/m", "production", d2, None)).code(), "forbidden");
    // The compare-and-swap still holds.
    assert_eq!(
        w.reject("adm", glass_tag("acme/m", "production", d2, Some(99))),
        Rejection::StaleTag { given: Some(99), current: None }
    );
    // So does the target being a version of the name.
    assert_eq!(w.reject("adm", glass_tag("acme/m", "production", digest("nope"), None)).code(), "tag_target");
    let moved = w.ok("adm", glass_tag("acme/m", "production", d2, None));
    assert_eq!(
        w.reg.tag(&name("acme/m"), &TagName::new("production").unwrap()).unwrap().current().index,
        moved
    );
    // An unprotected tag needs no break-glass.
    assert_eq!(
        w.reject("adm", glass_tag("acme/m", "latest", d2, Some(latest))),
        Rejection::BreakGlassUnneeded("tag move")
    );
    // A tag protected by `protect`: the same.
    w.ok(
        "adm",
        Event::Protect(custody_registry::statement::events::Protect {
            name: name("acme/m"),
            tag: TagName::new("stable").unwrap(),
            statuses: vec![Lifecycle::Staging],
        }),
    );
    assert_eq!(w.reject("maint", tag_event("acme/m", "stable", d2, None)).code(), "tag_protected");
    assert_eq!(
        w.reject("adm", glass_tag("acme/m", "stable", d1, None)),
        Rejection::BreakGlassUnneeded("tag move")
    );
    w.ok("adm", glass_tag("acme/m", "stable", d2, None));
    // A hold is not bypassed.
    let h = w.ok("appr", hold("acme/m", None));
    assert_eq!(w.reject("adm", glass_tag("acme/m", "production", d1, Some(moved))), held("acme/m", None, h));
}

#[test]
fn holds_are_committed_state_and_replay_to_the_same_root() {
    let (mut w, d1, _, _) = world();
    let mut committer = StateCommitter::new();
    let mut replay = custody_registry::registry::Registry::new(Config::default());
    let key_v = StateKey::Hold { name: name("acme/m"), version: Some(ver("1.0")) };
    let key_n = StateKey::Hold { name: name("acme/m"), version: None };
    let hv = w.ok("appr", hold("acme/m", Some("1.0")));
    let hn = w.ok("adm", hold("acme/m", None));
    let mut feed = |w: &World, committer: &mut StateCommitter, from: usize| {
        for (i, bytes) in w.leaves.iter().enumerate().skip(from) {
            let leaf = Leaf::decode(bytes).unwrap();
            let stmt = custody_registry::statement::SignedStatement::parse(leaf.envelope).unwrap().statement;
            match replay.process(&stmt, i as u64, leaf.receive_time_ms).unwrap() {
                Outcome::Applied(a) => committer.record(&replay, &stmt, &a),
                Outcome::AlreadyLogged { .. } => unreachable!(),
            }
        }
        committer.seal()
    };
    feed(&w, &mut committer, 0);
    assert_eq!(committer.value(&key_v), Some(&StateValue::Hold(hv)));
    assert_eq!(committer.value(&key_n), Some(&StateValue::Hold(hn)));
    let seen = w.leaves.len();
    w.ok("appr", release("acme/m", Some("1.0")));
    w.ok("appr", approve_event("acme/m", "2.0"));
    let sealed = feed(&w, &mut committer, seen);
    assert_eq!(committer.value(&key_v), None);
    assert_eq!(committer.value(&key_n), Some(&StateValue::Hold(hn)));
    assert!(sealed.changes.iter().any(|c| c.key == key_v && c.after.is_none()));
    // Saved and restored, the registry still refuses what the hold covers.
    let saved: Vec<_> = w.reg.export_records();
    let restored = custody_registry::registry::Registry::restore(
        Config::default(),
        saved,
        &w.reg.nonce_pairs(),
        w.reg.position(),
    )
    .unwrap();
    assert_eq!(restored.fingerprint(), w.reg.fingerprint());
    assert_eq!(restored.model(&name("acme/m")).unwrap().holds().len(), 1);
    let _ = d1;
}

#[test]
fn new_statements_parse_strictly() {
    let d = digest("one").to_string();
    let ok = [
        serde_json::json!({"hold": {"name": "acme/m"}}),
        serde_json::json!({"hold": {"name": "acme/m", "version": "1.0"}}),
        serde_json::json!({"release": {"name": "acme/m", "version": "1.0"}}),
        serde_json::json!({"deploy": {"name": "acme/m", "version": "1.0", "digest": d, "target": "prod-eu"}}),
        serde_json::json!({"transfer": {"name": "acme/m", "version": "1.0", "digest": d, "destination": "s3://mirror"}}),
        serde_json::json!({"break_glass": {"promote": {"name": "acme/m", "version": "1.0", "to": "production"}}}),
        serde_json::json!({"break_glass": {"rollback": {"name": "acme/m", "version": "1.0"}}}),
        serde_json::json!({"break_glass": {"tag": {"name": "acme/m", "tag": "production", "digest": d, "previous": null}}}),
    ];
    for v in ok {
        let e: Event = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
    }
    let bad = [
        serde_json::json!({"hold": {"name": "acme/m", "why": "x"}}),
        serde_json::json!({"hold": {"version": "1.0"}}),
        serde_json::json!({"deploy": {"name": "acme/m", "version": "1.0", "digest": d}}),
        serde_json::json!({"deploy": {"name": "acme/m", "version": "1.0", "digest": d, "target": ""}}),
        serde_json::json!({"deploy": {"name": "acme/m", "version": "1.0", "digest": d, "target": "a
b"}}),
        serde_json::json!({"transfer": {"name": "acme/m", "version": "1.0", "digest": d, "target": "x"}}),
        serde_json::json!({"break_glass": {"approve": {"name": "acme/m", "version": "1.0"}}}),
        serde_json::json!({"break_glass": {"grant": {}}}),
        serde_json::json!({"break_glass": {"promote": {"name": "acme/m", "version": "1.0", "to": "production"},
                                            "rollback": {"name": "acme/m", "version": "1.0"}}}),
        serde_json::json!({"break_glass": {}}),
    ];
    for v in bad {
        assert!(serde_json::from_value::<Event>(v.clone()).is_err(), "{v}");
    }
    // Duplicate fields in the raw bytes are refused too.
    let raw = r#"{"hold":{"name":"acme/m","name":"acme/x"}}"#;
    assert!(serde_json::from_str::<Event>(raw).is_err());
    let w = World::new();
    let _: Option<Statement> = None;
    let _ = w;
}

/// Known-answer vectors, also printed in docs/protocol.md ("Registry
/// state"): a third party's encoder must produce these bytes and hashes.
#[test]
fn hold_known_answer_vectors_match_the_docs() {
    let by_version = StateKey::Hold { name: name("acme/model"), version: Some(ver("1.0")) };
    let whole = StateKey::Hold { name: name("acme/model"), version: None };
    let value = StateValue::Hold(41);
    for k in [&by_version, &whole] {
        assert_eq!(&StateKey::decode(&k.encode()).unwrap(), k);
        let json = serde_json::to_string(k).unwrap();
        assert_eq!(&serde_json::from_str::<StateKey>(&json).unwrap(), k);
        assert!(value.fits(k));
    }
    assert_eq!(serde_json::to_string(&whole).unwrap(), r#"{"hold":{"name":"acme/model"}}"#);
    // A scope flag other than 0 or 1, and a version after flag 0, are not
    // canonical.
    let mut bad = whole.encode();
    *bad.last_mut().unwrap() = 2;
    assert!(StateKey::decode(&bad).is_err());
    let mut trailing = whole.encode();
    trailing.extend_from_slice(&[0, 1, b'x']);
    assert!(StateKey::decode(&trailing).is_err());
    assert_eq!(StateValue::decode(&value.encode()).unwrap(), value);
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md")).unwrap();
    let mut missing = Vec::new();
    for (what, hex) in [
        ("hold key encoding (version)", hex::encode(by_version.encode())),
        ("hold key hash (version)", by_version.hash().to_hex()),
        ("hold key encoding (name)", hex::encode(whole.encode())),
        ("hold key hash (name)", whole.hash().to_hex()),
        ("hold value encoding", hex::encode(value.encode())),
        ("hold value hash", value.hash().to_hex()),
    ] {
        if !docs.contains(&hex) {
            missing.push(format!("{what}: {hex}"));
        }
    }
    assert!(missing.is_empty(), "docs/protocol.md lacks:\n{}", missing.join("\n"));
}
