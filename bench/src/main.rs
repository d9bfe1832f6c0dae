//! `custody-loadgen`: drives a running registry-mode `custody-log` over
//! HTTP from the same machine and prints what issue 8 asks for: signed
//! entries durably sequenced per second, acknowledgement latency, time from
//! acknowledgement to a published checkpoint, inclusion proofs and tiles
//! served per second, and (given the server's pid and data directory) its
//! RSS and bytes on disk per entry.
//!
//! The workload is the one that dominates a real registry: signed `access`
//! statements (`GET /blobs/...` with the statement in a header), each of
//! which is authenticated, rate-limited, checked and made durable before the
//! artifact's bytes are served. Every worker is its own actor, as separate
//! clients would be, so the per-actor rate limit applies per worker.
//! Figures are printed, never asserted: speed targets live here, not in
//! tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use custody_bench::procs::{bench_client_config, rss_kib};
use custody_bench::statements::{self, random};
use custody_bench::stats::{self, Samples};
use custody_client::{Client, Request};
use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Pattern};
use custody_registry::registry::Role;
use custody_registry::statement::events::Access;
use custody_registry::statement::Event;
use custody_standards::checkpoint::Checkpoint;
use custody_standards::encoding::encode_base64;
use custody_standards::note::Note;
use custody_standards::tiles::Tile;
use serde_json::json;

/// Load generator for a registry-mode custody-log.
#[derive(Debug, Parser)]
#[command(name = "custody-loadgen", version, about)]
struct Args {
    /// Base URL of the running custody-log.
    #[arg(long, env = "CUSTODY_LOG_URL")]
    log: String,
    /// The registry's first admin signer key (written by `custody-log init`).
    #[arg(long, env = "CUSTODY_ADMIN_KEY")]
    admin_key: PathBuf,
    /// Signed access statements to send.
    #[arg(long, env = "CUSTODY_BENCH_ENTRIES", default_value_t = 20_000)]
    entries: u64,
    /// Stop once the log's tree reaches this size (state commitment leaves,
    /// one per batch, count too), even if fewer than `--entries` were sent.
    #[arg(long, env = "CUSTODY_BENCH_UNTIL_SIZE")]
    until_size: Option<u64>,
    /// Concurrent clients (each its own actor).
    #[arg(long, env = "CUSTODY_BENCH_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Inclusion proofs to request after the load.
    #[arg(long, env = "CUSTODY_BENCH_PROOFS", default_value_t = 20_000)]
    proofs: u64,
    /// Full level-0 tiles to request after the load.
    #[arg(long, env = "CUSTODY_BENCH_TILES", default_value_t = 5_000)]
    tiles: u64,
    /// Request the tiles from this static read path (the bucket of
    /// `custody-log serve --store` behind a static server) instead of the log.
    #[arg(long, env = "CUSTODY_TILES_URL")]
    tiles_url: Option<String>,
    /// The server's pid, to report its RSS.
    #[arg(long, env = "CUSTODY_BENCH_SERVER_PID")]
    server_pid: Option<u32>,
    /// The server's data directory, to report bytes on disk per entry.
    #[arg(long, env = "CUSTODY_BENCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long, env = "CUSTODY_BENCH_JSON")]
    json: bool,
    /// PEM file of extra CA certificates to trust for an https:// log.
    #[arg(long, env = "CUSTODY_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Windows the run is cut into (by acknowledgement order) and proof and
    /// tile bursts repeated, so each figure has a median and a spread.
    #[arg(long, env = "CUSTODY_BENCH_WINDOWS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    windows: u64,
}

/// Signs `event` by `who` now, as the load generator.
fn sign(who: &ActorSigner, event: Event) -> anyhow::Result<Vec<u8>> {
    statements::sign(who, "load generator", event)
}

/// Largest answer read (proofs, statements' receipts, checkpoints).
const MAX_ANSWER: u64 = 16 << 20;

async fn post_statement(c: &Client, base: &str, envelope: Vec<u8>) -> anyhow::Result<()> {
    c.fetch(&Request::post(format!("{base}/statements"), envelope, MAX_ANSWER))
        .await
        .context("statement refused")?;
    Ok(())
}

/// The published checkpoint's size (0 before the first one).
async fn checkpoint_size(c: &Client, base: &str) -> anyhow::Result<(u64, custody_standards::Hash)> {
    let r = c.send(&Request::get(format!("{base}/checkpoint"), MAX_ANSWER)).await?;
    if r.status == 503 {
        return Ok((0, custody_standards::empty_root()));
    }
    let note = Note::parse(&r.body).map_err(|e| anyhow::anyhow!("checkpoint note: {e}"))?;
    let cp = Checkpoint::parse(&note.text).map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
    Ok((cp.size, cp.root))
}

struct Setup {
    readers: Vec<ActorSigner>,
    /// What every reader reads: the published artifact, by name and version.
    access: Access,
}

/// Grants one reader per worker and publishes one small artifact.
async fn setup(c: &Client, base: &str, admin: &ActorSigner, workers: usize) -> anyhow::Result<Setup> {
    let run = custody_standards::Hash(random::<32>()?).to_hex()[..8].to_owned();
    let actor = |n: String| ActorName::new(&n).map_err(|e| anyhow::anyhow!("actor name {n}: {e}"));
    let pattern = Pattern::new("bench/*").map_err(|e| anyhow::anyhow!("{e}"))?;
    let grant = |to: &ActorSigner, role| statements::grant(to, role, &pattern);
    let publisher = ActorSigner::from_seed(&actor(format!("bench-{run}-pub"))?, &random()?);
    post_statement(c, base, sign(admin, grant(&publisher, Role::Publisher))?).await?;
    let mut readers = Vec::with_capacity(workers);
    for i in 0..workers {
        let r = ActorSigner::from_seed(&actor(format!("bench-{run}-{i}"))?, &random()?);
        post_statement(c, base, sign(admin, grant(&r, Role::Reader))?).await?;
        readers.push(r);
    }
    let bytes = format!("custody load generator artifact {run}").into_bytes();
    let access = statements::publish_artifact(
        c,
        base,
        &publisher,
        "load generator",
        &format!("bench/model-{run}"),
        bytes,
    )
    .await?;
    Ok(Setup { readers, access })
}

/// One acknowledged entry.
#[derive(Clone, Copy)]
struct Ack {
    index: u64,
    at: Instant,
    latency: f64,
    /// Bytes of the logged entry (leaf header + envelope).
    bytes: u64,
}

type Acks = Vec<Ack>;

/// Bytes of the leaf header in front of the envelope (docs/protocol.md):
/// "CUSTODY", version, receive time (u64), envelope length (u32).
const LEAF_HEADER: u64 = 7 + 1 + 8 + 4;

async fn worker(
    c: Client,
    base: String,
    who: ActorSigner,
    access: Access,
    n: u64,
    until: Arc<(AtomicU64, u64)>,
) -> anyhow::Result<Acks> {
    let mut acks = Vec::with_capacity(n as usize);
    for _ in 0..n {
        if until.0.load(Ordering::SeqCst) >= until.1 {
            break;
        }
        let envelope = sign(&who, Event::Access(access.clone()))?;
        let digest = access.digest;
        let bytes = LEAF_HEADER + envelope.len() as u64;
        let start = Instant::now();
        let req = Request::get(format!("{base}/blobs/{digest}"), MAX_ANSWER)
            .retry_safe(false)
            .header("custody-statement", &encode_base64(&envelope))?;
        let r = c.fetch(&req).await.context("access refused")?;
        let index: u64 = r
            .header("custody-leaf-index")
            .and_then(|v| v.parse().ok())
            .context("no Custody-Leaf-Index header")?;
        let done = Instant::now();
        // The tree holds at least the acked entry and its batch's
        // commitment leaf.
        until.0.fetch_max(index + 2, Ordering::SeqCst);
        acks.push(Ack { index, at: done, latency: (done - start).as_secs_f64(), bytes });
    }
    Ok(acks)
}

/// Polls `/checkpoint` and records when each new size was first seen.
async fn watch(c: Client, base: String, stop: Arc<AtomicBool>, seen: Arc<Mutex<Vec<(Instant, u64)>>>) {
    let mut last = 0;
    while !stop.load(Ordering::SeqCst) {
        if let Ok((size, _)) = checkpoint_size(&c, &base).await {
            if size > last {
                last = size;
                seen.lock().unwrap_or_else(|p| p.into_inner()).push((Instant::now(), size));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Requests `total` GETs of `path(i)` with `workers` concurrent clients;
/// returns requests per second.
async fn hammer(
    c: &Client,
    workers: usize,
    total: u64,
    path: impl Fn(u64) -> String + Send + Sync + 'static,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let path = Arc::new(path);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (c, next, path) = (c.clone(), next.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                c.get(&path(i), MAX_ANSWER).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// A cheap deterministic sequence for request indexes.
fn scramble(i: u64, modulo: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) % modulo.max(1)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.log.trim_end_matches('/').to_owned();
    let key = std::fs::read_to_string(&args.admin_key)
        .with_context(|| format!("cannot read {}", args.admin_key.display()))?;
    let admin = ActorSigner::parse(key.trim_end()).map_err(|e| anyhow::anyhow!("admin key: {e}"))?;
    let workers = args.concurrency.max(1);
    let c = Client::new(bench_client_config(args.ca_cert.clone(), workers))?;
    let setup = setup(&c, &base, &admin, workers).await?;
    let (size_before, _) = checkpoint_size(&c, &base).await?;
    let disk_before = args.data_dir.as_deref().map(custody_bench::procs::disk_bytes);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = tokio::spawn(watch(c.clone(), base.clone(), stop.clone(), seen.clone()));
    let per_worker = args.entries.div_ceil(workers as u64);
    let until = Arc::new((AtomicU64::new(size_before), args.until_size.unwrap_or(u64::MAX)));
    let start = Instant::now();
    let tasks: Vec<_> = setup
        .readers
        .iter()
        .map(|r| {
            let w =
                worker(c.clone(), base.clone(), r.clone(), setup.access.clone(), per_worker, until.clone());
            tokio::spawn(w)
        })
        .collect();
    let mut acks: Acks = Vec::new();
    for t in tasks {
        acks.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    acks.sort_unstable_by_key(|a| a.at);
    let last_index = acks.iter().map(|a| a.index).max().unwrap_or(0);
    // Wait (bounded) for a checkpoint covering every acknowledged entry.
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.lock().unwrap_or_else(|p| p.into_inner()).last().map_or(0, |s| s.1) <= last_index {
        if Instant::now() > deadline {
            bail!("no checkpoint covered entry {last_index} within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    watcher.await?;

    // `seen` grows in both time and size: the first checkpoint covering an
    // entry is found by bisection.
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let published = |a: &Ack| {
        let i = seen.partition_point(|(_, size)| *size <= a.index);
        seen.get(i).map(|(t, _)| t.saturating_duration_since(a.at).as_secs_f64())
    };
    let windows = usize::try_from(args.windows).unwrap_or(1).clamp(1, acks.len().max(1));
    let mut w = WindowFigures::default();
    let (mut ack_all, mut cp_all) = (Samples::default(), Samples::default());
    for (chunk, rate) in stats::windows(&acks, windows, start, |a| a.at) {
        w.entries_per_s.push(rate);
        let (mut ack, mut cp) = (Samples::default(), Samples::default());
        for a in chunk {
            ack.push(a.latency * 1e3);
            ack_all.push(a.latency * 1e3);
            if let Some(d) = published(a) {
                cp.push(d * 1e3);
                cp_all.push(d * 1e3);
            }
        }
        w.ack_p50_ms.extend(ack.percentile(50.0));
        w.ack_p99_ms.extend(ack.percentile(99.0));
        w.checkpoint_p50_ms.extend(cp.percentile(50.0));
        w.checkpoint_p99_ms.extend(cp.percentile(99.0));
    }

    let (size, _) = checkpoint_size(&c, &base).await?;
    let mut proofs_per_s = Vec::new();
    for _ in 0..windows {
        let b = base.clone();
        let rate = hammer(&c, workers, args.proofs.div_ceil(windows as u64), move |i| {
            format!("{b}/proof/inclusion?index={}&size={size}", scramble(i, size))
        })
        .await?;
        proofs_per_s.push(rate);
    }
    let full_tiles = size / 256;
    let mut tiles_per_s = Vec::new();
    for run in 0..windows as u64 {
        if full_tiles == 0 {
            break;
        }
        let b =
            args.tiles_url.as_deref().map_or_else(|| base.clone(), |u| u.trim_end_matches('/').to_owned());
        let rate = hammer(&c, workers, args.tiles.div_ceil(windows as u64), move |i| {
            let t = Tile::new(0, scramble(i + run * 7919, full_tiles), 256).expect("full level-0 tile");
            format!("{b}/{}", t.path())
        })
        .await?;
        tiles_per_s.push(rate);
    }
    let rss = args.server_pid.and_then(rss_kib);
    let entry_bytes = acks.iter().map(|a| a.bytes).sum::<u64>() as f64 / acks.len().max(1) as f64;
    let disk_after = args.data_dir.as_deref().map(custody_bench::procs::disk_bytes);
    let growth = disk_before.zip(disk_after).map(|(b, a)| (a as f64 - b as f64) / acks.len().max(1) as f64);

    let report = json!({
        "workload": "signed access statements (GET /blobs with a DSSE statement header)",
        "clients": workers,
        "entries": acks.len(),
        "tree_size_before": size_before,
        "tree_size_after": size,
        "entries_per_s": acks.len() as f64 / elapsed,
        "ack_latency_ms": {"p50": ack_all.percentile(50.0), "p99": ack_all.percentile(99.0)},
        "ack_to_checkpoint_ms": {"p50": cp_all.percentile(50.0), "p99": cp_all.percentile(99.0)},
        "windows": w,
        "inclusion_proofs_per_s": proofs_per_s,
        "tiles_per_s": tiles_per_s,
        "server_rss_mib": rss.map(|k| k as f64 / 1024.0),
        "entry_bytes_mean": entry_bytes,
        "disk_bytes_per_entry": disk_after.map(|d| d as f64 / size.max(1) as f64),
        "disk_growth_per_entry": growth,
        "disk_beyond_entry_per_entry": growth.map(|g| g - entry_bytes),
    });
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Figures per window of the run, in acknowledgement order.
#[derive(Default, serde::Serialize)]
struct WindowFigures {
    entries_per_s: Vec<f64>,
    ack_p50_ms: Vec<f64>,
    ack_p99_ms: Vec<f64>,
    checkpoint_p50_ms: Vec<f64>,
    checkpoint_p99_ms: Vec<f64>,
}

fn print_table(r: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().map_or("n/a".to_owned(), |x| format!("{x:.1}"));
    let many = |v: &serde_json::Value| {
        let xs: Vec<String> = v.as_array().into_iter().flatten().map(f).collect();
        if xs.is_empty() {
            "n/a".to_owned()
        } else {
            xs.join(" ")
        }
    };
    println!("workload            {}", r["workload"].as_str().unwrap_or_default());
    println!("clients             {}", r["clients"]);
    println!(
        "entries             {} (tree {} -> {})",
        r["entries"], r["tree_size_before"], r["tree_size_after"]
    );
    println!("entries/s           {}   (target >= 10000)", f(&r["entries_per_s"]));
    println!("  per window        {}", many(&r["windows"]["entries_per_s"]));
    println!(
        "ack latency ms      p50 {}  p99 {}",
        f(&r["ack_latency_ms"]["p50"]),
        f(&r["ack_latency_ms"]["p99"])
    );
    println!(
        "ack->checkpoint ms  p50 {}  p99 {}   (target p50 <= 1500)",
        f(&r["ack_to_checkpoint_ms"]["p50"]),
        f(&r["ack_to_checkpoint_ms"]["p99"])
    );
    println!("inclusion proofs/s  {}   (target >= 20000)", many(&r["inclusion_proofs_per_s"]));
    println!("tiles/s             {}", many(&r["tiles_per_s"]));
    println!("server RSS MiB      {}", f(&r["server_rss_mib"]));
    println!("entry bytes (mean)  {}", f(&r["entry_bytes_mean"]));
    println!(
        "disk bytes/entry    {} total, {} beyond the entry",
        f(&r["disk_bytes_per_entry"]),
        f(&r["disk_beyond_entry_per_entry"])
    );
}
