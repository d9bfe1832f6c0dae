//! A webhook receiver for alert tests: a real HTTP server (the one of
//! [`crate::hostile`]) that records every delivery it accepts, and can
//! refuse the first N with 503 or be down (503) until told otherwise, to
//! test retries, backoff and persistence of the sender.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::hostile::{serve_counted, Reply, Request, Response};

/// One accepted delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The request path.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` if it was not JSON).
    pub body: Value,
}

impl Delivery {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    accepted: Mutex<Vec<Delivery>>,
    attempts: AtomicU64,
    fail_first: AtomicU64,
    down: AtomicBool,
    delay_ms: AtomicU64,
}

/// The receiver; it lives until the test process ends.
#[derive(Clone)]
pub struct Receiver {
    /// Base URL; any path is accepted.
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    /// A receiver that accepts everything (200).
    pub fn start() -> Receiver {
        Receiver::failing_first(0)
    }

    /// A receiver that answers 503 to its first `n` POSTs, then 200.
    pub fn failing_first(n: u64) -> Receiver {
        let inner = Arc::new(Inner { fail_first: AtomicU64::new(n), ..Inner::default() });
        let state = inner.clone();
        let (url, _) = serve_counted(move |req: Request| {
            let n = state.attempts.fetch_add(1, Ordering::SeqCst);
            let delay = state.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            if state.down.load(Ordering::SeqCst) || n < state.fail_first.load(Ordering::SeqCst) {
                return Reply::Send(Response::new(503, "down"));
            }
            let headers = req.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
            let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            state.accepted.lock().unwrap().push(Delivery { path: req.path.clone(), headers, body });
            Reply::Send(Response::new(200, "ok"))
        });
        Receiver { url: format!("{url}/hook"), inner }
    }

    /// While `down`, every request gets 503.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Waits this long before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        self.inner.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Every request so far, accepted or not.
    pub fn attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// The accepted deliveries, in arrival order.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.inner.accepted.lock().unwrap().clone()
    }

    /// The `Custody-Alert-Id` of each accepted delivery, in arrival order.
    pub fn ids(&self) -> Vec<String> {
        self.accepted().iter().map(|d| d.header("custody-alert-id").unwrap_or_default().to_owned()).collect()
    }

    /// Waits (bounded) until at least `n` deliveries were accepted.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Delivery> {
        let end = Instant::now() + within;
        loop {
            let got = self.accepted();
            if got.len() >= n || Instant::now() >= end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
