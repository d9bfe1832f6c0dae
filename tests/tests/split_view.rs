//! Scenario 4, split view: the operator runs two instances of its log with
//! the same key. They share a common prefix, then diverge: instance A
//! (shown to witnesses w1 and w2) publishes honest weights as
//! demo/model@2, instance B (shown to w3 and w4) grants mallory and
//! publishes hers under the same name and version. Both branches satisfy
//! the clients' 2-of-4 policy, so a client that only ever sees one branch
//! is fooled. But:
//! - a client that followed one branch refuses the other with the
//!   inconsistency exit code (3) and writes evidence, both ways;
//! - once the witnesses gossip, every one of them records split-view
//!   evidence (`GET /evidence`) and stops cosigning the log;
//! - that evidence verifies offline with `custody verify evidence` (no
//!   server running) and a corrupted copy of it does not.

use std::path::{Path, PathBuf};
use std::process::Command;

use custody_registry::evidence::Evidence;
use custody_standards::checkpoint::open_checkpoint;
use custody_standards::{Checkpoint, NoteVerifier, VerifierKey};
use custody_testkit::scenario::*;

/// Exit code of `custody` for an inconsistency (docs/verifier.md).
const FORK: i32 = 3;
/// Exit code of `custody` for a failed verification.
const VERIFY_FAILED: i32 = 2;

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_proxy().build().unwrap()
}

/// GET `url`; the body of a 2xx answer.
fn get(url: &str) -> Option<Vec<u8>> {
    let r = http().get(url).send().ok()?;
    r.status().is_success().then(|| r.bytes().ok().map(|b| b.to_vec()))?
}

/// GET `url` as JSON, whatever the status (`/health` says 503 when
/// degraded).
fn json(url: &str) -> Option<serde_json::Value> {
    http().get(url).send().ok()?.json().ok()
}

/// The entry index in `custody <statement>`'s `logged ... at entry N` line.
fn logged_index(out: &str) -> u64 {
    let at = out.find("at entry ").unwrap_or_else(|| panic!("no `at entry` in {out}"));
    let digits: String = out[at + 9..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// Asserts that `custody args` exits with `code` and its one-line error
/// (the last stderr line) contains `needle`; returns stderr.
fn fails(user: &User, args: &[&str], code: i32, needle: &str) -> String {
    let out = user.run(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "custody {args:?}: {}{stderr}", text(&out.stdout));
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("custody: ") && last.contains(needle), "custody {args:?}: {stderr}");
    stderr
}

/// The `.evidence` files a client wrote on inconsistencies.
fn client_evidence(user: &User) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(user.home.join("evidence")) else { return Vec::new() };
    let mut v: Vec<_> =
        dir.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "evidence")).collect();
    v.sort();
    v
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_owned()
}

#[test]
fn a_split_log_is_refused_by_clients_and_caught_by_gossiping_witnesses() {
    let tmp = tempfile::tempdir().unwrap();
    let setup = Setup { witnesses: 4, quorum: 2, gossip_ms: Some(200) };
    let mut d = Deployment::start_with(tmp.path(), setup);
    let vkey = VerifierKey::parse(&d.log_vkey).unwrap();
    let origin_hex = custody_standards::hash::sha256(d.origin.as_bytes()).to_hex();
    let open =
        |note: &[u8]| -> Option<Checkpoint> { open_checkpoint(note, &vkey).ok().map(|o| o.checkpoint) };

    // The common prefix: roles, and demo/model@1. Both victims follow it.
    let admin = d.admin();
    let (alice, vera, bruno) = (d.user("alice"), d.user("vera"), d.user("bruno"));
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &ka, "--role", "maintainer", "--pattern", "demo/*"]);
    for (victim, name) in [(&vera, "vera"), (&bruno, "bruno")] {
        admin.ok(&["grant", &victim.keygen(name), "--role", "reader", "--pattern", "demo/*"]);
    }
    let v1 = tmp.path().join("v1.bin");
    std::fs::write(&v1, b"weights v1\n".repeat(1000)).unwrap();
    let common_end =
        logged_index(&alice.ok(&["publish", v1.to_str().unwrap(), "--name", "demo/model", "--version", "1"]));
    for victim in [&vera, &bruno] {
        let out = victim.ok(&["checkpoint"]);
        // The publish and the commitment leaf that ends its batch.
        assert!(out.contains(&format!("size {}", common_end + 2)), "{out}");
    }

    // The split: the stopped log's data directory is copied; A keeps the
    // original and is shown to w1 and w2 only, B to w3 and w4 only.
    d.log.stop();
    let data_b = tmp.path().join("log-b");
    let st = Command::new("cp").arg("-a").arg(tmp.path().join("log")).arg(&data_b).status().unwrap();
    assert!(st.success());
    let (policy_a, policy_b) = (tmp.path().join("policy-a.txt"), tmp.path().join("policy-b.txt"));
    d.write_policy(&policy_a, &[0, 1], 2);
    d.write_policy(&policy_b, &[2, 3], 2);
    d.log = serve_log(&tmp.path().join("log"), &policy_a);
    let log_b = serve_log(&data_b, &policy_b);
    let (url_a, url_b) = (d.log.url.clone(), log_b.url.clone());

    // Branch A: alice publishes the honest demo/model@2 and tags it.
    let honest = b"honest weights v2\n".repeat(1000);
    let file = write(&tmp.path().join("honest.bin"), &honest);
    alice.ok(&["--log", &url_a, "publish", file.to_str().unwrap(), "--name", "demo/model", "--version", "2"]);
    let end_a = logged_index(&alice.ok(&["--log", &url_a, "tag", "demo/model@2", "latest"]));
    // Branch B: the operator grants mallory, who publishes her own
    // demo/model@2. Same number of entries: the branches have equal sizes.
    let admin_b = d.admin_at("admin-b", &url_b);
    let mallory = d.user_at("mallory", &url_b);
    let km = mallory.keygen("mallory");
    admin_b.ok(&["grant", &km, "--role", "publisher", "--pattern", "demo/*"]);
    let evil = b"backdoored weights v2\n".repeat(1000);
    let file = write(&tmp.path().join("evil.bin"), &evil);
    let end_b = logged_index(&mallory.ok(&[
        "publish",
        file.to_str().unwrap(),
        "--name",
        "demo/model",
        "--version",
        "2",
    ]));
    // Two statements each, every one followed by its batch's commitment.
    assert_eq!((end_a, end_b), (common_end + 4, common_end + 4));

    // Each branch alone satisfies the policy: each victim, shown one
    // branch, verifies and loads a different demo/model@2 (and the pull
    // logs one access on each branch).
    let got_a = tmp.path().join("vera.bin");
    vera.ok(&["--log", &url_a, "pull", "demo/model@2", "-o", got_a.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got_a).unwrap(), honest);
    let got_b = tmp.path().join("bruno.bin");
    bruno.ok(&["--log", &url_b, "pull", "demo/model@2", "-o", got_b.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got_b).unwrap(), evil);
    // The last statement's commitment, the pull's access and its commitment.
    let size = end_a + 4;
    let (cp_a, cp_b) = eventually("both branches to publish a checkpoint of every entry", 30, || {
        let cp_a = open(&get(&format!("{url_a}/checkpoint"))?)?;
        let cp_b = open(&get(&format!("{url_b}/checkpoint"))?)?;
        (cp_a.size == size && cp_b.size == size).then_some((cp_a, cp_b))
    });
    assert_ne!(cp_a.root, cp_b.root);
    for (victim, url) in [(&vera, &url_a), (&bruno, &url_b)] {
        let out = victim.ok(&["--log", url, "checkpoint"]);
        assert!(out.contains(&format!("size {size}")), "{out}");
    }

    // Once a client has seen one branch it refuses the other, both ways,
    // for checkpoints and pulls alike, and writes evidence.
    let same_size = "two checkpoints of the same size with different roots";
    for (victim, other) in [(&vera, &url_b), (&bruno, &url_a)] {
        let stderr = fails(victim, &["--log", other, "checkpoint"], FORK, same_size);
        assert!(stderr.contains("custody inconsistency evidence v1"), "{stderr}");
        let never = tmp.path().join("never.bin");
        fails(
            victim,
            &["--log", other, "pull", "demo/model@2", "-o", never.to_str().unwrap()],
            FORK,
            same_size,
        );
        assert!(!never.exists(), "a refused pull leaves nothing at the destination");
        assert_eq!(client_evidence(victim).len(), 2, "one evidence file per refusal");
    }
    // Their own branch is still accepted: the remembered checkpoint stands.
    vera.ok(&["--log", &url_a, "checkpoint"]);
    bruno.ok(&["--log", &url_b, "checkpoint"]);

    // Every witness has cosigned its branch's final checkpoint (nothing is
    // appended any more); only then do they start to gossip.
    let witness_cp = |i: usize| open(&get(&format!("{}/{origin_hex}/checkpoint", d.witnesses[i].url))?);
    eventually("each witness to cosign its branch's final checkpoint", 30, || {
        let on =
            |i: usize, cp: &Checkpoint| witness_cp(i).is_some_and(|w| w.size == cp.size && w.root == cp.root);
        (on(0, &cp_a) && on(1, &cp_a) && on(2, &cp_b) && on(3, &cp_b)).then_some(())
    });
    for w in &d.witnesses {
        let list = json(&format!("{}/evidence", w.url)).unwrap();
        assert_eq!(list["evidence"].as_array().map(Vec::len), Some(0), "no evidence before gossip: {list}");
    }
    d.introduce_witnesses();

    // Every witness records evidence (found itself or imported from a
    // peer) that proves the split with the log key alone, and freezes the
    // origin.
    let mut texts = Vec::new();
    for (i, w) in d.witnesses.iter().enumerate() {
        // The origin is frozen by exactly one record (the latest recorded).
        let list = eventually(&format!("w{} to record split-view evidence", i + 1), 30, || {
            let list = json(&format!("{}/evidence", w.url))?;
            let records = list["evidence"].as_array()?;
            (records.iter().filter(|r| r["active"] == true).count() == 1).then_some(list)
        });
        for record in list["evidence"].as_array().unwrap() {
            assert_eq!(record["origin"].as_str(), Some(d.origin.as_str()), "{record}");
            let id = record["id"].as_str().unwrap();
            let body = get(&format!("{}/evidence/{id}", w.url)).unwrap();
            assert_eq!(custody_standards::hash::sha256(&body).to_hex(), id, "the ID is the text's hash");
            let ev = Evidence::parse(&body).unwrap();
            let split = ev.verify(&[&vkey as &dyn NoteVerifier]).expect("the evidence verifies");
            assert_eq!((split.smaller.size, split.larger.size), (size, size));
            let mut roots = [split.smaller.root, split.larger.root];
            roots.sort_by_key(|r| r.0);
            let mut want = [cp_a.root, cp_b.root];
            want.sort_by_key(|r| r.0);
            assert_eq!(roots, want, "the evidence holds the two branches' checkpoints");
            texts.push(body);
        }
        let health = eventually(&format!("w{} to report the split view", i + 1), 30, || {
            json(&format!("{}/health", w.url)).filter(|h| h["status"] == "split_view")
        });
        assert_eq!(health["frozen"][0]["origin"].as_str(), Some(d.origin.as_str()), "{health}");
    }

    // Frozen witnesses cosign nothing more: a new statement on either
    // branch is appended but never covered by a witnessed checkpoint, and
    // both logs keep serving their last one and report the lost quorum.
    let v3 = write(&tmp.path().join("v3.bin"), b"weights v3\n");
    for (user, url) in [(&alice, &url_a), (&mallory, &url_b)] {
        let args = [
            "--log",
            url,
            "--wait",
            "2",
            "publish",
            v3.to_str().unwrap(),
            "--name",
            "demo/model",
            "--version",
            "3",
        ];
        let out = user.run(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(VERIFY_FAILED), "{}{stderr}", text(&out.stdout));
        assert!(
            stderr.contains(&format!("no checkpoint satisfying the policy covers entry {size}")),
            "{stderr}"
        );
        let health = eventually("the log to report the lost quorum", 30, || {
            json(&format!("{url}/health")).filter(|h| h["checkpoint"]["quorum_ok"] == false)
        });
        assert_eq!(health["status"], "degraded", "{health}");
        assert_eq!(health["checkpoint"]["last_published_size"], size, "{health}");
        let reason = health["checkpoint"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("refusing to cosign for this log: split-view evidence"), "{health}");
    }

    // Offline: everything stops, then `custody verify evidence` checks a
    // witness's evidence and a victim's with the policy alone.
    let (policy, origin) = (d.policy.clone(), d.origin.clone());
    drop(log_b);
    drop(d);
    let offline = User { home: tmp.path().join("home-offline") };
    std::fs::create_dir_all(&offline.home).unwrap();
    let p = policy.to_str().unwrap();
    let witness_file = write(&tmp.path().join("witness.evidence"), &texts[0]);
    for file in [witness_file.clone(), client_evidence(&vera)[0].clone(), client_evidence(&bruno)[0].clone()]
    {
        let out = offline.ok(&["--policy", p, "verify", "evidence", file.to_str().unwrap()]);
        assert!(out.contains(&format!("split view proven: {origin} signed")), "{out}");
        assert!(out.contains(&format!("size {size} root {}", cp_a.root.to_base64())), "{out}");
        assert!(out.contains(&format!("size {size} root {}", cp_b.root.to_base64())), "{out}");
    }

    // Corrupted copies are rejected: a flipped character inside a signed
    // checkpoint, and the same checkpoint twice (no split at all).
    let good = String::from_utf8(texts[0].clone()).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let cps: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("checkpoint ")).collect();
    assert_eq!(cps.len(), 2, "{good}");
    let mut flipped: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let line = &mut flipped[cps[0]];
    let at = "checkpoint ".len() + 40;
    let c = if &line[at..=at] == "A" { "B" } else { "A" };
    line.replace_range(at..=at, c);
    let twice: Vec<&str> =
        lines.iter().enumerate().map(|(i, l)| if i == cps[1] { lines[cps[0]] } else { l }).collect();
    for (name, bad) in [("flipped", flipped.join("\n")), ("twice", twice.join("\n"))] {
        let file = write(&tmp.path().join(format!("{name}.evidence")), format!("{bad}\n").as_bytes());
        fails(
            &offline,
            &["--policy", p, "verify", "evidence", file.to_str().unwrap()],
            VERIFY_FAILED,
            "evidence",
        );
    }
    // The untouched file still verifies (the corruption is what failed).
    offline.ok(&["--policy", p, "verify", "evidence", witness_file.to_str().unwrap()]);
}
