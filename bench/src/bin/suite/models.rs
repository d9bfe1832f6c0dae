//! Model directories on the measured deployment: a multi-shard model is
//! published, pulled and verified with the real `custody` client, and a
//! second version with one changed shard is published to count what it
//! uploads. The pull rate is set against the SHA-256 rate of this machine
//! measured in the same run on every core: a pull hashes every byte twice
//! (the server before the last chunk leaves, the client as it arrives).
//! Beside it, the disk's synced write rate and the same pull into a memory
//! file system say whether the disk or the CPU bounds it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use custody_bench::procs::sibling;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// Runs `custody` as the modeler (the log's admin, granted `bench/*`).
pub(crate) fn custody(home: &Path, key: &Path, args: &[&str]) -> anyhow::Result<(f64, String, String, u64)> {
    let t = Instant::now();
    let mut child = Command::new(sibling("custody")?)
        .args(args)
        .env("CUSTODY_HOME", home)
        .env("CUSTODY_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run custody")?;
    // Peak RSS, sampled while it runs (VmHWM only grows).
    let pid = child.id();
    let mut peak_kib = 0;
    while child.try_wait()?.is_none() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(k) = s.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
                peak_kib = peak_kib.max(k.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    let secs = t.elapsed().as_secs_f64();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("custody {args:?} failed: {stdout}{stderr}");
    }
    Ok((secs, stdout.into_owned(), stderr.into_owned(), peak_kib))
}

/// "uploaded N files (B bytes)" from a directory publish.
fn uploaded(stderr: &str) -> anyhow::Result<(u64, u64)> {
    let at = stderr.find("uploaded ").context("no upload count")?;
    let words: Vec<&str> = stderr[at + 9..].split_whitespace().collect();
    let files = words.first().context("files")?.parse()?;
    let bytes = words.get(2).context("bytes")?.trim_start_matches('(').parse()?;
    Ok((files, bytes))
}

/// SHA-256 over `total` bytes split across `threads` threads, in bytes/s.
fn sha256_rate(threads: usize, per_thread: usize) -> f64 {
    let buf = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut h = Sha256::new();
                for _ in 0..per_thread >> 20 {
                    h.update(&buf);
                }
                std::hint::black_box(h.finalize());
            });
        }
    });
    (threads * per_thread) as f64 / t.elapsed().as_secs_f64()
}

/// Bytes/s of writing `files` files of `bytes` each into `dir`, each
/// fsynced before the next, as a pull leaves its files: the disk's own
/// limit on a pull into `dir`, which a pull cannot beat however fast it
/// hashes.
fn synced_write_rate(dir: &Path, files: u64, bytes: u64) -> anyhow::Result<f64> {
    let out = tempfile::Builder::new().prefix("synced-writes").tempdir_in(dir)?;
    let buf = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    for i in 0..files {
        let mut f = std::fs::File::create(out.path().join(i.to_string()))?;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64);
            f.write_all(&buf[..n as usize])?;
            left -= n;
        }
        f.sync_all()?;
    }
    Ok((files * bytes) as f64 / t.elapsed().as_secs_f64())
}

/// Free bytes of the file system holding `path` (`df`'s view).
fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse().ok()
}

/// `custody init` in `home` for the log at `url` trusting `policy`; then
/// `key` (the log's admin key) grants its own actor publisher and reader on
/// `bench/*`.
pub(crate) fn admin_client(home: &Path, key: &Path, policy: &Path, url: &str) -> anyhow::Result<()> {
    let run = |args: &[&str]| custody(home, key, args);
    run(&["init", "--policy", policy.to_str().context("policy")?, "--log", url])?;
    let whoami = run(&["whoami"])?.1;
    let public = whoami.lines().find_map(|l| l.strip_prefix("public key: ")).context("whoami")?.to_owned();
    for role in ["publisher", "reader"] {
        run(&["grant", &public, "--role", role, "--pattern", "bench/*"])?;
    }
    Ok(())
}

/// Writes `n` bytes of cheap pseudo-random data (incompressible enough for
/// a file system, and distinct per `seed`).
pub(crate) fn write_shard(path: &Path, n: u64, seed: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..n >> 20 {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok(())
}

/// The model step: `shards` shards of `shard_mib` MiB each.
pub fn run(dir: &Path, policy: &Path, url: &str, shards: u64, shard_mib: u64) -> anyhow::Result<Value> {
    let home = dir.join("modeler");
    let key = dir.join("log/admin.key");
    let run = |args: &[&str]| custody(&home, &key, args);
    admin_client(&home, &key, policy, url)?;
    let model = dir.join("model");
    std::fs::create_dir_all(&model)?;
    std::fs::write(model.join("config.json"), br#"{"model_type":"bench"}"#)?;
    let shard_bytes = shard_mib << 20;
    for i in 1..=shards {
        write_shard(&model.join(format!("model-{i:05}-of-{shards:05}.safetensors")), shard_bytes, i)?;
    }
    let total = shards * shard_bytes;
    eprintln!("== model directory: {shards} shards of {shard_mib} MiB, publish");
    let m = model.to_str().context("model path")?;
    let (publish_s, _, stderr, _) = run(&["publish", m, "--name", "bench/model", "--version", "1"])?;
    let (first_files, first_bytes) = uploaded(&stderr)?;

    eprintln!("== model directory: pull and verify");
    let out = dir.join("pulled");
    let (pull_s, _, _, pull_rss) = run(&["pull", "bench/model@1", "-o", out.to_str().context("pull path")?])?;
    std::fs::remove_dir_all(&out)?;

    // The same pull into a memory file system, where fsync costs nothing:
    // what the pull does when the disk is not its limit.
    let shm = Path::new("/dev/shm");
    let memory_pull = if shm.is_dir() && free_bytes(shm).is_some_and(|free| free > 2 * total) {
        eprintln!("== model directory: pull and verify into {}", shm.display());
        let out = tempfile::Builder::new().prefix("custody-bench-pull").tempdir_in(shm)?;
        let dest = out.path().join("model");
        let (secs, _, _, _) = run(&["pull", "bench/model@1", "-o", dest.to_str().context("pull path")?])?;
        Some(total as f64 / secs)
    } else {
        None
    };
    let disk = synced_write_rate(dir, shards, shard_bytes)?;

    eprintln!("== model directory: version 2 with one shard changed");
    write_shard(&model.join(format!("model-{:05}-of-{shards:05}.safetensors", 2)), shard_bytes, 1000)?;
    let (_, _, stderr, _) = run(&["publish", m, "--name", "bench/model", "--version", "2"])?;
    let (files, bytes) = uploaded(&stderr)?;
    std::fs::remove_dir_all(&model)?;

    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let sha = sha256_rate(threads, 512 << 20);
    let sha_one = sha256_rate(1, 512 << 20);
    Ok(json!({
        "shards": shards,
        "shard_bytes": shard_bytes,
        "total_bytes": total,
        "publish_seconds": publish_s,
        "first_upload": {"files": first_files, "bytes": first_bytes},
        "pull_seconds": pull_s,
        "pull_bytes_per_s": total as f64 / pull_s,
        "pull_peak_rss_mib": pull_rss as f64 / 1024.0,
        "pull_into_memory_bytes_per_s": memory_pull,
        "synced_write_bytes_per_s": disk,
        "sha256_bytes_per_s_all_cores": sha,
        "sha256_bytes_per_s_one_core": sha_one,
        "cores": threads,
        "republish_one_shard": {"files": files, "bytes": bytes, "shard_bytes": shard_bytes},
    }))
}
