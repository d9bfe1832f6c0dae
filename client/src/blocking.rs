//! A synchronous face on the same client, for the `custody` CLI: the same
//! TLS trust, caps and retries, run on a small private tokio runtime. Safe
//! to use from several threads at once (the verifier fetches tiles on a
//! thread pool); must not be used from inside an async runtime.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

use crate::client::{Client as AsyncClient, Reply, Request, Streaming};
use crate::config::ClientConfig;
use crate::error::ClientError;

/// Size of the pieces an upload is read in.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// The blocking client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: AsyncClient,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Client {
    /// A client as `cfg` describes.
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("custody-http")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Build(format!("runtime: {e}")))?;
        let inner = {
            let _guard = rt.enter();
            AsyncClient::new(cfg)?
        };
        Ok(Client { inner, rt: Arc::new(rt) })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        self.inner.config()
    }

    /// [`AsyncClient::send`]: any status, retries as configured.
    pub fn send(&self, req: &Request) -> Result<Reply, ClientError> {
        self.rt.block_on(self.inner.send(req))
    }

    /// [`AsyncClient::fetch`]: a 2xx answer or an error.
    pub fn fetch(&self, req: &Request) -> Result<Reply, ClientError> {
        self.rt.block_on(self.inner.fetch(req))
    }

    /// [`AsyncClient::get`].
    pub fn get(&self, url: &str, cap: u64) -> Result<Vec<u8>, ClientError> {
        self.rt.block_on(self.inner.get(url, cap))
    }

    /// Sends `req` once with exactly `len` bytes read from `body` as its
    /// body (streamed, never buffered whole), and returns the answer of a
    /// 2xx, capped at the request's cap.
    pub fn upload<R: Read + Send + 'static>(
        &self,
        req: &Request,
        body: R,
        len: u64,
    ) -> Result<Reply, ClientError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        // A plain thread reads the file; the runtime only moves bytes. It
        // stops when the request is over (the receiver is gone).
        std::thread::spawn(move || pump(body, &tx));
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let req = req.clone().header("content-length", &len.to_string())?;
        self.rt.block_on(async {
            let s = self.inner.stream(&req, Some(reqwest::Body::wrap_stream(stream))).await?;
            let (status, headers) = (s.status(), s.headers().clone());
            let body = s.read_all(req.cap()).await?;
            Ok(Reply { status, headers, body })
        })
    }

    /// Sends `req` once and returns the 2xx answer as a reader of its
    /// body, for downloads the caller hashes as it writes them.
    pub fn download(&self, req: &Request) -> Result<Download, ClientError> {
        let stream = self.rt.block_on(self.inner.stream(req, None))?;
        Ok(Download { stream, rt: Arc::clone(&self.rt), pending: Bytes::new() })
    }
}

/// Feeds `body` into `tx` in pieces until it ends, fails, or nobody listens.
fn pump<R: Read>(mut body: R, tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) {
    loop {
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        match body.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

/// The body of a download, read as it arrives.
#[derive(Debug)]
pub struct Download {
    stream: Streaming,
    rt: Arc<tokio::runtime::Runtime>,
    pending: Bytes,
}

impl Download {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.stream.header(name)
    }

    /// The declared body length.
    pub fn content_length(&self) -> Option<u64> {
        self.stream.content_length()
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.rt.block_on(self.stream.chunk()) {
                Ok(Some(chunk)) => self.pending = chunk,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}
