//! A lying log and a lying peer must not make the witness cosign anything
//! unproven or record a split view without proof.

use std::sync::atomic::Ordering;

use actix_web::{web, App, HttpResponse, HttpServer};
use custody_registry::evidence::{Evidence, EvidenceCheckpoint, PrefixProof};
use custody_standards::checkpoint::open_checkpoint;
use custody_standards::hash::sha256;
use custody_standards::{tree_hash, Hash};
use custody_testkit::witness::*;
use custody_testkit::{eventually, Proc};
use serde_json::Value;

async fn latest_size(w: &Proc, log: &TestLog) -> Option<u64> {
    let (status, note) = get(&format!("{}/{}/checkpoint", w.url, origin_hex(&log.origin))).await;
    (status == 200).then(|| open_checkpoint(&note, &log.vkey()).unwrap().checkpoint.size)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_tiles_are_never_trusted() {
    let mut log = TestLog::new("example.com/liar", 61);
    log.append(300, "l");
    let served = ServedLog::start(log);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/careful");
    let list = dir.path().join("logs");
    write_log_list(&list, &[served.log.lock().unwrap().list_entry(Some(&served.url))]);
    let w = serve(&data, &list, None, &["--poll-interval", "50"]);
    let probe = TestLog::new("example.com/liar", 61);
    eventually!("first pull", (latest_size(&w, &probe).await == Some(300)).then_some(()));

    // The log grows but serves tiles with a flipped byte: no proof can be
    // built, so nothing is cosigned and nothing is called a split view.
    served.corrupt_tiles.store(true, Ordering::SeqCst);
    served.log.lock().unwrap().append(300, "l");
    let metrics_url = format!("{}/metrics", w.url);
    eventually!("failed polls", {
        let m = String::from_utf8(get(&metrics_url).await.1).unwrap();
        (metric(&m, "custody_witness_pulls_total{result=\"error\"}") >= 3).then_some(())
    });
    assert_eq!(latest_size(&w, &probe).await, Some(300));
    let health = serde_json::from_slice::<Value>(&get(&format!("{}/health", w.url)).await.1).unwrap();
    assert_eq!(health["status"], "ok");
    assert!(stderr_of(&data).contains("do not hash to the root"), "the reader names the bad tile");

    // Honest tiles again: the witness catches up.
    served.corrupt_tiles.store(false, Ordering::SeqCst);
    eventually!("catch-up", (latest_size(&w, &probe).await == Some(600)).then_some(()));
}

/// A peer that serves evidence which does not verify must not freeze us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_evidence_from_a_peer_is_refused() {
    const ORIGIN: &str = "example.com/target";
    let mut log = TestLog::new(ORIGIN, 71);
    log.append(8, "t");
    let mut impostor = TestLog::new(ORIGIN, 72);
    impostor.append(8, "x");
    let mut longer = TestLog::new(ORIGIN, 71);
    longer.append(12, "t");
    // 1. Same size, other root, but the second checkpoint is not signed by
    //    the log's key. 2. Different sizes, consistent, claimed as a split
    //    with a made-up prefix.
    let forged = [
        Evidence {
            origin: ORIGIN.into(),
            detected: 1_700_000_000,
            reporter: "witness.example/liar".into(),
            checkpoints: [
                EvidenceCheckpoint { note: log.checkpoint(), source: "x".into() },
                EvidenceCheckpoint { note: impostor.checkpoint(), source: "x".into() },
            ],
            prefix: None,
        },
        Evidence {
            origin: ORIGIN.into(),
            detected: 1_700_000_000,
            reporter: "witness.example/liar".into(),
            checkpoints: [
                EvidenceCheckpoint { note: log.checkpoint(), source: "x".into() },
                EvidenceCheckpoint { note: longer.checkpoint(), source: "x".into() },
            ],
            prefix: Some(PrefixProof { prefix: Hash([9; 32]), proof: longer.proof(8) }),
        },
    ];
    assert_ne!(forged[1].prefix.as_ref().unwrap().prefix, tree_hash(8, &longer.tree).unwrap());
    let texts: Vec<Vec<u8>> = forged.iter().map(|e| e.to_bytes().unwrap()).collect();
    let ids: Vec<String> = texts.iter().map(|t| sha256(t).to_hex()).collect();
    let listing = serde_json::json!({ "evidence": ids.iter().map(|id| serde_json::json!({
        "id": id, "origin": ORIGIN, "detected": 1_700_000_000u64, "reporter": "witness.example/liar", "active": true
    })).collect::<Vec<_>>() });
    let by_id: std::collections::HashMap<String, Vec<u8>> = ids.iter().cloned().zip(texts).collect();
    let peer_key =
        custody_standards::cosignature::CosignatureSigner::from_seed("witness.example/liar", &[73; 32])
            .unwrap();
    let state = web::Data::new((listing, by_id));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route(
                "/evidence",
                web::get().to(
                    |s: web::Data<(Value, std::collections::HashMap<String, Vec<u8>>)>| async move {
                        HttpResponse::Ok().json(&s.0)
                    },
                ),
            )
            .route(
                "/evidence/{id}",
                web::get().to(
                    |s: web::Data<(Value, std::collections::HashMap<String, Vec<u8>>)>,
                     id: web::Path<String>| async move {
                        match s.1.get(id.as_str()) {
                            Some(b) => HttpResponse::Ok().body(b.clone()),
                            None => HttpResponse::NotFound().finish(),
                        }
                    },
                ),
            )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let peer_url = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/victim");
    let list = dir.path().join("logs");
    write_log_list(&list, &[log.list_entry(None)]);
    let peers = dir.path().join("peers");
    std::fs::write(
        &peers,
        format!("peers/v0\nwitness witness.example/liar\nvkey {}\nurl {peer_url}\n", peer_key.verifier()),
    )
    .unwrap();
    let w = serve(&data, &list, Some(&peers), &["--gossip-interval", "50"]);
    assert_eq!(post(&w.url, log.body(0)).await.0, 200);
    eventually!("both forgeries refused", {
        let text = stderr_of(&data);
        (text.matches("peer evidence refused").count() >= 2).then_some(())
    });
    let health = serde_json::from_slice::<Value>(&get(&format!("{}/health", w.url)).await.1).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["evidence"], 0);
    let mut log = log;
    log.append(1, "t");
    assert_eq!(post(&w.url, log.body(8)).await.0, 200, "still cosigning");
}

/// A log that rewrites history: the witness cosigned one tree (pushed to
/// it), then polling the log finds a larger tree that does not extend it.
/// The log's own tiles prove it; the witness alone records the evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_rewrites_history_is_caught_by_pull_mode() {
    const ORIGIN: &str = "example.com/rewriter";
    let mut before = TestLog::new(ORIGIN, 91);
    before.append(5, "common");
    before.append(3, "old");
    let mut after = TestLog::new(ORIGIN, 91);
    after.append(5, "common");
    after.append(295, "new");
    let vkey = before.vkey();
    let served = ServedLog::start(after);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/puller2");
    let list = dir.path().join("logs");
    // Pushes only at first (no url), then the url is added with SIGHUP.
    write_log_list(&list, &[before.list_entry(None)]);
    let w = serve(&data, &list, None, &["--poll-interval", "50"]);
    assert_eq!(post(&w.url, before.body(0)).await.0, 200);
    write_log_list(&list, &[before.list_entry(Some(&served.url))]);
    w.signal("HUP");
    let id = eventually!("evidence from pull mode", {
        let (_, body) = get(&format!("{}/health", w.url)).await;
        let h: Value = serde_json::from_slice(&body).unwrap();
        h["frozen"][0]["evidence"].as_str().map(str::to_owned)
    });
    let (_, text) = get(&format!("{}/evidence/{id}", w.url)).await;
    let ev = Evidence::parse(&text).unwrap();
    assert_eq!(ev.reporter, "witness.example/puller2");
    assert!(ev.checkpoints[1].source.starts_with("log "), "{}", ev.checkpoints[1].source);
    let split = ev.verify(&[&vkey as &dyn custody_standards::note::NoteVerifier]).unwrap();
    assert_eq!((split.smaller.size, split.larger.size), (8, 300));
    assert_eq!(latest_size(&w, &before).await, Some(8), "the rewritten tree was not cosigned");
}
