//! Connection limits: how long a client may take to send a request, and
//! how many connections the server holds at once, in total and per client
//! address.
//!
//! Every connection costs a file descriptor and a task until it closes. A
//! client that opens connections and then sends nothing, or trickles a
//! request body one byte at a time (slowloris), would otherwise hold them
//! for ever and run the process out of descriptors, and then nobody gets a
//! checkpoint or a proof. So:
//! - the request head must arrive within `--request-head-timeout`;
//! - a small body (a statement, a raw entry) must arrive whole within
//!   `--body-timeout`; a streamed body (an artifact upload, which may
//!   legitimately take hours) must make progress at least that often;
//! - an idle keep-alive connection is closed after `--keep-alive`;
//! - a connection over `--max-connections` in total, or over
//!   `--max-connections-per-ip` from one peer address, is shut down as soon
//!   as it is accepted, before anything is read from it: the client sees
//!   the connection closed, never a response. One address can then hold
//!   only its share of the descriptors, whatever it sends.
//!
//! The count is kept by a [`ConnectionSlot`] stored in the connection's own
//! data ([`actix_web::HttpServer::on_connect`]), which actix drops when the
//! connection ends, so the count cannot leak.

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::web;

use super::ApiError;

/// Descriptors kept free for the database, artifact files and the
/// listener when `--max-connections` is fitted under the process's
/// open-file limit.
pub const RESERVED_FDS: usize = 256;

/// The time and count limits of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest time from accepting a connection (or the end of the previous
    /// request) to a complete request head.
    pub head_timeout: Duration,
    /// Total deadline of a small body; idle deadline of a streamed one.
    pub body_timeout: Duration,
    /// How long an idle keep-alive connection is kept.
    pub keep_alive: Duration,
    /// Most connections open at once (0: no limit of our own).
    pub max_connections: usize,
    /// Most connections open at once from one peer address (0: no limit).
    pub max_per_ip: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            head_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
            max_connections: 4096,
            max_per_ip: 256,
        }
    }
}

impl ConnectionLimits {
    /// These limits with `max_connections` lowered, if needed, to fit
    /// under an open-file limit of `nofile` descriptors (minus
    /// [`RESERVED_FDS`]). Returns the limits and whether they were lowered.
    pub fn fitted_to(mut self, nofile: Option<u64>) -> (Self, bool) {
        let Some(nofile) = nofile else { return (self, false) };
        let room = usize::try_from(nofile).unwrap_or(usize::MAX).saturating_sub(RESERVED_FDS).max(1);
        if self.max_connections == 0 || self.max_connections > room {
            self.max_connections = room;
            return (self, true);
        }
        (self, false)
    }
}

/// The soft open-file limit of this process (`Max open files` in
/// `/proc/self/limits`), if it can be read and is finite.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` reached.
    Total,
    /// `--max-connections-per-ip` reached for this address.
    PerIp,
}

/// Open connections, in total and per peer address.
#[derive(Debug)]
pub struct Connections {
    limits: ConnectionLimits,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refused_total: AtomicU64,
    refused_per_ip: AtomicU64,
}

/// One admitted connection; dropping it (when actix drops the
/// connection's data) gives its place back.
#[derive(Debug)]
pub struct ConnectionSlot {
    owner: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.owner.release(self.ip);
    }
}

impl Connections {
    /// A tracker enforcing `limits`.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Connections {
            limits,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refused_total: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let max = self.limits.max_connections;
        if max > 0 && self.open.load(Ordering::Relaxed) >= max {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Total);
        }
        let n = per_ip.entry(ip).or_insert(0);
        if self.limits.max_per_ip > 0 && *n >= self.limits.max_per_ip {
            self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerIp);
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(ConnectionSlot { owner: Arc::clone(self), ip })
    }

    fn release(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The `on_connect` hook: admits the connection (its slot goes into the
    /// connection's data) or shuts the socket down at once. Also turns off
    /// Nagle's algorithm: responses are often written in two pieces
    /// (headers, then a streamed body), and with Nagle the second waits for
    /// the client's delayed ACK (~40 ms) on every request.
    pub fn on_connect(self: &Arc<Self>, conn: &dyn Any, data: &mut Extensions) {
        let Some(tcp) = custody_service::server::tcp_stream(conn) else { return };
        let _ = tcp.set_nodelay(true);
        let Ok(peer) = tcp.peer_addr() else { return };
        match self.admit(peer.ip().to_canonical()) {
            Ok(slot) => {
                data.insert(slot);
            }
            Err(why) => {
                tracing::debug!(peer = %peer.ip(), ?why, "connection refused: over the connection limit");
                // The read side sees end of stream at once, so actix drops
                // the connection without waiting for a request.
                let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Copies the open count and the refusal counts into the metrics
    /// (at scrape time).
    pub fn export_metrics(&self, gauges: &crate::metrics::ScrapeGauges) {
        gauges.connections_open.set(crate::metrics::gauge_value(self.open() as u64));
        gauges.set_refused("total", self.refused_total.load(Ordering::Relaxed));
        gauges.set_refused("per_ip", self.refused_per_ip.load(Ordering::Relaxed));
    }
}

/// Reads a whole small request body of at most `max` bytes within
/// `deadline`: 408 (and the connection is closed) when the deadline
/// passes, 413 as soon as the body overruns `max`.
pub(crate) async fn read_small_body(
    payload: web::Payload,
    max: usize,
    deadline: Duration,
) -> Result<web::Bytes, ApiError> {
    match tokio::time::timeout(deadline, payload.to_bytes_limited(max)).await {
        Err(_) => Err(ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} ms",
            deadline.as_millis()
        ))),
        Ok(Ok(Ok(body))) => Ok(body),
        Ok(Ok(Err(e))) => Err(ApiError::BadRequest(format!("reading body: {e}"))),
        Ok(Err(_)) => Err(ApiError::TooLarge { size: max + 1, max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> ConnectionLimits {
        ConnectionLimits { max_connections: total, max_per_ip: per_ip, ..ConnectionLimits::default() }
    }

    #[test]
    fn caps_per_address_and_in_total_and_gives_places_back() {
        let c = Connections::new(limits(3, 2));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = c.admit(a).unwrap();
        let a2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).unwrap_err(), Refusal::PerIp);
        let b1 = c.admit(b).unwrap();
        assert_eq!(c.admit(b).unwrap_err(), Refusal::Total);
        assert_eq!(c.open(), 3);
        drop(a1);
        let a3 = c.admit(a).unwrap();
        drop((a2, a3, b1));
        assert_eq!(c.open(), 0);
        assert!(c.per_ip.lock().unwrap().is_empty(), "no entry is kept for a closed address");
        let metrics = crate::metrics::Metrics::new();
        c.export_metrics(&metrics.scrape);
        let text = custody_service::metrics::encode(
            metrics.registry(),
            custody_service::metrics::Format::Prometheus,
        )
        .unwrap();
        assert!(text.contains("custody_connections_refused_total{limit=\"per_ip\"} 1\n"), "{text}");
        assert!(text.contains("custody_connections_refused_total{limit=\"total\"} 1\n"), "{text}");
    }

    #[test]
    fn zero_means_no_limit() {
        let c = Connections::new(limits(0, 0));
        let ip: IpAddr = "::1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| c.admit(ip).unwrap()).collect();
        assert_eq!(c.open(), 1000);
        drop(slots);
        assert_eq!(c.open(), 0);
    }

    #[test]
    fn fits_under_the_open_file_limit() {
        let (l, lowered) = limits(4096, 256).fitted_to(Some(1024));
        assert!(lowered);
        assert_eq!(l.max_connections, 1024 - RESERVED_FDS);
        let (l, lowered) = limits(100, 256).fitted_to(Some(1024));
        assert!(!lowered);
        assert_eq!(l.max_connections, 100);
        assert_eq!(limits(4096, 1).fitted_to(None).0.max_connections, 4096);
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }
}
