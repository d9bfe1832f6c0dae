//! Requests written by hand on their own connections, so a test controls
//! exactly how fast a body goes out and whether the answer is ever read
//! (slow uploads, slowloris), and loopback TCP proxies that throttle or
//! cut what passes through them.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody_registry::names::Digest;
use custody_standards::encoding::encode_base64;

/// The `host:port` of an `http://host:port` URL.
pub fn addr_of(url: &str) -> SocketAddr {
    url.strip_prefix("http://").unwrap().trim_end_matches('/').parse().unwrap()
}

/// An HTTP/1.1 request written by hand on its own connection.
pub struct RawRequest {
    pub stream: TcpStream,
}

impl RawRequest {
    /// Connects to `url` (`http://host:port`) and sends the request head.
    pub fn start(url: &str, method: &str, path: &str, headers: &[(&str, String)]) -> RawRequest {
        let addr = url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        head += "\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        RawRequest { stream }
    }

    /// `PUT /blobs/<digest>` of `len` bytes with `envelope`; the body is
    /// then written by the caller.
    pub fn upload(url: &str, digest: &Digest, len: usize, envelope: &[u8]) -> RawRequest {
        RawRequest::start(
            url,
            "PUT",
            &format!("/blobs/{digest}"),
            &[
                ("Content-Length", len.to_string()),
                ("Custody-Statement", encode_base64(envelope)),
                ("Connection", "close".into()),
            ],
        )
    }

    /// Writes `body` in `pieces` pieces spread over `over`.
    pub fn trickle(&mut self, body: &[u8], pieces: usize, over: Duration) {
        let pieces = pieces.max(1);
        let size = body.len().div_ceil(pieces).max(1);
        for chunk in body.chunks(size) {
            self.stream.write_all(chunk).unwrap();
            std::thread::sleep(over / pieces as u32);
        }
    }

    /// Reads the whole answer (the connection must close after it): status
    /// and body.
    pub fn answer(mut self) -> (u16, String) {
        self.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut raw = Vec::new();
        let _ = self.stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// Reads what has arrived up to `max` bytes (at least the status line)
    /// and returns the status; the rest of the answer is left unread.
    pub fn status_only(&mut self, max: usize) -> u16 {
        self.stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; max];
        let mut got = 0;
        while got < 12 {
            match self.stream.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        let text = String::from_utf8_lossy(&buf[..got]).into_owned();
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

/// Connections that sent a whole request head announcing a body, then
/// trickle that body one byte at a time.
pub struct Slowloris {
    conns: Vec<TcpStream>,
}

impl Slowloris {
    /// Opens up to `n` connections to `addr` within `budget` (each connect
    /// waits at most 500 ms) and sends each a `POST /statements` head with a
    /// 4000-byte body announced and its first byte.
    pub fn open(addr: SocketAddr, n: usize, budget: Duration) -> Slowloris {
        let deadline = Instant::now() + budget;
        let mut conns = Vec::with_capacity(n);
        while conns.len() < n && Instant::now() < deadline {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { continue };
            let head = format!(
                "POST /statements HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Content-Length: 4000\r\n\r\n{{"
            );
            let _ = s.set_nonblocking(true);
            if s.write_all(head.as_bytes()).is_ok() {
                conns.push(s);
            }
        }
        Slowloris { conns }
    }

    /// Connections opened.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Sends one more body byte on every connection still open; returns
    /// how many the server has not closed.
    pub fn trickle(&mut self) -> usize {
        self.conns.retain_mut(|s| {
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(0) => return false,                                     // closed by the server
                Ok(_) => return false,                                     // answered (408): done
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {} // still waiting
                Err(_) => return false,
            }
            s.write_all(b" ").is_ok()
        });
        self.conns.len()
    }
}

/// A client that connects from `127.0.0.2` (not the attacker's address),
/// opens a new connection for every request (as a new visitor would) and
/// gives up after `timeout`.
pub fn honest_client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// A loopback proxy to `target` (`http://host:port`) that passes what
/// clients send at about `bytes_per_sec` (in 16 KiB pieces) and answers at
/// full speed: a client's upload through it is slow, its small requests
/// barely delayed. Returns the proxy's URL; it runs until the test ends.
pub fn slow_upstream_proxy(target: &str, bytes_per_sec: usize) -> String {
    const PIECE: usize = 16 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let target = target.strip_prefix("http://").unwrap().to_owned();
    let pause = Duration::from_secs_f64(PIECE as f64 / bytes_per_sec.max(1) as f64);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else { continue };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; PIECE];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(pause.mul_f64(n as f64 / PIECE as f64));
                }
                let _ = s_out.shutdown(Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(Shutdown::Write);
            });
        }
    });
    url
}

/// A loopback TCP proxy in front of a server that the test can switch off:
/// while down it refuses new connections and cuts the ones it carries (a
/// pooled keep-alive connection must not outlive the outage).
pub struct SwitchProxy {
    pub url: String,
    up: Arc<AtomicBool>,
    carried: Arc<Mutex<Vec<TcpStream>>>,
}

impl SwitchProxy {
    pub fn start(target_url: &str) -> SwitchProxy {
        let target = target_url.strip_prefix("http://").unwrap().trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let carried = Arc::new(Mutex::new(Vec::new()));
        let (up2, carried2) = (up.clone(), carried.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { return };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: refused in effect
                }
                let Ok(outbound) = TcpStream::connect(&target) else { continue };
                {
                    let mut c = carried2.lock().unwrap();
                    c.push(inbound.try_clone().unwrap());
                    c.push(outbound.try_clone().unwrap());
                }
                pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pipe(outbound, inbound);
            }
        });
        SwitchProxy { url, up, carried }
    }

    /// Switches the proxy on or off; off cuts every carried connection.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for s in self.carried.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}
