//! # custody-service
//!
//! The plumbing both Custody servers (`custody-log`, `custody-witness`)
//! share, kept once so the two cannot drift apart:
//!
//! - [`metrics`]: a `prometheus-client` registry, process metrics read from
//!   `/proc`, and `/metrics` content negotiation (OpenMetrics or Prometheus
//!   text 0.0.4);
//! - [`logging`]: tracing set-up with `--log-format text|json`;
//! - [`request_id`]: a span per request and the `X-Request-Id` header;
//! - [`internal_error`]: the opaque 500 body, whose reference is the
//!   request id;
//! - [`health`]: `/healthz` (liveness) and the `/readyz` answer;
//! - [`connection`]: the connection-deadline flags both servers take;
//! - [`shutdown`]: SIGTERM/SIGINT drain and SIGHUP hooks;
//! - [`tls`]: HTTPS with a certificate reloaded on SIGHUP;
//! - [`server`]: binding a listener with or without TLS;
//! - [`client_address`], [`guard`], [`rate_limit`]: per-client-address
//!   limits checked before any request is read.

#![forbid(unsafe_code)]

pub mod client_address;
pub mod connection;
pub mod guard;
pub mod health;
pub mod internal_error;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod rate_limit;
pub mod request_id;
pub mod server;
pub mod shutdown;
pub mod tls;
