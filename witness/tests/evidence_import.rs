//! Evidence imported from a peer, against the real binary: a split view is
//! identified by the two checkpoints the log signed, not by the fields a
//! peer can rewrite. Evidence an operator cleared, served again by a peer
//! with another `detected` time (so another evidence ID), must not freeze
//! the origin again; evidence of a different split still does.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use custody_registry::evidence::{Evidence, EvidenceCheckpoint};
use custody_standards::hash::sha256;
use custody_testkit::witness::*;
use custody_testkit::{bin, eventually, Proc};
use serde_json::Value;

const ORIGIN: &str = "example.com/imported";

/// What the fake peer serves: (evidence ID, text), and how often each
/// evidence text was fetched.
#[derive(Default)]
struct PeerState {
    evidence: Vec<(String, Vec<u8>, u64)>,
    fetches: std::collections::HashMap<String, usize>,
}

type Shared = web::Data<Mutex<PeerState>>;

async fn list(state: Shared) -> HttpResponse {
    let s = state.lock().unwrap();
    let items: Vec<Value> = s
        .evidence
        .iter()
        .map(|(id, _, detected)| {
            serde_json::json!({"id": id, "origin": ORIGIN, "detected": detected, "reporter": "peer.example", "active": true})
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "evidence": items }))
}

async fn one(path: web::Path<String>, state: Shared) -> HttpResponse {
    let mut s = state.lock().unwrap();
    let id = path.into_inner();
    let Some(text) = s.evidence.iter().find(|e| e.0 == id).map(|e| e.1.clone()) else {
        return HttpResponse::NotFound().finish();
    };
    *s.fetches.entry(id).or_default() += 1;
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(text)
}

/// A peer witness that only serves `/evidence` (its checkpoints are 404).
fn fake_peer() -> (Arc<Mutex<PeerState>>, String) {
    let data: Shared = web::Data::new(Mutex::new(PeerState::default()));
    let shared = data.clone().into_inner();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/evidence", web::get().to(list))
            .route("/evidence/{id}", web::get().to(one))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (shared, url)
}

/// Evidence that `a` and `b` (same size, different roots) are a split.
fn evidence(a: &TestLog, b: &TestLog, detected: u64) -> (String, Vec<u8>) {
    let ev = Evidence {
        origin: ORIGIN.into(),
        detected,
        reporter: "peer.example".into(),
        checkpoints: [
            EvidenceCheckpoint { note: a.checkpoint(), source: "view a".into() },
            EvidenceCheckpoint { note: b.checkpoint(), source: "view b".into() },
        ],
        prefix: None,
    };
    let text = ev.to_bytes().unwrap();
    (sha256(&text).to_hex(), text)
}

async fn json(url: &str) -> Value {
    serde_json::from_slice(&get(url).await.1).unwrap()
}

async fn frozen_by(w: &Proc) -> Option<String> {
    json(&format!("{}/health", w.url)).await["frozen"][0]["evidence"].as_str().map(str::to_owned)
}

/// Serves `ev` from the peer and waits until the witness fetched it and
/// had a few gossip rounds to act on it.
async fn serve_and_wait(peer: &Arc<Mutex<PeerState>>, ev: (String, Vec<u8>), detected: u64) {
    let id = ev.0.clone();
    peer.lock().unwrap().evidence = vec![(ev.0, ev.1, detected)];
    eventually!(
        format!("the witness fetching {id}"),
        peer.lock().unwrap().fetches.contains_key(&id).then_some(())
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}

fn clear(data: &Path) {
    let out = Command::new(bin("custody-witness"))
        .args(["clear-evidence", "--data-dir"])
        .arg(data)
        .args(["--origin", ORIGIN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleared_evidence_reimported_with_another_detected_time_does_not_refreeze() {
    let (mut a, mut b) = (TestLog::new(ORIGIN, 31), TestLog::new(ORIGIN, 31));
    a.append(4, "a");
    b.append(4, "b");
    let (peer, peer_url) = fake_peer();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    init(&data, "witness.example/importer");
    let peer_key = init(&dir.path().join("peer"), "peer.example");
    let logs = dir.path().join("logs");
    write_log_list(&logs, &[a.list_entry(None)]);
    let peers = dir.path().join("peers");
    std::fs::write(&peers, format!("peers/v0\n\nwitness peer.example\nvkey {peer_key}\nurl {peer_url}\n"))
        .unwrap();
    let args = ["--gossip-interval", "50"];

    // The peer's evidence freezes the origin.
    let mut w = serve(&data, &logs, Some(&peers), &args);
    let first = evidence(&a, &b, 1_000);
    serve_and_wait(&peer, first.clone(), 1_000).await;
    assert_eq!(frozen_by(&w).await, Some(first.0.clone()), "valid evidence freezes the origin");

    // The operator clears it.
    assert!(w.stop_gracefully());
    clear(&data);

    // The peer serves the same split with another `detected` field: the
    // text (and so the evidence ID) differs, the signed checkpoints do not.
    let w = serve(&data, &logs, Some(&peers), &args);
    let rewritten = evidence(&a, &b, 2_000);
    assert_ne!(rewritten.0, first.0);
    serve_and_wait(&peer, rewritten.clone(), 2_000).await;
    assert_eq!(frozen_by(&w).await, None, "cleared evidence re-imported froze the origin again");
    let list = json(&format!("{}/evidence", w.url)).await;
    assert_eq!(list["evidence"].as_array().unwrap().len(), 1, "one split, one record: {list}");
    let fetched = peer.lock().unwrap().fetches[&rewritten.0];
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        peer.lock().unwrap().fetches[&rewritten.0],
        fetched,
        "a known repeat is not fetched every round"
    );
    assert_eq!(json(&format!("{}/health", w.url)).await["status"], "ok");

    // A different split (another root) is new evidence and freezes.
    let mut c = TestLog::new(ORIGIN, 31);
    c.append(4, "c");
    let other = evidence(&a, &c, 3_000);
    serve_and_wait(&peer, other.clone(), 3_000).await;
    assert_eq!(frozen_by(&w).await, Some(other.0), "a new split freezes");
}
