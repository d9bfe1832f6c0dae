//! Scenario 6, crash recovery, on the real binaries: while HTTP clients
//! post signed publishes and `custody publish` processes run, the log server
//! is killed with SIGKILL, then restarted on the same data directory and
//! address. After every restart each acknowledged entry (an HTTP 200 with
//! its index, or a `custody` receipt) is at its index with the same bytes
//! and included in a new cosigned checkpoint; every checkpoint observed
//! before the crash is consistent with it; clients that remember pre-crash
//! checkpoints carry on; and `custody-log fsck` finds the store healthy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custody_registry::registry::Role;
use custody_standards::bundle::ProofBundle;
use custody_standards::checkpoint::Checkpoint;
use custody_testkit::scenario::*;

/// How long writers run before each `kill -9`.
const KILL_AFTER_MS: [u64; 2] = [1300, 900];
const HTTP_WRITERS: usize = 3;
const CLI_WRITERS: usize = 2;

/// A `custody publish` that printed its receipt.
struct CliAck {
    user: usize,
    version: String,
    index: u64,
    bundle: PathBuf,
}

#[test]
fn acknowledged_entries_and_checkpoints_survive_kill_9() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Deployment::start(tmp.path());
    let c = http();
    let admin = d.admin();
    let root = admin_signer(&d);
    let pol = policy(&d);

    // HTTP writers publish new versions of one stored artifact; CLI writers
    // upload and publish with `custody publish`, receipts included.
    let writers: Vec<_> = (0..HTTP_WRITERS).map(|w| signer(&format!("writer{w}"))).collect();
    for w in &writers {
        let (status, body) =
            post_statement(&c, &d.log.url, signed(&root, grant(w, Role::Publisher, "crash/*")));
        assert_eq!(status, 200, "{body}");
    }
    let blob = b"shared weights ".repeat(1000);
    let (digest, len) = (digest_of(&blob), blob.len() as u64);
    let (status, body) =
        upload(&c, &d.log.url, &blob, &signed(&writers[0], publish("crash/base", "0", digest, len)));
    assert_eq!(status, 201, "{body}");
    let users: Vec<User> = (0..CLI_WRITERS).map(|k| d.user(&format!("cli{k}"))).collect();
    let mut files = Vec::new();
    for (k, u) in users.iter().enumerate() {
        let key = u.keygen(&format!("cli{k}"));
        admin.ok(&["grant", &key, "--role", "publisher", "--pattern", "crash/*"]);
        files.push(write_file(
            tmp.path(),
            &format!("cli{k}.bin"),
            format!("cli {k} model ").repeat(500).as_bytes(),
        ));
    }
    std::fs::create_dir(tmp.path().join("receipts")).unwrap();

    // index -> envelope of every acknowledged entry; every CLI receipt;
    // every published checkpoint observed (size -> checkpoint and note).
    let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut cli_acks: Vec<CliAck> = Vec::new();
    let mut seen: BTreeMap<u64, (Checkpoint, Vec<u8>)> = BTreeMap::new();

    for (round, kill_after) in KILL_AFTER_MS.iter().enumerate() {
        let base = d.log.url.clone();
        let stop = AtomicBool::new(false);
        let http_acks = Mutex::new(Vec::<(u64, Vec<u8>)>::new());
        let new_cli = Mutex::new(Vec::<CliAck>::new());
        let observed = Mutex::new(Vec::<(Checkpoint, Vec<u8>)>::new());
        std::thread::scope(|s| {
            for w in &writers {
                let (c, base, stop, acks) = (&c, &base, &stop, &http_acks);
                s.spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let name = format!("crash/h{}", w.actor().as_str());
                        let env = signed(w, publish(&name, &format!("{round}.{i}"), digest, len));
                        i += 1;
                        let Ok(r) = c.post(format!("{base}/statements")).body(env.clone()).send() else {
                            continue;
                        };
                        // A reply cut off by the kill is not an acknowledgement.
                        if let (200, body) = json(r) {
                            if let Some(index) = body["index"].as_u64() {
                                assert_eq!(body["duplicate"], false, "{body}");
                                acks.lock().unwrap().push((index, env));
                            }
                        }
                        std::thread::sleep(Duration::from_millis(3));
                    }
                });
            }
            for (k, u) in users.iter().enumerate() {
                let (stop, acks, file, dir) = (&stop, &new_cli, &files[k], tmp.path());
                s.spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let version = format!("{round}.{i}");
                        let bundle = dir.join(format!("receipts/cli{k}-{version}.tlog-proof"));
                        i += 1;
                        let args = ["publish", file, "--name", &format!("crash/c{k}"), "--version", &version];
                        let out = u.run(&[&args[..], &["--bundle", bundle.to_str().unwrap()]].concat());
                        if out.status.success() {
                            let index = logged_index(&text(&out.stdout));
                            acks.lock().unwrap().push(CliAck { user: k, version, index, bundle });
                        }
                    }
                });
            }
            let (c, base, stop, observed, pol) = (&c, &base, &stop, &observed, &pol);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some(note) = get_bytes(c, &format!("{base}/checkpoint")) {
                        let v =
                            pol.verify_checkpoint(&note).expect("published checkpoints satisfy the policy");
                        observed.lock().unwrap().push((v.checkpoint, note));
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
            });
            std::thread::sleep(Duration::from_millis(*kill_after));
            kill9(&mut d.log); // mid-stream
            stop.store(true, Ordering::SeqCst);
        });

        let new_http = http_acks.into_inner().unwrap();
        let new_cli = new_cli.into_inner().unwrap();
        eprintln!("round {round}: {} HTTP and {} CLI acknowledgements", new_http.len(), new_cli.len());
        assert!(!new_http.is_empty() && !new_cli.is_empty(), "round {round}: nothing acknowledged");
        for (index, env) in new_http {
            assert!(acked.insert(index, env).is_none(), "index {index} acknowledged twice");
        }
        for a in new_cli {
            let bundle = ProofBundle::parse(&std::fs::read(&a.bundle).unwrap()).unwrap();
            assert_eq!(bundle.index, a.index);
            let env = envelope_of(bundle.extra.as_deref().expect("the receipt carries its entry"));
            assert!(acked.insert(a.index, env).is_none(), "index {} acknowledged twice", a.index);
            cli_acks.push(a);
        }
        let before_max = seen.keys().next_back().copied();
        for (cp, note) in observed.into_inner().unwrap() {
            if let Some((old, _)) = seen.get(&cp.size) {
                assert_eq!(old.root, cp.root, "two checkpoints of size {} with different roots", cp.size);
            }
            seen.insert(cp.size, (cp, note));
        }
        assert!(seen.keys().next_back() > before_max.as_ref(), "round {round}: no new checkpoint observed");

        // Restart on the same data directory and address.
        relaunch_log(&mut d);
        let max_seen = *seen.keys().next_back().unwrap();
        let (first, _, _) = eventually("the restarted log to serve a checkpoint", 15, || published(&c, &d));
        assert!(first.size >= max_seen, "published checkpoint rolled back from {max_seen} to {}", first.size);
        let need = acked.keys().next_back().unwrap() + 1;
        let (after, cosigners, after_note) =
            eventually("a cosigned checkpoint covering every ack", 30, || {
                published(&c, &d).filter(|(cp, _, _)| cp.size >= need)
            });
        assert!(cosigners.len() >= 2, "{cosigners:?}");
        for (old, _) in seen.values() {
            check_consistent(&c, &d.log.url, old, &after);
        }
        // Every acknowledged entry: same bytes, same index, included.
        for (&index, env) in &acked {
            let entry = proven_entry(&c, &d.log.url, index, &after);
            assert_eq!(&envelope_of(&entry), env, "entry {index} changed");
        }
        // The client's own checks agree: offline consistency of the first
        // and last pre-crash checkpoints with the new one...
        let new_file = write_file(tmp.path(), "new.cp", &after_note);
        let (&oldest, &newest) = (seen.keys().next().unwrap(), seen.keys().next_back().unwrap());
        for size in [oldest, newest].into_iter().filter(|&s| s < after.size) {
            let old_file = write_file(tmp.path(), "old.cp", &seen[&size].1);
            let proof =
                get_bytes(&c, &format!("{}/proof/consistency?old={size}&new={}", d.log.url, after.size));
            let proof_file = write_file(tmp.path(), "proof.json", &proof.unwrap());
            let out = users[0].ok(&[
                "verify",
                "consistency",
                "--old",
                &old_file,
                "--new",
                &new_file,
                "--proof",
                &proof_file,
            ]);
            assert!(
                out.contains(&format!("consistency OK: {} size {size} -> {}", d.origin, after.size)),
                "{out}"
            );
        }
        // ...and each receipt's artifact still verifies through the live log,
        // against the checkpoint its publisher remembers from before the crash.
        for a in &cli_acks {
            let reference = format!("crash/c{}@{}", a.user, a.version);
            let out = users[a.user].ok(&["pull", &reference, "-o", &files[a.user], "--verify-only"]);
            assert!(out.contains(&format!("verified {reference}")), "{out}");
        }
    }

    // The log takes new work after the last restart, and the killed and
    // restarted store passes the offline check.
    let out = users[1].ok(&["publish", &files[1], "--name", "crash/c1", "--version", "after"]);
    assert!(out.contains("cosigned by: "), "{out}");
    kill9(&mut d.log);
    let fsck = Command::new(bin("custody-log"))
        .args(["fsck", "--data-dir"])
        .arg(tmp.path().join("log"))
        .output()
        .unwrap();
    assert!(fsck.status.success(), "fsck: {}{}", text(&fsck.stdout), text(&fsck.stderr));
    eprintln!(
        "crash scenario: {} acknowledged entries ({} CLI receipts), {} checkpoints, {:?}",
        acked.len(),
        cli_acks.len(),
        seen.len(),
        started.elapsed()
    );
}
