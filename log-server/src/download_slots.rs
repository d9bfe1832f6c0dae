//! Concurrent downloads: how many may run, in total and per actor, and how
//! long one may sit without its client taking data.
//!
//! A download holds a [`Slot`] from before its access statement is
//! sequenced until its response body is dropped, so the caps
//! (`--max-downloads`, `--max-downloads-per-actor`) count every response
//! still being sent, however slowly its client reads. Past a cap the answer
//! is 429 `too_many_downloads` and nothing is logged.
//!
//! The body ([`crate::api::blob_body`]) records every time the HTTP layer
//! asks it for more bytes. A client that stops reading stops those requests:
//! the connection's write buffer stays full and the body is never polled, so
//! the body cannot notice by itself. A sweeper thread therefore looks at
//! every running download a few times per idle period, and when one has not
//! been polled for `--download-idle-timeout` it resets the connection
//! (`SO_LINGER` 0, then `shutdown`): the HTTP layer's pending write fails,
//! it drops the connection and with it the body, the slot and every buffer,
//! and the client sees an aborted response, never a clean end.

use std::any::Any;
use std::collections::HashMap;
use std::os::fd::{AsRawFd as _, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use actix_web::dev::Extensions;

/// Seconds a refused client is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: u64 = 2;

/// The caps and the idle timeout (`custody-log serve` flags).
#[derive(Debug, Clone, Copy)]
pub struct DownloadLimits {
    /// Downloads running at once, all actors together.
    pub max_total: usize,
    /// Downloads running at once for one actor.
    pub max_per_actor: usize,
    /// Longest time a response may wait for its client to take the next
    /// chunk before the connection is reset.
    pub idle_timeout: Duration,
}

/// A download refused because a cap is reached (429).
#[derive(Debug, thiserror::Error)]
#[error("{running} downloads are running {scope} (at most {max}); retry in {retry_after_secs} s")]
pub struct TooManyDownloads {
    /// `in total` or `for this actor`.
    pub scope: &'static str,
    /// Downloads running now.
    pub running: usize,
    /// The cap.
    pub max: usize,
    /// Suggested wait before retrying.
    pub retry_after_secs: u64,
}

/// The raw descriptor of a connection's socket, recorded when the
/// connection is accepted (see [`remember_socket`]) so that an idle
/// download can reset it.
#[derive(Debug, Clone, Copy)]
pub struct ConnSocket(pub RawFd);

/// `HttpServer::on_connect` hook: stores the connection's [`ConnSocket`]
/// in its extensions, where a download handler finds it with
/// `HttpRequest::conn_data`.
pub fn remember_socket(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = custody_service::server::tcp_stream(conn) {
        ext.insert(ConnSocket(tcp.as_raw_fd()));
    }
}

/// What the sweeper knows of one running download.
#[derive(Debug)]
struct Watch {
    /// The connection to reset, when known.
    socket: Option<RawFd>,
    /// When the body was last polled, in ms since the tracker started.
    last_poll_ms: AtomicU64,
    /// Set once the idle timeout fired.
    expired: AtomicBool,
    /// Set (under this lock) when the body is dropped. The sweeper resets
    /// the socket only while holding the lock and seeing `false`: the
    /// connection drops its response body before it closes its socket, so
    /// the descriptor is still this connection's then.
    done: Mutex<bool>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_actor: HashMap<String, usize>,
    running: HashMap<u64, Arc<Watch>>,
    next_id: u64,
}

/// The download tracker of a running server.
#[derive(Debug)]
pub struct Downloads {
    limits: DownloadLimits,
    counts: Mutex<Counts>,
    started: Instant,
    idle_cuts: AtomicU64,
}

/// A running download's place under the caps; released when dropped.
#[derive(Debug)]
pub struct Slot {
    downloads: Arc<Downloads>,
    id: u64,
    actor: String,
    watch: Arc<Watch>,
}

impl Downloads {
    /// A tracker with `limits`, and its sweeper thread (which ends when the
    /// tracker is dropped).
    pub fn new(limits: DownloadLimits) -> Arc<Self> {
        let downloads = Arc::new(Downloads {
            limits,
            counts: Mutex::new(Counts::default()),
            started: Instant::now(),
            idle_cuts: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&downloads);
        let every = (limits.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let spawned = std::thread::Builder::new()
            .name("custody-download-sweeper".into())
            .spawn(move || sweeper(&weak, every));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the download sweeper; idle downloads are not cut");
        }
        downloads
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Refuses, without taking anything, when `actor` could not get a slot
    /// now. Cheap, so a request can be turned away before its statement's
    /// signature is checked: the slots it counts were taken by downloads
    /// whose statements did verify, so naming someone else's actor only
    /// gets the refusal that actor would get.
    pub fn precheck(&self, actor: &str) -> Result<(), TooManyDownloads> {
        self.refusal(&self.counts(), actor).map_or(Ok(()), Err)
    }

    fn refusal(&self, counts: &Counts, actor: &str) -> Option<TooManyDownloads> {
        let refuse = |scope, running, max| TooManyDownloads {
            scope,
            running,
            max,
            retry_after_secs: RETRY_AFTER_SECS,
        };
        if counts.total >= self.limits.max_total {
            return Some(refuse("in total", counts.total, self.limits.max_total));
        }
        let mine = counts.per_actor.get(actor).copied().unwrap_or(0);
        (mine >= self.limits.max_per_actor).then(|| refuse("for this actor", mine, self.limits.max_per_actor))
    }

    /// Takes a slot for `actor`, or refuses when a cap is reached.
    /// `socket` is the connection to reset if the client goes idle.
    pub fn acquire(self: &Arc<Self>, actor: &str, socket: Option<RawFd>) -> Result<Slot, TooManyDownloads> {
        let mut counts = self.counts();
        if let Some(refused) = self.refusal(&counts, actor) {
            return Err(refused);
        }
        let watch = Arc::new(Watch {
            socket,
            last_poll_ms: AtomicU64::new(self.now_ms()),
            expired: AtomicBool::new(false),
            done: Mutex::new(false),
        });
        let id = counts.next_id;
        counts.next_id += 1;
        counts.total += 1;
        *counts.per_actor.entry(actor.to_owned()).or_insert(0) += 1;
        counts.running.insert(id, Arc::clone(&watch));
        Ok(Slot { downloads: Arc::clone(self), id, actor: actor.to_owned(), watch })
    }

    /// Downloads running now.
    pub fn running(&self) -> usize {
        self.counts().total
    }

    /// Downloads cut since start because their client stopped reading.
    pub fn idle_cuts(&self) -> u64 {
        self.idle_cuts.load(Ordering::Relaxed)
    }

    /// Expires every download whose body was not polled for the idle
    /// timeout, resetting its connection.
    fn sweep(&self) {
        let now = self.now_ms();
        let idle = u64::try_from(self.limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let stale: Vec<Arc<Watch>> = self
            .counts()
            .running
            .values()
            .filter(|w| !w.expired.load(Ordering::Relaxed))
            .filter(|w| now.saturating_sub(w.last_poll_ms.load(Ordering::Relaxed)) >= idle)
            .cloned()
            .collect();
        for watch in stale {
            watch.expired.store(true, Ordering::Relaxed);
            let done = watch.done.lock().unwrap_or_else(|p| p.into_inner());
            if !*done {
                if let Some(fd) = watch.socket {
                    reset(fd);
                }
                self.idle_cuts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(idle_ms = idle, "download idle past its timeout; connection reset");
            }
        }
    }

    fn release(&self, id: u64, actor: &str) {
        let mut counts = self.counts();
        if counts.running.remove(&id).is_none() {
            return;
        }
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_actor.get_mut(actor) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_actor.remove(actor);
            }
        }
    }
}

fn sweeper(downloads: &Weak<Downloads>, every: Duration) {
    loop {
        std::thread::sleep(every);
        match downloads.upgrade() {
            Some(d) => d.sweep(),
            None => return,
        }
    }
}

/// Aborts the connection on `fd`: linger 0 so that closing it sends a
/// reset and frees its buffers at once, then shut it down so the pending
/// write fails and the HTTP layer closes it.
fn reset(fd: RawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::linger>()).unwrap_or(8);
    // SAFETY: `fd` is the socket of a connection whose response body has
    // not been dropped yet (the caller holds the watch's `done` lock and saw
    // `false`); the connection closes its socket only after dropping that
    // body, so `fd` is open and is that connection's socket. Both calls
    // only change the socket's state; failures are harmless.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast::<libc::c_void>(),
            len,
        );
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

impl Slot {
    /// Records that the client took data (the body was polled).
    pub fn touch(&self) {
        self.watch.last_poll_ms.store(self.downloads.now_ms(), Ordering::Relaxed);
    }

    /// Whether the idle timeout fired for this download.
    pub fn expired(&self) -> bool {
        self.watch.expired.load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.watch.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.downloads.release(self.id, &self.actor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_actor: usize, idle_ms: u64) -> DownloadLimits {
        DownloadLimits {
            max_total: total,
            max_per_actor: per_actor,
            idle_timeout: Duration::from_millis(idle_ms),
        }
    }

    #[test]
    fn caps_count_per_actor_and_in_total_and_free_on_drop() {
        let d = Downloads::new(limits(3, 2, 60_000));
        let a1 = d.acquire("alice", None).unwrap();
        let _a2 = d.acquire("alice", None).unwrap();
        let e = d.acquire("alice", None).unwrap_err();
        assert_eq!((e.scope, e.max), ("for this actor", 2));
        assert_eq!(d.precheck("alice").unwrap_err().scope, "for this actor");
        d.precheck("bob").unwrap();
        let _b1 = d.acquire("bob", None).unwrap();
        let e = d.acquire("carol", None).unwrap_err();
        assert_eq!((e.scope, e.max), ("in total", 3));
        assert_eq!(d.precheck("carol").unwrap_err().scope, "in total");
        drop(a1);
        d.precheck("carol").unwrap();
        assert_eq!(d.running(), 2);
        d.acquire("carol", None).unwrap();
        assert_eq!(d.running(), 2, "the slot just taken was dropped again");
    }

    #[test]
    fn a_download_not_polled_for_the_idle_timeout_expires() {
        let d = Downloads::new(limits(10, 10, 50));
        let busy = d.acquire("alice", None).unwrap();
        let idle = d.acquire("bob", None).unwrap();
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until {
            busy.touch();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(idle.expired());
        assert!(!busy.expired());
        assert_eq!(d.idle_cuts(), 1);
    }

    #[test]
    fn an_idle_connection_is_reset() {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let d = Downloads::new(limits(10, 10, 20));
        let slot = d.acquire("alice", Some(server.as_raw_fd())).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        let read = client.read(&mut buf);
        assert!(matches!(read, Ok(0) | Err(_)), "the server side was shut down: {read:?}");
        assert!(slot.expired());
        drop(slot);
        drop(server);
    }
}
