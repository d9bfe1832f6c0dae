//! A minimal HTTP/1.1 server on loopback (one thread per connection,
//! `Connection: close`) for in-test witnesses and lying proxies.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::Arc;

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

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// Rewrites an upstream answer in a proxy.
pub type Rewrite = Arc<dyn Fn(&Request, Response) -> Response + Send + Sync>;

/// Serves `handler` on a free loopback port; returns its base URL. The
/// listener thread lives until the test process ends.
pub fn serve(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let (method, path) =
                    (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
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
                let resp = handler(Request { method, path, headers, body });
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                    resp.status,
                    resp.body.len()
                );
                for (k, v) in &resp.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut s = stream;
                let _ = s.write_all(out.as_bytes());
                let _ = s.write_all(&resp.body);
                let _ = s.flush();
            });
        }
    });
    url
}

/// A proxy to `upstream` that lets `rewrite` change any answer.
pub fn proxy(upstream: String, rewrite: Rewrite) -> String {
    let client = super::http();
    serve(Arc::new(move |req: Request| {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut r = client.request(method, format!("{upstream}{}", req.path));
        for (k, v) in &req.headers {
            if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
                r = r.header(k.as_str(), v.as_str());
            }
        }
        let up = r.body(req.body.clone()).send().unwrap();
        let status = up.status().as_u16();
        let headers = up
            .headers()
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                !["content-length", "connection", "transfer-encoding"].contains(&k)
            })
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = up.bytes().unwrap().to_vec();
        rewrite(&req, Response { status, headers, body })
    }))
}
