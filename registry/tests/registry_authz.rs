//! Authorization holes closed in the registry rules, each told as the
//! statements an attacker would send: taking over an actor through a
//! revoked key, reading without the reader role (claiming a published
//! digest, or an access naming one name for another's bytes), and routing
//! around the two-person rule with tags, rollbacks and stolen approver
//! keys. For each, the replaying auditor flags the same statement when a
//! log appends it anyway, so server and auditor agree.

mod common;

use common::*;
use custody_registry::leaf::Leaf;
use custody_registry::names::{Reference, TagName};
use custody_registry::registry::{AuditProblem, Auditor, Config, Lifecycle, Rejection, Role};
use custody_registry::statement::Event;

/// The leaves `w` holds plus `bytes` appended at the next index, replayed
/// by an auditor: the finding, if any.
fn audit_with(w: &World, bytes: &[u8]) -> Option<(u64, AuditProblem)> {
    let mut leaves = w.leaves.clone();
    leaves.push(Leaf::new(w.now_ms, bytes).unwrap().encode());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    Auditor::new(Config::default()).feed(&refs).err().map(|f| (f.index, f.problem))
}

/// Asserts the auditor accepts `w`'s log as it is, and flags `event` signed
/// by `who` (refused by the server as `want`) at the next index.
fn auditor_agrees(w: &mut World, who: &str, event: Event, want: &Rejection) {
    let clean: Vec<&[u8]> = w.leaves.iter().map(Vec::as_slice).collect();
    assert!(Auditor::new(Config::default()).feed(&clean).is_ok(), "the honest log audits clean");
    let bytes = w.statement(who, event).sign(&w.signers[who]).unwrap();
    let finding = audit_with(w, &bytes);
    assert_eq!(finding, Some((w.next_index, AuditProblem::Rejected(want.clone()))));
}

/// An access event as JSON, so the test also runs (and fails) where
/// `access` named only a digest.
fn access(n: &str, v: &str, d: custody_registry::names::Digest) -> Event {
    serde_json::from_value(serde_json::json!({"access": {"name": n, "version": v, "digest": d.to_string()}}))
        .expect("access names name, version and digest")
}

#[test]
fn a_revoked_actor_cannot_be_rekeyed_by_a_scoped_admin() {
    let mut w = World::new();
    w.grant("carol", Role::Admin, "team/*");
    w.grant("bob", Role::Admin, "*");
    w.grant("tim", Role::Reader, "team/y");
    // bob's laptop is stolen: root revokes his key.
    let bob0 = w.signers["bob"].clone();
    w.ok("root", revoke_key_event("bob", &bob0));
    // carol binds a key she made to "bob" through a grant inside her scope.
    let hijack = w.add_signer("bob", 1);
    let event = grant_event("bob", &hijack, Role::Reader, "team/x");
    let r = w.reject("carol", event.clone());
    assert_eq!(
        r,
        Rejection::RebindForbidden { signer: actor("carol"), actor: actor("bob"), pattern: pat("*") }
    );
    assert_eq!((r.http_status(), r.code()), (403, "rebind_forbidden"));
    auditor_agrees(&mut w, "carol", event, &r);

    // The same binding by an admin on * is the documented way back.
    w.ok("root", grant_event("bob", &hijack, Role::Reader, "team/x"));
    // carol may re-key an actor whose every role is inside her scope, and
    // create new actors as before.
    let tim0 = w.signers["tim"].clone();
    w.ok("root", revoke_key_event("tim", &tim0));
    let tim1 = w.add_signer("tim", 1);
    w.ok("carol", grant_event("tim", &tim1, Role::Reader, "team/x"));
    let newbie = w.add_signer("newbie", 0);
    w.ok("carol", grant_event("newbie", &newbie, Role::Publisher, "team/z"));
    // A scoped admin granting an actor with a live key (no binding) only
    // needs admin over the granted pattern.
    w.ok("carol", grant_event("bob", &hijack, Role::Publisher, "team/z"));
}

#[test]
fn claiming_a_published_digest_needs_reader_on_a_name_that_published_it() {
    let mut w = World::new();
    w.grant("pete", Role::Publisher, "secret/*");
    w.grant("sam", Role::Publisher, "sandbox/*");
    let secret = digest("secret weights");
    w.ok("pete", publish_event("secret/model", "1", secret));
    let event = publish_event("sandbox/copy", "1", secret);
    let r = w.reject("sam", event.clone());
    assert!(matches!(&r, Rejection::Forbidden { role: Role::Reader, .. }), "{r:?}");
    assert_eq!((r.http_status(), r.code()), (403, "forbidden"));
    auditor_agrees(&mut w, "sam", event, &r);
    // New bytes are his to publish; with reader on secret/*, so are these.
    w.ok("sam", publish_event("sandbox/own", "1", digest("sam's own")));
    w.grant("sam", Role::Reader, "secret/*");
    w.ok("sam", publish_event("sandbox/copy", "1", secret));
    // The publisher's own idempotent resubmission still answers "already logged".
    assert!(w.submit("pete", publish_event("secret/model", "1", secret)).is_ok());
}

#[test]
fn an_access_is_authorized_on_the_name_it_names() {
    let mut w = World::new();
    w.grant("pete", Role::Publisher, "secret/*");
    w.grant("rita", Role::Publisher, "sandbox/*");
    w.grant("root2", Role::Reader, "secret/*");
    let (secret, mine) = (digest("secret weights"), digest("rita's weights"));
    w.ok("pete", publish_event("secret/model", "1", secret));
    w.ok("rita", publish_event("sandbox/mine", "1", mine));
    w.grant("rita", Role::Reader, "secret/model"); // a reader of secret/model only
    w.grant("pete", Role::Reader, "sandbox/*"); // may read hers, so may publish them again
    w.ok("pete", publish_event("secret/other", "1", mine)); // same bytes as hers, another name

    // rita reads what she may, under the name she may read it.
    w.ok("rita", access("sandbox/mine", "1", mine));
    w.ok("rita", access("secret/model", "1", secret));
    // Not secret/other, although its bytes are the ones she published.
    let event = access("secret/other", "1", mine);
    let r = w.reject("rita", event.clone());
    assert!(matches!(&r, Rejection::Forbidden { role: Role::Reader, .. }), "{r:?}");
    assert_eq!(r.http_status(), 403);
    auditor_agrees(&mut w, "rita", event, &r);
    // The version must exist with exactly that digest.
    let r = w.reject("rita", access("sandbox/mine", "2", mine));
    assert_eq!((r.http_status(), r.code()), (422, "unknown_version"));
    let r = w.reject("rita", access("sandbox/mine", "1", secret));
    assert_eq!((r, 422), (Rejection::UnknownDigest(secret), 422));
    // Nobody's name: no role.
    let r = w.reject("root2", access("sandbox/mine", "1", mine));
    assert_eq!(r.code(), "forbidden");
}

/// root; mia publisher+maintainer, pat publisher+approver, ann approver on
/// acme/*; acme/m@1 by mia in staging.
fn governed() -> World {
    let mut w = World::new();
    w.grant("mia", Role::Publisher, "acme/*");
    w.grant("mia", Role::Maintainer, "acme/*");
    w.grant("pat", Role::Publisher, "acme/*");
    w.grant("pat", Role::Approver, "acme/*");
    w.grant("ann", Role::Approver, "acme/*");
    w.ok("mia", publish_event("acme/m", "1", digest("m1")));
    w.ok("mia", promote_event("acme/m", "1", Lifecycle::Staging));
    w
}

fn production(w: &World) -> Option<String> {
    w.reg.model(&name("acme/m")).and_then(|m| m.production.as_ref().map(|v| v.as_str().to_owned()))
}

#[test]
fn protected_tags_follow_the_lifecycle() {
    let mut w = governed();
    w.ok("mia", publish_event("acme/m", "dev", digest("dev")));
    // A lone maintainer cannot point production (or staging) at what the
    // two-person rule has not let through.
    let event = tag_event("acme/m", "production", digest("m1"), None);
    let r = w.reject("mia", event.clone());
    assert_eq!(
        r,
        Rejection::TagProtected {
            name: name("acme/m"),
            tag: TagName::new("production").unwrap(),
            digest: digest("m1"),
            required: vec![Lifecycle::Production],
        }
    );
    assert_eq!((r.http_status(), r.code()), (403, "tag_protected"));
    auditor_agrees(&mut w, "mia", event, &r);
    assert_eq!(w.reject("mia", tag_event("acme/m", "staging", digest("dev"), None)).code(), "tag_protected");
    // Ordinary tags are free; staging may point at a staging version.
    w.ok("mia", tag_event("acme/m", "latest", digest("dev"), None));
    let st = w.ok("mia", tag_event("acme/m", "staging", digest("m1"), None));

    w.ok("ann", approve_event("acme/m", "1"));
    w.ok("mia", promote_event("acme/m", "1", Lifecycle::Production));
    let pt = w.ok("mia", tag_event("acme/m", "production", digest("m1"), None));
    let resolve =
        |w: &World, t: &str| w.reg.resolve(&Reference::parse(&format!("acme/m:{t}")).unwrap()).unwrap();
    assert_eq!(resolve(&w, "production").disqualified, None);
    assert_eq!(resolve(&w, "staging").disqualified, None, "staging accepts production");

    // A newer version takes production: the tag is disqualified, not moved.
    w.ok("pat", publish_event("acme/m", "2", digest("m2")));
    w.ok("mia", promote_event("acme/m", "2", Lifecycle::Staging));
    w.ok("ann", approve_event("acme/m", "2"));
    w.ok("mia", promote_event("acme/m", "2", Lifecycle::Production));
    let res = resolve(&w, "production");
    assert_eq!((res.digest, res.tag_move), (digest("m1"), Some(pt)));
    let d = res.disqualified.expect("production tag on a deprecated version");
    assert_eq!(d.states, vec![(ver("1"), Lifecycle::Deprecated)]);
    assert!(d.to_string().contains("1 is deprecated"), "{d}");
    assert!(resolve(&w, "staging").disqualified.is_some());
    assert_eq!(resolve(&w, "latest").disqualified, None);
    // The maintainer moves it to the new production version.
    w.ok("mia", tag_event("acme/m", "production", digest("m2"), Some(pt)));
    w.ok("mia", tag_event("acme/m", "staging", digest("m2"), Some(st)));
    assert_eq!(resolve(&w, "production").disqualified, None);
}

#[test]
fn approvals_by_the_publisher_do_not_count() {
    let mut w = governed();
    // pat publishes and approves his own version: one person, not two.
    w.ok("pat", publish_event("acme/m", "2", digest("m2")));
    w.ok("mia", promote_event("acme/m", "2", Lifecycle::Staging));
    w.ok("pat", approve_event("acme/m", "2"));
    let event = promote_event("acme/m", "2", Lifecycle::Production);
    assert_eq!(w.reject("mia", event.clone()), Rejection::ApprovalRequired);
    auditor_agrees(&mut w, "mia", event, &Rejection::ApprovalRequired);
    // Another approver's approval counts.
    w.ok("ann", approve_event("acme/m", "2"));
    w.ok("mia", promote_event("acme/m", "2", Lifecycle::Production));
}

#[test]
fn approvals_signed_with_a_key_later_revoked_do_not_count() {
    let mut w = governed();
    // ann approves 1, then her key turns out to be stolen.
    w.ok("ann", approve_event("acme/m", "1"));
    let ann0 = w.signers["ann"].clone();
    w.ok("root", revoke_key_event("ann", &ann0));
    let event = promote_event("acme/m", "1", Lifecycle::Production);
    assert_eq!(w.reject("mia", event.clone()), Rejection::ApprovalRequired);
    auditor_agrees(&mut w, "mia", event.clone(), &Rejection::ApprovalRequired);
    // Re-keyed by root, she approves again, and that counts.
    let ann1 = w.add_signer("ann", 1);
    w.ok("root", grant_event("ann", &ann1, Role::Reader, "acme/*"));
    w.ok("ann", approve_event("acme/m", "1"));
    assert_eq!(w.reject("ann", approve_event("acme/m", "1")).code(), "already_approved");
    w.ok("mia", event);
    assert_eq!(production(&w).as_deref(), Some("1"));
}

#[test]
fn rollback_needs_a_fresh_approval_by_someone_else() {
    let mut w = governed();
    w.ok("ann", approve_event("acme/m", "1"));
    w.ok("mia", promote_event("acme/m", "1", Lifecycle::Production));
    w.ok("mia", publish_event("acme/m", "2", digest("m2")));
    w.ok("mia", promote_event("acme/m", "2", Lifecycle::Staging));
    w.ok("ann", approve_event("acme/m", "2"));
    w.ok("mia", promote_event("acme/m", "2", Lifecycle::Production));
    // ann's approval of 1 was spent on its first promotion.
    let event = rollback_event("acme/m", "1");
    assert_eq!(w.reject("mia", event.clone()), Rejection::ApprovalRequired);
    assert_eq!(Rejection::ApprovalRequired.http_status(), 422);
    auditor_agrees(&mut w, "mia", event.clone(), &Rejection::ApprovalRequired);
    // The maintainer approving her own rollback is no second person.
    w.grant("mia", Role::Approver, "acme/*");
    w.ok("mia", approve_event("acme/m", "1"));
    assert_eq!(w.reject("mia", event.clone()), Rejection::ApprovalRequired);
    // A fresh approval by ann, after 1 left production, lets it back.
    w.ok("ann", approve_event("acme/m", "1"));
    w.ok("mia", event);
    assert_eq!(production(&w).as_deref(), Some("1"));
}

fn protect_event(n: &str, t: &str, statuses: &[Lifecycle]) -> Event {
    Event::Protect(custody_registry::statement::events::Protect {
        name: name(n),
        tag: TagName::new(t).unwrap(),
        statuses: statuses.to_vec(),
    })
}

#[test]
fn an_admin_protects_a_tag_and_a_lone_maintainer_cannot_route_around_it() {
    use Lifecycle::*;
    let mut w = governed();
    w.grant("ada", Role::Admin, "acme/*");
    w.grant("eve", Role::Admin, "other/*");
    w.ok("mia", publish_event("acme/m", "2", digest("m2")));
    // Only an admin over the name protects its tags.
    let event = protect_event("acme/m", "release", &[Production]);
    for who in ["mia", "eve"] {
        let r = w.reject(who, event.clone());
        assert!(matches!(&r, Rejection::Forbidden { role: Role::Admin, .. }), "{who}: {r:?}");
        assert_eq!((r.http_status(), r.code()), (403, "forbidden"));
        auditor_agrees(&mut w, who, event.clone(), &r);
    }
    let at = w.ok("ada", event.clone());
    let m = w.reg.model(&name("acme/m")).unwrap();
    let p = &m.protections()[&TagName::new("release").unwrap()];
    assert_eq!((p.statuses.as_slice(), p.index), (&[Production][..], at));
    // The same set again changes nothing: 409.
    let r = w.reject("ada", event);
    assert_eq!(
        r,
        Rejection::AlreadyProtected {
            name: name("acme/m"),
            tag: TagName::new("release").unwrap(),
            index: at
        }
    );
    assert_eq!((r.http_status(), r.code()), (409, "already_protected"));

    // mia alone points release at her unapproved version: refused, and the
    // auditor flags the same move in a log that took it.
    let event = tag_event("acme/m", "release", digest("m2"), None);
    let r = w.reject("mia", event.clone());
    assert_eq!(
        r,
        Rejection::TagProtected {
            name: name("acme/m"),
            tag: TagName::new("release").unwrap(),
            digest: digest("m2"),
            required: vec![Production],
        }
    );
    assert_eq!((r.http_status(), r.code()), (403, "tag_protected"));
    assert!(r.to_string().contains("in production"), "{r}");
    auditor_agrees(&mut w, "mia", event, &r);
    // Through the two-person rule, it may.
    w.ok("ann", approve_event("acme/m", "1"));
    w.ok("mia", promote_event("acme/m", "1", Production));
    let rt = w.ok("mia", tag_event("acme/m", "release", digest("m1"), None));
    let resolve = |w: &World| w.reg.resolve(&Reference::parse("acme/m:release").unwrap()).unwrap();
    assert_eq!(resolve(&w).disqualified, None);
    assert_eq!(
        w.reg.tag_requirement(&name("acme/m"), &TagName::new("release").unwrap()).unwrap().protected_at,
        Some(at)
    );

    // A new protect replaces the set; the tag, now on a version outside
    // it, is disqualified (not refused, not moved).
    let again = w.ok("ada", protect_event("acme/m", "release", &[Staging]));
    let d = resolve(&w).disqualified.expect("release on a production version, staging required");
    assert_eq!((d.required.clone(), d.states.clone()), (vec![Staging], vec![(ver("1"), Production)]));
    assert!(d.to_string().contains("requires a version in staging"), "{d}");
    // Every status: the constraint is lifted, the record stays.
    w.ok(
        "ada",
        protect_event("acme/m", "release", &[Development, Staging, Production, Deprecated, Archived]),
    );
    assert_eq!(resolve(&w).disqualified, None);
    w.ok("mia", tag_event("acme/m", "release", digest("m2"), Some(rt)));
    assert!(
        w.reg.model(&name("acme/m")).unwrap().protections()[&TagName::new("release").unwrap()].index > again
    );
}

#[test]
fn built_in_tags_cannot_be_protected_anew_and_protection_precedes_publishing() {
    use Lifecycle::*;
    let mut w = governed();
    for tag in ["production", "staging"] {
        let event = protect_event("acme/m", tag, &[Development, Staging, Production]);
        let r = w.reject("root", event.clone());
        assert_eq!(r, Rejection::BuiltinTag(TagName::new(tag).unwrap()));
        assert_eq!((r.http_status(), r.code()), (422, "builtin_tag"));
        auditor_agrees(&mut w, "root", event, &r);
    }
    // A name nobody published yet may be protected first.
    w.ok("root", protect_event("acme/new", "release", &[Staging, Production]));
    w.ok("mia", publish_event("acme/new", "1", digest("n1")));
    let r = w.reject("mia", tag_event("acme/new", "release", digest("n1"), None));
    assert_eq!(r.code(), "tag_protected");
    w.ok("mia", promote_event("acme/new", "1", Staging));
    w.ok("mia", tag_event("acme/new", "release", digest("n1"), None));
    // An ordinary tag of the same name stays free.
    w.ok("mia", tag_event("acme/new", "latest", digest("n1"), None));
}

#[test]
fn protect_status_sets_are_canonical() {
    let mut w = governed();
    let stmt = w.statement("root", protect_event("acme/m", "rc", &[Lifecycle::Staging]));
    let parse = |statuses: serde_json::Value| {
        let mut s = serde_json::to_value(&stmt).unwrap();
        s["event"]["protect"]["statuses"] = statuses;
        custody_registry::statement::Statement::parse(s.to_string().as_bytes())
    };
    assert!(parse(serde_json::json!(["staging", "production"])).is_ok());
    for bad in [
        serde_json::json!([]),
        serde_json::json!(["production", "staging"]),
        serde_json::json!(["staging", "staging"]),
        serde_json::json!(["prod"]),
    ] {
        let e = parse(bad.clone()).expect_err("refused");
        assert_eq!(e.http_status(), 400, "{bad}: {e}");
    }
}
