//! Tags cannot route around approvals, on the real binaries. A maintainer
//! alone publishes `demo/model@2.0`, never approved, and points the
//! `production` tag, or a tag an admin protected with `custody protect`, at
//! it: the log refuses (403 `tag_protected`, `custody` exit 1) and appends
//! nothing. A log that accepted such a move anyway (built here as a generic
//! log fed raw leaves, which applies no registry rule) is named by `custody
//! audit` (exit 2, the entry's index). And `custody pull` refuses
//! deprecated and archived versions (exit 2) unless `--allow-status` names
//! their status.

use std::path::Path;

use custody_registry::dsse::Envelope;
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::PAYLOAD_TYPE;
use custody_testkit::scenario::dos::{init_log, serve_alone};
use custody_testkit::scenario::*;

/// Runs a `custody` command that must fail with `exit` and say `needle`,
/// and checks the tree did not grow.
fn refused(c: &reqwest::blocking::Client, base: &str, u: &User, args: &[&str], exit: i32, needle: &str) {
    let size = tree_size(c, base);
    u.cli(args).fails(exit, needle);
    assert_eq!(tree_size(c, base), size, "custody {args:?} changed the tree");
}

/// alice (publisher, maintainer), ann (approver), dave (reader) on demo/*;
/// demo/model@1 approved and in production, tagged `production`.
fn governed(tmp: &Path) -> (Deployment, User, User, User, Vec<u8>) {
    let d = Deployment::start(tmp);
    let admin = d.admin();
    let (alice, ann, dave) = (d.user("alice"), d.user("ann"), d.user("dave"));
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &ka, "--role", "maintainer", "--pattern", "demo/*"]);
    admin.ok(&["grant", &ann.keygen("ann"), "--role", "approver", "--pattern", "demo/*"]);
    admin.ok(&["grant", &dave.keygen("dave"), "--role", "reader", "--pattern", "demo/*"]);
    let v1 = b"approved weights ".repeat(3000);
    alice.ok(&["publish", &write_file(tmp, "v1.bin", &v1), "--name", "demo/model", "--version", "1"]);
    alice.ok(&["promote", "demo/model@1", "--to", "staging"]);
    ann.ok(&["approve", "demo/model@1"]);
    alice.ok(&["promote", "demo/model@1", "--to", "production"]);
    alice.ok(&["tag", "demo/model@1", "production"]);
    (d, alice, ann, dave, v1)
}

#[test]
fn a_lone_maintainer_cannot_tag_unapproved_weights_into_production_or_a_protected_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, alice, _ann, dave, v1) = governed(tmp.path());
    let (c, base) = (http(), d.log.url.clone());
    let admin = d.admin();
    let evil = b"unapproved weights ".repeat(3000);
    alice.ok(&[
        "publish",
        &write_file(tmp.path(), "v2.bin", &evil),
        "--name",
        "demo/model",
        "--version",
        "2.0",
    ]);

    // The built-in tag: refused by the log, exit 1 with its code.
    refused(&c, &base, &alice, &["tag", "demo/model@2.0", "production"], 1, "tag_protected");
    let prod = || {
        let (s, r) = get_json(&c, &format!("{base}/registry/resolve?ref=demo/model:production"));
        assert_eq!(s, 200, "{r}");
        r["tag_index"].as_u64().unwrap()
    };
    let (status, body) = post_statement(
        &c,
        &base,
        signed(&user_signer(&alice), tag("demo/model", "production", digest_of(&evil), Some(prod()))),
    );
    assert_eq!((status, body["error"].as_str()), (403, Some("tag_protected")), "{body}");

    // Any other tag is free until an admin protects it.
    let out = admin.ok(&["protect", "demo/model", "release", "--statuses", "production,staging"]);
    assert!(out.contains("logged protect demo/model:release"), "{out}");
    let (_, m) = get_json(&c, &format!("{base}/registry/models/demo/model"));
    let p = &m["protections"][0];
    assert_eq!(
        (p["tag"].as_str(), p["statuses"].clone()),
        (Some("release"), serde_json::json!(["staging", "production"]))
    );
    assert_eq!(p["index"].as_u64(), Some(logged_index(&out)), "{m}");
    refused(&c, &base, &alice, &["tag", "demo/model@2.0", "release"], 1, "tag_protected");
    let (status, body) = post_statement(
        &c,
        &base,
        signed(&user_signer(&alice), tag("demo/model", "release", digest_of(&evil), None)),
    );
    assert_eq!((status, body["error"].as_str()), (403, Some("tag_protected")), "{body}");
    // Only an admin protects; the built-in tags stay as they are; the
    // same set twice is a conflict; a bad status list is a usage error.
    refused(
        &c,
        &base,
        &alice,
        &["protect", "demo/model", "release", "--statuses", "development"],
        1,
        "forbidden",
    );
    refused(
        &c,
        &base,
        &admin,
        &["protect", "demo/model", "production", "--statuses", "development,production"],
        1,
        "builtin_tag",
    );
    refused(
        &c,
        &base,
        &admin,
        &["protect", "demo/model", "release", "--statuses", "staging,production"],
        1,
        "already_protected",
    );
    refused(&c, &base, &admin, &["protect", "demo/model", "release", "--statuses", "prod"], 64, "--statuses");
    // Statuses out of lifecycle order are one set spelled twice: 400.
    let key = admin_signer(&d);
    let stmt = statement_at(
        &key,
        now_secs(),
        protect("demo/model", "release", &[Lifecycle::Staging, Lifecycle::Production]),
    );
    let payload = String::from_utf8(stmt.to_json()).unwrap();
    let swapped = payload.replace(r#"["staging","production"]"#, r#"["production","staging"]"#);
    assert_ne!(payload, swapped);
    let envelope = Envelope::sign(PAYLOAD_TYPE, swapped.into_bytes(), &key).to_json();
    let size = tree_size(&c, &base);
    let (status, body) = post_statement(&c, &base, envelope);
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "not canonical: {body}");
    assert_eq!(tree_size(&c, &base), size);

    // The approved version may take the tag, and dave pulls it.
    alice.ok(&["tag", "demo/model@1", "release"]);
    let got = tmp.path().join("release.bin");
    let out = dave.ok(&["pull", "demo/model:release", "-o", got.to_str().unwrap()]);
    assert!(out.contains("verified demo/model@1"), "{out}");
    assert_eq!(std::fs::read(&got).unwrap(), v1);

    // Narrowed to staging, the tag on a production version is
    // disqualified at once: refused to readers, never moved on its own.
    admin.ok(&["protect", "demo/model", "release", "--statuses", "staging"]);
    let stale = tmp.path().join("stale.bin");
    dave.cli(&["pull", "demo/model:release", "-o", stale.to_str().unwrap()]).fails(2, "disqualified");
    assert!(!stale.exists());
    let (status, r) = get_json(&c, &format!("{base}/registry/resolve?ref=demo/model:release"));
    assert_eq!((status, r["error"].as_str()), (409, Some("tag_disqualified")), "{r}");
    // A maintainer moves the disqualified tag to a qualifying version.
    alice.ok(&["promote", "demo/model@2.0", "--to", "staging"]);
    alice.ok(&["tag", "demo/model@2.0", "release"]);
    let out = dave.ok(&["pull", "demo/model:release", "-o", stale.to_str().unwrap()]);
    assert!(out.contains("verified demo/model@2.0"), "{out}");
    let out = dave.ok(&["audit"]);
    assert!(out.contains("audit OK"), "{out}");
}

#[test]
fn pull_refuses_deprecated_and_archived_versions_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_d, alice, ann, dave, v1) = governed(tmp.path());
    let v2 = b"newer weights ".repeat(3000);
    alice.ok(&["publish", &write_file(tmp.path(), "v2.bin", &v2), "--name", "demo/model", "--version", "2"]);
    alice.ok(&["promote", "demo/model@2", "--to", "staging"]);
    ann.ok(&["approve", "demo/model@2"]);
    alice.ok(&["promote", "demo/model@2", "--to", "production"]);
    alice.ok(&["tag", "demo/model@1", "old"]);
    let out = tmp.path().join("got.bin");
    let o = out.to_str().unwrap();
    let hex = digest_of(&v1).to_string();

    // demo/model@1 is deprecated now: refused by every reference form,
    // downloaded or verified on disk, before anything is written.
    for r in ["demo/model@1", "demo/model:old", hex.as_str()] {
        dave.cli(&["pull", r, "-o", o]).fails(2, "deprecated");
        assert!(!out.exists(), "{r}");
    }
    std::fs::write(&out, &v1).unwrap();
    dave.cli(&["pull", "demo/model@1", "-o", o, "--verify-only"]).fails(2, "--allow-status deprecated");
    dave.cli(&["pull", "demo/model@1", "-o", o, "--verify-only", "--allow-status", "deprecated"]).ok();
    std::fs::remove_file(&out).unwrap();
    let got = dave.ok(&["pull", "demo/model:old", "-o", o, "--allow-status", "deprecated"]);
    assert!(got.contains("verified demo/model@1"), "{got}");
    assert_eq!(std::fs::read(&out).unwrap(), v1);
    std::fs::remove_file(&out).unwrap();
    // The environment variable does the same.
    let run = dave
        .command()
        .env("CUSTODY_ALLOW_STATUS", "deprecated")
        .args(["pull", &hex, "-o", o])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    std::fs::remove_file(&out).unwrap();

    // Archived: allowing deprecated is not enough.
    alice.ok(&["promote", "demo/model@1", "--to", "archived"]);
    dave.cli(&["pull", "demo/model@1", "-o", o, "--allow-status", "deprecated"]).fails(2, "archived");
    dave.ok(&["pull", "demo/model@1", "-o", o, "--allow-status", "deprecated,archived"]);
    std::fs::remove_file(&out).unwrap();
    dave.cli(&["pull", "demo/model@1", "-o", o, "--allow-status", "retired"]).fails(64, "--allow-status");

    // A digest is refused only when every version of it is: the same
    // bytes published again as a development version are usable.
    alice.ok(&[
        "publish",
        &write_file(tmp.path(), "again.bin", &v1),
        "--name",
        "demo/model",
        "--version",
        "3",
    ]);
    dave.ok(&["pull", &hex, "-o", o]);
    dave.cli(&["pull", "demo/model@1", "-o", tmp.path().join("x.bin").to_str().unwrap()])
        .fails(2, "archived");
}

#[test]
fn custody_audit_names_a_protected_tag_move_a_log_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, alice, ann) = (signer("root"), signer("alice"), signer("ann"));
    let weights = digest_of(b"weights of demo/model@2.0, never approved");
    for (case, tag_name) in [("builtin", "production"), ("protected", "release")] {
        // A log that applies no registry rule, holding an honest history.
        let data = tmp.path().join(case);
        let vkey = init_log(&data, true);
        let server = serve_alone(&data, &["--allow-raw-append"], None, &[]);
        let (c, base) = (http(), server.proc.url.clone());
        let honest = vec![
            leaf_now(&root, grant(&root, Role::Admin, "*")),
            leaf_now(&root, grant(&alice, Role::Publisher, "demo/*")),
            leaf_now(&root, grant(&alice, Role::Maintainer, "demo/*")),
            leaf_now(&root, grant(&ann, Role::Approver, "demo/*")),
            leaf_now(&alice, publish("demo/model", "2.0", weights, 4096)),
            leaf_now(&root, protect("demo/model", "release", &[Lifecycle::Production])),
        ];
        // Like a registry, it ends each batch with the commitment to the
        // state after it, computed here by a replay.
        let mut honest = honest;
        honest.push(commitment_after(&honest));
        let last = append_raw(&c, &base, &honest);
        let policy = tmp.path().join(format!("{case}.policy"));
        std::fs::write(&policy, format!("log {vkey}\nquorum none\n")).unwrap();
        let auditor = User::init(tmp.path(), &format!("auditor-{case}"), &policy, &base);
        let audited = |size: u64| {
            eventually("a checkpoint covering every entry", 30, || {
                let note = c.get(format!("{base}/checkpoint")).send().ok()?.text().ok()?;
                (note.lines().nth(1)?.parse::<u64>().ok()? == size).then_some(())
            });
            auditor.cli(&["audit", "--refetch"])
        };
        let run = audited(last + 1);
        run.ok();
        assert!(run.stdout.contains(&format!("audit OK: {} entries replayed", last + 1)), "{}", run.stdout);

        // alice alone moves the tag to her unapproved version, and this
        // log takes it.
        // Its commitment cannot be the state of a history the rules
        // refuse; it repeats the last one, and the audit stops earlier, at
        // the move.
        let bad_leaf = leaf_now(&alice, tag("demo/model", tag_name, weights, None));
        let bad = append_raw(&c, &base, &[bad_leaf]);
        let stale = custody_registry::leaf::CommitmentLeaf::decode(&honest[honest.len() - 1]).unwrap();
        let again = custody_registry::leaf::CommitmentLeaf { index: bad + 1, root: stale.root }.encode();
        let after = append_raw(&c, &base, &[again]);
        let run = audited(after + 1);
        run.fails(2, &format!("audit: entry {bad}"));
        assert!(run.stdout.contains(&format!("audit FAILED at entry {bad}")), "{case}: {}", run.stdout);
        assert!(run.stderr.contains("may only point at a version in production"), "{case}: {}", run.stderr);
    }
}
