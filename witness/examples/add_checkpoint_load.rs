//! Load figure for add-checkpoint on ONE origin (issue 5's target: 2,000
//! requests/s with proofs of typical size). Not a test and not timed in CI:
//! run it by hand and read the figure.
//!
//! ```sh
//! cargo run -p custody-witness --example add_checkpoint_load -- [REQUESTS] [CONCURRENCY]
//! ```
//!
//! It runs the real HTTP API and RocksDB store in-process (same machine,
//! same cores as the client, so the figure is conservative), with a log of
//! 1,000,000 leaves growing by 16 leaves per checkpoint (proofs of ~20
//! hashes). The checkpoints form one chain, as a log that pipelines its
//! requests would send them; CONCURRENCY clients take the next checkpoint in
//! turn, and a client whose request overtook its predecessor gets 409 and
//! resends it (counted separately). Every 200 is durable (synced group
//! commit) before it is sent.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::witness::AddCheckpointRequest;
use custody_standards::{consistency_proof, leaf_hash, MemoryHashStore, SignerKey};
use custody_witness::api::{self, AppState};
use custody_witness::committer::Committer;
use custody_witness::gossip::Gossip;
use custody_witness::init::{db_path, init_data_dir, load_signers};
use custody_witness::log_client::http_client;
use custody_witness::log_list::LogList;
use custody_witness::metrics::Metrics;
use custody_witness::state::{Trust, Witness};
use custody_witness::store::{RocksStore, Store};

const BASE: u64 = 1_000_000;
const STEP: u64 = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);

    eprintln!("building a log of {BASE} leaves and {n} checkpoints...");
    let origin = "example.com/load";
    let key = SignerKey::from_seed(origin, SIG_TYPE_ED25519, &[1; 32])?;
    let mut tree = MemoryHashStore::new();
    for i in 0..BASE {
        tree.append(leaf_hash(&i.to_be_bytes()));
    }
    let sign = |tree: &MemoryHashStore| {
        let cp =
            Checkpoint { origin: origin.into(), size: tree.size(), root: tree.root(), extensions: vec![] };
        sign_checkpoint(&cp, &key)
    };
    let first = AddCheckpointRequest { old_size: 0, proof: vec![], checkpoint: sign(&tree)? }.to_bytes();
    let mut bodies = Vec::with_capacity(n);
    let mut proof_len = 0;
    for _ in 0..n {
        let old = tree.size();
        for j in 0..STEP {
            tree.append(leaf_hash(&(old + j).to_be_bytes()));
        }
        let proof = consistency_proof(old, tree.size(), &tree)?;
        proof_len += proof.len();
        bodies.push(AddCheckpointRequest { old_size: old, proof, checkpoint: sign(&tree)? }.to_bytes());
    }
    eprintln!("average proof: {:.1} hashes", proof_len as f64 / n as f64);

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("w");
    init_data_dir(&data, "witness.example/load")?;
    let list = format!("logs/v0\nvkey {}\nqpd 86400\n", key.verifier());
    let trust = Trust { logs: LogList::parse(list.as_bytes())?, peers: vec![] };
    let store: Arc<dyn Store> = Arc::new(RocksStore::open(&db_path(&data))?);
    let metrics = Metrics::new();
    let (committer, _thread) = Committer::start(Arc::clone(&store), Arc::clone(&metrics))?;
    let witness =
        Witness::open("witness.example/load".into(), load_signers(&data)?, trust, store, committer, metrics)?;
    let gossip = Gossip::new(Arc::clone(&witness), http_client(Duration::from_secs(5), None)?);
    let state = web::Data::new(AppState {
        witness: Arc::clone(&witness),
        gossip,
        background: Default::default(),
        body_timeout: Duration::from_secs(10),
    });
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(api::configure))
        .disable_signals()
        .bind(("127.0.0.1", 0))?;
    let url = format!("http://{}/add-checkpoint", server.addrs()[0]);
    tokio::spawn(server.run());

    let mut cfg =
        custody_client::ClientConfig::new("add-checkpoint-load").retry(custody_client::RetryPolicy::never());
    cfg.pool_max_idle_per_host = Some(concurrency);
    let http = custody_client::Client::new(cfg)?;
    let post = {
        let url = url.clone();
        move |body: Vec<u8>| custody_client::Request::post(url.clone(), body, 64 * 1024)
    };
    let status = http.send(&post(first)).await?.status;
    anyhow::ensure!(status == 200, "first checkpoint: {status}");

    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, post, bodies, next, retries) =
            (http.clone(), post.clone(), Arc::clone(&bodies), Arc::clone(&next), Arc::clone(&retries));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(body) = bodies.get(i) else { return Ok::<(), anyhow::Error>(()) };
                // Bounded: a request is resent only while its predecessor
                // is still in flight.
                for attempt in 0..10_000 {
                    let resp = http.send(&post(body.clone())).await?;
                    match resp.status {
                        200 => break,
                        409 => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::task::yield_now().await;
                        }
                        s => anyhow::bail!("request {i}: status {s}"),
                    }
                    anyhow::ensure!(attempt < 9_999, "request {i} never went through");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let total = n as u64 + retries.load(Ordering::Relaxed);
    println!(
        "{n} checkpoints cosigned in {secs:.2} s: {:.0} cosignatures/s; {total} requests ({:.0} requests/s, {} were 409 resends); concurrency {concurrency}",
        n as f64 / secs,
        total as f64 / secs,
        retries.load(Ordering::Relaxed)
    );
    witness.metrics().set_gauges(witness.gauges());
    let format = custody_service::metrics::Format::Prometheus;
    let text = custody_service::metrics::encode(witness.metrics().registry(), format).unwrap_or_default();
    for line in
        text.lines().filter(|l| l.starts_with("custody_witness_commit_batch_jobs_") && !l.contains("bucket"))
    {
        println!("{line}");
    }
    Ok(())
}
