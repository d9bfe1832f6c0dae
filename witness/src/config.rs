//! Command line of `custody-witness` (clap derive). Every flag can also come
//! from a `CUSTODY_*` environment variable. docs/witness.md documents them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use custody_service::connection::ConnectionArgs;
use custody_service::guard::{AddressGuard, AddressLimitArgs};
use custody_service::logging::LogArgs;
use custody_service::rate_limit::ClassQuota;
use custody_service::tls::TlsArgs;

/// Custody's C2SP tlog-witness.
#[derive(Debug, Parser)]
#[command(name = "custody-witness", version, about)]
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
// Parsed once at start-up: boxing `serve`'s many flags would save nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Create a data directory with a fresh witness key and an empty
    /// database; prints the verifier key.
    Init(InitArgs),
    /// Add another cosigning key (key rotation); prints its verifier key.
    AddKey(AddKeyArgs),
    /// Run the witness.
    Serve(ServeArgs),
    /// Lift the split-view freeze of an origin on a stopped witness (the
    /// evidence is kept).
    ClearEvidence(ClearArgs),
}

/// `custody-witness init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data directory to create.
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Witness name (the name of its cosignature key), e.g.
    /// `witness.example.com/w1`.
    #[arg(long, env = "CUSTODY_WITNESS_NAME")]
    pub name: String,
}

/// `custody-witness add-key`.
#[derive(Debug, Args)]
pub struct AddKeyArgs {
    /// Data directory created by `init`.
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Name of the new key (default: the name of the first key).
    #[arg(long, env = "CUSTODY_WITNESS_NAME")]
    pub name: Option<String>,
}

/// `custody-witness serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Data directory created by `init`.
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "CUSTODY_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Log list (witness network `logs/v0` format, plus optional `url`).
    /// Re-read on SIGHUP.
    #[arg(long, env = "CUSTODY_WITNESS_LOGS")]
    pub logs: PathBuf,
    /// Peer witnesses (`peers/v0` format). Re-read on SIGHUP.
    #[arg(long, env = "CUSTODY_WITNESS_PEERS")]
    pub peers: Option<PathBuf>,
    /// Milliseconds between gossip rounds.
    #[arg(long = "gossip-interval", env = "CUSTODY_WITNESS_GOSSIP_INTERVAL_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub gossip_interval_ms: u64,
    /// Shortest milliseconds between two polls of a pull-mode log (the log
    /// list's `qpd` may make it longer).
    #[arg(long = "poll-interval", env = "CUSTODY_WITNESS_POLL_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub poll_interval_ms: u64,
    /// PEM file of extra CA certificates to trust, besides the system
    /// roots, for https:// logs (pull mode) and peers (gossip).
    #[arg(long, env = "CUSTODY_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Timeout (milliseconds) of every outgoing request (logs, tiles, peers).
    #[arg(long = "http-timeout", env = "CUSTODY_WITNESS_HTTP_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub http_timeout_ms: u64,
    /// Request deadlines, connection cap and shutdown drain. On the
    /// witness `--max-connections` caps each server worker's connections.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// HTTPS.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Test hook (hidden): sleep this many milliseconds between the first
    /// old-size check and the atomic check-and-update of add-checkpoint, to
    /// widen the race window the tests exercise (like torchwood's
    /// `testingOnlyStallRequest`). Never set in production.
    #[arg(long = "test-stall-ms", hide = true)]
    pub test_stall_ms: Option<u64>,
    /// Checkpoint submissions (`POST /add-checkpoint`, `POST
    /// /gossip/checkpoint`) per second per client address; more get 429
    /// before the body is read. 0 disables the limit.
    #[arg(long = "witness-rate", env = "CUSTODY_WITNESS_RATE", default_value_t = 20)]
    pub witness_rate: u32,
    /// Checkpoint submissions one address may send at once.
    #[arg(long = "witness-burst", env = "CUSTODY_WITNESS_BURST", default_value_t = 40)]
    pub witness_burst: u32,
    /// The per-address limits of every route (see docs/operations.md).
    #[command(flatten)]
    pub address_limits: AddressLimitArgs,
}

impl ServeArgs {
    /// The per-address limits of every route, with their maintenance
    /// thread started.
    pub fn address_guard(&self) -> AddressGuard {
        let witness = ClassQuota { per_second: self.witness_rate, burst: self.witness_burst };
        let none = ClassQuota { per_second: 0, burst: 0 };
        self.address_limits.guard(none, witness, crate::api::route_class, crate::api::is_auth_failure)
    }
    /// Gossip period.
    pub fn gossip_interval(&self) -> Duration {
        Duration::from_millis(self.gossip_interval_ms)
    }
    /// Shortest poll period.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    /// Outgoing request timeout.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.http_timeout_ms)
    }
    /// Deadline of a whole request body.
    pub fn body_timeout(&self) -> Duration {
        self.connection.body_timeout()
    }
}

/// `custody-witness clear-evidence`.
#[derive(Debug, Args)]
pub struct ClearArgs {
    /// Data directory of a stopped witness.
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Origin whose freeze to lift.
    #[arg(long)]
    pub origin: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_serve_flags() {
        let cli = Cli::try_parse_from([
            "custody-witness",
            "serve",
            "--data-dir",
            "/tmp/w",
            "--listen",
            "127.0.0.1:0",
            "--logs",
            "logs.txt",
            "--gossip-interval",
            "200",
        ])
        .unwrap();
        let Command::Serve(s) = cli.command else { panic!("not serve") };
        assert_eq!(s.gossip_interval(), Duration::from_millis(200));
        assert_eq!(s.poll_interval(), Duration::from_secs(10));
        assert!(s.peers.is_none());
        assert!(
            Cli::try_parse_from(["custody-witness", "serve", "--data-dir", "d"]).is_err(),
            "--logs is required"
        );
        assert!(Cli::try_parse_from([
            "custody-witness",
            "serve",
            "--data-dir",
            "d",
            "--logs",
            "l",
            "--gossip-interval",
            "0"
        ])
        .is_err());
    }
}
