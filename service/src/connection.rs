//! The connection-deadline flags both servers take, flattened into their
//! `serve` commands so the names, environment variables and defaults are
//! the same everywhere.
//!
//! Every connection costs a file descriptor and a task until it closes: a
//! client that connects and sends nothing, or trickles a body, would hold
//! them for ever without these deadlines.

use std::time::Duration;

use clap::Args;

/// Request-time and connection-count limits.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Longest time (milliseconds) a client may take to send a request's
    /// head (request line and headers), from accepting the connection or
    /// from the end of its previous request.
    #[arg(long = "request-head-timeout", env = "CUSTODY_REQUEST_HEAD_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_head_timeout_ms: u64,
    /// Milliseconds a small body (a statement, a raw entry, an
    /// add-checkpoint request) may take to arrive whole (408 and the
    /// connection closed after that); for a streamed body (an artifact
    /// upload), the longest pause between two pieces of it.
    #[arg(long = "body-timeout", env = "CUSTODY_BODY_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_ms: u64,
    /// Milliseconds an idle keep-alive connection is kept open.
    #[arg(long = "keep-alive", env = "CUSTODY_KEEP_ALIVE_MS", default_value_t = 5000)]
    pub keep_alive_ms: u64,
    /// Most connections open at once (on the witness: per server worker,
    /// which stops accepting beyond it). On the log, more are closed as
    /// soon as they are accepted, and the cap is lowered at start-up to
    /// fit the open-file limit (`ulimit -n`) less 256 descriptors for the
    /// database and files; 0: only the open-file limit.
    #[arg(long, env = "CUSTODY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds a graceful shutdown (SIGTERM, SIGINT) waits for requests in
    /// flight before closing their connections.
    #[arg(long = "shutdown-timeout", env = "CUSTODY_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout_secs: u64,
}

impl ConnectionArgs {
    /// Deadline of a request head.
    pub fn head_timeout(&self) -> Duration {
        Duration::from_millis(self.request_head_timeout_ms)
    }

    /// Total deadline of a small body; idle deadline of a streamed one.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// How long an idle keep-alive connection is kept.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_millis(self.keep_alive_ms)
    }

    /// How long a graceful shutdown drains.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}
