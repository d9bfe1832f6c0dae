//! The async client: one request type, one send loop with retries, one
//! capped body read ([`crate::body`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;

use crate::body::read_capped;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::retry::{parse_retry_after, random_unit, retryable_status};

/// Largest error body kept (servers explain a refusal in a few lines).
pub const MAX_ERROR_BODY: u64 = 64 * 1024;

/// One request, reusable across attempts.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Option<Bytes>,
    cap: u64,
    retry_safe: bool,
    timeout: Option<Duration>,
    follow_presigned: bool,
}

impl Request {
    /// `GET url`, body capped at `cap` bytes. GETs are retry-safe.
    pub fn get(url: impl Into<String>, cap: u64) -> Self {
        Request::new(Method::GET, url, None, cap).retry_safe(true)
    }

    /// `POST url` with `body`, answer capped at `cap` bytes. Not retried
    /// unless marked [`Request::retry_safe`].
    pub fn post(url: impl Into<String>, body: impl Into<Bytes>, cap: u64) -> Self {
        Request::new(Method::POST, url, Some(body.into()), cap)
    }

    /// Any method; not retried unless marked.
    pub fn new(method: Method, url: impl Into<String>, body: Option<Bytes>, cap: u64) -> Self {
        Request {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body,
            cap,
            retry_safe: false,
            timeout: None,
            follow_presigned: false,
        }
    }

    /// Lets [`Client::stream`] follow one `307 Temporary Redirect` of this
    /// GET to the presigned URL in its `Location` (an artifact served from
    /// object storage). The second request carries none of this request's
    /// headers and no body: nothing meant for the server (a signed
    /// statement) reaches the storage host. Every other redirect stays an
    /// error, as for all requests.
    pub fn follow_presigned(mut self, follow: bool) -> Self {
        self.follow_presigned = follow;
        self
    }

    /// Whether sending this request twice is harmless (a GET; a POST the
    /// server deduplicates, like a signed statement or an add-checkpoint).
    pub fn retry_safe(mut self, safe: bool) -> Self {
        self.retry_safe = safe;
        self
    }

    /// Adds a header (`name` in lowercase); a value that is not valid in
    /// HTTP (control characters) is refused.
    pub fn header(mut self, name: &'static str, value: &str) -> Result<Self, ClientError> {
        let v = HeaderValue::from_str(value)
            .map_err(|_| ClientError::Header { name, detail: "not a valid HTTP header value".to_owned() })?;
        self.headers.insert(HeaderName::from_static(name), v);
        Ok(self)
    }

    /// Overrides the client's per-attempt timeout (large uploads and
    /// downloads).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cap on the answer's body.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// `METHOD url`, for messages.
    pub fn what(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// A complete answer (any status) with its capped body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body (at most the request's cap; for an error status at most
    /// [`MAX_ERROR_BODY`], and empty if the server sent more).
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of `Content-Type`, lowercased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|s| s.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    fn into_success(self, what: String) -> Result<Reply, ClientError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(ClientError::Status { what, status: self.status, body: self.body })
        }
    }
}

/// A response whose body the caller streams (downloads), after a 2xx.
#[derive(Debug)]
pub struct Streaming {
    resp: reqwest::Response,
    what: String,
    timeout: Duration,
    /// The headers of the server's redirect, when the body comes from the
    /// presigned URL it named: they take precedence over the storage
    /// host's (which cannot speak for the server).
    redirect: Option<HeaderMap>,
}

impl Streaming {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        self.resp.status().as_u16()
    }

    /// A header's value, if present and text: the server's own when it
    /// redirected to a presigned URL, else the response's.
    pub fn header(&self, name: &str) -> Option<&str> {
        if let Some(h) = &self.redirect {
            return h.get(name).and_then(|v| v.to_str().ok());
        }
        self.resp.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body comes from a presigned URL the server redirected to.
    pub fn redirected(&self) -> bool {
        self.redirect.is_some()
    }

    /// The declared body length.
    pub fn content_length(&self) -> Option<u64> {
        self.resp.content_length()
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.resp.headers()
    }

    /// The whole body, refused past `cap` bytes (an upload's answer).
    pub async fn read_all(mut self, cap: u64) -> Result<Vec<u8>, ClientError> {
        read_capped(&mut self.resp, cap, &self.what, self.timeout).await
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.resp.chunk().await.map_err(|e| ClientError::from_reqwest(e, &self.what, self.timeout))
    }
}

/// A keep-alive HTTP(S) client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    cfg: Arc<ClientConfig>,
}

impl Client {
    /// A client as `cfg` describes (reads the CA file now, so a bad one
    /// fails at startup rather than at the first request).
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        Ok(Client { http: cfg.build()?, cfg: Arc::new(cfg) })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Sends `req`, retrying it (if retry-safe) after transport failures,
    /// timeouts and retryable statuses, per the client's
    /// [`crate::RetryPolicy`]. Returns the last answer whatever its status.
    pub async fn send(&self, req: &Request) -> Result<Reply, ClientError> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = self.attempt(req).await;
            let retry_after = match &result {
                Ok(r) if retryable_status(r.status) => {
                    if matches!(r.status, 429 | 503) {
                        r.header("retry-after").and_then(|v| parse_retry_after(v, SystemTime::now()))
                    } else {
                        None
                    }
                }
                Err(e) if e.is_transient() => None,
                _ => return result,
            };
            if !req.retry_safe {
                return result;
            }
            let Some(delay) = self.cfg.retry.delay(attempts, retry_after, random_unit()) else {
                return result;
            };
            tracing::debug!(request = %req.what(), attempts, ?delay, outcome = %describe(&result), "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// [`Client::send`], with any status but 2xx an error
    /// ([`ClientError::Status`]).
    pub async fn fetch(&self, req: &Request) -> Result<Reply, ClientError> {
        self.send(req).await?.into_success(req.what())
    }

    /// `GET url`: the body of a 2xx answer, at most `cap` bytes.
    pub async fn get(&self, url: &str, cap: u64) -> Result<Vec<u8>, ClientError> {
        Ok(self.fetch(&Request::get(url, cap)).await?.body)
    }

    /// Like [`Client::get`], with 404 meaning "there is none" (`Ok(None)`).
    pub async fn get_opt(&self, url: &str, cap: u64) -> Result<Option<Vec<u8>>, ClientError> {
        let req = Request::get(url, cap);
        let reply = self.send(&req).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        Ok(Some(reply.into_success(req.what())?.body))
    }

    /// Sends `req` once with `body` streamed (ignoring the request's own
    /// body) and returns the answer for the caller to stream: uploads and
    /// downloads too large to buffer, never retried. A non-2xx answer is a
    /// [`ClientError::Status`] with its capped body.
    pub async fn stream(&self, req: &Request, body: Option<reqwest::Body>) -> Result<Streaming, ClientError> {
        let what = req.what();
        let timeout = req.timeout.unwrap_or(self.cfg.timeout);
        let mut rb =
            self.http.request(req.method.clone(), &req.url).headers(req.headers.clone()).timeout(timeout);
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let mut resp = rb.send().await.map_err(|e| ClientError::from_reqwest(e, &what, timeout))?;
        let mut redirect = None;
        if resp.status().as_u16() == 307 && req.follow_presigned && req.method == Method::GET {
            let url = presigned_location(resp.headers(), &what)?;
            redirect = Some(std::mem::take(resp.headers_mut()));
            // A fresh request: the client's defaults only, none of `req`'s headers.
            resp = self
                .http
                .get(url)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| ClientError::from_reqwest(e, &what, timeout))?;
        }
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = read_capped(&mut resp, MAX_ERROR_BODY, &what, timeout).await.unwrap_or_default();
            return Err(ClientError::Status { what, status, body });
        }
        Ok(Streaming { resp, what, timeout, redirect })
    }

    /// One attempt, bounded by the timeout as a whole.
    async fn attempt(&self, req: &Request) -> Result<Reply, ClientError> {
        let what = req.what();
        let timeout = req.timeout.unwrap_or(self.cfg.timeout);
        let fut = async {
            let mut rb =
                self.http.request(req.method.clone(), &req.url).headers(req.headers.clone()).timeout(timeout);
            if let Some(b) = &req.body {
                rb = rb.body(b.clone());
            }
            let mut resp = rb.send().await.map_err(|e| ClientError::from_reqwest(e, &what, timeout))?;
            let status = resp.status().as_u16();
            let headers = std::mem::take(resp.headers_mut());
            let body = if (200..300).contains(&status) {
                read_capped(&mut resp, req.cap, &what, timeout).await?
            } else {
                // An oversized error body is dropped, the status kept.
                match read_capped(&mut resp, req.cap.min(MAX_ERROR_BODY), &what, timeout).await {
                    Err(ClientError::TooLarge { .. }) => Vec::new(),
                    other => other?,
                }
            };
            Ok(Reply { status, headers, body })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout { what, timeout }),
        }
    }
}

/// The `Location` of a redirect to a presigned URL: absolute, `http` or
/// `https`, without credentials in it.
fn presigned_location(headers: &HeaderMap, what: &str) -> Result<reqwest::Url, ClientError> {
    let bad = |detail: &str| ClientError::Redirect { what: what.to_owned(), detail: detail.to_owned() };
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("a 307 without a Location"))?;
    let url = reqwest::Url::parse(location).map_err(|_| bad("the Location is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the Location is not a plain http(s) URL"));
    }
    Ok(url)
}

fn describe(r: &Result<Reply, ClientError>) -> String {
    match r {
        Ok(reply) => format!("HTTP {}", reply.status),
        Err(e) => e.to_string(),
    }
}
