//! `custody-log`: a thin shell over the library. Parses the command line,
//! sets up logging, wires the store, sequencer, checkpointer and HTTP API
//! together, and turns errors into exit codes. All behaviour lives in the
//! library so tests and the registry use the same code.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context as _;
use clap::Parser as _;
use custody_log::api::entry_range::{EntryStepCache, DEFAULT_ENTRY_STEP_CACHE_BYTES};
use custody_log::api::refusals::RefusalSummary;
use custody_log::api::{self, connections, AppState, RegistryApi, TileCache, DEFAULT_TILE_CACHE_BYTES};
use custody_log::blob_cache::VerifiedBlobCache;
use custody_log::blobs::{BlobError, BlobStore};
use custody_log::bucket::Bucket;
use custody_log::checkpointer::{start_checkpointer, CheckpointerConfig};
use custody_log::config::{
    Cli, Command, FsckArgs, GcArgs, InitArgs, KekArgs, RekeyArgs, RestoreArgs, ServeArgs, DEFAULT_KEK_FILE,
};
use custody_log::download_slots::Downloads;
use custody_log::init::{
    check_origin, db_path, init_data_dir, init_registry, is_registry, load_key, ADMIN_KEY_FILE,
};
use custody_log::metrics::Metrics;
use custody_log::ratelimit::RateLimiter;
use custody_log::registry::RegistryService;
use custody_log::seal::{FileKek, Kek as _, SealError, EXIT_KEY};
use custody_log::sequencer::{start_sequencer_with, Admission};
use custody_log::store::{RocksStore, Store};
use custody_log::uploads::Uploads;
use custody_log::wal::WalStore;
use custody_registry::statement::SignedStatement;
use custody_service::shutdown::Signals;
use custody_standards::Policy;

fn main() -> ExitCode {
    let cli = Cli::parse();
    custody_service::logging::init(cli.log.log_format);
    match cli.command {
        Command::Init(args) => match init(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("custody-log init: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Serve(args) => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("custody-log serve: cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("custody-log serve: {e:#}");
                    if is_key_error(&e) {
                        ExitCode::from(EXIT_KEY)
                    } else {
                        ExitCode::FAILURE
                    }
                }
            }
        }
        Command::Fsck(args) => fsck(&args),
        Command::Gc(args) => gc(&args),
        Command::Restore(args) => restore(&args),
        Command::Rekey(args) => rekey(&args),
        Command::SealArtifacts(args) => seal_artifacts(&args),
    }
}

/// True when `e` is the configured KEK failing to open the artifact store
/// (exit [`EXIT_KEY`]).
fn is_key_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<SealError>().is_some()
        || matches!(e.downcast_ref::<BlobError>(), Some(BlobError::Key(_)))
}

/// The artifact store of a stopped server (or of a running one, for
/// `rekey`) with the configured KEKs, its encryption checked.
fn offline_blobs(
    data_dir: &std::path::Path,
    store: Option<&str>,
    kek: &KekArgs,
) -> anyhow::Result<BlobStore> {
    let seal = match kek.seal(data_dir) {
        // No KEK anywhere: a store that was never sealed (a generic log, or
        // one kept in plaintext) is still checked as it is.
        Err(SealError::NoKek) => {
            let plain = BlobStore::at_with(data_dir, store, None)?;
            if plain.read_check()?.is_some() {
                return Err(SealError::NoKek.into());
            }
            return Ok(plain);
        }
        seal => seal?,
    };
    let blobs = BlobStore::at_with(data_dir, store, seal)?;
    blobs.check_seal(false)?;
    Ok(blobs)
}

/// Seals a stopped server's plaintext artifacts in place; exit 0 when the
/// store is sealed, 1 when some copies could not be, [`EXIT_KEY`] on a KEK
/// error.
fn seal_artifacts(args: &RekeyArgs) -> ExitCode {
    let run = || -> anyhow::Result<custody_log::blobs::SealReport> {
        let seal = args.kek.seal(&args.data_dir)?.ok_or(SealError::NoKek)?;
        let store = args.store.as_deref();
        let sealed = BlobStore::open_with(&args.data_dir, store, None, Some(seal))?;
        let plain = BlobStore::at_with(&args.data_dir, store, None)?;
        Ok(custody_log::blobs::seal_artifacts(&sealed, &plain)?)
    };
    match run() {
        Ok(report) => {
            println!("{report}");
            if report.complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("custody-log seal-artifacts: {e:#}");
            if is_key_error(&e) {
                ExitCode::from(EXIT_KEY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Rewraps every artifact's data key with the new KEK; exit 0 when all
/// were, 1 when some could not be, [`EXIT_KEY`] when the KEKs do not open
/// the store.
fn rekey(args: &RekeyArgs) -> ExitCode {
    let run = || -> anyhow::Result<custody_log::blobs::rekey::RekeyReport> {
        let blobs = offline_blobs(&args.data_dir, args.store.as_deref(), &args.kek)?;
        Ok(custody_log::blobs::rekey::rekey(&blobs)?)
    };
    match run() {
        Ok(report) => {
            println!("{report}");
            if report.is_complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("custody-log rekey: {e:#}");
            if is_key_error(&e) {
                ExitCode::from(EXIT_KEY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Rebuilds a data directory from the bucket; exit 0 with the sizes on
/// stdout, 1 when the bucket cannot be trusted or read.
fn restore(args: &RestoreArgs) -> ExitCode {
    let run = || -> anyhow::Result<custody_log::restore::Restored> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let bucket = Bucket::open(&args.store)?;
        let config = custody_registry::registry::Config { window_ms: args.statement_window_secs * 1000 };
        Ok(rt.block_on(custody_log::restore::restore(
            &bucket,
            &args.data_dir,
            &args.key,
            !args.generic,
            config,
        ))?)
    };
    match run() {
        Ok(r) => {
            println!(
                "restored {} entries; verified against the checkpoint of size {}",
                r.size, r.checkpoint_size
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("custody-log restore: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Creates the data directory; prints the log's verifier key on stdout
/// (the only stdout line, so scripts can capture it) and, for a registry,
/// where the first admin's key went on stderr.
fn init(args: &InitArgs) -> anyhow::Result<()> {
    let vkey = init_data_dir(&args.data_dir, &args.origin)?;
    if !args.generic {
        let kek = args.kek_file.clone().unwrap_or_else(|| args.data_dir.join(DEFAULT_KEK_FILE));
        let id = if kek.exists() {
            FileKek::from_file(&kek)?.id().to_owned()
        } else {
            FileKek::generate(&kek)?.id().to_owned()
        };
        eprintln!("artifact KEK {id} in {} (mode 0600); keep it off the data volume", kek.display());
        let key_out = args.admin_key.clone().unwrap_or_else(|| args.data_dir.join(ADMIN_KEY_FILE));
        let public = init_registry(&args.data_dir, &args.admin, &key_out)?;
        eprintln!("first admin {:?}: key {public}", args.admin);
        eprintln!("admin signer key written to {} (mode 0600); keep it off the server", key_out.display());
    }
    println!("{vkey}");
    std::io::stdout().flush()?;
    Ok(())
}

/// The policy file, parsed, and its text (which the dashboard serves).
fn read_policy(path: &std::path::Path) -> anyhow::Result<(Policy, String)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open policy file {}", path.display()))?;
    let cap = custody_standards::policy::MAX_POLICY_SIZE as u64 + 1;
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    let policy = Policy::parse(&bytes).with_context(|| format!("invalid policy file {}", path.display()))?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("policy file {} is not UTF-8", path.display()))?;
    Ok((policy, text))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let key =
        load_key(&args.data_dir).context("cannot load the log key (did you run `custody-log init`?)")?;
    let policy_file = args.policy.as_deref().map(read_policy).transpose()?;
    let trust = custody_log::ui::Trust::new(key.verifier(), policy_file.clone());
    let policy = policy_file.map(|(p, _)| p);
    let store: Arc<dyn Store> = Arc::new(
        RocksStore::open_tuned(&db_path(&args.data_dir), args.store_tuning())
            .with_context(|| format!("cannot open the database in {}", args.data_dir.display()))?,
    );
    check_origin(store.as_ref(), &key)?;
    let bucket = args.store.as_deref().map(Bucket::open).transpose()?;
    let store: Arc<dyn Store> = match &bucket {
        Some(b) if args.recovery_point_zero => {
            Arc::new(WalStore::new(store, b.clone(), tokio::runtime::Handle::current()))
        }
        _ => store,
    };
    let metrics = Metrics::new();
    let registry_mode = is_registry(store.as_ref())?;
    // A raw leaf carries its own receive time: on a registry, one leaf dated
    // years ahead would make every honest statement fail its time check.
    // Registry leaves are only ever built by the server from authenticated
    // statements, with the server's clock.
    if registry_mode && args.allow_raw_append {
        anyhow::bail!(
            "--allow-raw-append cannot be used on a registry data directory ({}): registry \
             entries are signed statements submitted with POST /statements",
            args.data_dir.display()
        );
    }
    let registry = if registry_mode {
        let r = RegistryService::load(store.as_ref(), args.registry_config())
            .context("cannot rebuild the registry from the log (run `custody-log fsck`)")?
            .with_log_key(key.clone());
        metrics.inc_registry_replayed(r.replayed_at_start());
        Some(Arc::new(r))
    } else {
        None
    };
    let blobs = match &registry {
        Some(_) => {
            let seal = args.kek.seal(&args.data_dir)?;
            let blobs = BlobStore::open_with(
                &args.data_dir,
                args.store.as_deref(),
                args.presign_downloads_secs,
                seal,
            );
            let blobs = blobs.context("cannot open the blob store")?;
            // Before anything is served: a wrong KEK stops the server here.
            blobs.check_seal(true)?;
            let blobs = Arc::new(blobs);
            let uploads = Uploads::new(&args.data_dir, args.upload_grace_secs)
                .context("cannot open the uploader records")?;
            Some((blobs, uploads))
        }
        None => None,
    };
    let admission = registry.clone().map(|r| r as Arc<dyn Admission<Parsed = SignedStatement>>);
    let (seq, seq_task) = start_sequencer_with(Arc::clone(&store), args.sequencer_config(), admission)?;
    let m = Arc::clone(&metrics);
    seq.set_batch_observer(Arc::new(move |n, secs| {
        m.observe_batch(n, secs);
        m.inc_entries(n as u64);
    }));
    let (publisher, cp_task) = start_checkpointer(
        Arc::clone(&store),
        seq.durable_size(),
        key,
        policy,
        CheckpointerConfig { bucket, ..args.checkpointer_config() },
        Arc::clone(&metrics),
    )?;
    let listener =
        std::net::TcpListener::bind(args.listen).with_context(|| format!("cannot bind {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (limits, lowered) = args.connection_limits().fitted_to(connections::open_file_limit());
    if lowered {
        tracing::warn!(
            max_connections = limits.max_connections,
            "--max-connections lowered to fit the open-file limit (raise `ulimit -n` to allow more)"
        );
    }
    let refusals = RefusalSummary::new();
    let _summary = refusals.spawn_reporter(Duration::from_millis(args.refusal_summary_interval_ms));
    let state = web::Data::new(AppState {
        store,
        seq,
        publisher,
        metrics,
        allow_raw_append: args.allow_raw_append,
        max_entry_size: args.max_entry_size(),
        tile_cache: TileCache::new(DEFAULT_TILE_CACHE_BYTES),
        entry_steps: EntryStepCache::new(DEFAULT_ENTRY_STEP_CACHE_BYTES),
        registry: registry.zip(blobs).map(|(registry, (blobs, uploads))| RegistryApi {
            registry,
            blobs,
            limiter: RateLimiter::new(args.rate_limit),
            upload_limiter: RateLimiter::new(args.upload_rate_limit),
            uploads,
            downloads: Downloads::new(args.download_limits()),
            blob_cache: VerifiedBlobCache::new(args.blob_cache_bytes()),
            max_blob_size: args.max_blob_size,
            manifests: Arc::new(custody_log::directory::Manifests::new()),
            access_grant: Duration::from_secs(args.directory_access_grant_secs),
        }),
        connections: connections::Connections::new(limits),
        refusals,
        trust,
    });
    let tls = args.tls.load().context("cannot load the TLS certificate")?;
    let guard = web::Data::new(args.address_guard());
    let server = api::server(state.clone(), guard, listener, &args.connection, tls.as_ref())?;
    // Installed before "listening" is printed: from then on SIGHUP reloads
    // the certificate instead of killing the process.
    let signals = Signals::install().context("cannot install the signal handlers")?;
    let handle = server.handle();
    let reloader = tls.clone();
    let signals = tokio::spawn(signals.run(handle, move || {
        if let Some(r) = &reloader {
            r.reload_logged();
        }
        std::future::ready(())
    }));
    tracing::info!(%addr, raw_append = args.allow_raw_append, tls = tls.is_some(), "serving");
    println!("listening on {}://{addr}", custody_service::server::scheme(tls.as_ref()));
    std::io::stdout().flush()?;
    server.await?;
    signals.abort();
    // Stop accepting work; the sequencer finishes its current batch when the
    // last handle is gone. Acknowledged entries are already durable.
    cp_task.abort();
    drop(state);
    custody_service::shutdown::drain("sequencer", args.connection.shutdown_timeout(), seq_task).await;
    Ok(())
}

/// Checks the stopped server's database, verifying checkpoint signatures
/// with `log.vkey` when it is present.
fn fsck(args: &FsckArgs) -> ExitCode {
    let vkey = match read_vkey(&args.data_dir) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("custody-log fsck: {e:#}");
            return ExitCode::from(2);
        }
    };
    let config = custody_registry::registry::Config { window_ms: args.statement_window_secs * 1000 };
    let blobs = match offline_blobs(&args.data_dir, args.store.as_deref(), &args.kek) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("custody-log fsck: {e:#}");
            return ExitCode::from(2);
        }
    };
    match custody_log::fsck_registry::fsck_data_dir_with(&args.data_dir, &blobs, vkey.as_ref(), config) {
        Ok(report) => {
            println!("{report}");
            if report.is_healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("custody-log fsck: {e}");
            ExitCode::from(2)
        }
    }
}

/// Removes old orphan artifacts of a stopped server; prints what it did.
fn gc(args: &GcArgs) -> ExitCode {
    let config = custody_registry::registry::Config { window_ms: args.statement_window_secs * 1000 };
    let now = custody_log::registry::now_ms();
    let blobs = match offline_blobs(&args.data_dir, args.store.as_deref(), &args.kek) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("custody-log gc: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match custody_log::gc::gc(&args.data_dir, &blobs, config, args.upload_grace_secs, now) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("custody-log gc: {e} (gc needs a stopped server)");
            ExitCode::FAILURE
        }
    }
}

fn read_vkey(data_dir: &std::path::Path) -> anyhow::Result<Option<custody_standards::VerifierKey>> {
    let path = data_dir.join(custody_log::init::VKEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            custody_standards::VerifierKey::parse(text.trim_end())
                .with_context(|| format!("bad {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
