//! Pull mode, gossip and split-view evidence against the real binary, with
//! logs built in the test and served over HTTP (`/checkpoint` and tiles).

use std::path::Path;
use std::process::Command;

use custody_registry::evidence::Evidence;
use custody_standards::checkpoint::open_checkpoint;
use custody_standards::cosignature::CosignatureSigner;
use custody_standards::note::{add_signatures, Note, NoteSigner, NoteVerifier};
use custody_standards::VerifierKey;
use custody_testkit::witness::*;
use custody_testkit::{bin, eventually, Proc};
use serde_json::Value;

async fn latest_size(w: &Proc, log: &TestLog) -> Option<u64> {
    let (status, note) = get(&format!("{}/{}/checkpoint", w.url, origin_hex(&log.origin))).await;
    (status == 200).then(|| open_checkpoint(&note, &log.vkey()).unwrap().checkpoint.size)
}

async fn json(url: &str) -> Value {
    let (_, body) = get(url).await;
    serde_json::from_slice(&body).unwrap()
}

fn write_peers(path: &Path, peers: &[(&VerifierKey, &str)]) {
    let mut s = String::from("peers/v0\n");
    for (k, url) in peers {
        s.push_str(&format!("\nwitness {}\nvkey {k}\nurl {url}\n", k.name()));
    }
    std::fs::write(path, s).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_mode_cosigns_with_proofs_from_the_logs_tiles() {
    let mut log = TestLog::new("example.com/pulled", 11);
    log.append(300, "p");
    let served = ServedLog::start(log);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/puller");
    let list = dir.path().join("logs");
    write_log_list(&list, &[served.log.lock().unwrap().list_entry(Some(&served.url))]);
    let w = serve(&data, &list, None, &["--poll-interval", "50"]);
    let probe = TestLog::new("example.com/pulled", 11);
    eventually!("first pull", (latest_size(&w, &probe).await == Some(300)).then_some(()));
    // The log grows across several full tiles; the proof 300 -> 1000 comes
    // from its tiles, authenticated against the new checkpoint.
    served.log.lock().unwrap().append(700, "p");
    eventually!("second pull", (latest_size(&w, &probe).await == Some(1000)).then_some(()));
    let metrics = String::from_utf8(get(&format!("{}/metrics", w.url)).await.1).unwrap();
    assert!(metrics.contains("custody_witness_pulls_total{result=\"ok\"}"));
}

/// Two instances of one log share its key and diverge after a common
/// prefix; each witness sees only one instance. Gossip must make both
/// witnesses record evidence that verifies offline, and both must refuse
/// further cosignatures for the origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn split_view_is_caught_by_gossip_and_the_evidence_verifies_offline() {
    const ORIGIN: &str = "example.com/split";
    let mut view_a = TestLog::new(ORIGIN, 21);
    let mut view_b = TestLog::new(ORIGIN, 21);
    view_a.append(5, "common");
    view_b.append(5, "common");
    view_a.append(3, "a");
    view_b.append(7, "b");
    let log_vkey = view_a.vkey();
    let a = ServedLog::start(view_a);
    let b = ServedLog::start(view_b);

    let dir = tempfile::tempdir().unwrap();
    let (d1, d2) = (dir.path().join("w1"), dir.path().join("w2"));
    let k1 = init(&d1, "witness.example/w1");
    let k2 = init(&d2, "witness.example/w2");
    let (l1, l2) = (dir.path().join("logs1"), dir.path().join("logs2"));
    write_log_list(&l1, &[a.log.lock().unwrap().list_entry(Some(&a.url))]);
    write_log_list(&l2, &[b.log.lock().unwrap().list_entry(Some(&b.url))]);
    let (p1, p2) = (dir.path().join("peers1"), dir.path().join("peers2"));
    write_peers(&p1, &[]);
    write_peers(&p2, &[]);
    let args = ["--poll-interval", "50", "--gossip-interval", "200"];
    let mut w1 = serve(&d1, &l1, Some(&p1), &args);
    let w2 = serve(&d2, &l2, Some(&p2), &args);
    let probe = TestLog::new(ORIGIN, 21);
    eventually!("w1 pulls view A", (latest_size(&w1, &probe).await == Some(8)).then_some(()));
    eventually!("w2 pulls view B", (latest_size(&w2, &probe).await == Some(12)).then_some(()));

    // Introduce the witnesses to each other (SIGHUP reload of the peers).
    write_peers(&p1, &[(&k2, &w2.url)]);
    write_peers(&p2, &[(&k1, &w1.url)]);
    w1.signal("HUP");
    w2.signal("HUP");

    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for w in [&w1, &w2] {
            let url = format!("{}/evidence", w.url);
            let id = eventually!("evidence on both witnesses", {
                let list = json(&url).await;
                list["evidence"]
                    .as_array()
                    .and_then(|a| a.first())
                    .map(|e| e["id"].as_str().unwrap().to_owned())
            });
            ids.push(id);
        }
        ids
    };
    // w2 proved it from its tiles; w1 (which cannot fetch view B's tree)
    // imported the same self-verifying record.
    assert_eq!(ids[0], ids[1]);

    for w in [&w1, &w2] {
        let (status, text) = get(&format!("{}/evidence/{}", w.url, ids[0])).await;
        assert_eq!(status, 200);
        let ev = Evidence::parse(&text).unwrap();
        assert_eq!(ev.origin, ORIGIN);
        assert_eq!(ev.reporter, "witness.example/w2");
        let split = ev.verify(&[&log_vkey as &dyn NoteVerifier]).expect("evidence verifies offline");
        assert_eq!((split.smaller.size, split.larger.size), (8, 12));
        let health = json(&format!("{}/health", w.url)).await;
        assert_eq!(health["status"], "split_view");
        assert_eq!(health["frozen"][0]["evidence"].as_str(), Some(ids[0].as_str()));
        let metrics = String::from_utf8(get(&format!("{}/metrics", w.url)).await.1).unwrap();
        assert!(metrics.lines().any(|l| l == "custody_witness_evidence 1"), "{metrics}");
        assert!(metrics.lines().any(|l| l == "custody_witness_frozen_origins 1"));
        assert!(w.log_text().contains("SPLIT VIEW"));
    }
    // Both refuse further cosignatures for the origin, even consistent ones.
    let body_a = {
        let mut v = a.log.lock().unwrap();
        v.append(1, "a");
        v.body(8)
    };
    let body_b = {
        let mut v = b.log.lock().unwrap();
        v.append(1, "b");
        v.body(12)
    };
    assert_eq!(post(&w1.url, body_a.clone()).await.0, 503);
    assert_eq!(post(&w2.url, body_b).await.0, 503);

    // The freeze survives a restart; an operator clears it offline.
    assert!(w1.stop_gracefully());
    let out = Command::new(bin("custody-witness"))
        .args(["clear-evidence", "--data-dir"])
        .arg(&d1)
        .args(["--origin", ORIGIN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = Command::new(bin("custody-witness"))
        .args(["clear-evidence", "--data-dir"])
        .arg(&d1)
        .args(["--origin", ORIGIN])
        .output()
        .unwrap();
    assert!(!again.status.success(), "clearing twice is an error");
    write_log_list(&l1, &[probe.list_entry(None)]);
    let w1 = serve(&d1, &l1, None, &[]);
    let list = json(&format!("{}/evidence", w1.url)).await;
    assert_eq!(list["evidence"][0]["active"], false, "evidence is kept, no longer active");
    assert_eq!(json(&format!("{}/health", w1.url)).await["status"], "ok");
    assert_eq!(post(&w1.url, body_a).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_checkpoint_with_another_root_freezes_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/pushed");
    let mut honest = TestLog::new("example.com/pushy", 31);
    let mut forked = TestLog::new("example.com/pushy", 31);
    honest.append(6, "h");
    forked.append(6, "f");
    let peer = CosignatureSigner::from_seed("witness.example/peer", &[32; 32]).unwrap();
    let list = dir.path().join("logs");
    write_log_list(&list, &[honest.list_entry(None)]);
    let peers = dir.path().join("peers");
    write_peers(&peers, &[(&peer.verifier(), "http://127.0.0.1:9")]);
    let w = serve(&data, &list, Some(&peers), &[]);
    assert_eq!(post(&w.url, honest.body(0)).await.0, 200);

    let push = |note: Vec<u8>| {
        let url = format!("{}/gossip/checkpoint", w.url);
        async move {
            let resp = client().post(url).body(note).send().await.unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
        }
    };
    let cosigned = |note: Vec<u8>| {
        let c = peer.at(1_700_000_000).unwrap();
        add_signatures(Note::parse(&note).unwrap(), &[&c as &dyn NoteSigner]).unwrap().to_bytes().unwrap()
    };
    // Not cosigned by a configured peer: refused.
    assert_eq!(push(forked.checkpoint()).await.0, 403);
    // The same checkpoint we cosigned: consistent.
    let (status, body) = push(cosigned(honest.checkpoint())).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["result"], "consistent");
    // Same size, another root, signed by the log: split view.
    let (status, body) = push(cosigned(forked.checkpoint())).await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["result"], "split_view");
    let id = reply["evidence"].as_str().unwrap();
    let (_, text) = get(&format!("{}/evidence/{id}", w.url)).await;
    let ev = Evidence::parse(&text).unwrap();
    let v = honest.vkey();
    let split = ev.verify(&[&v as &dyn NoteVerifier]).unwrap();
    assert_eq!((split.smaller.size, split.larger.size), (6, 6));
    assert!(ev.checkpoints[1].source.contains("witness.example/peer"));
    honest.append(1, "h");
    assert_eq!(post(&w.url, honest.body(6)).await.0, 503);
    assert_eq!(get(&format!("{}/evidence/{}", w.url, "0".repeat(64))).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_log_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/hup");
    let mut a = TestLog::new("example.com/hup-a", 41);
    let mut b = TestLog::new("example.com/hup-b", 42);
    a.append(2, "a");
    b.append(2, "b");
    let list = dir.path().join("logs");
    write_log_list(&list, &[a.list_entry(None)]);
    let w = serve(&data, &list, None, &[]);
    assert_eq!(post(&w.url, b.body(0)).await.0, 404);
    // A broken file keeps the old configuration.
    std::fs::write(&list, "not a log list\n").unwrap();
    w.signal("HUP");
    eventually!("failed reload", {
        let m = String::from_utf8(get(&format!("{}/metrics", w.url)).await.1).unwrap();
        m.contains("custody_witness_reloads_total{result=\"error\"} 1").then_some(())
    });
    assert_eq!(post(&w.url, a.body(0)).await.0, 200);
    write_log_list(&list, &[a.list_entry(None), b.list_entry(None)]);
    w.signal("HUP");
    eventually!("b accepted after reload", (post(&w.url, b.body(0)).await.0 == 200).then_some(()));
}

/// The negative of the split-view test: two honest witnesses of one log at
/// different sizes gossip for several rounds, prove consistency from the
/// log's tiles, and record nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn honest_witnesses_at_different_sizes_record_no_evidence() {
    const ORIGIN: &str = "example.com/honest";
    let mut log = TestLog::new(ORIGIN, 51);
    log.append(300, "h");
    let served = ServedLog::start(log);
    let dir = tempfile::tempdir().unwrap();
    let (d1, d2) = (dir.path().join("w1"), dir.path().join("w2"));
    let k1 = init(&d1, "witness.example/h1");
    let k2 = init(&d2, "witness.example/h2");
    let list = dir.path().join("logs");
    write_log_list(&list, &[served.log.lock().unwrap().list_entry(Some(&served.url))]);
    let (p1, p2) = (dir.path().join("peers1"), dir.path().join("peers2"));
    write_peers(&p1, &[]);
    write_peers(&p2, &[]);
    // One poll at start-up each (the next would be an hour later).
    let args = ["--poll-interval", "3600000", "--gossip-interval", "100"];
    let w1 = serve(&d1, &list, Some(&p1), &args);
    let probe = TestLog::new(ORIGIN, 51);
    eventually!("w1 at 300", (latest_size(&w1, &probe).await == Some(300)).then_some(()));
    served.log.lock().unwrap().append(200, "h");
    let w2 = serve(&d2, &list, Some(&p2), &args);
    eventually!("w2 at 500", (latest_size(&w2, &probe).await == Some(500)).then_some(()));
    write_peers(&p1, &[(&k2, &w2.url)]);
    write_peers(&p2, &[(&k1, &w1.url)]);
    w1.signal("HUP");
    w2.signal("HUP");
    for w in [&w1, &w2] {
        let url = format!("{}/metrics", w.url);
        eventually!("several gossip rounds", {
            let m = String::from_utf8(get(&url).await.1).unwrap();
            let ok = m
                .lines()
                .find_map(|l| l.strip_prefix("custody_witness_gossip_fetches_total{result=\"ok\"} "))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            (ok >= 10).then_some(())
        });
    }
    for w in [&w1, &w2] {
        let health = json(&format!("{}/health", w.url)).await;
        assert_eq!(health["status"], "ok", "{health}");
        assert_eq!(json(&format!("{}/evidence", w.url)).await["evidence"].as_array().unwrap().len(), 0);
        let log = w.log_text();
        assert!(!log.contains("SPLIT VIEW"));
        // Different sizes are only "consistent" with a proof from the
        // tiles; a failed fetch would have left the pair undecided.
        assert!(!log.contains("undecided") && !log.contains("refused"), "{log}");
    }
}
