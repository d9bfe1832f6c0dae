//! Crash test: while clients stream appends, the real server is killed with
//! SIGKILL at random moments. After every restart each acknowledged entry is
//! present at its index with the same bytes, and the new checkpoint is
//! consistent with every checkpoint seen before the crash.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody_standards::checkpoint::open_checkpoint;
use custody_standards::{verify_consistency, Hash, VerifierKey};
use rand::{rngs::StdRng, Rng as _, SeedableRng as _};

use custody_testkit::bin;
use custody_testkit::logserver::{init_generic, serve};

const ORIGIN: &str = "example.com/crash-test";
const ROUNDS: u32 = 4;
const WRITERS: u32 = 4;

/// A verified checkpoint's (size, root).
fn parse_checkpoint(note: &[u8], vkey: &VerifierKey) -> (u64, Hash) {
    let cp = open_checkpoint(note, vkey).expect("served checkpoint verifies").checkpoint;
    (cp.size, cp.root)
}

async fn checkpoint(client: &reqwest::Client, base: &str, vkey: &VerifierKey) -> Option<(u64, Hash)> {
    let resp = client.get(format!("{base}/checkpoint")).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    Some(parse_checkpoint(&resp.bytes().await.ok()?, vkey))
}

/// Polls `/checkpoint` until it covers `size` leaves.
async fn checkpoint_covering(
    client: &reqwest::Client,
    base: &str,
    vkey: &VerifierKey,
    size: u64,
) -> (u64, Hash) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(cp) = checkpoint(client, base, vkey).await {
            if cp.0 >= size {
                return cp;
            }
        }
        assert!(Instant::now() < deadline, "no checkpoint covering {size} within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn check_consistent(client: &reqwest::Client, base: &str, old: (u64, Hash), new: (u64, Hash)) {
    let url = format!("{base}/proof/consistency?old={}&new={}", old.0, new.0);
    let v: serde_json::Value =
        client.get(url).send().await.unwrap().error_for_status().unwrap().json().await.unwrap();
    let proof: Vec<Hash> = v["proof"]
        .as_array()
        .expect("proof array")
        .iter()
        .map(|h| Hash::from_base64(h.as_str().expect("base64 string")).expect("hash"))
        .collect();
    verify_consistency(old.0, new.0, &proof, &old.1, &new.1)
        .unwrap_or_else(|e| panic!("checkpoint {} not consistent with earlier {}: {e}", new.0, old.0));
}

/// Every acknowledged entry is served at its index with the same bytes.
async fn check_entries(client: &reqwest::Client, base: &str, acked: &BTreeMap<u64, Vec<u8>>) {
    let items: Vec<(u64, Vec<u8>)> = acked.iter().map(|(i, b)| (*i, b.clone())).collect();
    let chunks: Vec<Vec<(u64, Vec<u8>)>> =
        items.chunks(items.len().div_ceil(8).max(1)).map(<[_]>::to_vec).collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (client, base) = (client.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            for (i, bytes) in chunk {
                let resp = client.get(format!("{base}/entries/{i}")).send().await.unwrap();
                assert!(resp.status().is_success(), "acknowledged entry {i}: HTTP {}", resp.status());
                assert_eq!(resp.bytes().await.unwrap().as_ref(), &bytes[..], "entry {i} bytes changed");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_entries_survive_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vkey = init_generic(&data, ORIGIN);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut rng = StdRng::seed_from_u64(0x0c0ffee);
    // index -> bytes of every acknowledged entry; checkpoints seen by clients.
    let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut seen: BTreeMap<u64, Hash> = BTreeMap::new();

    for round in 0..=ROUNDS {
        let server = serve(&data, &["--allow-raw-append"]);
        let base = server.url.clone();
        // Recovery: everything acknowledged before the crash is there, and
        // the new checkpoint extends every earlier one.
        // (A fresh, empty log has no checkpoint to wait for.)
        if !acked.is_empty() {
            let need = acked.keys().next_back().map_or(0, |i| i + 1);
            let need = need.max(seen.keys().next_back().copied().unwrap_or(0));
            let now = checkpoint_covering(&client, &base, &vkey, need).await;
            check_entries(&client, &base, &acked).await;
            for (&size, &root) in &seen {
                check_consistent(&client, &base, (size, root), now).await;
            }
        }
        if round == ROUNDS {
            break;
        }
        // Stream appends from several writers and poll checkpoints.
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::<(u64, Vec<u8>)>::new()));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (client, base, stop, acks) = (client.clone(), base.clone(), stop.clone(), acks.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let bytes = format!("round {round} writer {w} entry {i}").into_bytes();
                    i += 1;
                    let Ok(resp) = client.post(format!("{base}/entries")).body(bytes.clone()).send().await
                    else {
                        continue;
                    };
                    if !resp.status().is_success() {
                        continue;
                    }
                    // A reply cut off by the kill is not an acknowledgement.
                    let Ok(v) = resp.json::<serde_json::Value>().await else { continue };
                    let index = v["index"].as_u64().expect("ack has an index");
                    assert_eq!(v["duplicate"], false, "fresh entry reported as duplicate");
                    acks.lock().unwrap().push((index, bytes));
                }
            }));
        }
        let poller = {
            let (client, base, stop, vkey) = (client.clone(), base.clone(), stop.clone(), vkey.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if let Some(cp) = checkpoint(&client, &base, &vkey).await {
                        out.push(cp);
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                out
            })
        };
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
        drop(server); // SIGKILL, mid-stream
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        for (size, root) in poller.await.unwrap() {
            if let Some(prev) = seen.insert(size, root) {
                assert_eq!(prev, root, "two checkpoints of size {size} with different roots");
            }
        }
        let new_acks = std::mem::take(&mut *acks.lock().unwrap());
        assert!(!new_acks.is_empty(), "round {round}: no entry acknowledged");
        for (index, bytes) in new_acks {
            if let Some(prev) = acked.insert(index, bytes.clone()) {
                panic!("index {index} acknowledged twice: {:?} and {:?}", prev, bytes);
            }
        }
    }
    assert!(seen.len() >= 2, "too few checkpoints observed: {seen:?}");
    // The killed-and-restarted store is consistent on disk, too.
    let fsck = Command::new(bin("custody-log")).args(["fsck", "--data-dir"]).arg(&data).output().unwrap();
    assert!(fsck.status.success(), "fsck: {}", String::from_utf8_lossy(&fsck.stdout));
    eprintln!("{} acknowledged entries, {} checkpoints, {:?}", acked.len(), seen.len(), started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
}
