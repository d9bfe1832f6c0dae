//! Custody's one outgoing HTTP(S) client, used by the verifier, the
//! witness (pull mode, gossip) and the log (witness calls) alike, so the
//! protections every caller needs are written and tested once:
//!
//! - **Capped bodies.** Every body is read through one function that
//!   refuses a declared or actual length over the caller's cap before
//!   buffering more ([`Client::send`] with a [`Request`]'s cap).
//! - **Retries that do not hurt.** Only retry-safe requests (GETs, and
//!   POSTs the caller marks because the server deduplicates them) are
//!   retried, with capped exponential backoff and full jitter, obeying
//!   `Retry-After` on 429 and 503 ([`retry`]).
//! - **rustls TLS** with the system roots plus an optional CA file
//!   (`--ca-cert`), and errors that name the certificate problem
//!   ([`ClientError::Tls`]).
//!
//! [`blocking::Client`] wraps the same client for synchronous callers.

pub mod blocking;
mod body;
mod client;
pub mod config;
pub mod error;
pub mod retry;

pub use client::{Client, Reply, Request, Streaming, MAX_ERROR_BODY};
pub use config::ClientConfig;
pub use error::ClientError;
pub use retry::RetryPolicy;
