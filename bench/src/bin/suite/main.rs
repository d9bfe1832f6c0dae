//! `custody-benchsuite`: the whole benchmark suite in one run, writing the
//! generated part of docs/performance.md.
//!
//! `scripts/bench` builds everything in the release profile, runs
//! criterion over `custody-standards`, then this binary, which
//! 1. reads the criterion results (core figures and the physical limits:
//!    one SHA-256 of a node, one Ed25519 sign and verify);
//! 2. runs `custody-witnessgen` against a real `custody-witness`;
//! 3. starts a real deployment (three `custody-witness`, a registry-mode
//!    `custody-log` with a 2-of-3 policy) and grows its log with
//!    `custody-loadgen` to each size of `--sizes`, measuring at each;
//! 4. times `custody audit` (cold: everything fetched, then warm: from its
//!    cache) once the log reaches `--audit-at`, then again after each of a
//!    few rounds of `--reaudit-entries` new entries (replayed from the saved replay state);
//!    and times `custody report` over the whole registry once the log
//!    reaches `--report-at` ([`compliance`]), and `custody monitor --rules`
//!    once it reaches `--alerts-at` ([`alerts`]);
//! 5. at the largest size, measures honest entries/s and proofs/s with and
//!    without each `custody-attackgen` attack of `--attacks`;
//! 6. publishes, pulls and re-publishes a model directory of
//!    `--model-shards` shards ([`models`]);
//! 7. restarts the log server at the largest size (start-up replay time and
//!    RSS after it);
//! 8. grows a log on local disk only, one writing its read path to a
//!    3-node Garage cluster, and one with recovery point zero, and times
//!    `custody-log restore` from the bucket ([`storage`]);
//! 9. pulls one artifact from a log storing it encrypted (the default) and
//!    from one with `--plaintext-artifacts` ([`encryption`]);
//! 10. times the dashboard's model page with `--dashboard-rows` history
//!     rows ([`dashboard`]), on the server and in headless Chromium
//!     ([`browser`]: first render, in-browser proofs per second);
//! 11. times the Python package's `custody.verify` against the CLI's
//!     `pull --verify-only` of the same model directory ([`python`]);
//! 12. writes the tables between the markers of `--out`, keeping the
//!     hand-written analysis around them.
//!
//! Figures only: nothing fails on speed.

mod alerts;
mod browser;
mod compliance;
mod criterion;
mod dashboard;
mod deployment;
mod encryption;
mod models;
mod python;
mod report;
mod storage;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use custody_bench::procs::{output, sibling};
use serde_json::{json, Value};

/// Runs the benchmark suite and writes docs/performance.md.
#[derive(Debug, Parser)]
#[command(name = "custody-benchsuite", version, about)]
pub struct Args {
    /// Log sizes to grow to and measure at.
    #[arg(
        long,
        env = "CUSTODY_BENCH_SIZES",
        value_delimiter = ',',
        default_value = "10000,1000000,10000000"
    )]
    sizes: Vec<u64>,
    /// Time `custody report` over the whole registry at the first size at
    /// least this large ([`compliance`]).
    #[arg(long, env = "CUSTODY_BENCH_REPORT_AT", default_value_t = 10_000)]
    report_at: u64,
    /// Time `custody monitor --rules` over the whole log at the first size
    /// at least this large ([`alerts`]).
    #[arg(long, env = "CUSTODY_BENCH_ALERTS_AT", default_value_t = 10_000)]
    alerts_at: u64,
    /// Time `custody audit` at the first size at least this large.
    #[arg(long, env = "CUSTODY_BENCH_AUDIT_AT", default_value_t = 1_000_000)]
    audit_at: u64,
    /// New entries before each timed re-audit (incremental, from the
    /// replay state the audit before it saved).
    #[arg(long, env = "CUSTODY_BENCH_REAUDIT_ENTRIES", default_value_t = 10_000)]
    reaudit_entries: u64,
    /// Concurrent load-generator clients.
    #[arg(long, env = "CUSTODY_BENCH_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Windows per measurement (median and spread).
    #[arg(long, env = "CUSTODY_BENCH_WINDOWS", default_value_t = 5)]
    windows: u64,
    /// add-checkpoint requests sent to the measured witness.
    #[arg(long, env = "CUSTODY_BENCH_WITNESS_REQUESTS", default_value_t = 20_000)]
    witness_requests: usize,
    /// Where the deployment's data goes (needs about 1.1 KB per entry).
    #[arg(long, env = "CUSTODY_BENCH_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// Criterion's output directory (default: $CARGO_TARGET_DIR/criterion).
    #[arg(long, env = "CUSTODY_BENCH_CRITERION_DIR")]
    criterion_dir: Option<PathBuf>,
    /// The file whose generated section is rewritten.
    #[arg(long, env = "CUSTODY_BENCH_OUT", default_value = "docs/performance.md")]
    out: PathBuf,
    /// Attacks to measure honest throughput under (custody-attackgen
    /// modes: slow-bodies, slow-downloads, big-entries, bad-signatures),
    /// each against the same load without it, at the largest size; `none`
    /// skips them.
    #[arg(
        long,
        env = "CUSTODY_BENCH_ATTACKS",
        value_delimiter = ',',
        default_value = "slow-bodies,slow-downloads,big-entries,bad-signatures"
    )]
    attacks: Vec<String>,
    /// Signed entries (and as many inclusion proofs) per measurement with
    /// and without an attack.
    #[arg(long, env = "CUSTODY_BENCH_ATTACK_ENTRIES", default_value_t = 20_000)]
    attack_entries: u64,
    /// Connections each slow attack holds (bad-signatures uses a tenth).
    #[arg(long, env = "CUSTODY_BENCH_ATTACK_CONNECTIONS", default_value_t = 1100)]
    attack_connections: u64,
    /// Shards of the model directory pulled and re-published (0 skips the
    /// step).
    #[arg(long, env = "CUSTODY_BENCH_MODEL_SHARDS", default_value_t = 4)]
    model_shards: u64,
    /// Size of each shard, in MiB.
    #[arg(long, env = "CUSTODY_BENCH_MODEL_SHARD_MIB", default_value_t = 512)]
    model_shard_mib: u64,
    /// Signed entries each storage mode (local, `--store s3://` on a
    /// 3-node Garage, recovery point zero) is grown to; 0 skips the step.
    #[arg(long, env = "CUSTODY_BENCH_STORAGE_ENTRIES", default_value_t = 1_000_000)]
    storage_entries: u64,
    /// Storage modes to measure (local, s3, s3-rpo0).
    #[arg(
        long,
        env = "CUSTODY_BENCH_STORAGE_MODES",
        value_delimiter = ',',
        default_value = "local,s3,s3-rpo0"
    )]
    storage_modes: Vec<String>,
    /// Whether the Garage nodes fsync their metadata and data (as the log's
    /// RocksDB does). `false` is a diagnostic: it shows how much of the
    /// bucket's cost is three stores syncing to the log's own disk.
    #[arg(long, env = "CUSTODY_BENCH_STORAGE_FSYNC", default_value_t = true, action = clap::ArgAction::Set)]
    storage_fsync: bool,
    /// Where the Garage nodes keep their data (default: the work
    /// directory, on the log's own file system). Another file system (for
    /// example `/dev/shm`) is a diagnostic: on ext4 a log's fsync also
    /// flushes whatever the store has written to the same file system.
    #[arg(long, env = "CUSTODY_BENCH_STORAGE_DIR")]
    storage_dir: Option<std::path::PathBuf>,
    /// Size in MiB of the artifact each storage mode publishes and pulls
    /// (0 skips it).
    #[arg(long, env = "CUSTODY_BENCH_STORAGE_ARTIFACT_MIB", default_value_t = 512)]
    storage_artifact_mib: u64,
    /// Full tiles requested from the log and from the bucket's static path.
    #[arg(long, env = "CUSTODY_BENCH_STORAGE_TILES", default_value_t = 20_000)]
    storage_tiles: u64,
    /// Size in MiB of the artifact pulled from an encrypting and a
    /// plaintext log (0 skips the step).
    #[arg(long, env = "CUSTODY_BENCH_ENCRYPTION_ARTIFACT_MIB", default_value_t = 512)]
    encryption_artifact_mib: u64,
    /// Pulls of it from each log (median and spread).
    #[arg(long, env = "CUSTODY_BENCH_ENCRYPTION_PULLS", default_value_t = 3)]
    encryption_pulls: u64,
    /// History rows of the model whose dashboard page is timed
    /// ([`dashboard`]); 0 skips the step.
    #[arg(long, env = "CUSTODY_BENCH_DASHBOARD_ROWS", default_value_t = 10_000)]
    dashboard_rows: u64,
    /// Calls of `custody.verify` (Python) and of `custody pull
    /// --verify-only` timed against each other ([`python`]); 0 skips the
    /// step, and so does a missing venv.
    #[arg(long, env = "CUSTODY_BENCH_PYTHON_VERIFY_CALLS", default_value_t = 30)]
    python_verify_calls: u64,
    /// Also write every raw figure here as JSON.
    #[arg(long, env = "CUSTODY_BENCH_JSON_OUT")]
    json_out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let began = Instant::now();
    let criterion_dir = args.criterion_dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("criterion")
    });
    let core = criterion::read(&criterion_dir);
    eprintln!("== criterion: {} benchmarks read from {}", core.len(), criterion_dir.display());

    eprintln!("== witness add-checkpoint (custody-witnessgen)");
    let witness: Value =
        serde_json::from_str(&output(std::process::Command::new(sibling("custody-witnessgen")?).args([
            "--json",
            "--windows",
            &args.windows.to_string(),
            "--requests",
            &args.witness_requests.to_string(),
        ]))?)
        .context("custody-witnessgen output")?;

    let work = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let stages = deployment::run(&args, work.path())?;
    let storage = storage::run(&args, work.path())?;
    let encryption = encryption::run(&args, work.path())?;
    let dashboard = match args.dashboard_rows {
        0 => Value::Null,
        rows => dashboard::run(work.path(), rows, args.windows)?,
    };
    let python = python::run(&args, work.path())?;

    let results = json!({
        "machine": report::machine(),
        "core": core,
        "witness": witness,
        "log": stages,
        "storage": storage,
        "encryption": encryption,
        "dashboard": dashboard,
        "python": python,
        "suite_seconds": began.elapsed().as_secs_f64(),
    });
    if let Some(p) = &args.json_out {
        std::fs::write(p, serde_json::to_vec_pretty(&results)?)?;
    }
    let md = report::markdown(&results);
    report::splice(&args.out, &md)?;
    eprintln!("== wrote {} ({:.0} s)", args.out.display(), began.elapsed().as_secs_f64());
    println!("{md}");
    Ok(())
}
