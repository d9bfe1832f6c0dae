//! `custody --output json` on the real binaries: every command that reports
//! a result prints exactly one JSON object on stdout, with the fields
//! docs/verifier.md ("Machine-readable output") documents and values that
//! match the log (a receipt's index holds the statement, its leaf hash and
//! checkpoint prove it) and the files (digests); `--json` still works where
//! it existed; a failure prints `{"error": {...}}` with the exit code the
//! text mode has; and the text output is what it always was.

use std::collections::BTreeSet;
use std::path::Path;

use custody_registry::evidence::{Evidence, EvidenceCheckpoint};
use custody_registry::statement::SignedStatement;
use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::{leaf_hash, Hash, SignerKey};
use custody_testkit::scenario::*;
use reqwest::blocking::Client;
use serde_json::Value;

const FROM: &str = "2000-01-01T00:00:00Z";
const TO: &str = "2999-01-01T00:00:00Z";

#[test]
fn every_command_prints_one_documented_json_object_matching_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = Deployment::start(dir);
    let c = http();
    let admin = d.admin();
    let policy = d.policy.to_str().unwrap();

    // init, keygen, whoami: local files only.
    let ivy = User::new(dir, "ivy");
    let v = json(&ivy, &["init", "--policy", policy, "--log", &d.log.url]);
    fields(&v, &["ca_cert", "config_file", "log_url", "policy_file", "state_dir"]);
    assert_eq!(v["config_file"], ivy.home.join("config.json").to_str().unwrap());
    assert_eq!(v["log_url"], d.log.url.trim_end_matches('/'));
    assert_eq!(v["ca_cert"], Value::Null);
    let (alice, carol, dave, erin) = (d.user("alice"), d.user("carol"), d.user("dave"), d.user("erin"));
    let home = alice.home.to_str().unwrap();
    let text = User::new(dir, "text").ok(&["init", "--policy", policy, "--log", &d.log.url]);
    let home_t = dir.join("home-text");
    let want = format!(
        "configured {0}/config.json with policy {0}/policy\nstate directory: {0}\n",
        home_t.display()
    );
    assert_eq!(text, want, "init text changed");

    let k = json(&alice, &["keygen", "alice"]);
    fields(&k, &["actor", "key_file", "key_id", "public_key"]);
    assert_eq!((k["actor"].as_str(), k["key_file"].as_str()), (Some("alice"), Some(&*format!("{home}/key"))));
    let ka = k["public_key"].as_str().unwrap().to_owned();
    assert!(ka.starts_with("alice+"), "{ka}");
    assert_eq!(json(&alice, &["whoami"])["key_id"], k["key_id"]);
    let kc = carol.keygen("carol"); // text: the public key line alone
    let w = json(&carol, &["whoami"]);
    fields(&w, &["actor", "key_id", "public_key"]);
    assert_eq!(w["public_key"], kc.as_str());
    let want = format!("actor: carol\nkey id: {}\npublic key: {kc}\n", w["key_id"].as_str().unwrap());
    assert_eq!(carol.ok(&["whoami"]), want, "whoami text changed");
    let (kd, ke) = (dave.keygen("dave"), erin.keygen("erin"));
    let erin_id = json(&erin, &["whoami"])["key_id"].clone();

    // Statements: every receipt is checked against the log itself.
    let grant_fields = ["action", "actor", "key", "pattern", "receipt", "role"];
    for (key, actor, role) in [
        (&ka, "alice", "publisher"),
        (&ka, "alice", "maintainer"),
        (&kc, "carol", "approver"),
        (&kd, "dave", "reader"),
        (&ke, "erin", "reader"),
    ] {
        let g = json(&admin, &["grant", key, "--role", role, "--pattern", "demo/*"]);
        fields(&g, &grant_fields);
        assert_eq!((g["actor"].as_str(), g["role"].as_str()), (Some(actor), Some(role)));
        assert_eq!((g["key"].as_str(), g["pattern"].as_str()), (Some(key.as_str()), Some("demo/*")));
        check_receipt(&c, &d, &g, "grant");
    }

    let old_cp = json(&dave, &["checkpoint"]);
    fields(&old_cp, &["cosigners", "note", "origin", "root", "size"]);
    assert_eq!(old_cp["origin"], d.origin.as_str());
    assert!(old_cp["size"].as_u64().unwrap() <= tree_size(&c, &d.log.url));
    assert!(old_cp["cosigners"].as_array().unwrap().len() >= 2, "2-of-3 policy: {old_cp}");
    let old_note = write_file(dir, "old.cp", old_cp["note"].as_str().unwrap().as_bytes());
    let text = dave.ok(&["checkpoint"]);
    assert!(text.starts_with(&format!("checkpoint: {} size ", d.origin)), "{text}");
    assert!(text.contains("\ncosigned by: "), "{text}");

    // publish with a receipt and a tag.
    let v1 = b"weights v1 ".repeat(3000);
    let model = write_file(dir, "model.bin", &v1);
    let receipt = dir.join("model.tlog-proof");
    let r = receipt.to_str().unwrap();
    let p1 = json(
        &alice,
        &["publish", &model, "--name", "demo/model", "--version", "1", "--tag", "latest", "--bundle", r],
    );
    let publish_fields = [
        "action",
        "digest",
        "kind",
        "lineage",
        "media_type",
        "metadata",
        "name",
        "receipt",
        "size",
        "tag",
        "version",
    ];
    fields(&p1, &publish_fields);
    assert_eq!(p1["digest"], format!("sha256:{}", sha256_hex(&v1)));
    assert_eq!((p1["size"].as_u64(), p1["kind"].as_str()), (Some(v1.len() as u64), Some("model")));
    assert_eq!((p1["name"].as_str(), p1["version"].as_str()), (Some("demo/model"), Some("1")));
    let publish1 = check_receipt(&c, &d, &p1, "publish");
    assert_eq!(p1["receipt"]["bundle"], receipt.to_str().unwrap());
    assert!(receipt.exists());
    let t1 = &p1["tag"];
    fields(t1, &["action", "digest", "name", "previous", "receipt", "tag", "version"]);
    assert_eq!((t1["tag"].as_str(), t1["version"].as_str()), (Some("latest"), Some("1")));
    assert_eq!((&t1["digest"], &t1["previous"]), (&p1["digest"], &Value::Null));
    let tag1 = check_receipt(&c, &d, t1, "tag");
    assert!(tag1 > publish1);

    // The same command as text: the prose it always printed.
    let v2 = b"weights v2 ".repeat(3000);
    let model2 = write_file(dir, "model2.bin", &v2);
    let text = alice.ok(&["publish", &model2, "--name", "demo/model", "--version", "2"]);
    let publish2 = logged_index(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("logged publish demo/model@2 at entry {publish2}"));
    assert!(lines[1].starts_with(&format!("checkpoint: {} size ", d.origin)), "{text}");
    assert!(lines[2].starts_with("cosigned by: "), "{text}");
    assert_eq!(lines[3..], [format!("proof bundle: {model2}.tlog-proof")], "{text}");

    let t2 = json(&alice, &["tag", "demo/model@2", "latest"]);
    fields(&t2, &["action", "digest", "name", "previous", "receipt", "tag", "version"]);
    assert_eq!((t2["version"].as_str(), t2["previous"].as_u64()), (Some("2"), Some(tag1)));
    assert_eq!(t2["digest"], format!("sha256:{}", sha256_hex(&v2)));
    let tag2 = check_receipt(&c, &d, &t2, "tag");

    // Lifecycle: promote, approve, rollback.
    let version_fields = ["action", "name", "receipt", "version"];
    let pr = json(&alice, &["promote", "demo/model@1", "--to", "staging"]);
    fields(&pr, &["action", "name", "receipt", "to", "version"]);
    assert_eq!((pr["to"].as_str(), pr["version"].as_str()), (Some("staging"), Some("1")));
    check_receipt(&c, &d, &pr, "promote");
    let ap = json(&carol, &["approve", "demo/model@1"]);
    fields(&ap, &version_fields);
    check_receipt(&c, &d, &ap, "approve");
    alice.ok(&["promote", "demo/model@1", "--to", "production"]);
    alice.ok(&["promote", "demo/model@2", "--to", "staging"]);
    carol.ok(&["approve", "demo/model@2"]);
    let text = alice.ok(&["promote", "demo/model@2", "--to", "production"]);
    assert!(text.starts_with("logged promote demo/model@2 to production at entry "), "{text}");
    carol.ok(&["approve", "demo/model@1"]);
    let rb = json(&alice, &["rollback", "demo/model@1"]);
    fields(&rb, &version_fields);
    assert_eq!((rb["name"].as_str(), rb["version"].as_str()), (Some("demo/model"), Some("1")));
    check_receipt(&c, &d, &rb, "rollback");

    // Admin statements.
    let pt = json(&admin, &["protect", "demo/model", "release", "--statuses", "production,staging"]);
    fields(&pt, &["action", "name", "receipt", "statuses", "tag"]);
    assert_eq!(pt["statuses"], serde_json::json!(["staging", "production"]));
    check_receipt(&c, &d, &pt, "protect");
    let rv = json(&admin, &["revoke", "erin", "--role", "reader", "--pattern", "demo/*"]);
    fields(&rv, &["action", "actor", "pattern", "receipt", "role"]);
    check_receipt(&c, &d, &rv, "revoke");
    let rk = json(&admin, &["revoke-key", &ke]);
    fields(&rk, &["action", "actor", "key_id", "receipt"]);
    assert_eq!((&rk["actor"], &rk["key_id"]), (&Value::from("erin"), &erin_id));
    check_receipt(&c, &d, &rk, "revoke_key");

    // pull by tag, by version with --verify-only, and as text.
    let got = dir.join("got.bin");
    // After the rollback, v2 (which `latest` names) is no longer usable.
    let pl = json(
        &dave,
        &["pull", "demo/model:latest", "-o", got.to_str().unwrap(), "--allow-status", "deprecated,archived"],
    );
    let pull_fields = [
        "checkpoint",
        "digest",
        "name",
        "path",
        "publish_index",
        "publisher",
        "reference",
        "size",
        "statuses",
        "tag_index",
        "version",
        "written",
    ];
    fields(&pl, &pull_fields);
    assert_eq!(std::fs::read(&got).unwrap(), v2);
    assert_eq!((pl["publish_index"].as_u64(), pl["tag_index"].as_u64()), (Some(publish2), Some(tag2)));
    assert_eq!((pl["digest"].as_str(), pl["written"].as_bool()), (t2["digest"].as_str(), Some(true)));
    assert_eq!((pl["publisher"].as_str(), pl["path"].as_str()), (Some("alice"), got.to_str()));
    let statuses = pl["statuses"].as_array().unwrap();
    assert_eq!((statuses.len(), &statuses[0]["version"]), (1, &Value::from("2")), "{pl}");
    assert!(["deprecated", "archived"].contains(&statuses[0]["status"].as_str().unwrap()), "{pl}");
    let vo = json(&dave, &["pull", "demo/model@1", "--out", &model, "--verify-only"]);
    fields(&vo, &pull_fields);
    assert_eq!((vo["written"].as_bool(), &vo["tag_index"]), (Some(false), &Value::Null));
    assert_eq!((&vo["digest"], vo["publish_index"].as_u64()), (&p1["digest"], Some(publish1)));
    let got1 = dir.join("got1.bin");
    let text = dave.ok(&["pull", "demo/model@1", "-o", got1.to_str().unwrap()]);
    let lines: Vec<&str> = text.lines().collect();
    let first = format!(
        "verified demo/model@1 {} ({} bytes) published by alice at entry {publish1}",
        p1["digest"].as_str().unwrap(),
        v1.len()
    );
    assert_eq!((lines[0], lines.last().copied()), (&*first, Some(&*format!("wrote {}", got1.display()))));

    // rotate-key, with its receipt saved.
    let rot_bundle = dir.join("rotate.tlog-proof");
    let rot = json(&dave, &["rotate-key", "--bundle", rot_bundle.to_str().unwrap()]);
    fields(&rot, &["action", "key_file", "key_id", "new_key", "receipt", "retired_key_file"]);
    check_receipt(&c, &d, &rot, "rotate");
    assert!(Path::new(rot["retired_key_file"].as_str().unwrap()).exists() && rot_bundle.exists());
    assert_eq!(json(&dave, &["whoami"])["public_key"], rot["new_key"]);

    // history, report, audit: with --output json and with --json.
    for flag in [&["--output", "json"][..], &["--json"][..]] {
        let h = one_object(&alice.cli(&cat(&["history", "demo/model"], flag)).ok().stdout);
        fields(&h, &["checkpoint", "name", "rows"]);
        let rows: BTreeSet<u64> =
            h["rows"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
        assert!([publish1, tag1, publish2, tag2].iter().all(|i| rows.contains(i)), "{h}");
        assert!(rows.iter().all(|&i| i < h["checkpoint"]["size"].as_u64().unwrap()));
        let r = alice.cli(&cat(&["report", "--name", "demo/model", "--from", FROM, "--to", TO], flag));
        let r = one_object(&r.ok().stdout);
        let report_fields = [
            "accesses_omitted",
            "actors",
            "audit",
            "break_glass",
            "completeness",
            "events",
            "events_by_type",
            "from",
            "integrity_violations",
            "log",
            "name",
            "schema",
            "scope",
            "time_basis",
            "to",
            "versions_affected",
        ];
        fields(&r, &report_fields);
        assert_eq!(r["schema"], "custody.dev/compliance-report/v1", "{r}");
        assert_eq!(r["completeness"]["method"], "entries_chain", "{r}");
        assert_eq!(r["events"].as_array().unwrap().len(), rows.len(), "{r}");
        let a = one_object(&dave.cli(&cat(&["audit"], flag)).ok().stdout);
        let audit_fields = [
            "cached",
            "cosigners",
            "entries_replayed",
            "fetched",
            "full_replay",
            "origin",
            "replay_from",
            "resumed_from",
            "root",
            "size",
            "state_root",
            "violation",
        ];
        fields(&a, &audit_fields);
        assert_eq!((&a["violation"], &a["entries_replayed"]), (&Value::Null, &a["size"]));
    }
    let text = alice.ok(&["history", "demo/model"]);
    assert!(text.lines().any(|l| l.starts_with("checkpoint: ")), "history text lost its checkpoint: {text}");

    // monitor: one object per line.
    let rules = write_file(dir, "rules.json", br#"{"names": ["demo/*"]}"#);
    let m = dave.cli(&["--output", "json", "monitor", "--watch", &rules, "--once", "--from-start"]);
    let alerts: Vec<Value> = m.ok().stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for a in &alerts {
        fields(a, &["actor", "checkpoint_size", "event", "index", "key_id", "rule", "time"]);
    }
    let moves: Vec<u64> =
        alerts.iter().filter(|a| a["rule"] == "tag_move").map(|a| a["index"].as_u64().unwrap()).collect();
    assert_eq!(moves, [tag1, tag2], "{}", m.stdout);

    // Offline checks, on files taken from the log.
    let policy_only = |args: &[&str]| json(&User::new(dir, "offline"), &cat(&["--policy", policy], args));
    let new_cp = json(&dave, &["checkpoint"]);
    let new_note = write_file(dir, "new.cp", new_cp["note"].as_str().unwrap().as_bytes());
    let vc = policy_only(&["verify", "checkpoint", &new_note]);
    fields(&vc, &["checkpoint", "satisfied"]);
    assert_eq!((&vc["checkpoint"]["size"], &vc["checkpoint"]["root"]), (&new_cp["size"], &new_cp["root"]));
    let (old, new) = (old_cp["size"].as_u64().unwrap(), new_cp["size"].as_u64().unwrap());
    let proof = get_bytes(&c, &format!("{}/proof/consistency?old={old}&new={new}", d.log.url)).unwrap();
    let proof = write_file(dir, "consistency.json", &proof);
    let cs =
        policy_only(&["verify", "consistency", "--old", &old_note, "--new", &new_note, "--proof", &proof]);
    fields(&cs, &["new", "old"]);
    assert_eq!((cs["old"]["size"].as_u64(), cs["new"]["size"].as_u64()), (Some(old), Some(new)));
    let entry = get_bytes(&c, &format!("{}/entries/{publish1}", d.log.url)).unwrap();
    let entry = write_file(dir, "entry.bin", &entry);
    let proof = get_bytes(&c, &format!("{}/proof/inclusion?index={publish1}&size={new}", d.log.url)).unwrap();
    let proof = write_file(dir, "inclusion.json", &proof);
    let index = publish1.to_string();
    let inc = policy_only(&[
        "verify",
        "inclusion",
        "--checkpoint",
        &new_note,
        "--entry",
        &entry,
        "--index",
        &index,
        "--proof",
        &proof,
    ]);
    fields(&inc, &["checkpoint", "index", "leaf_hash"]);
    assert_eq!((inc["index"].as_u64(), &inc["leaf_hash"]), (Some(publish1), &p1["receipt"]["leaf_hash"]));
    let b =
        policy_only(&["verify", "bundle", receipt.to_str().unwrap(), "--signer", &ka, "--artifact", &model]);
    fields(&b, &["artifact", "checkpoint", "index", "leaf_hash", "not_established", "signer", "statement"]);
    assert_eq!((b["index"].as_u64(), &b["leaf_hash"]), (Some(publish1), &p1["receipt"]["leaf_hash"]));
    assert_eq!((&b["artifact"]["digest"], &b["signer"]["actor"]), (&p1["digest"], &Value::from("alice")));
    assert_eq!(b["statement"]["action"], "publish");
    assert!(b["not_established"].as_str().unwrap().starts_with("not established offline"));

    let (ev_policy, ev_file) = split_view_evidence(dir);
    let ev = json(&User::new(dir, "offline"), &["--policy", &ev_policy, "verify", "evidence", &ev_file]);
    fields(&ev, &["detected", "implied_root", "larger", "origin", "reporter", "smaller"]);
    assert_eq!((ev["smaller"]["size"].as_u64(), ev["larger"]["size"].as_u64()), (Some(5), Some(5)));
    assert_ne!(ev["smaller"]["root"], ev["larger"]["root"]);
    assert_eq!((ev["reporter"].as_str(), ev["detected"].as_u64()), (Some("w.example"), Some(1_700_000_000)));
}

#[test]
fn failures_print_one_error_object_with_the_text_modes_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, admin, alice, dave, _) = demo_team(dir);
    let c = http();
    let bytes = b"weights ".repeat(2000);
    let model = write_file(dir, "model.bin", &bytes);
    alice.ok(&["publish", &model, "--name", "demo/model", "--version", "1"]);
    let out = dir.join("out.bin").to_str().unwrap().to_owned();

    // The same failure in both formats: same exit code, one error object.
    let cases: [(&User, Vec<&str>, i32, &str); 4] = [
        (&dave, vec!["pull", "demo/model:missing", "-o", &out], 2, "verification"),
        (&dave, vec!["publish", &model, "--name", "demo/model", "--version", "9"], 1, "refused"),
        (&dave, vec!["pull", "demo/model@1"], 64, "usage"),
        (&dave, vec!["promote", "nonsense", "--to", "staging"], 64, "usage"),
    ];
    for (user, args, code, kind) in cases {
        let text = user.cli(&args);
        assert_eq!(text.code, code, "{args:?}: {text:?}");
        assert!(text.stdout.is_empty(), "{args:?}: text failures print nothing on stdout: {}", text.stdout);
        let r = user.cli(&cat(&["--output", "json"], &args));
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        let v = one_object(&r.stdout);
        fields(&v, &["error"]);
        assert_eq!(
            (v["error"]["exit"].as_i64(), v["error"]["kind"].as_str()),
            (Some(i64::from(code)), Some(kind))
        );
        let line = r.stderr.lines().last().unwrap();
        if line.starts_with("custody: ") {
            assert_eq!(line, format!("custody: {}", v["error"]["message"].as_str().unwrap()));
        }
        if kind == "refused" {
            assert_eq!(
                (v["error"]["status"].as_u64(), v["error"]["code"].as_str()),
                (Some(403), Some("forbidden"))
            );
        }
    }
    // CUSTODY_OUTPUT_FORMAT selects JSON too, errors included.
    let r: Run = dave
        .command()
        .env("CUSTODY_OUTPUT_FORMAT", "json")
        .args(["pull", "demo/x:y", "-o", &out])
        .output()
        .unwrap()
        .into();
    assert_eq!(one_object(&r.stdout)["error"]["exit"], r.code);

    // A failure after part of the work is done: the error object carries
    // what was done (the publish is logged; the protected tag refused it).
    admin.ok(&["protect", "demo/model", "release", "--statuses", "production"]);
    let v2 = write_file(dir, "v2.bin", b"v2");
    let args = ["publish", &v2, "--name", "demo/model", "--version", "2", "--tag", "release"];
    let text = alice.cli(&args);
    assert_eq!(text.code, 1, "{text:?}");
    assert!(text.stdout.starts_with("logged publish demo/model@2 at entry "), "{}", text.stdout);
    let r = alice.cli(&cat(&["--output", "json"], &args));
    assert_eq!(r.code, 1, "{r:?}");
    let v = one_object(&r.stdout);
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["kind"].as_str()),
        (Some("tag_protected"), Some("refused"))
    );
    assert_eq!((v["receipt"]["duplicate"].as_bool(), &v["tag"]), (Some(true), &Value::Null), "{v}");
    assert_eq!(check_receipt(&c, &d, &v, "publish"), logged_index(&text.stdout));

    // An offline verdict that fails after the inclusion held.
    let carol = User::new(dir, "carol").keygen("carol");
    let receipt = format!("{model}.tlog-proof");
    let args = ["--policy", d.policy.to_str().unwrap(), "verify", "bundle", &receipt, "--signer", &carol];
    let text = dave.cli(&args);
    assert_eq!(text.code, 2);
    assert!(text.stdout.starts_with("bundle OK: entry "), "{}", text.stdout);
    let r = dave.cli(&cat(&["--output", "json"], &args));
    let v = one_object(&r.stdout);
    assert_eq!((r.code, v["error"]["kind"].as_str(), &v["signer"]), (2, Some("verification"), &Value::Null));
    assert_eq!(v["statement"]["actor"], "alice");
}

fn cat<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    [a, b].concat()
}

/// Runs `custody --output json ARGS`, requires exit 0, returns the object.
#[track_caller]
fn json(u: &User, args: &[&str]) -> Value {
    let r = u.cli(&cat(&["--output", "json"], args));
    one_object(&r.ok().stdout)
}

/// stdout must hold exactly one JSON value, an object, and nothing else.
#[track_caller]
fn one_object(stdout: &str) -> Value {
    let mut values = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    let v = values
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(values.next().is_none(), "more than one JSON value on stdout: {stdout}");
    assert!(v.is_object(), "not an object: {v}");
    v
}

/// `v` has exactly the documented `names` (docs/verifier.md).
#[track_caller]
fn fields(v: &Value, names: &[&str]) {
    let got: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(got, names.iter().copied().collect(), "{v}");
}

/// Checks the `receipt` of a statement command against the log: the entry
/// at its index is proven included in the checkpoint it names (size and
/// root), hashes to its leaf hash, and holds a statement of `action` (also
/// the object's `action`). Returns the index.
#[track_caller]
fn check_receipt(c: &Client, d: &Deployment, v: &Value, action: &str) -> u64 {
    assert_eq!(v["action"], action, "{v}");
    let r = &v["receipt"];
    fields(r, &["bundle", "checkpoint", "duplicate", "index", "leaf_hash"]);
    fields(&r["checkpoint"], &["cosigners", "origin", "root", "size"]);
    let index = r["index"].as_u64().unwrap();
    let cp = Checkpoint {
        origin: d.origin.clone(),
        size: r["checkpoint"]["size"].as_u64().unwrap(),
        root: Hash::from_base64(r["checkpoint"]["root"].as_str().unwrap()).unwrap(),
        extensions: vec![],
    };
    assert_eq!(r["checkpoint"]["origin"], d.origin.as_str());
    assert!(index < cp.size && cp.size <= tree_size(c, &d.log.url), "{r}");
    let entry = proven_entry(c, &d.log.url, index, &cp);
    assert_eq!(r["leaf_hash"], leaf_hash(&entry).to_base64());
    let st = SignedStatement::parse(&envelope_of(&entry)).unwrap();
    assert_eq!(st.statement.event.action(), action);
    index
}

fn sha256_hex(b: &[u8]) -> String {
    custody_standards::hash::sha256(b).to_hex()
}

/// A policy trusting a log key, and split-view evidence of that key
/// signing two checkpoints of size 5 with different roots: (policy file,
/// evidence file).
fn split_view_evidence(dir: &Path) -> (String, String) {
    let origin = "forked.custody.example/log";
    let key = SignerKey::from_seed(origin, SIG_TYPE_ED25519, &[7; 32]).unwrap();
    let policy =
        write_file(dir, "forked-policy", format!("log {}\nquorum none\n", key.verifier()).as_bytes());
    let note = |root: u8| {
        let cp = Checkpoint { origin: origin.into(), size: 5, root: Hash([root; 32]), extensions: vec![] };
        EvidenceCheckpoint { note: sign_checkpoint(&cp, &key).unwrap(), source: "test".into() }
    };
    let ev = Evidence {
        origin: origin.into(),
        detected: 1_700_000_000,
        reporter: "w.example".into(),
        checkpoints: [note(1), note(2)],
        prefix: None,
    };
    (policy, write_file(dir, "fork.evidence", &ev.to_bytes().unwrap()))
}

#[test]
fn a_model_directory_publish_and_pull_report_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, _admin, alice, dave, _) = demo_team(dir);
    let c = http();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("tokenizer")).unwrap();
    let files: [(&str, &[u8]); 3] =
        [("config.json", b"{}"), ("tokenizer/t.json", b"tokens"), ("model.safetensors", b"weights")];
    for (path, bytes) in files {
        std::fs::write(src.join(path), bytes).unwrap();
    }
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let p = json(&alice, &["publish", src.to_str().unwrap(), "--name", "demo/dir", "--version", "1"]);
    assert_eq!(p["media_type"], custody_registry::manifest::MEDIA_TYPE, "{p}");
    fields(&p["directory"], &["files", "total_bytes", "uploaded_bytes", "uploaded_files"]);
    let want =
        serde_json::json!({"files": 3, "total_bytes": total, "uploaded_files": 3, "uploaded_bytes": total});
    assert_eq!(p["directory"], want);
    check_receipt(&c, &d, &p, "publish");

    let out = dir.join("pulled");
    let v = json(&dave, &["pull", "demo/dir@1", "-o", out.to_str().unwrap()]);
    assert_eq!((&v["digest"], &v["publish_index"]), (&p["digest"], &p["receipt"]["index"]));
    fields(&v["directory"], &["access_index", "bytes", "files"]);
    for (path, bytes) in files {
        assert_eq!(std::fs::read(out.join(path)).unwrap(), bytes);
    }
    // The access entry every file was fetched under is in the log.
    let access = v["directory"]["access_index"].as_u64().unwrap();
    eventually("the access entry to be sequenced", 30, || (tree_size(&c, &d.log.url) > access).then_some(()));
    let entry = get_bytes(&c, &format!("{}/entries/{access}", d.log.url)).unwrap();
    let st = SignedStatement::parse(&envelope_of(&entry)).unwrap();
    assert_eq!((st.statement.event.action(), st.statement.actor.as_str()), ("access", "dave"));
    assert_eq!(
        (v["directory"]["files"].as_u64(), v["directory"]["bytes"].as_u64()),
        (Some(3), Some(total as u64))
    );
}
