//! The registry's persisted state on the real binary: while clients post
//! statements, the log server is killed with SIGKILL; after every crash
//! `custody-log fsck` finds the persisted state equal to the replay of the
//! durable entries (records, nonces, position), the restarted server
//! replays nothing (`custody_registry_replayed_entries_total 0`), and every
//! statement acknowledged before the crash, posted again, is still refused
//! as a replay (401): the nonce window survived the crash.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use custody_registry::registry::Role;
use custody_standards::encoding::encode_base64;
use custody_testkit::scenario::lone::{serve, LoneLog};
use custody_testkit::scenario::*;

/// How long writers run before each `kill -9`.
const KILL_AFTER_MS: [u64; 2] = [1500, 800];

fn fsck(log: &LoneLog) -> String {
    let out = Command::new(bin("custody-log")).args(["fsck", "--data-dir"]).arg(&log.data).output().unwrap();
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{report}");
    report
}

fn replayed_at_start(log: &LoneLog) -> String {
    let metrics = get_bytes(&http(), &format!("{}/metrics", log.url())).expect("/metrics answers");
    let text = String::from_utf8(metrics).unwrap();
    let line = text.lines().find(|l| l.starts_with("custody_registry_replayed_entries_total "));
    line.expect("the replay counter is exported").to_owned()
}

#[test]
fn after_kill_9_the_server_starts_from_the_persisted_state_and_refuses_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = LoneLog::start(tmp.path(), &[]);
    let c = http();
    let root = log.admin_signer();
    // `init` persisted the genesis: the first start replays nothing.
    assert_eq!(replayed_at_start(&log), "custody_registry_replayed_entries_total 0");
    let blob = b"boot weights ".repeat(1000);
    let (digest, len) = (digest_of(&blob), blob.len() as u64);
    let (status, body) = upload(&c, log.url(), &blob, &signed(&root, publish("boot/m", "0", digest, len)));
    assert_eq!(status, 201, "{body}");
    let readers: Vec<_> = (0..3).map(|i| signer(&format!("reader{i}"))).collect();
    for r in &readers {
        let (status, body) = post_statement(&c, log.url(), signed(&root, grant(r, Role::Reader, "boot/*")));
        assert_eq!(status, 200, "{body}");
    }

    for (round, kill_after) in KILL_AFTER_MS.iter().enumerate() {
        let base = log.url().to_owned();
        let stop = AtomicBool::new(false);
        let acked = Mutex::new(Vec::<Vec<u8>>::new());
        std::thread::scope(|s| {
            // Readers log accesses (nonces only); root publishes versions,
            // which rewrite records.
            for r in &readers {
                let (c, base, stop, acked) = (&c, &base, &stop, &acked);
                s.spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        // An access is logged by the download it
                        // authorizes: a 200 means it is durable (the body
                        // may be cut off by the kill).
                        let env = signed(r, access("boot/m", "0", digest));
                        let req = c
                            .get(format!("{base}/blobs/{digest}"))
                            .header("Custody-Statement", encode_base64(&env));
                        if req.send().is_ok_and(|resp| resp.status().as_u16() == 200) {
                            acked.lock().unwrap().push(env);
                        }
                    }
                });
            }
            let (c, base, stop, root) = (&c, &base, &stop, &root);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let env = signed(root, publish("boot/m", &format!("{round}.{i}"), digest, len));
                    i += 1;
                    let _ = c.post(format!("{base}/statements")).body(env).send();
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            std::thread::sleep(Duration::from_millis(*kill_after));
            kill9(&mut log.proc);
            stop.store(true, Ordering::SeqCst);
        });
        let acked = acked.into_inner().unwrap();
        assert!(acked.len() > 20, "round {round}: only {} accesses acknowledged", acked.len());

        // The persisted state is the replay of what is durable.
        let report = fsck(&log);
        assert!(!report.contains("registry state"), "{report}");

        log.proc = serve(&log.data, &log.policy, &log.env);
        assert_eq!(replayed_at_start(&log), "custody_registry_replayed_entries_total 0");
        // Statements acknowledged before the crash are replays now.
        for env in acked.iter().rev().take(10).chain(acked.iter().take(5)) {
            let (status, body) = download(&c, log.url(), digest, env);
            assert_eq!((status, body["error"].as_str()), (401, Some("replay")), "{body}");
        }
        // And fresh ones still go through.
        let fresh = signed(&readers[0], access("boot/m", "0", digest));
        let (status, body) = download(&c, log.url(), digest, &fresh);
        assert_eq!(status, 200, "{body}");
    }
}
