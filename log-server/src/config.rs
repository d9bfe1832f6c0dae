//! Command line of `custody-log` (clap derive). Every flag can also come
//! from a `CUSTODY_*` environment variable, so the server can be configured
//! entirely from a container or systemd environment. Other tools (tests,
//! the witness, the verifier) rely on these names: change them only with
//! docs/api.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use custody_service::connection::ConnectionArgs;
use custody_service::guard::{AddressGuard, AddressLimitArgs};
use custody_service::logging::LogArgs;
use custody_service::rate_limit::ClassQuota;
use custody_service::tls::TlsArgs;

use crate::checkpointer::CheckpointerConfig;
use crate::download_slots::DownloadLimits;
use crate::sequencer::SequencerConfig;
use crate::uploads::DEFAULT_UPLOAD_GRACE_SECS;

/// Custody transparency log server.
#[derive(Debug, Parser)]
#[command(name = "custody-log", version, about)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a data directory: log key, verifier key and database. Prints
    /// the verifier key.
    Init(InitArgs),
    /// Run the log server.
    Serve(Box<ServeArgs>),
    /// Check a stopped server's data directory; exit 0 healthy, 1
    /// inconsistent, 2 error.
    Fsck(FsckArgs),
    /// Remove orphan artifacts (stored, named by no publish) older than the
    /// upload grace period from a stopped server's data directory.
    Gc(GcArgs),
    /// Rebuild a data directory whose disk was lost from the bucket of
    /// `serve --store` and the log key's backup; verifies it against the
    /// bucket's last checkpoint. Prints the restored size.
    Restore(RestoreArgs),
    /// Rotate the artifacts' key-encryption key: rewrap every artifact's
    /// data key from the previous KEK to the new one (the data is not
    /// re-encrypted). Safe beside a running server started with both KEKs,
    /// safe to interrupt and to run again.
    Rekey(RekeyArgs),
    /// Encrypt, in place, the artifacts of a stopped server's store written
    /// unencrypted (before encryption at rest, or with
    /// `--plaintext-artifacts`). Idempotent; resumes after an interruption.
    SealArtifacts(RekeyArgs),
}

/// Name of the KEK file `init` writes into the data directory, and the
/// one the other commands use when no KEK is configured.
pub const DEFAULT_KEK_FILE: &str = "artifacts.kek";

/// The key-encryption key(s) of the artifacts (see docs/operations.md,
/// "Encryption at rest"). Without a flag, the KEK comes from the
/// `CUSTODY_KEK` environment variable (64 hex digits) if set, else from
/// `<data-dir>/artifacts.kek` if that exists; the previous KEK likewise
/// from `CUSTODY_PREVIOUS_KEK`.
#[derive(Debug, Clone, Args)]
pub struct KekArgs {
    /// File of the key-encryption key that wraps each artifact's data key
    /// (64 hex digits, mode 0600; keep it off the data volume).
    #[arg(long = "kek-file", env = "CUSTODY_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// During a KEK rotation, the previous KEK's file: data keys it
    /// wrapped still open.
    #[arg(long = "previous-kek-file", env = "CUSTODY_PREVIOUS_KEK_FILE")]
    pub previous_kek_file: Option<PathBuf>,
    /// Store and serve artifacts unencrypted (no KEK). Needed by
    /// `--presign-downloads`; refused on a store that is sealed.
    #[arg(long = "plaintext-artifacts", env = "CUSTODY_PLAINTEXT_ARTIFACTS",
          conflicts_with_all = ["kek_file", "previous_kek_file"])]
    pub plaintext_artifacts: bool,
}

/// Environment variable holding the KEK itself (instead of a file).
pub const KEK_ENV: &str = "CUSTODY_KEK";
/// Environment variable holding the previous KEK during a rotation.
pub const PREVIOUS_KEK_ENV: &str = "CUSTODY_PREVIOUS_KEK";

impl KekArgs {
    /// Where the KEK comes from, if one is configured.
    pub fn current_source(&self, data_dir: &std::path::Path) -> Option<crate::seal::KekSource> {
        use crate::seal::KekSource;
        if let Some(p) = &self.kek_file {
            return Some(KekSource::File(p.clone()));
        }
        if std::env::var_os(KEK_ENV).is_some() {
            return Some(KekSource::Env(KEK_ENV.to_owned()));
        }
        let default = data_dir.join(DEFAULT_KEK_FILE);
        default.exists().then_some(KekSource::File(default))
    }

    /// Where the previous KEK comes from, if one is configured.
    pub fn previous_source(&self) -> Option<crate::seal::KekSource> {
        use crate::seal::KekSource;
        match &self.previous_kek_file {
            Some(p) => Some(KekSource::File(p.clone())),
            None => std::env::var_os(PREVIOUS_KEK_ENV).map(|_| KekSource::Env(PREVIOUS_KEK_ENV.to_owned())),
        }
    }

    /// What the store seals with: `None` with `--plaintext-artifacts`, else
    /// the loaded KEKs (no KEK is [`crate::seal::SealError::NoKek`]).
    pub fn seal(
        &self,
        data_dir: &std::path::Path,
    ) -> Result<Option<std::sync::Arc<crate::seal::Seal>>, crate::seal::SealError> {
        if self.plaintext_artifacts {
            return Ok(None);
        }
        let current = self.current_source(data_dir).ok_or(crate::seal::SealError::NoKek)?.load()?;
        let previous = self.previous_source().map(|s| s.load()).transpose()?;
        let keys = crate::seal::Keyring::new(current, previous);
        Ok(Some(std::sync::Arc::new(crate::seal::Seal::new(keys))))
    }
}

/// `custody-log rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Data directory of the log (the server may be running).
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The `--store` the server runs with, whose bucket holds the artifacts
    /// (S3 settings from the `AWS_*` environment).
    #[arg(long, env = "CUSTODY_STORE")]
    pub store: Option<String>,
    /// The new KEK (`--kek-file`) and the one it replaces
    /// (`--previous-kek-file`).
    #[command(flatten)]
    pub kek: KekArgs,
}

/// `custody-log init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data directory to create (must not already hold a log).
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Checkpoint origin line, also the log key's name (e.g.
    /// `log.example.com/custody`).
    #[arg(long, env = "CUSTODY_ORIGIN")]
    pub origin: String,
    /// Create a generic log of raw entries instead of a model registry (no
    /// admin key, no genesis statement; entries come from raw appends).
    #[arg(long, env = "CUSTODY_GENERIC")]
    pub generic: bool,
    /// Actor name of the first admin, who is granted `admin` on `*` by the
    /// genesis statement (entry 0).
    #[arg(long, env = "CUSTODY_ADMIN", default_value = "admin", conflicts_with = "generic")]
    pub admin: String,
    /// Where to write the first admin's signer key (mode 0600; default
    /// `<data-dir>/admin.key`). Move it off the server afterwards.
    #[arg(long, env = "CUSTODY_ADMIN_KEY", conflicts_with = "generic")]
    pub admin_key: Option<PathBuf>,
    /// The artifacts' key-encryption key: written fresh (mode 0600) unless
    /// the file exists, which is then checked and kept. Default
    /// `<data-dir>/artifacts.kek`; keep it off the data volume in
    /// production (see `serve --kek-file`).
    #[arg(long = "kek-file", env = "CUSTODY_KEK_FILE", conflicts_with = "generic")]
    pub kek_file: Option<PathBuf>,
}

/// `custody-log serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory created by `init`.
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "CUSTODY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// C2SP tlog-policy file naming the witnesses and the quorum. Without
    /// it the log-signed checkpoint is published alone.
    #[arg(long, env = "CUSTODY_POLICY")]
    pub policy: Option<PathBuf>,
    /// Longest time (milliseconds) between two checkpointing rounds: a
    /// round that did not publish is retried after it, and a round runs
    /// this often even when the tree does not grow.
    #[arg(long = "checkpoint-interval", env = "CUSTODY_CHECKPOINT_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_interval_ms: u64,
    /// Shortest time (milliseconds) between the starts of two
    /// checkpointing rounds (at most `--checkpoint-interval`). A round
    /// starts as soon as a batch is durable and the previous round is
    /// over, but not sooner than this after the previous one started.
    #[arg(long = "checkpoint-min-interval", env = "CUSTODY_CHECKPOINT_MIN_INTERVAL_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_min_interval_ms: u64,
    /// Most entries per durable batch.
    #[arg(long, env = "CUSTODY_BATCH_MAX", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_max: u64,
    /// Longest time (milliseconds) a batch keeps collecting entries that are
    /// still arriving (group commit: a batch is written as soon as the queue
    /// is drained, so under load the fsync itself is the batching window).
    #[arg(long = "batch-wait", env = "CUSTODY_BATCH_WAIT_MS", default_value_t = 100)]
    pub batch_wait_ms: u64,
    /// Enable `POST /entries` (raw append; off by default).
    #[arg(long, env = "CUSTODY_ALLOW_RAW_APPEND")]
    pub allow_raw_append: bool,
    /// Object storage (`file:///dir` or `s3://bucket[/prefix]`, S3 settings
    /// from the `AWS_*` environment) to which every published checkpoint's
    /// tlog-tiles read path is written (tiles and entry bundles first, the
    /// checkpoint last), so a static server or CDN can serve reads. Without
    /// it the log keeps everything in its data directory only.
    #[arg(long, env = "CUSTODY_STORE")]
    pub store: Option<String>,
    /// Acknowledge an entry only once its batch is in `--store` (recovery
    /// point zero: `custody-log restore` then finds every acknowledged
    /// entry, not only those under the last published checkpoint).
    #[arg(long, env = "CUSTODY_RECOVERY_POINT_ZERO", requires = "store")]
    pub recovery_point_zero: bool,
    /// With an `s3://` `--store` (which then also holds the artifacts):
    /// answer `GET /blobs/<digest>`, once its access entry is durable, with
    /// a 307 to a URL of the artifact presigned for this many seconds, so
    /// the bytes do not pass through the log (the client verifies them).
    /// Presigned URLs serve the stored bytes as they are, so this needs
    /// `--plaintext-artifacts`.
    #[arg(long = "presign-downloads", env = "CUSTODY_PRESIGN_DOWNLOADS", requires = "store",
          requires = "plaintext_artifacts", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub presign_downloads_secs: Option<u64>,
    /// Largest entry in bytes (at most 65535, the entry-bundle limit).
    #[arg(long, env = "CUSTODY_MAX_ENTRY_SIZE", default_value_t = 65535,
          value_parser = clap::value_parser!(u64).range(1..=65535))]
    pub max_entry_size: u64,
    /// Per-request timeout (milliseconds) of add-checkpoint calls.
    #[arg(long = "witness-timeout", env = "CUSTODY_WITNESS_TIMEOUT_MS", default_value_t = 5000)]
    pub witness_timeout_ms: u64,
    /// PEM file of extra CA certificates to trust, besides the system
    /// roots, for https:// witnesses.
    #[arg(long, env = "CUSTODY_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Retries of a failed add-checkpoint call (timeouts, transport errors,
    /// 5xx and 429; with jittered backoff and the witness's Retry-After).
    #[arg(long, env = "CUSTODY_WITNESS_RETRIES", default_value_t = 2)]
    pub witness_retries: u32,
    /// Largest accepted distance (seconds) between a statement's time and
    /// the server's receive time; also how long nonces are remembered.
    /// Auditors must replay with the same value.
    #[arg(long = "statement-window", env = "CUSTODY_STATEMENT_WINDOW_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub statement_window_secs: u64,
    /// Statements per second each actor may submit (burst: 2 seconds' worth);
    /// more get 429. 0 disables the limit.
    #[arg(long = "rate-limit", env = "CUSTODY_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,
    /// Largest artifact accepted by `PUT /blobs/...`, in bytes.
    #[arg(long = "max-blob-size", env = "CUSTODY_MAX_BLOB_SIZE", default_value_t = 1 << 40)]
    pub max_blob_size: u64,
    /// RocksDB memory in MiB: one block cache for data, index and filter
    /// blocks, with the memtables charged to it. Bounds the database's share
    /// of the server's memory whatever the log's size.
    #[arg(long = "cache-mib", env = "CUSTODY_CACHE_MIB", default_value_t = 320,
          value_parser = clap::value_parser!(u64).range(32..=1 << 20))]
    pub cache_mib: u64,
    /// Verified small artifacts kept in memory for `GET /blobs/...`, in MiB
    /// (0 disables it). An entry is used only while the file's inode,
    /// size, modification and change times are those it had when hashed.
    #[arg(long = "blob-cache-mib", env = "CUSTODY_BLOB_CACHE_MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    pub blob_cache_mib: u64,
    /// The artifacts' key-encryption keys.
    #[command(flatten)]
    pub kek: KekArgs,
    /// Request deadlines, connection cap and shutdown drain.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// HTTPS.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Most connections open at once from one client address; more are
    /// closed as soon as they are accepted. 0 disables the per-address cap.
    #[arg(long, env = "CUSTODY_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Milliseconds between the info lines summing up refused
    /// unauthenticated statements (each one is logged at debug level).
    #[arg(long = "refusal-summary-interval", env = "CUSTODY_REFUSAL_SUMMARY_INTERVAL_MS",
          default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub refusal_summary_interval_ms: u64,
    /// Pre-upload checks per second each actor may make with `PUT /blobs`
    /// (burst: 2 seconds' worth); more get 429 before the body is read. 0
    /// disables the limit.
    #[arg(long = "upload-rate-limit", env = "CUSTODY_UPLOAD_RATE_LIMIT", default_value_t = 10)]
    pub upload_rate_limit: u32,
    /// Seconds after an upload during which its uploader, and only its
    /// uploader, may publish the stored bytes with `POST /statements` while
    /// no publish names them (after a 202 from an upload that outlasted the
    /// statement window). `custody-log gc` removes such orphans after it.
    #[arg(long = "upload-grace", env = "CUSTODY_UPLOAD_GRACE", default_value_t = DEFAULT_UPLOAD_GRACE_SECS)]
    pub upload_grace_secs: u64,
    /// Seconds during which one logged access of a model directory's
    /// manifest serves that directory's files (`GET /blobs/<file>` with
    /// `Custody-Access-Index`); after it, the reader signs a new access.
    #[arg(long = "directory-access-grant", env = "CUSTODY_DIRECTORY_ACCESS_GRANT",
          default_value_t = crate::directory::DEFAULT_ACCESS_GRANT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub directory_access_grant_secs: u64,
    /// Downloads running at once, all actors together; more get 429.
    #[arg(long = "max-downloads", env = "CUSTODY_MAX_DOWNLOADS", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_downloads: u64,
    /// Downloads running at once for one actor; more get 429.
    #[arg(long = "max-downloads-per-actor", env = "CUSTODY_MAX_DOWNLOADS_PER_ACTOR", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_downloads_per_actor: u64,
    /// Seconds a download waits for its client to take the next 64 KiB
    /// chunk before the connection is reset (a client must read at least
    /// 64 KiB per this many seconds).
    #[arg(long = "download-idle-timeout", env = "CUSTODY_DOWNLOAD_IDLE_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub download_idle_timeout_secs: u64,
    /// Write requests (`POST /statements`, `PUT /blobs/...`, `POST
    /// /entries`) per second per client address; more get 429 before the
    /// body is read. 0 disables the limit.
    #[arg(long = "write-rate", env = "CUSTODY_WRITE_RATE", default_value_t = 50)]
    pub write_rate: u32,
    /// Write requests one address may send at once.
    #[arg(long = "write-burst", env = "CUSTODY_WRITE_BURST", default_value_t = 100)]
    pub write_burst: u32,
    /// The per-address limits of every route (see docs/operations.md).
    #[command(flatten)]
    pub address_limits: AddressLimitArgs,
}

impl ServeArgs {
    /// The per-address limits of every route, with their maintenance
    /// thread started.
    pub fn address_guard(&self) -> AddressGuard {
        let write = ClassQuota { per_second: self.write_rate, burst: self.write_burst };
        let none = ClassQuota { per_second: 0, burst: 0 };
        self.address_limits.guard(
            write,
            none,
            crate::api::client_limits::route_class,
            crate::api::client_limits::is_auth_failure,
        )
    }

    /// Connection limits from the flags (before fitting them to the
    /// open-file limit).
    pub fn connection_limits(&self) -> crate::api::connections::ConnectionLimits {
        crate::api::connections::ConnectionLimits {
            head_timeout: self.connection.head_timeout(),
            body_timeout: self.connection.body_timeout(),
            keep_alive: self.connection.keep_alive(),
            max_connections: self.connection.max_connections,
            max_per_ip: self.max_connections_per_ip,
        }
    }

    /// The download caps and idle timeout from the flags.
    pub fn download_limits(&self) -> DownloadLimits {
        DownloadLimits {
            max_total: usize::try_from(self.max_downloads).unwrap_or(usize::MAX),
            max_per_actor: usize::try_from(self.max_downloads_per_actor).unwrap_or(usize::MAX),
            idle_timeout: Duration::from_secs(self.download_idle_timeout_secs),
        }
    }

    /// RocksDB settings from the flags.
    pub fn store_tuning(&self) -> crate::store::StoreTuning {
        crate::store::StoreTuning { cache_bytes: mib(self.cache_mib) }
    }

    /// Budget of the verified-artifact cache, in bytes.
    pub fn blob_cache_bytes(&self) -> usize {
        mib(self.blob_cache_mib)
    }

    /// Sequencer settings from the flags.
    pub fn sequencer_config(&self) -> SequencerConfig {
        SequencerConfig {
            batch_max: usize::try_from(self.batch_max).unwrap_or(usize::MAX),
            batch_wait: Duration::from_millis(self.batch_wait_ms),
            max_entry_size: self.max_entry_size(),
        }
    }

    /// Checkpointer settings from the flags.
    pub fn checkpointer_config(&self) -> CheckpointerConfig {
        CheckpointerConfig {
            interval: Duration::from_millis(self.checkpoint_interval_ms),
            min_interval: Duration::from_millis(self.checkpoint_min_interval_ms),
            witness_timeout: Duration::from_millis(self.witness_timeout_ms),
            witness_retries: self.witness_retries,
            ca_cert: self.ca_cert.clone(),
            bucket: None,
        }
    }

    /// Registry settings from the flags.
    pub fn registry_config(&self) -> custody_registry::registry::Config {
        custody_registry::registry::Config { window_ms: self.statement_window_secs * 1000 }
    }

    /// The entry size limit as `usize` (the range check keeps it <= 65535).
    pub fn max_entry_size(&self) -> usize {
        usize::try_from(self.max_entry_size).unwrap_or(custody_standards::entries::MAX_ENTRY_SIZE)
    }
}

/// `custody-log fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Data directory of a stopped server.
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The `--store` the server ran with, whose bucket holds the artifacts
    /// (S3 settings from the `AWS_*` environment).
    #[arg(long, env = "CUSTODY_STORE")]
    pub store: Option<String>,
    /// The replay window (seconds) the server ran with (see `serve`).
    #[arg(long = "statement-window", env = "CUSTODY_STATEMENT_WINDOW_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub statement_window_secs: u64,
    /// The artifacts' key-encryption keys (every artifact is opened).
    #[command(flatten)]
    pub kek: KekArgs,
}

/// `custody-log restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The bucket the lost log wrote to (`serve --store`).
    #[arg(long, env = "CUSTODY_STORE")]
    pub store: String,
    /// Data directory to create (must not hold a log).
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The backup of the lost log's signer key (`log.key`); copied into
    /// the new data directory. The bucket never holds it.
    #[arg(long, env = "CUSTODY_RESTORE_KEY")]
    pub key: PathBuf,
    /// The lost log was a generic log of raw entries (`init --generic`).
    #[arg(long, env = "CUSTODY_GENERIC")]
    pub generic: bool,
    /// The replay window (seconds) the server ran with (see `serve`).
    #[arg(long = "statement-window", env = "CUSTODY_STATEMENT_WINDOW_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub statement_window_secs: u64,
}

/// `custody-log gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Data directory of a stopped server.
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The `--store` the server ran with, whose bucket holds the artifacts
    /// (S3 settings from the `AWS_*` environment).
    #[arg(long, env = "CUSTODY_STORE")]
    pub store: Option<String>,
    /// Orphans whose last upload is more recent than this many seconds are
    /// kept (their uploader may still publish them; see `serve`).
    #[arg(long = "upload-grace", env = "CUSTODY_UPLOAD_GRACE", default_value_t = DEFAULT_UPLOAD_GRACE_SECS)]
    pub upload_grace_secs: u64,
    /// The replay window (seconds) the server ran with (see `serve`).
    #[arg(long = "statement-window", env = "CUSTODY_STATEMENT_WINDOW_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub statement_window_secs: u64,
    /// The artifacts' key-encryption keys (to find a sealed orphan's key
    /// record).
    #[command(flatten)]
    pub kek: KekArgs,
}

/// Bytes in `n` MiB (the flags cap `n` far below overflow).
fn mib(n: u64) -> usize {
    usize::try_from(n << 20).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_serve_flags() {
        let cli = Cli::try_parse_from([
            "custody-log",
            "serve",
            "--data-dir",
            "/tmp/x",
            "--listen",
            "127.0.0.1:0",
            "--checkpoint-interval",
            "100",
            "--batch-wait",
            "10",
            "--allow-raw-append",
        ])
        .unwrap();
        let Command::Serve(s) = cli.command else { panic!("not serve") };
        assert!(s.allow_raw_append);
        assert_eq!(s.checkpointer_config().interval, Duration::from_millis(100));
        assert_eq!(s.checkpointer_config().min_interval, Duration::from_millis(100));
        assert_eq!(s.sequencer_config().batch_wait, Duration::from_millis(10));
        assert_eq!(s.max_entry_size(), 65535);
        assert!(Cli::try_parse_from([
            "custody-log",
            "serve",
            "--data-dir",
            "d",
            "--max-entry-size",
            "70000"
        ])
        .is_err());
    }
}
