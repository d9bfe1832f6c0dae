//! Signals, in one place for both servers.
//!
//! SIGTERM or SIGINT stops the server gracefully: it stops accepting
//! connections, lets requests in flight finish for up to
//! `--shutdown-timeout` (then closes what is left), and returns from the
//! server future so the caller can flush its storage (see [`drain`]).
//! SIGHUP runs the server's reload hook (re-reading certificates,
//! configuration files) and never stops the process.

use std::future::Future;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The handled signals, installed before the server announces itself so
/// an early SIGHUP cannot kill it.
#[derive(Debug)]
pub struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers (needs a Tokio runtime).
    pub fn install() -> std::io::Result<Self> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Calls `on_hup` for every SIGHUP until SIGTERM or SIGINT, then stops
    /// `server` gracefully (waiting for it to finish draining).
    pub async fn run<F, Fut>(mut self, server: ServerHandle, mut on_hup: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            tokio::select! {
                _ = self.hup.recv() => on_hup().await,
                _ = self.term.recv() => break,
                _ = self.int.recv() => break,
            }
        }
        tracing::info!("shutting down: draining requests in flight");
        server.stop(true).await;
    }
}

/// Waits for a component's final flush (a sequencer finishing its batch, a
/// committer syncing its queue) for at most `deadline`; returns whether it
/// finished, logging a warning when it did not.
pub async fn drain<F: Future>(what: &str, deadline: Duration, fut: F) -> bool {
    match tokio::time::timeout(deadline, fut).await {
        Ok(_) => true,
        Err(_) => {
            tracing::warn!(component = what, secs = deadline.as_secs(), "did not stop within the deadline");
            false
        }
    }
}
