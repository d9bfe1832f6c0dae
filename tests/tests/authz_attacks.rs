//! Authorization attacks on the real binaries: the registry's governance
//! cannot be walked around. Taking over an actor whose key was revoked,
//! reading an artifact without the reader role on its name (by claiming its
//! published digest, or by an access naming another name), and routing
//! around the two-person rule with a protected tag or a rollback are all
//! refused with their documented status and code, append nothing, and
//! `custody audit` still replays the log clean. A pull of a protected tag
//! whose version left production is refused, never silently moved.

use custody_registry::registry::Role;
use custody_testkit::scenario::*;

/// Runs a `custody` command that must be refused with `code`, and checks
/// the tree did not grow.
fn refused(c: &reqwest::blocking::Client, base: &str, u: &User, args: &[&str], exit: i32, code: &str) {
    let size = tree_size(c, base);
    let out = u.run(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit), "custody {args:?}: {}{stderr}", text(&out.stdout));
    assert!(stderr.contains(code), "custody {args:?} should say {code}: {stderr}");
    assert_eq!(tree_size(c, base), size, "custody {args:?} changed the tree");
}

#[test]
fn a_scoped_admin_cannot_take_over_an_actor_whose_key_was_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let (c, base) = (http(), d.log.url.clone());
    let admin = d.admin();
    let (bob, carol) = (d.user("bob"), d.user("carol"));
    let kb = bob.keygen("bob");
    admin.ok(&["grant", &carol.keygen("carol"), "--role", "admin", "--pattern", "team/*"]);
    admin.ok(&["grant", &kb, "--role", "admin", "--pattern", "*"]);
    // bob's laptop is stolen: his key is revoked.
    admin.ok(&["revoke-key", &kb]);
    // carol makes a key for "bob" and binds it with a grant inside her scope.
    let workshop = d.user("carols-workshop");
    let fake_bob = workshop.keygen("bob");
    refused(
        &c,
        &base,
        &carol,
        &["grant", &fake_bob, "--role", "reader", "--pattern", "team/x"],
        1,
        "rebind_forbidden",
    );
    // Over HTTP, the same: 403 rebind_forbidden.
    let size = tree_size(&c, &base);
    let (status, body) = post_statement(
        &c,
        &base,
        signed(&user_signer(&carol), grant(&user_signer(&workshop), Role::Reader, "team/x")),
    );
    assert_eq!((status, body["error"].as_str()), (403, Some("rebind_forbidden")), "{body}");
    assert_eq!(tree_size(&c, &base), size);
    // The key never became bob's: it can do nothing.
    refused(
        &c,
        &base,
        &workshop,
        &["grant", &d.user("mallory").keygen("mallory"), "--role", "admin", "--pattern", "*"],
        1,
        "unknown_key",
    );
    // The admin on * may re-key bob, and the log audits clean.
    admin.ok(&["grant", &fake_bob, "--role", "reader", "--pattern", "team/x"]);
    let out = admin.ok(&["audit"]);
    assert!(out.contains("audit OK"), "{out}");
}

#[test]
fn reading_needs_the_reader_role_on_the_name_read() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let (c, base) = (http(), d.log.url.clone());
    let admin = d.admin();
    let (pete, sam, dave) = (d.user("pete"), d.user("sam"), d.user("dave"));
    admin.ok(&["grant", &pete.keygen("pete"), "--role", "publisher", "--pattern", "secret/*"]);
    admin.ok(&["grant", &sam.keygen("sam"), "--role", "publisher", "--pattern", "sandbox/*"]);
    admin.ok(&["grant", &dave.keygen("dave"), "--role", "reader", "--pattern", "sandbox/*"]);
    let secret = b"secret weights ".repeat(4000);
    let mine = b"sandbox weights ".repeat(4000);
    pete.ok(&[
        "publish",
        &write_file(tmp.path(), "secret.bin", &secret),
        "--name",
        "secret/model",
        "--version",
        "1",
    ]);
    sam.ok(&[
        "publish",
        &write_file(tmp.path(), "mine.bin", &mine),
        "--name",
        "sandbox/mine",
        "--version",
        "1",
    ]);
    let (sam_key, dave_key) = (user_signer(&sam), user_signer(&dave));

    // sam claims the stored secret digest (public, with its size) under his
    // own name, to download it from there.
    let claim = publish("sandbox/copy", "1", digest_of(&secret), secret.len() as u64);
    let size = tree_size(&c, &base);
    let (status, body) = post_statement(&c, &base, signed(&sam_key, claim));
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "claim: {body}");
    assert_eq!(tree_size(&c, &base), size, "the claim changed the tree");

    // dave, a reader of sandbox/* only, asks for the secret bytes: by its
    // own name, and under a sandbox version that is not those bytes.
    for (what, event, want) in [
        ("naming secret/model", access("secret/model", "1", digest_of(&secret)), (403, "forbidden")),
        ("naming sandbox/mine", access("sandbox/mine", "1", digest_of(&secret)), (422, "unknown_digest")),
        (
            "naming a version that is not",
            access("sandbox/mine", "9", digest_of(&secret)),
            (422, "unknown_version"),
        ),
    ] {
        let (status, body) = download(&c, &base, digest_of(&secret), &signed(&dave_key, event));
        assert_eq!((status, body["error"].as_str()), (want.0, Some(want.1)), "{what}: {body}");
        assert_eq!(tree_size(&c, &base), size, "{what} changed the tree");
    }
    // What he may read, he reads, and the log audits clean.
    let out = dave.ok(&["pull", "sandbox/mine@1", "-o", tmp.path().join("got.bin").to_str().unwrap()]);
    assert!(out.contains("verified sandbox/mine@1"), "{out}");
    assert_eq!(std::fs::read(tmp.path().join("got.bin")).unwrap(), mine);
    let out = dave.ok(&["audit"]);
    assert!(out.contains("audit OK"), "{out}");
}

#[test]
fn protected_tags_and_rollbacks_keep_the_two_person_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let (c, base) = (http(), d.log.url.clone());
    let admin = d.admin();
    let (alice, ann, dave) = (d.user("alice"), d.user("ann"), d.user("dave"));
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &ka, "--role", "maintainer", "--pattern", "demo/*"]);
    admin.ok(&["grant", &ann.keygen("ann"), "--role", "approver", "--pattern", "demo/*"]);
    admin.ok(&["grant", &dave.keygen("dave"), "--role", "reader", "--pattern", "demo/*"]);
    let (v1, v2) = (b"weights one ".repeat(3000), b"weights two ".repeat(3000));
    alice.ok(&["publish", &write_file(tmp.path(), "v1.bin", &v1), "--name", "demo/model", "--version", "1"]);

    // A lone maintainer cannot send unapproved weights to production by tag.
    refused(&c, &base, &alice, &["tag", "demo/model@1", "production"], 1, "tag_protected");
    refused(&c, &base, &alice, &["tag", "demo/model@1", "staging"], 1, "tag_protected");
    let out = dave.run(&["pull", "demo/model:production", "-o", tmp.path().join("x.bin").to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "nothing to pull");

    // The two-person path.
    alice.ok(&["promote", "demo/model@1", "--to", "staging"]);
    alice.ok(&["tag", "demo/model@1", "staging"]);
    ann.ok(&["approve", "demo/model@1"]);
    alice.ok(&["promote", "demo/model@1", "--to", "production"]);
    alice.ok(&["tag", "demo/model@1", "production"]);
    let pulled = tmp.path().join("prod.bin");
    let out = dave.ok(&["pull", "demo/model:production", "-o", pulled.to_str().unwrap()]);
    assert!(out.contains("verified demo/model@1"), "{out}");

    // v2 takes production; the tag still names v1, now deprecated: pulls of
    // it are refused (exit 2), and it is not moved behind anyone's back.
    alice.ok(&["publish", &write_file(tmp.path(), "v2.bin", &v2), "--name", "demo/model", "--version", "2"]);
    alice.ok(&["promote", "demo/model@2", "--to", "staging"]);
    ann.ok(&["approve", "demo/model@2"]);
    alice.ok(&["promote", "demo/model@2", "--to", "production"]);
    let stale = tmp.path().join("stale.bin");
    let out = dave.run(&["pull", "demo/model:production", "-o", stale.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("disqualified"), "{stderr}");
    assert!(!stale.exists(), "a disqualified tag wrote a file");
    let (status, r) = get_json(&c, &format!("{base}/registry/resolve?ref=demo/model:production"));
    assert_eq!((status, r["error"].as_str()), (409, Some("tag_disqualified")), "{r}");

    // Rolling back needs a fresh approval by someone else.
    refused(&c, &base, &alice, &["rollback", "demo/model@1"], 1, "approval_required");
    ann.ok(&["approve", "demo/model@1"]);
    alice.ok(&["rollback", "demo/model@1"]);
    let out = dave.ok(&["pull", "demo/model:production", "-o", stale.to_str().unwrap()]);
    assert!(out.contains("verified demo/model@1"), "{out}");
    assert_eq!(std::fs::read(&stale).unwrap(), v1);
    let out = dave.ok(&["audit"]);
    assert!(out.contains("audit OK"), "{out}");
}
