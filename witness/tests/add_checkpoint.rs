//! C2SP tlog-witness `add-checkpoint` against the real `custody-witness`
//! binary: every status code from a real HTTP request, key rotation, a
//! foreign log, the concurrency rule, restart durability, and interop with
//! the log server's own witness client.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::cosignature::CosignatureVerifier;
use custody_standards::note::{open_note, NoteVerifier};
use custody_standards::witness::{AddCheckpointRequest, MAX_REQUEST_SIZE, SIZE_CONTENT_TYPE};
use custody_standards::{Hash, VerifierKey};
use custody_testkit::witness::*;
use custody_testkit::{bin, eventually};

/// The reply lines appended to the checkpoint verify as cosignatures by
/// `keys` (each key must have a verified line).
fn assert_cosigned(checkpoint: &[u8], reply: &[u8], keys: &[VerifierKey]) {
    let mut note = checkpoint.to_vec();
    note.extend_from_slice(reply);
    let verifiers: Vec<CosignatureVerifier> =
        keys.iter().map(|k| CosignatureVerifier::new(k.clone()).unwrap()).collect();
    let dyns: Vec<&dyn NoteVerifier> = verifiers.iter().map(|v| v as &dyn NoteVerifier).collect();
    let opened = open_note(&note, &dyns).expect("reply must be valid cosignatures");
    assert_eq!(opened.verified.len(), keys.len(), "one verified cosignature per witness key");
    for v in &opened.verified {
        let ts = v.timestamp.unwrap();
        assert!(ts > 1_700_000_000, "cosignature timestamp {ts} is the current time");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_from_real_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w1");
    let wkey = init(&data, "witness.example/w1");
    let mut log = TestLog::new("example.com/log-a", 1);
    let fresh = TestLog::new("example.com/log-b", 2);
    let unknown = TestLog::new("example.com/unknown", 3);
    let list = dir.path().join("logs");
    write_log_list(&list, &[log.list_entry(None), fresh.list_entry(None)]);
    let w = serve(&data, &list, None, &[]);

    // 200: first checkpoint, old size 0.
    log.append(5, "a");
    let (status, ct, body) = post(&w.url, log.body(0)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(ct.starts_with("text/plain"));
    assert_cosigned(&log.checkpoint(), &body, std::slice::from_ref(&wkey));

    // 409 with the size body when old does not match.
    let (status, ct, body) = post(&w.url, log.body(0)).await;
    assert_eq!((status, ct.as_str(), body.as_slice()), (409, SIZE_CONTENT_TYPE, &b"5\n"[..]));

    // 400: malformed bodies (bad framing, non-canonical old size).
    for bad in [b"garbage".to_vec(), [b"old 05\n\n".as_slice(), &log.checkpoint()[..]].concat()] {
        assert_eq!(post(&w.url, bad).await.0, 400);
    }
    // 400: old size above the checkpoint size.
    log.append(2, "a");
    let above = AddCheckpointRequest { old_size: 8, proof: vec![], checkpoint: log.checkpoint() };
    assert_eq!(post(&w.url, above.to_bytes()).await.0, 400);

    // 403: right origin, untrusted key.
    let mut impostor = TestLog::new("example.com/log-a", 99);
    impostor.append(7, "x");
    assert_eq!(post(&w.url, impostor.body(5)).await.0, 403);

    // 404: unknown origin.
    let mut u = unknown;
    u.append(1, "u");
    assert_eq!(post(&w.url, u.body(0)).await.0, 404);

    // 422: a consistency proof that does not verify.
    let mut req = AddCheckpointRequest { old_size: 5, proof: log.proof(5), checkpoint: log.checkpoint() };
    req.proof[0].0[0] ^= 1;
    assert_eq!(post(&w.url, req.to_bytes()).await.0, 422);
    // 422: a non-empty proof with old size 0 (on a log never cosigned).
    let mut f = fresh;
    f.append(3, "f");
    let req = AddCheckpointRequest { old_size: 0, proof: vec![Hash([7; 32])], checkpoint: f.checkpoint() };
    assert_eq!(post(&w.url, req.to_bytes()).await.0, 422);
    // 413: body over the cap, refused before parsing.
    assert_eq!(post(&w.url, vec![b'a'; MAX_REQUEST_SIZE + 1]).await.0, 413);

    // 200 again: 5 -> 7 with a correct proof.
    let (status, _, body) = post(&w.url, log.body(5)).await;
    assert_eq!(status, 200);
    assert_cosigned(&log.checkpoint(), &body, std::slice::from_ref(&wkey));

    // The monitoring path serves it, signed by the log and by us.
    let (status, note) = get(&format!("{}/{}/checkpoint", w.url, origin_hex(&log.origin))).await;
    assert_eq!(status, 200);
    let v = log.vkey();
    let opened = custody_standards::checkpoint::open_checkpoint(&note, &v).unwrap();
    assert_eq!(opened.checkpoint.size, 7);
    let cv = CosignatureVerifier::new(wkey.clone()).unwrap();
    open_note(&note, &[&cv as &dyn NoteVerifier]).unwrap();
    assert_eq!(get(&format!("{}/{}/checkpoint", w.url, origin_hex("nope"))).await.0, 404);
    assert_eq!(get(&format!("{}/not-hex/checkpoint", w.url)).await.0, 404);

    let (_, metrics) = get(&format!("{}/metrics", w.url)).await;
    let metrics = String::from_utf8(metrics).unwrap();
    for (status, n) in [(200, 2), (400, 3), (403, 1), (404, 1), (409, 1), (413, 1), (422, 2)] {
        let line = format!("custody_witness_add_checkpoint_requests_total{{status=\"{status}\"}} {n}");
        assert!(metrics.lines().any(|l| l == line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("custody_witness_cosign_seconds_count 2"));
    let (status, health) = get(&format!("{}/health", w.url)).await;
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["logs"], 2);

    // 409 (tlog-witness: "If the old size matches the checkpoint size, the
    // witness MUST check that the root hashes are also identical. If they
    // don't match, the witness MUST respond with a 409 Conflict"), without
    // the text/x.tlog.size body that would tell a client to retry. The log
    // signed two roots for size 7: that is proof of a split view by itself,
    // so the witness also records evidence and stops cosigning (503).
    let other_root =
        Checkpoint { origin: log.origin.clone(), size: 7, root: Hash([1; 32]), extensions: vec![] };
    let forked = sign_checkpoint(&other_root, &log.key).unwrap();
    let req = AddCheckpointRequest { old_size: 7, proof: vec![], checkpoint: forked };
    let (status, ct, body) = post(&w.url, req.to_bytes()).await;
    assert_eq!((status, ct.as_str()), (409, "application/json"));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "root_conflict");
    let id = eventually!("evidence from the rejected request", {
        let (_, body) = get(&format!("{}/health", w.url)).await;
        let h: serde_json::Value = serde_json::from_slice(&body).unwrap();
        h["frozen"][0]["evidence"].as_str().map(str::to_owned)
    });
    let (status, text) = get(&format!("{}/evidence/{id}", w.url)).await;
    assert_eq!(status, 200);
    let ev = custody_registry::evidence::Evidence::parse(&text).unwrap();
    let split = ev.verify(&[&v as &dyn NoteVerifier]).unwrap();
    assert_eq!((split.smaller.size, split.larger.size), (7, 7));
    log.append(1, "a");
    let (status, _, body) = post(&w.url, log.body(7)).await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_all_cosign() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    let k1 = init(&data, "witness.example/rot");
    let out =
        Command::new(bin("custody-witness")).args(["add-key", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let k2 = VerifierKey::parse(String::from_utf8(out.stdout).unwrap().trim_end()).unwrap();
    assert_eq!(k2.name(), k1.name());
    assert_ne!(k1.key_id(), k2.key_id());
    let mode = std::fs::metadata(data.join("witness.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut log = TestLog::new("example.com/rot", 4);
    let list = dir.path().join("logs");
    write_log_list(&list, &[log.list_entry(None)]);
    let w = serve(&data, &list, None, &[]);
    log.append(3, "r");
    let (status, _, body) = post(&w.url, log.body(0)).await;
    assert_eq!(status, 200);
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 2, "one line per key");
    assert_cosigned(&log.checkpoint(), &body, &[k1, k2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_log_is_witnessed() {
    // Not our log server: an origin that is not the key name, listed with
    // an explicit `origin` line, signed as a plain signed note.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    let wkey = init(&data, "witness.example/w");
    let mut log = TestLog::foreign("go.example/sumdb-like tree", "sumdb-like-key", 5);
    let list = dir.path().join("logs");
    write_log_list(&list, &[log.list_entry(None)]);
    let w = serve(&data, &list, None, &[]);
    log.append(11, "f");
    let (status, _, body) = post(&w.url, log.body(0)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_cosigned(&log.checkpoint(), &body, std::slice::from_ref(&wkey));
    log.append(30, "f");
    let (status, _, body) = post(&w.url, log.body(11)).await;
    assert_eq!(status, 200);
    assert_cosigned(&log.checkpoint(), &body, &[wkey]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_requests_from_one_old_size_exactly_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/race");
    let mut log = TestLog::new("example.com/race", 6);
    let list = dir.path().join("logs");
    write_log_list(&list, &[log.list_entry(None)]);
    // The stall holds every request between its first old-size check and
    // the atomic check-and-update, so all twenty are in that window at once.
    let w = serve(&data, &list, None, &["--test-stall-ms", "300"]);
    log.append(10, "r");
    assert_eq!(post(&w.url, log.body(0)).await.0, 200);
    // Twenty valid requests, all from old size 10, to sizes 11..=30.
    let mut bodies = Vec::new();
    for _ in 0..20 {
        log.append(1, "r");
        bodies.push(log.body(10));
    }
    let tasks: Vec<_> = bodies.into_iter().map(|b| tokio::spawn(post_owned(w.url.clone(), b))).collect();
    let mut ok = 0;
    let mut conflicts = Vec::new();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            409 => conflicts.push(String::from_utf8(body).unwrap()),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one request from old size 10 may succeed");
    assert_eq!(conflicts.len(), 19);
    let (_, note) = get(&format!("{}/{}/checkpoint", w.url, origin_hex(&log.origin))).await;
    let winner = custody_standards::checkpoint::open_checkpoint(&note, &log.vkey()).unwrap().checkpoint.size;
    assert!((11..=30).contains(&winner));
    for c in conflicts {
        assert_eq!(c, format!("{winner}\n"), "every loser learns the winner's size");
    }
}

async fn post_owned(url: String, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    post(&url, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_witness_restarts_with_the_latest_checkpoint_per_origin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    let wkey = init(&data, "witness.example/restart");
    let mut a = TestLog::new("example.com/ra", 7);
    let mut b = TestLog::new("example.com/rb", 8);
    let list = dir.path().join("logs");
    write_log_list(&list, &[a.list_entry(None), b.list_entry(None)]);
    let w = serve(&data, &list, None, &[]);
    a.append(5, "a");
    b.append(9, "b");
    assert_eq!(post(&w.url, a.body(0)).await.0, 200);
    assert_eq!(post(&w.url, b.body(0)).await.0, 200);
    // SIGKILL right after the replies: whatever was acknowledged must
    // already be in the database (graceful stops are covered elsewhere).
    drop(w);

    let w = serve(&data, &list, None, &[]);
    let (status, _, body) = post(&w.url, a.body(0)).await;
    assert_eq!((status, body.as_slice()), (409, &b"5\n"[..]));
    let (status, _, body) = post(&w.url, b.body(0)).await;
    assert_eq!((status, body.as_slice()), (409, &b"9\n"[..]));
    let (_, note) = get(&format!("{}/{}/checkpoint", w.url, origin_hex(&b.origin))).await;
    assert_eq!(custody_standards::checkpoint::open_checkpoint(&note, &b.vkey()).unwrap().checkpoint.size, 9);
    a.append(3, "a");
    let (status, _, body) = post(&w.url, a.body(5)).await;
    assert_eq!(status, 200);
    assert_cosigned(&a.checkpoint(), &body, &[wkey]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_servers_witness_client_interoperates() {
    use custody_log::witness_client::{verify_cosignature_lines, WitnessCallError, WitnessClient};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    let wkey = init(&data, "witness.example/interop");
    let mut log = TestLog::new("example.com/interop", 9);
    let list = dir.path().join("logs");
    write_log_list(&list, &[log.list_entry(None)]);
    let w = serve(&data, &list, None, &[]);
    let client = WitnessClient::new(std::time::Duration::from_secs(5)).unwrap();
    log.append(4, "i");
    let lines = client.add_checkpoint(&w.url, 0, &[], &log.checkpoint()).await.unwrap();
    verify_cosignature_lines(&log.checkpoint(), &wkey, &lines).unwrap();
    // The log learns our size from the 409, as its checkpointer does.
    log.append(6, "i");
    match client.add_checkpoint(&w.url, 0, &[], &log.checkpoint()).await {
        Err(WitnessCallError::Conflict { latest_size }) => assert_eq!(latest_size, 4),
        other => panic!("expected a size conflict, got {other:?}"),
    }
    let lines = client.add_checkpoint(&w.url, 4, &log.proof(4), &log.checkpoint()).await.unwrap();
    verify_cosignature_lines(&log.checkpoint(), &wkey, &lines).unwrap();
    match client.add_checkpoint(&w.url, 10, &[], &TestLog::new("example.com/other", 1).checkpoint()).await {
        Err(WitnessCallError::Rejected { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
}

#[test]
fn init_refuses_an_existing_witness() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/once");
    let again = Command::new(bin("custody-witness"))
        .args(["init", "--data-dir"])
        .arg(&data)
        .args(["--name", "x"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = Command::new(bin("custody-witness"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("missing"))
        .args(["--listen", "127.0.0.1:0", "--logs", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
