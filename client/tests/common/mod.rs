//! A tiny HTTP/1.1 server for the client's tests, over any byte stream
//! (plain TCP, or TLS from tokio-rustls): each connection carries one
//! request, answered by a closure that decides what the server does.
#![allow(dead_code)] // each test file uses its own part of it

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server does with one request.
pub enum Action {
    /// Answer with these raw bytes (status line, headers and body) and close.
    Raw(Vec<u8>),
    /// Close the connection without answering.
    Cut,
}

/// A 200 with `body`.
pub fn ok(body: &[u8]) -> Action {
    let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
        .into_bytes();
    out.extend_from_slice(body);
    Action::Raw(out)
}

/// `status` with extra header lines and a short body.
pub fn status(code: u16, headers: &str) -> Action {
    Action::Raw(
        format!("HTTP/1.1 {code} X\r\n{headers}Content-Length: 4\r\nConnection: close\r\n\r\nbusy")
            .into_bytes(),
    )
}

/// The request line and body of one request.
pub struct Seen {
    /// `GET /path HTTP/1.1`.
    pub line: String,
    /// The body (by Content-Length).
    pub body: Vec<u8>,
    /// 0-based number of this request on the server.
    pub n: u64,
}

/// Reads one request from `s`; `None` if the peer closed first.
pub async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some((head.lines().next().unwrap_or("").to_owned(), body))
}

/// Serves one request on `s` with `decide`.
pub async fn serve_one<S, F>(mut s: S, n: u64, decide: &F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Seen) -> Action,
{
    let Some((line, body)) = read_request(&mut s).await else { return };
    match decide(Seen { line, body, n }) {
        Action::Raw(bytes) => {
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        Action::Cut => drop(s),
    }
}

/// A plain HTTP server on 127.0.0.1; returns its base URL and the count of
/// requests it has read.
pub async fn spawn<F>(decide: F) -> (String, Arc<AtomicU64>)
where
    F: Fn(Seen) -> Action + Send + Sync + 'static,
{
    spawn_with(decide, |tcp| async move { Some(tcp) }).await
}

/// Like [`spawn`], with each accepted connection first wrapped by `wrap`
/// (a TLS handshake); `None` drops it.
pub async fn spawn_with<F, W, Fut, S>(decide: F, wrap: W) -> (String, Arc<AtomicU64>)
where
    F: Fn(Seen) -> Action + Send + Sync + 'static,
    W: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<S>> + Send,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let (decide, wrap, c) = (Arc::new(decide), Arc::new(wrap), Arc::clone(&count));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let (decide, wrap, c) = (Arc::clone(&decide), Arc::clone(&wrap), Arc::clone(&c));
            tokio::spawn(async move {
                let Some(s) = wrap(tcp).await else { return };
                let n = c.fetch_add(1, Ordering::SeqCst);
                serve_one(s, n, &*decide).await;
            });
        }
    });
    (format!("http://{addr}"), count)
}
