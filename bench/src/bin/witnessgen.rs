//! `custody-witnessgen`: measures a real `custody-witness` answering
//! C2SP tlog-witness `add-checkpoint` requests, and prints add-checkpoint/s
//! and latency.
//!
//! It starts its own witness (next to itself, or `--witness-bin`) in a
//! temporary directory, configured with `--logs` logs whose keys it holds.
//! Each log is one client, as each real log talks to its witnesses on its
//! own: it sends a chain of checkpoints, each one leaf larger than the last,
//! with `old` set to the previous size and a real consistency proof, so the
//! witness does its full work for every request (parse, open the log's
//! signature, check the proof against its stored checkpoint, cosign, make it
//! durable). Every reply is checked to be `200` with a cosignature line.
//! Checkpoints are signed before the clock starts: the log's cost is not the
//! witness's.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use custody_bench::procs::{output, rss_kib, sibling, start};
use custody_bench::stats::{windows, Samples, Spread};
use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
use custody_standards::witness::AddCheckpointRequest;
use custody_standards::{consistency_proof, leaf_hash, MemoryHashStore};
use serde_json::json;

/// Load generator for a custody-witness.
#[derive(Debug, Parser)]
#[command(name = "custody-witnessgen", version, about)]
struct Args {
    /// Logs the witness is configured with; each sends its chain
    /// concurrently with the others.
    #[arg(long, env = "CUSTODY_BENCH_LOGS", default_value_t = 32)]
    logs: usize,
    /// add-checkpoint requests in all.
    #[arg(long, env = "CUSTODY_BENCH_REQUESTS", default_value_t = 20_000)]
    requests: usize,
    /// Windows the run is cut into (by reply time), for median and spread.
    #[arg(long, env = "CUSTODY_BENCH_WINDOWS", default_value_t = 5)]
    windows: usize,
    /// The custody-witness binary (default: next to this one).
    #[arg(long, env = "CUSTODY_WITNESS_BIN")]
    witness_bin: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long, env = "CUSTODY_BENCH_JSON")]
    json: bool,
}

/// One log's pre-signed requests, in order.
fn chain(log: usize, n: usize) -> anyhow::Result<(SignerKey, Vec<Vec<u8>>)> {
    let origin = format!("bench.example/log-{log}");
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(log as u64 + 1).to_be_bytes());
    let key = SignerKey::from_seed(&origin, SIG_TYPE_ED25519, &seed)?;
    let mut tree = MemoryHashStore::new();
    let mut bodies = Vec::with_capacity(n);
    for i in 0..n {
        let old = tree.size();
        tree.append(leaf_hash(format!("{origin} entry {i}").as_bytes()));
        let cp =
            Checkpoint { origin: origin.clone(), size: tree.size(), root: tree.root(), extensions: vec![] };
        let proof = consistency_proof(old, tree.size(), &tree)?;
        let checkpoint = sign_checkpoint(&cp, &key)?;
        bodies.push(AddCheckpointRequest { old_size: old, proof, checkpoint }.to_bytes());
    }
    Ok((key, bodies))
}

async fn client(
    c: reqwest::Client,
    url: String,
    bodies: Vec<Vec<u8>>,
) -> anyhow::Result<Vec<(Instant, f64)>> {
    let mut done = Vec::with_capacity(bodies.len());
    for body in bodies {
        let t = Instant::now();
        let r = c.post(format!("{url}/add-checkpoint")).body(body).send().await?;
        let status = r.status();
        let reply = r.bytes().await?;
        if status != 200 || !reply.starts_with("— ".as_bytes()) {
            bail!("add-checkpoint answered {status}: {}", String::from_utf8_lossy(&reply));
        }
        let now = Instant::now();
        done.push((now, (now - t).as_secs_f64() * 1e3));
    }
    Ok(done)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let logs = args.logs.max(1);
    let per_log = args.requests.div_ceil(logs).max(1);
    let bin = match &args.witness_bin {
        Some(b) => b.clone(),
        None => sibling("custody-witness")?,
    };
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("witness");
    output(Command::new(&bin).args(["init", "--name", "bench.example/witness", "--data-dir"]).arg(&data))?;

    let prepared = Instant::now();
    let chains = (0..logs).map(|l| chain(l, per_log)).collect::<anyhow::Result<Vec<_>>>()?;
    let sign_secs = prepared.elapsed().as_secs_f64();
    let mut list = String::from("logs/v0\n");
    for (key, _) in &chains {
        list += &format!("\nvkey {}\norigin none\nqpd 86400000\n", key.verifier());
    }
    let list_path = dir.path().join("logs.txt");
    std::fs::write(&list_path, list)?;
    let server = start(
        Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--logs")
            .arg(&list_path)
            .env("CUSTODY_LOG", "warn"),
        &dir.path().join("witness.stderr"),
        Duration::from_secs(60),
    )?;

    let c = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(logs)
        .timeout(Duration::from_secs(60))
        .build()?;
    let start_at = Instant::now();
    let tasks: Vec<_> = chains
        .into_iter()
        .map(|(_, bodies)| tokio::spawn(client(c.clone(), server.url.clone(), bodies)))
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.extend(t.await.context("client task")??);
    }
    let elapsed = start_at.elapsed().as_secs_f64();
    replies.sort_unstable_by_key(|r| r.0);
    let rss = rss_kib(server.pid());

    let (mut rates, mut p50s, mut p99s, mut all) = (Vec::new(), Vec::new(), Vec::new(), Samples::default());
    for (chunk, rate) in windows(&replies, args.windows, start_at, |r| r.0) {
        rates.push(rate);
        let mut s = Samples::default();
        for r in chunk {
            s.push(r.1);
            all.push(r.1);
        }
        p50s.extend(s.percentile(50.0));
        p99s.extend(s.percentile(99.0));
    }
    let report = json!({
        "workload": "add-checkpoint chains (one leaf per step, real consistency proofs), one client per log",
        "logs": logs,
        "requests": replies.len(),
        "add_checkpoint_per_s": replies.len() as f64 / elapsed,
        "windows": {"add_checkpoint_per_s": rates, "latency_p50_ms": p50s, "latency_p99_ms": p99s},
        "latency_ms": {"p50": all.percentile(50.0), "p99": all.percentile(99.0)},
        "witness_rss_mib": rss.map(|k| k as f64 / 1024.0),
        "client_signing_s": sign_secs,
    });
    if args.json {
        println!("{report}");
    } else {
        let f = |v: &serde_json::Value| v.as_f64().map_or("n/a".into(), |x| format!("{x:.1}"));
        let spread = Spread::of(
            &report["windows"]["add_checkpoint_per_s"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_f64)
                .collect::<Vec<_>>(),
        );
        println!("workload              {}", report["workload"].as_str().unwrap_or_default());
        println!("logs (clients)        {logs}");
        println!("requests              {}", replies.len());
        println!("add-checkpoint/s      {}   (target >= 2000)", f(&report["add_checkpoint_per_s"]));
        if let Some(s) = spread {
            println!("  per window          median {:.1}, {:.1} to {:.1}", s.median, s.low, s.high);
        }
        println!(
            "latency ms            p50 {}  p99 {}",
            f(&report["latency_ms"]["p50"]),
            f(&report["latency_ms"]["p99"])
        );
        println!("witness RSS MiB       {}", f(&report["witness_rss_mib"]));
    }
    drop(server);
    Ok(())
}
