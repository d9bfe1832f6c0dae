//! Sinks: each drains its own queue ([`crate::alerts::outbox::Queue`]) in
//! leaf order on its own thread, so a sink that is down or slow delays
//! only its own alerts.
//!
//! A failed attempt (no connection, a timeout, 408, 429 or 5xx) is
//! retried after a random delay in `[0, min(backoff_max, backoff_initial *
//! 2^(failures-1))]` ("full jitter"), or after the receiver's
//! `Retry-After` if it is shorter than `backoff_max`; the alert stays
//! queued on disk meanwhile, so nothing is lost if the monitor stops.
//! Any other 4xx means the receiver will never take this body: the alert
//! is moved to `failed/` (logged as an error) and the queue moves on.
//!
//! Every HTTP delivery carries the alert id in `Custody-Alert-Id` and
//! `Idempotency-Key`: a delivery whose answer was lost (or a monitor
//! killed between a delivery and its removal from the queue) is sent
//! again with the same id, so receivers dedupe on it.

use std::io::Write as _;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use custody_client::blocking::Client;
use custody_client::{ClientConfig, Request, RetryPolicy};

use crate::alerts::config::{SinkConfig, SinkKind};
use crate::alerts::outbox::Queue;
use crate::alerts::Alert;
use crate::error::{Error, Result};

/// Largest answer body read from a receiver.
const MAX_ANSWER: u64 = 64 * 1024;

/// The outcome of one attempt.
#[derive(Debug)]
pub enum Attempt {
    /// The receiver took it.
    Delivered,
    /// Try again later (after at least the given time, if the receiver said).
    Retry(String, Option<Duration>),
    /// The receiver refused it for good.
    Refused(String),
}

/// Something that takes alerts.
pub trait Deliver: Send + Sync {
    /// One attempt at delivering `alert`.
    fn deliver(&self, alert: &Alert) -> Attempt;
}

/// An HTTP sink (webhook or Slack).
struct Http {
    client: Client,
    url: String,
    slack: bool,
}

/// The text a Slack-compatible receiver shows.
pub fn slack_text(a: &Alert) -> String {
    format!("custody alert {} at entry {} of {}: {}", a.rule, a.index, a.origin, a.summary)
}

impl Deliver for Http {
    fn deliver(&self, a: &Alert) -> Attempt {
        let body = if self.slack {
            serde_json::json!({ "text": slack_text(a) }).to_string().into_bytes()
        } else {
            serde_json::to_vec(a).unwrap_or_default()
        };
        let req = Request::post(&self.url, body, MAX_ANSWER)
            .header("content-type", "application/json")
            .and_then(|r| r.header("custody-alert-id", &a.id))
            .and_then(|r| r.header("idempotency-key", &a.id));
        let req = match req {
            Ok(r) => r,
            Err(e) => return Attempt::Refused(e.to_string()),
        };
        match self.client.send(&req) {
            Ok(r) if (200..300).contains(&r.status) => Attempt::Delivered,
            Ok(r) if matches!(r.status, 408 | 429) || r.status >= 500 => {
                let after = r
                    .header("retry-after")
                    .and_then(|v| custody_client::retry::parse_retry_after(v, SystemTime::now()));
                Attempt::Retry(format!("HTTP {}", r.status), after)
            }
            Ok(r) => Attempt::Refused(format!("HTTP {}", r.status)),
            Err(e) => Attempt::Retry(e.to_string(), None),
        }
    }
}

/// One JSON line per alert on stdout.
struct Stdout;

impl Deliver for Stdout {
    fn deliver(&self, a: &Alert) -> Attempt {
        let line = serde_json::to_string(a).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => Attempt::Delivered,
            Err(e) => Attempt::Retry(format!("stdout: {e}"), None),
        }
    }
}

/// A configured sink: a name, a queue, a target and its backoff.
pub struct Sink {
    /// The sink's (or queue's) name.
    pub name: String,
    /// Its queue.
    pub queue: Queue,
    target: Box<dyn Deliver>,
    initial: Duration,
    max: Duration,
}

impl Sink {
    /// The sink `cfg` describes, draining `queue`.
    pub fn new(cfg: &SinkConfig, queue: Queue) -> Result<Self> {
        let target: Box<dyn Deliver> = match cfg.kind {
            SinkKind::Stdout => Box::new(Stdout),
            SinkKind::Webhook | SinkKind::Slack => {
                let url = match (&cfg.url, &cfg.url_env) {
                    (Some(u), _) => u.clone(),
                    (None, Some(var)) => std::env::var(var).map_err(|_| {
                        Error::Config(format!("sink {}: environment variable {var} is not set", cfg.name.0))
                    })?,
                    (None, None) => return Err(Error::Config(format!("sink {}: no url", cfg.name.0))),
                };
                let client = Client::new(
                    ClientConfig::new(concat!("custody-monitor/", env!("CARGO_PKG_VERSION")))
                        .timeout(Duration::from_secs(cfg.timeout_secs))
                        .ca_cert(cfg.ca_cert.clone())
                        .retry(RetryPolicy::never()),
                )
                .map_err(|e| Error::Config(format!("sink {}: {e}", cfg.name.0)))?;
                Box::new(Http { client, url, slack: cfg.kind == SinkKind::Slack })
            }
        };
        Ok(Sink::with_target(
            &cfg.name.0,
            queue,
            target,
            Duration::from_millis(cfg.backoff_initial_ms),
            Duration::from_secs(cfg.backoff_max_secs),
        ))
    }

    /// A sink with any target (the hold queue, tests).
    pub fn with_target(
        name: &str,
        queue: Queue,
        target: Box<dyn Deliver>,
        initial: Duration,
        max: Duration,
    ) -> Self {
        Sink { name: name.to_owned(), queue, target, initial, max }
    }

    /// The random delay before the next attempt after `failures` failures
    /// in a row (see the module docs).
    pub fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) if d <= self.max => d,
            _ => {
                let factor = 1u32.checked_shl(failures.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
                let ceiling = self.initial.saturating_mul(factor).min(self.max);
                ceiling.mul_f64(custody_client::retry::random_unit())
            }
        }
    }
}

/// What the main loop tells the sinks.
#[derive(Debug, Default)]
struct Flags {
    /// New alerts were queued.
    generation: u64,
    /// The scan is over (`--once`): stop once the queue is empty.
    finished: bool,
    /// Stop now.
    stop: bool,
    /// `--once`: stop at this time even with alerts queued.
    deadline: Option<Instant>,
}

/// Wakes and stops the sink threads.
#[derive(Debug, Default)]
pub struct Signal {
    flags: Mutex<Flags>,
    cv: Condvar,
}

impl Signal {
    fn update(&self, f: impl FnOnce(&mut Flags)) {
        let mut g = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
        self.cv.notify_all();
    }

    /// New alerts are queued.
    pub fn wake(&self) {
        self.update(|f| f.generation += 1);
    }

    /// Stop every sink now.
    pub fn stop(&self) {
        self.update(|f| f.stop = true);
    }

    /// No more alerts will come: drain the queues, until `deadline` at most.
    pub fn finish(&self, deadline: Instant) {
        self.update(|f| {
            f.finished = true;
            f.deadline = Some(deadline);
            // Wakes sinks waiting for new alerts, so they see it at once.
            f.generation += 1;
        });
    }

    fn stopped(f: &Flags) -> bool {
        f.stop || f.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Waits up to `d` or until told something; returns whether to stop.
    fn sleep(&self, d: Duration, generation: Option<u64>) -> bool {
        let end = Instant::now() + d;
        let mut g = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if Self::stopped(&g) || generation.is_some_and(|n| g.generation != n) {
                return Self::stopped(&g);
            }
            let now = Instant::now();
            let mut until = end;
            if let Some(dl) = g.deadline {
                until = until.min(dl);
            }
            if now >= until {
                return Self::stopped(&g);
            }
            g = self.cv.wait_timeout(g, until - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// Drains `sink`'s queue until told to stop (or, after [`Signal::finish`],
/// until the queue is empty). Returns how many alerts are still queued.
pub fn drain(sink: &Sink, signal: &Signal) -> usize {
    let mut failures = 0u32;
    loop {
        let generation = signal.flags.lock().unwrap_or_else(|p| p.into_inner()).generation;
        let files = match sink.queue.list() {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(sink = %sink.name, "cannot list the queue: {e}");
                if signal.sleep(Duration::from_secs(1), None) {
                    return 0;
                }
                continue;
            }
        };
        if files.is_empty() {
            let done = {
                let f = signal.flags.lock().unwrap_or_else(|p| p.into_inner());
                f.finished || Signal::stopped(&f)
            };
            if done || signal.sleep(Duration::from_secs(1), Some(generation)) {
                return 0;
            }
            continue;
        }
        for (n, path) in files.iter().enumerate() {
            if Signal::stopped(&signal.flags.lock().unwrap_or_else(|p| p.into_inner())) {
                return files.len() - n;
            }
            let alert = match sink.queue.read(path) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(sink = %sink.name, "unreadable queued alert, moved to failed/: {e}");
                    let _ = sink.queue.failed(path);
                    continue;
                }
            };
            let result = match sink.target.deliver(&alert) {
                Attempt::Delivered => sink.queue.delivered(path),
                Attempt::Refused(why) => {
                    tracing::error!(sink = %sink.name, id = %alert.id, "refused for good ({why}), moved to failed/");
                    sink.queue.failed(path)
                }
                Attempt::Retry(why, after) => {
                    failures += 1;
                    let wait = sink.backoff(failures, after);
                    tracing::warn!(sink = %sink.name, id = %alert.id, "delivery failed ({why}), retry in {wait:?}");
                    if signal.sleep(wait, None) {
                        return files.len() - n;
                    }
                    break;
                }
            };
            if let Err(e) = result {
                tracing::error!(sink = %sink.name, "queue: {e}");
            }
            failures = 0;
        }
    }
}
