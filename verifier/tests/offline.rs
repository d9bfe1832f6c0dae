//! `custody verify checkpoint|inclusion|consistency` with the server gone
//! and no configuration at all: only a policy file and the saved bytes.

use std::time::{Duration, Instant};

use custody_testkit::cli::*;
use custody_testkit::http::http;
use custody_testkit::logserver::*;

#[test]
fn offline_checks_need_only_the_policy() {
    let LogWithAdmin { dir, server, policy, admin, .. } = log_with_admin();
    let c = http();
    let get = |path: &str| c.get(format!("{}/{path}", server.url)).send().unwrap().bytes().unwrap().to_vec();
    let wait_size = |min: u64| -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let note = get("checkpoint");
            let text = String::from_utf8_lossy(&note).into_owned();
            if text.lines().nth(1).and_then(|l| l.parse::<u64>().ok()).is_some_and(|s| s >= min) {
                return note;
            }
            assert!(Instant::now() < deadline, "no checkpoint of size {min}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Each batch ends with its commitment leaf: genesis and its commitment.
    let old = wait_size(2);
    let key = User::new(dir.path(), "alice").keygen("alice");
    admin.cli(&["grant", &key, "--role", "reader", "--pattern", "*"]).ok();
    admin.cli(&["grant", &key, "--role", "publisher", "--pattern", "acme/*"]).ok();
    let new = wait_size(6);
    let save = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (old_f, new_f) = (save("old.cp", &old), save("new.cp", &new));
    let entry_f = save("entry2", &get("entries/2"));
    let incl_f = save("incl.json", &get("proof/inclusion?index=2&size=6"));
    let cons_f = save("cons.json", &get("proof/consistency?old=2&new=6"));
    drop(server);

    let u = User::new(dir.path(), "offline");
    let p = policy.to_str().unwrap();
    let r = u.cli(&["--policy", p, "verify", "checkpoint", &new_f]);
    assert!(r.ok().stdout.contains("checkpoint OK: registry.custody.example/log size 6"), "{}", r.stdout);
    let r = u.cli(&[
        "--policy",
        p,
        "verify",
        "inclusion",
        "--checkpoint",
        &new_f,
        "--entry",
        &entry_f,
        "--index",
        "2",
        "--proof",
        &incl_f,
    ]);
    assert!(r.ok().stdout.contains("inclusion OK: entry 2"), "{}", r.stdout);
    u.cli(&[
        "--policy",
        p,
        "verify",
        "inclusion",
        "--checkpoint",
        &new_f,
        "--entry",
        &entry_f,
        "--index",
        "3",
        "--proof",
        &incl_f,
    ])
    .fails(2, "inclusion of entry 3");
    let r = u.cli(&[
        "--policy",
        p,
        "verify",
        "consistency",
        "--old",
        &old_f,
        "--new",
        &new_f,
        "--proof",
        &cons_f,
    ]);
    assert!(r.ok().stdout.contains("consistency OK"), "{}", r.stdout);
    u.cli(&["--policy", p, "verify", "consistency", "--old", &new_f, "--new", &old_f, "--proof", &cons_f])
        .fails(2, "consistency 6 -> 2");
    // Another log's key: the checkpoint is refused.
    let other = dir.path().join("other-policy");
    let foreign = custody_standards::SignerKey::from_seed(ORIGIN, 1, &[3; 32]).unwrap().verifier();
    std::fs::write(&other, format!("log {foreign}\nquorum none\n")).unwrap();
    u.cli(&["--policy", other.to_str().unwrap(), "verify", "checkpoint", &new_f]).fails(2, "checkpoint");
    let mut forged = new.clone();
    let at = forged.len() - 5;
    forged[at] ^= 1;
    let forged_f = save("forged.cp", &forged);
    u.cli(&["--policy", p, "verify", "checkpoint", &forged_f]).fails(2, "verification failed");
}
