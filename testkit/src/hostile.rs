//! HTTP servers that say what the test scripts: a peer that lies, answers
//! slowly, cuts the connection half way or pushes back with 503/429 and
//! `Retry-After`, and proxies that rewrite an honest upstream's answers.
//! Every security claim of a client needs such a peer and the check that
//! catches it; one minimal HTTP/1.1 server (a thread per connection,
//! `Connection: close`) serves them all.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server read it.
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An answer; `Content-Length` and `Connection: close` are added.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![], body: body.into() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A refusal that asks the client to come back: `status` (503 or 429)
    /// with `Retry-After: secs`.
    pub fn retry_after(status: u16, secs: u64) -> Response {
        Response::new(status, "busy").with_header("Retry-After", &secs.to_string())
    }
}

/// How the server answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The whole answer at once.
    Send(Response),
    /// The head at once, then the body in `pieces` pieces spread over
    /// `over` (a slow-body attack on a client's read timeout).
    Slow { response: Response, pieces: usize, over: Duration },
    /// The head announcing the whole body, then only its first `bytes`
    /// bytes, then the connection closed (a truncated transfer).
    CutAfter { response: Response, bytes: usize },
    /// The connection closed without a byte of answer.
    Cut,
    /// Nothing for `for_`, then the connection closed (a hung peer).
    Stall(Duration),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Send(r)
    }
}

pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// A handler that chooses how to answer, not only what.
pub type ReplyHandler = Arc<dyn Fn(Request) -> Reply + Send + Sync>;

/// Rewrites an upstream answer in a proxy.
pub type Rewrite = Arc<dyn Fn(&Request, Response) -> Response + Send + Sync>;

/// Serves `handler` on a free loopback port; returns its base URL. The
/// listener thread lives until the test process ends.
pub fn serve(handler: Handler) -> String {
    serve_replies(Arc::new(move |req| Reply::Send(handler(req))))
}

/// Serves `handler`, which also chooses slow, cut or stalled answers.
pub fn serve_replies(handler: ReplyHandler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let handler = handler.clone();
            std::thread::spawn(move || {
                if let Some(req) = read_request(&stream) {
                    answer(stream, handler(req));
                }
            });
        }
    });
    url
}

/// A server that answers the `n`-th request with `replies[n]` (the last one
/// again once they run out), counting the requests it got.
pub struct Scripted {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl Scripted {
    pub fn start(replies: Vec<Reply>) -> Scripted {
        assert!(!replies.is_empty(), "a script needs at least one reply");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let replies = Mutex::new(replies);
        let url = serve_replies(Arc::new(move |_req| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let replies = replies.lock().unwrap();
            replies[n.min(replies.len() - 1)].clone()
        }));
        Scripted { url, hits }
    }

    /// Requests answered or being answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    let _ = reader.by_ref().take(len).read_to_end(&mut body);
    Some(Request { method, path, headers, body })
}

fn head(resp: &Response) -> String {
    let mut out =
        format!("HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {}\r\n", resp.status, resp.body.len());
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out + "\r\n"
}

fn answer(mut s: TcpStream, reply: Reply) {
    match reply {
        Reply::Send(resp) => {
            let _ = s.write_all(head(&resp).as_bytes());
            let _ = s.write_all(&resp.body);
        }
        Reply::Slow { response, pieces, over } => {
            let _ = s.write_all(head(&response).as_bytes());
            let pieces = pieces.max(1);
            let size = response.body.len().div_ceil(pieces).max(1);
            for chunk in response.body.chunks(size) {
                std::thread::sleep(over / pieces as u32);
                if s.write_all(chunk).and_then(|()| s.flush()).is_err() {
                    return;
                }
            }
        }
        Reply::CutAfter { response, bytes } => {
            let _ = s.write_all(head(&response).as_bytes());
            let _ = s.write_all(&response.body[..bytes.min(response.body.len())]);
        }
        Reply::Cut => {}
        Reply::Stall(d) => std::thread::sleep(d),
    }
    let _ = s.flush();
    let _ = s.shutdown(std::net::Shutdown::Both);
}

/// A proxy to `upstream` that lets `rewrite` change any answer (a log or
/// witness that lies about what it stores).
pub fn proxy(upstream: String, rewrite: Rewrite) -> String {
    let client = crate::http::http();
    serve(Arc::new(move |req: Request| {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut r = client.request(method, format!("{upstream}{}", req.path));
        for (k, v) in &req.headers {
            if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
                r = r.header(k.as_str(), v.as_str());
            }
        }
        let Ok(up) = r.body(req.body.clone()).send() else { return Response::new(502, "upstream down") };
        let status = up.status().as_u16();
        let headers = up
            .headers()
            .iter()
            .filter(|(k, _)| !["content-length", "connection", "transfer-encoding"].contains(&k.as_str()))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = up.bytes().map(|b| b.to_vec()).unwrap_or_default();
        rewrite(&req, Response { status, headers, body })
    }))
}
