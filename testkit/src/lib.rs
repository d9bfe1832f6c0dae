//! The one test kit of the Custody workspace. Every test that starts a real
//! binary, signs a registry statement, stands up a lying server or needs TLS
//! material takes it from here, so a fix to the harness (a bounded wait, a
//! reaped child, a unique nonce) lands everywhere at once.
//!
//! - [`process`]: spawn a binary on port 0 and read its address from its
//!   `listening on URL` line; stop, `kill -9`, signal, reap on drop.
//! - [`bins`]: the workspace binaries built next to the test executable.
//! - [`statements`]: registry statements signed exactly as a client signs
//!   them (DSSE envelopes).
//! - [`http`] (blocking) and [`aio`] (async): the log's API in one line.
//! - [`hostile`]: HTTP servers that answer what the test scripts — lies,
//!   slow bodies, cut connections, 503/429 with `Retry-After` — and proxies
//!   that rewrite or cut an honest upstream.
//! - [`raw`]: hand-written requests, slowloris, throttled proxies.
//! - [`procstat`]: resident memory and open descriptors from `/proc`.
//! - [`pki`]: an in-test CA, server certificates and a wrong CA as PEM files;
//!   [`tls`]: the hostile servers over HTTPS with those certificates.
//! - [`webhook`]: a webhook receiver recording the alerts it accepts,
//!   failing the first N or down on demand.
//! - [`browser`]: headless Chromium over WebDriver (Debian's packages,
//!   installed by `scripts/chromium-install`), screenshots included.
//! - [`cli`], [`logserver`], [`witness`], [`scenario`]: the `custody`
//!   client, a lone log, a witness and whole deployments.
//!
//! Helpers panic on failure with the process output attached: they run in
//! tests only, where a panic is the failure report.

pub mod aio;
pub mod bins;
pub mod browser;
pub mod cli;
pub mod fake_witness;
pub mod files;
pub mod garage;
pub mod hostile;
pub mod http;
pub mod logserver;
pub mod pki;
pub mod process;
pub mod procstat;
pub mod python;
pub mod raw;
pub mod scenario;
pub mod statements;
pub mod tls;
pub mod webhook;
pub mod witness;

pub use bins::bin;
pub use process::{eventually, kill9, run_ok, spawn, spawn_logged, text, Proc};
pub use procstat::{open_fds, peak_rss_kib, rss_kib};
pub use tempfile::{tempdir, TempDir};

/// Every bounded wait of the kit (a start, a stop, an `eventually`).
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
