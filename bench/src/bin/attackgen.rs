//! `custody-attackgen`: resource-exhaustion attacks on a running
//! `custody-log`, for measuring what honest clients still get while they
//! run (the suite's "under attack" rows) and for the scenario tests.
//!
//! Bounded by construction: at most `--connections` sockets, at most
//! `--seconds` (≤ 1 hour), and only against a loopback address from a
//! loopback source address (default `127.0.0.2`, so a server's
//! per-address cap tells the attacker from honest clients on `127.0.0.1`).
//!
//! Modes:
//! - `slow-bodies`: each connection sends a `POST /statements` head
//!   announcing a body, then one body byte per `--interval-ms`
//!   (slowloris); reconnects when the server closes it.
//! - `slow-downloads`: each connection downloads a 4 MiB artifact (set up
//!   with `--admin-key`) and reads 1 KiB per tenth of `--interval-ms`.
//! - `big-entries`: each connection asks for `GET /entries?start=0&end=1000`
//!   and reads it as slowly.
//! - `bad-signatures`: each connection posts statements signed by keys the
//!   log does not know, as fast as the server answers.
//!
//! Prints one JSON object with what was done.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use custody_bench::statements::{self, random};
use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Pattern};
use custody_registry::registry::Role;
use custody_registry::statement::events::{Access, GrantRole};
use custody_registry::statement::Event;
use custody_standards::encoding::encode_base64;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Which attack to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    SlowBodies,
    SlowDownloads,
    BigEntries,
    BadSignatures,
}

/// Bounded resource-exhaustion attacks on a loopback custody-log.
#[derive(Debug, Parser)]
#[command(name = "custody-attackgen", version, about)]
struct Args {
    /// Base URL of the custody-log under attack (loopback only).
    #[arg(long, env = "CUSTODY_LOG_URL")]
    log: String,
    /// The attack.
    #[arg(long, env = "CUSTODY_ATTACK_MODE", value_enum)]
    mode: Mode,
    /// Connections held at once.
    #[arg(long, env = "CUSTODY_ATTACK_CONNECTIONS", default_value_t = 1100,
          value_parser = clap::value_parser!(u64).range(1..=20_000))]
    connections: u64,
    /// How long the attack runs, at most (it also stops when killed).
    #[arg(long, env = "CUSTODY_ATTACK_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Milliseconds between the trickled bytes (slow modes).
    #[arg(long = "interval", env = "CUSTODY_ATTACK_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    interval_ms: u64,
    /// Loopback address the attack's connections come from.
    #[arg(long, env = "CUSTODY_ATTACK_SOURCE", default_value = "127.0.0.2")]
    source: IpAddr,
    /// The registry's first admin key (`slow-downloads` uploads the
    /// artifact it downloads with it).
    #[arg(long, env = "CUSTODY_ADMIN_KEY")]
    admin_key: Option<PathBuf>,
}

/// What the attack did.
#[derive(Default)]
struct Tally {
    /// Connections opened.
    opened: AtomicU64,
    /// Connections that failed to open or were closed by the server.
    closed: AtomicU64,
    /// Requests answered (bad-signatures) or bytes read (slow readers).
    answered: AtomicU64,
    bytes: AtomicU64,
}

/// Signs `event` by `who` now, as the attack generator.
fn sign(who: &ActorSigner, event: Event) -> anyhow::Result<Vec<u8>> {
    statements::sign(who, "attack generator", event)
}

async fn connect(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if to.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(from, 0))?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// One connection's life, repeated until `until`: open, send `head`, then
/// either trickle body bytes (`trickle`) or read the answer slowly.
async fn hold(
    from: IpAddr,
    to: SocketAddr,
    head: Arc<dyn Fn() -> anyhow::Result<Vec<u8>> + Send + Sync>,
    trickle: bool,
    interval: Duration,
    until: Instant,
    tally: Arc<Tally>,
) {
    while Instant::now() < until {
        let Ok(mut conn) = connect(from, to).await else {
            tally.closed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(interval).await;
            continue;
        };
        tally.opened.fetch_add(1, Ordering::Relaxed);
        let Ok(request) = head() else { return };
        if conn.write_all(&request).await.is_err() {
            tally.closed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut buf = [0u8; 1024];
        loop {
            if Instant::now() >= until {
                return;
            }
            if trickle {
                tokio::time::sleep(interval).await;
                if conn.write_all(b" ").await.is_err() {
                    break;
                }
                // An answer (408, or a refusal) ends this connection.
                match tokio::time::timeout(Duration::from_millis(1), conn.read(&mut buf)).await {
                    Ok(Ok(_)) | Ok(Err(_)) => break,
                    Err(_) => {}
                }
            } else {
                tokio::time::sleep(interval / 10).await;
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tally.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        tally.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Uploads a 4 MiB artifact as the admin; returns the access event for it.
async fn setup_artifact(base: &str, admin: &ActorSigner) -> anyhow::Result<Access> {
    let c = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build()?;
    let run = custody_standards::Hash(random::<32>()?).to_hex()[..8].to_owned();
    let mut bytes = vec![0u8; 4 << 20];
    bytes[..8].copy_from_slice(run.as_bytes());
    statements::publish_artifact(&c, base, admin, "attack generator", &format!("bench/attack-{run}"), bytes)
        .await
}

/// Posts statements by unknown keys until `until`.
async fn flood(from: IpAddr, base: String, until: Instant, tally: Arc<Tally>) -> anyhow::Result<()> {
    let c = reqwest::Client::builder()
        .no_proxy()
        .local_address(from)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()?;
    let who = ActorSigner::from_seed(
        &ActorName::new(&format!(
            "mallory-{}",
            custody_standards::Hash(random::<32>()?).to_hex()[..8].to_owned()
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))?,
        &random()?,
    );
    let grant = Event::Grant(GrantRole {
        actor: who.actor().clone(),
        key: who.public().clone(),
        role: Role::Admin,
        pattern: Pattern::new("*").map_err(|e| anyhow::anyhow!("{e}"))?,
    });
    tally.opened.fetch_add(1, Ordering::Relaxed);
    while Instant::now() < until {
        match c.post(format!("{base}/statements")).body(sign(&who, grant.clone())?).send().await {
            Ok(r) => {
                let _ = r.bytes().await;
                tally.answered.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tally.closed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.log.trim_end_matches('/').to_owned();
    let to: SocketAddr = base
        .strip_prefix("http://")
        .context("--log must be an http:// URL")?
        .parse()
        .context("--log must name an IP address and port")?;
    if !to.ip().is_loopback() || !args.source.is_loopback() {
        bail!("custody-attackgen attacks loopback addresses only, from a loopback address");
    }
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let interval = Duration::from_millis(args.interval_ms);
    let tally = Arc::new(Tally::default());
    let host = to.to_string();
    let head: Arc<dyn Fn() -> anyhow::Result<Vec<u8>> + Send + Sync> = match args.mode {
        Mode::SlowBodies => Arc::new(move || {
            Ok(format!(
                "POST /statements HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: 60000\r\n\r\n{{"
            )
            .into_bytes())
        }),
        Mode::BigEntries => Arc::new(move || {
            Ok(format!("GET /entries?start=0&end=1000 HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes())
        }),
        Mode::SlowDownloads => {
            let path = args.admin_key.as_ref().context("slow-downloads needs --admin-key")?;
            let key =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let admin = ActorSigner::parse(key.trim_end()).map_err(|e| anyhow::anyhow!("admin key: {e}"))?;
            let access = setup_artifact(&base, &admin).await?;
            let digest = access.digest;
            Arc::new(move || {
                let envelope = sign(&admin, Event::Access(access.clone()))?;
                Ok(format!(
                    "GET /blobs/{digest} HTTP/1.1\r\nHost: {host}\r\nCustody-Statement: {}\r\n\r\n",
                    encode_base64(&envelope)
                )
                .into_bytes())
            })
        }
        Mode::BadSignatures => Arc::new(|| Ok(Vec::new())),
    };
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let tally = Arc::clone(&tally);
        if args.mode == Mode::BadSignatures {
            let base = base.clone();
            let source = args.source;
            tasks.push(tokio::spawn(async move {
                let _ = flood(source, base, until, tally).await;
            }));
        } else {
            let trickle = args.mode == Mode::SlowBodies;
            tasks.push(tokio::spawn(hold(
                args.source,
                to,
                Arc::clone(&head),
                trickle,
                interval,
                until,
                tally,
            )));
        }
    }
    tokio::select! {
        _ = async { for t in tasks { let _ = t.await; } } => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let report = json!({
        "mode": format!("{:?}", args.mode),
        "connections": args.connections,
        "seconds": began.elapsed().as_secs_f64(),
        "opened": tally.opened.load(Ordering::Relaxed),
        "closed": tally.closed.load(Ordering::Relaxed),
        "answered": tally.answered.load(Ordering::Relaxed),
        "bytes_read": tally.bytes.load(Ordering::Relaxed),
    });
    println!("{report}");
    Ok(())
}
