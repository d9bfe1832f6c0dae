//! Scenario 7, identity attacks, on the real binaries: statements that are
//! unsigned, badly signed, replayed, expired, by an unknown, impersonating,
//! revoked or rotated-away key, or out of the signer's scope are refused
//! over HTTP with their documented status and code and leave the tree size
//! unchanged; tag hijacks (stale `previous`, no maintainer role) fail and
//! the tag keeps pointing where its maintainer put it; and `custody
//! monitor` reports exactly the legitimate moves of the watched tag.

use custody_registry::dsse::Envelope;
use custody_registry::registry::Role;
use custody_registry::statement::events::Rotate;
use custody_registry::statement::{Event, PAYLOAD_TYPE};
use custody_testkit::scenario::*;

#[test]
fn forged_replayed_and_unauthorized_statements_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let (c, base) = (http(), d.log.url.clone());
    let root = admin_signer(&d);
    let admin = d.admin();
    let (alice, bob, dave) = (d.user("alice"), d.user("bob"), d.user("dave"));
    let (ka, kb, kd) = (alice.keygen("alice"), bob.keygen("bob"), dave.keygen("dave"));
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &kb, "--role", "maintainer", "--pattern", "demo/*"]);
    admin.ok(&["grant", &kd, "--role", "reader", "--pattern", "demo/*"]);
    let (alice_key, bob_key) = (user_signer(&alice), user_signer(&bob));
    // Actors driven over HTTP: carol and frank are maintainers whose keys
    // will be revoked and rotated away, erin a reader, mallory nobody.
    let (carol, erin, frank, mallory) = (signer("carol"), signer("erin"), signer("frank"), signer("mallory"));
    for (who, role) in [(&carol, Role::Maintainer), (&erin, Role::Reader), (&frank, Role::Maintainer)] {
        let (status, body) = post_statement(&c, &base, signed(&root, grant(who, role, "demo/*")));
        assert_eq!(status, 200, "{body}");
    }
    let (v1, v2) = (b"weights one ".repeat(3000), b"weights two ".repeat(3000));
    let (f1, f2) = (write_file(tmp.path(), "v1.bin", &v1), write_file(tmp.path(), "v2.bin", &v2));
    alice.ok(&["publish", &f1, "--name", "demo/m", "--version", "1"]);
    alice.ok(&["publish", &f2, "--name", "demo/m", "--version", "2"]);
    alice.ok(&["publish", &f1, "--name", "demo/other", "--version", "1"]);

    // A monitor watching demo/m starts here (at the current size).
    let rules = write_file(tmp.path(), "rules.json", br#"{"names": ["demo/m"]}"#);
    let watcher = d.user("watcher");
    assert_eq!(watcher.ok(&["monitor", "--watch", &rules, "--once"]), "");

    // Legitimate moves by the maintainer.
    let t1 = logged_index(&bob.ok(&["tag", "demo/m@1", "prod"]));
    let t2 = logged_index(&bob.ok(&["tag", "demo/m@2", "prod"]));
    let hijack = |previous| tag("demo/m", "prod", digest_of(&v1), previous);

    // Keys taken out of service by the log itself.
    let (status, body) = post_statement(&c, &base, signed(&root, revoke_key(&carol)));
    assert_eq!(status, 200, "{body}");
    let frank2 = signer_with_seed("frank", "frank-2");
    let (status, body) =
        post_statement(&c, &base, signed(&frank, Event::Rotate(Rotate { new_key: frank2.public().clone() })));
    assert_eq!(status, 200, "{body}");

    let unsigned = statement_at(&bob_key, now_secs(), hijack(Some(t2)));
    let no_signatures =
        Envelope { payload_type: PAYLOAD_TYPE.to_owned(), payload: unsigned.to_json(), signatures: vec![] }
            .to_json();
    let bad_signature = {
        let mut env = Envelope::parse(&signed(&bob_key, hijack(Some(t2)))).unwrap();
        let donor = Envelope::parse(&signed(&bob_key, hijack(None))).unwrap();
        env.signatures[0].sig = donor.signatures[0].sig;
        env.to_json()
    };
    let replayed = envelope_of(&get_bytes(&c, &format!("{base}/entries/{t2}")).unwrap());
    let impostor = signer_with_seed("bob", "erin"); // erin's live key, claiming to be bob
    let cases: Vec<(&str, u16, &str, Vec<u8>)> = vec![
        ("a bare statement, no envelope", 400, "bad_request", unsigned.to_json()),
        ("an envelope without signatures", 400, "bad_request", no_signatures),
        ("a signature over another statement", 401, "bad_signature", bad_signature),
        ("bob's logged move, replayed", 401, "replay", replayed),
        (
            "expired",
            401,
            "timestamp_outside_window",
            statement_at(&bob_key, now_secs() - 3600, hijack(Some(t2))).sign(&bob_key).unwrap(),
        ),
        (
            "from the future",
            401,
            "timestamp_outside_window",
            statement_at(&bob_key, now_secs() + 3600, hijack(Some(t2))).sign(&bob_key).unwrap(),
        ),
        ("an unknown key", 401, "unknown_key", signed(&mallory, hijack(Some(t2)))),
        ("erin's key claiming to be bob", 401, "key_actor_mismatch", signed(&impostor, hijack(Some(t2)))),
        ("a revoked key", 401, "key_revoked", signed(&carol, hijack(Some(t2)))),
        ("a rotated-away key", 401, "key_rotated", signed(&frank, hijack(Some(t2)))),
        (
            "a maintainer out of scope",
            403,
            "forbidden",
            signed(&bob_key, tag("other/m", "prod", digest_of(&v1), None)),
        ),
        (
            "a publisher granting itself maintainer",
            403,
            "forbidden",
            signed(&alice_key, grant(&alice_key, Role::Maintainer, "demo/*")),
        ),
        // Tag hijacks.
        ("a stale previous", 409, "stale_tag", signed(&bob_key, hijack(Some(t1)))),
        ("no previous on a moved tag", 409, "stale_tag", signed(&bob_key, hijack(None))),
        ("a publisher without the maintainer role", 403, "forbidden", signed(&alice_key, hijack(Some(t2)))),
        ("a reader", 403, "forbidden", signed(&erin, hijack(Some(t2)))),
    ];
    for (what, want, code, envelope) in cases {
        let size = tree_size(&c, &base);
        let (status, body) = post_statement(&c, &base, envelope);
        assert_eq!((status, body["error"].as_str()), (want, Some(code)), "{what}: {body}");
        assert!(body["detail"].is_string(), "{what}: {body}");
        assert_eq!(tree_size(&c, &base), size, "{what} changed the tree");
    }
    // No way around the statement route: raw appends are off, and a
    // download needs a signed access statement.
    let size = tree_size(&c, &base);
    let (status, body) =
        json(c.post(format!("{base}/entries")).body(signed(&bob_key, hijack(Some(t2)))).send().unwrap());
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "raw append: {body}");
    let (status, body) = json(c.get(format!("{base}/blobs/{}", digest_of(&v1))).send().unwrap());
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "unsigned download: {body}");
    assert_eq!(tree_size(&c, &base), size, "raw append or unsigned download changed the tree");
    // A download whose access statement carries another statement's
    // signature is refused as such, logs nothing and serves nothing; the
    // honest one is served under its logged access.
    let forged_access = {
        let mut env = Envelope::parse(&signed(&erin, access("demo/m", "1", digest_of(&v1)))).unwrap();
        let donor = Envelope::parse(&signed(&erin, access("demo/m", "2", digest_of(&v1)))).unwrap();
        env.signatures[0].sig = donor.signatures[0].sig;
        env.to_json()
    };
    let (status, body) = download(&c, &base, digest_of(&v1), &forged_access);
    assert_eq!((status, body["error"].as_str()), (401, Some("bad_signature")), "forged download: {body}");
    assert_eq!(tree_size(&c, &base), size, "a forged download changed the tree");
    let (status, body) =
        download(&c, &base, digest_of(&v1), &signed(&erin, access("demo/m", "1", digest_of(&v1))));
    assert_eq!(status, 200, "honest download: {body}");
    let size = tree_size(&c, &base);
    // Through the CLI, the publisher's hijack is refused the same way.
    let out = alice.run(&["tag", "demo/m@1", "prod"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("forbidden"), "{}", text(&out.stderr));
    assert_eq!(tree_size(&c, &base), size);

    // The tag still points at v2, as its maintainer left it, and a verified
    // pull by tag gets v2.
    let (_, r) = get_json(&c, &format!("{base}/registry/resolve?ref=demo/m:prod"));
    assert_eq!(
        (r["digest"].as_str(), r["tag_index"].as_u64()),
        (Some(digest_of(&v2).to_string().as_str()), Some(t2)),
        "{r}"
    );
    let pulled = tmp.path().join("pulled.bin");
    let out = dave.ok(&["pull", "demo/m:prod", "-o", pulled.to_str().unwrap()]);
    assert!(out.contains("verified demo/m@2"), "{out}");
    assert_eq!(std::fs::read(&pulled).unwrap(), v2);

    // One more legitimate move of the watched tag, and one of an unwatched name.
    let t3 = logged_index(&bob.ok(&["tag", "demo/m@1", "prod"]));
    bob.ok(&["tag", "demo/other@1", "prod"]);

    // The monitor reports exactly the three legitimate moves, once.
    let mut lines: Vec<serde_json::Value> = Vec::new();
    eventually("the monitor to report three tag moves", 20, || {
        let out = watcher.ok(&["monitor", "--watch", &rules, "--once"]);
        lines.extend(out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
        (lines.len() >= 3).then_some(())
    });
    let got: Vec<(&str, u64)> =
        lines.iter().map(|l| (l["rule"].as_str().unwrap(), l["index"].as_u64().unwrap())).collect();
    assert_eq!(got, [("tag_move", t1), ("tag_move", t2), ("tag_move", t3)], "{lines:?}");
    for (line, target) in lines.iter().zip([&v1, &v2, &v1]) {
        assert_eq!(line["actor"], "bob", "{line}");
        assert_eq!(line["event"]["tag"]["name"], "demo/m", "{line}");
        assert_eq!(line["event"]["tag"]["digest"], digest_of(target).to_string(), "{line}");
    }
    assert_eq!(lines[2]["event"]["tag"]["previous"].as_u64(), Some(t2), "{}", lines[2]);
    assert_eq!(watcher.ok(&["monitor", "--watch", &rules, "--once"]), "", "nothing is reported twice");
}
