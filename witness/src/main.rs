//! `custody-witness`: a thin shell over the library. Parses the command
//! line, sets up logging, wires store, committer, witness state, HTTP API,
//! gossip, pull mode and SIGHUP reloads together, and turns errors into exit
//! codes.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use clap::Parser as _;
use custody_service::guard::address_guard;
use custody_service::request_id::RequestIds;
use custody_service::shutdown::Signals;
use custody_service::tls::CertReloader;
use custody_witness::api::{self, AppState};
use custody_witness::committer::Committer;
use custody_witness::config::{ClearArgs, Cli, Command, ServeArgs};
use custody_witness::gossip::Gossip;
use custody_witness::init::{add_key, db_path, init_data_dir, load_signers};
use custody_witness::log_client::http_client;
use custody_witness::log_list::{LogList, MAX_LOG_LIST_SIZE};
use custody_witness::metrics::Metrics;
use custody_witness::peers::{parse_peers, MAX_PEERS_SIZE};
use custody_witness::pull::run_pull;
use custody_witness::state::{Trust, Witness};
use custody_witness::store::{Op, RocksStore, Store};

fn main() -> ExitCode {
    let cli = Cli::parse();
    custody_service::logging::init(cli.log.log_format);
    let result: anyhow::Result<()> = match cli.command {
        Command::Init(a) => init_data_dir(&a.data_dir, &a.name).map(|v| println!("{v}")).map_err(Into::into),
        Command::AddKey(a) => {
            add_key(&a.data_dir, a.name.as_deref()).map(|v| println!("{v}")).map_err(Into::into)
        }
        Command::ClearEvidence(a) => clear(&a),
        Command::Serve(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")
            .and_then(|rt| rt.block_on(serve(a))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custody-witness: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_capped(path: &Path, max: usize) -> anyhow::Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(bytes.len() <= max, "{} is larger than {max} bytes", path.display());
    Ok(bytes)
}

/// Reads the log list and the peers file (all or nothing).
fn load_trust(args: &ServeArgs) -> anyhow::Result<Trust> {
    let logs = LogList::parse(&read_capped(&args.logs, MAX_LOG_LIST_SIZE)?)
        .with_context(|| format!("invalid log list {}", args.logs.display()))?;
    for w in &logs.warnings {
        tracing::warn!(file = %args.logs.display(), "{w}");
    }
    let peers = match &args.peers {
        Some(p) => parse_peers(&read_capped(p, MAX_PEERS_SIZE)?)
            .with_context(|| format!("invalid peers file {}", p.display()))?,
        None => Vec::new(),
    };
    tracing::info!(logs = logs.logs.len(), peers = peers.len(), "loaded log list and peers");
    Ok(Trust { logs, peers })
}

fn clear(args: &ClearArgs) -> anyhow::Result<()> {
    let store = RocksStore::open(&db_path(&args.data_dir))
        .context("cannot open the database (is the witness still running?)")?;
    let frozen = store.frozen()?;
    let Some((_, id)) = frozen.iter().find(|(o, _)| *o == args.origin) else {
        anyhow::bail!("origin {:?} is not frozen", args.origin);
    };
    store.write(&[Op::Unfreeze { origin: args.origin.clone() }])?;
    println!("cleared {} (evidence {id} is kept)", args.origin);
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let signers = load_signers(&args.data_dir).context("cannot load the witness keys (did you run init?)")?;
    let name = signers[0].key().name().to_owned();
    let trust = load_trust(&args)?;
    let store: Arc<dyn Store> = Arc::new(
        RocksStore::open(&db_path(&args.data_dir))
            .with_context(|| format!("cannot open the database in {}", args.data_dir.display()))?,
    );
    let metrics = Metrics::new();
    let (committer, commit_thread) = Committer::start(Arc::clone(&store), Arc::clone(&metrics))?;
    let witness = Witness::open(name, signers, trust, store, committer.clone(), metrics)?;
    witness.set_test_stall(args.test_stall_ms.map(std::time::Duration::from_millis));
    for (origin, id) in witness.frozen_origins() {
        tracing::error!(%origin, evidence = %id, "origin is frozen by split-view evidence");
    }
    let client = http_client(args.http_timeout(), args.ca_cert.clone())?;
    let gossip = Gossip::new(Arc::clone(&witness), client.clone());
    let gossip_task = tokio::spawn(Arc::clone(&gossip).run(args.gossip_interval()));
    let pull_task = tokio::spawn(run_pull(Arc::clone(&witness), client, args.poll_interval()));

    let listener =
        std::net::TcpListener::bind(args.listen).with_context(|| format!("cannot bind {}", args.listen))?;
    let addr = listener.local_addr()?;
    let state = web::Data::new(AppState {
        witness: Arc::clone(&witness),
        gossip,
        background: Arc::new(AtomicUsize::new(0)),
        body_timeout: args.body_timeout(),
    });
    let tls = args.tls.load().context("cannot load the TLS certificate")?;
    let tls_reload = tls.clone();
    let conn = args.connection.clone();
    let conn_deadline = conn.shutdown_timeout();
    // Every request is first charged to its client address's budget (a
    // 429 before anything else is read), inside the request-id span.
    let guard = web::Data::new(args.address_guard());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(guard.clone())
            .configure(api::configure)
            .wrap(actix_web::middleware::from_fn(address_guard))
            .wrap(RequestIds)
    })
    .max_connections(if conn.max_connections == 0 { 25_000 } else { conn.max_connections });
    let server = custody_service::server::listen(server, listener, &conn, tls.as_ref())?.run();
    let handle = server.handle();
    // Installed before "listening" is printed: from then on SIGHUP reloads
    // instead of killing the process.
    let signals = Signals::install().context("cannot install the signal handlers")?;
    let reload_witness = Arc::clone(&witness);
    let signals = tokio::spawn(signals.run(handle, move || {
        let args = args.clone();
        let witness = Arc::clone(&reload_witness);
        let tls = tls_reload.clone();
        async move { on_hup(&args, &witness, tls.as_deref()).await }
    }));
    tracing::info!(%addr, name = witness.name(), tls = tls.is_some(), "serving");
    println!("listening on {}://{addr}", custody_service::server::scheme(tls.as_ref()));
    std::io::stdout().flush()?;
    server.await?;
    gossip_task.abort();
    pull_task.abort();
    signals.abort();
    committer.close();
    drop(witness);
    // Queued writes finish before the thread exits; nothing was acknowledged
    // that is not durable.
    let deadline = conn_deadline;
    let join = tokio::task::spawn_blocking(move || commit_thread.join());
    custody_service::shutdown::drain("committer", deadline, join).await;
    Ok(())
}

async fn reload(args: &ServeArgs) -> anyhow::Result<Trust> {
    let args = args.clone();
    tokio::task::spawn_blocking(move || load_trust(&args)).await.context("reload task failed")?
}

/// SIGHUP: re-reads the log list and peers (a bad file keeps the old
/// configuration) and the TLS certificate (likewise).
async fn on_hup(args: &ServeArgs, witness: &Witness, tls: Option<&CertReloader>) {
    // The list may be large: read and parse it off the runtime.
    match reload(args).await {
        Ok(trust) => {
            witness.set_trust(trust);
            witness.metrics().count_reload(true);
            tracing::info!("reloaded the log list and peers");
        }
        Err(e) => {
            witness.metrics().count_reload(false);
            tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the previous configuration");
        }
    }
    if let Some(tls) = tls {
        tls.reload_logged();
    }
}
