//! One tracing span per request, named by a request id that the client
//! sees in the `X-Request-Id` response header.
//!
//! A proxy or client may send its own `X-Request-Id` so one id follows the
//! request through every hop; it is kept only if it is 1 to
//! [`MAX_LEN`] characters of `A-Z a-z 0-9 - _ . :` (anything else could
//! forge or break log lines, or bloat them), and replaced by a fresh random
//! id otherwise. The id is also the reference of an opaque 500 body
//! ([`crate::internal_error`]), so an operator finds the failure's detail
//! in the server's log from what the client reports.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::time::Instant;

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage as _;
use tracing::Instrument as _;

/// The header carrying the id, in both directions.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id that is kept.
pub const MAX_LEN: usize = 64;

/// The id of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A fresh random id: 16 lowercase hex digits.
    pub fn generate() -> Self {
        let mut b = [0u8; 8];
        if getrandom::getrandom(&mut b).is_err() {
            // No entropy source: still unique enough to find a log line.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            b = nanos.to_be_bytes();
        }
        RequestId(hex::encode(b))
    }

    /// The incoming id if it is acceptable, else a fresh one.
    pub fn from_header(value: Option<&HeaderValue>) -> Self {
        match value {
            Some(v) if acceptable(v.as_bytes()) => {
                RequestId(String::from_utf8_lossy(v.as_bytes()).into_owned())
            }
            _ => RequestId::generate(),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an incoming id is short and made of harmless characters only.
pub fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served by this task, if any.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `fut` as part of the current request, for a task a handler spawns (a
/// streamed body's producer): its log lines are in the request's span and
/// a failure's reference is the request's id.
pub fn scoped<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let span = tracing::Span::current();
    let id = current().unwrap_or_else(RequestId::generate);
    CURRENT.scope(id, fut.instrument(span))
}

/// The middleware: `App::new().wrap(RequestIds)`. Wrap it last (outermost)
/// so every other middleware and every handler runs inside the span.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIds;

impl<S, B> Transform<S, ServiceRequest> for RequestIds
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestIdService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestIdService { service }))
    }
}

/// The service built by [`RequestIds`].
#[derive(Debug)]
pub struct RequestIdService<S> {
    service: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for RequestIdService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = BoxFuture<Result<ServiceResponse<B>, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let id = RequestId::from_header(req.headers().get(&HEADER));
        req.extensions_mut().insert(id.clone());
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %req.method(),
            path = %req.path(),
        );
        let started = Instant::now();
        let fut = CURRENT.sync_scope(id.clone(), || span.in_scope(|| self.service.call(req)));
        let header = HeaderValue::from_str(id.as_str()).ok();
        let inner = async move {
            let mut res = match fut.await {
                Ok(res) => res,
                Err(e) => {
                    // An error that escaped the handlers is rendered here,
                    // inside the scope, so a 500 names this request's id
                    // and the answer still carries the header.
                    let mut resp = e.error_response();
                    if let Some(v) = header {
                        resp.headers_mut().insert(HEADER, v);
                    }
                    return Err(actix_web::error::InternalError::from_response(e, resp).into());
                }
            };
            if let Some(v) = header {
                res.headers_mut().insert(HEADER, v);
            }
            tracing::debug!(
                status = res.status().as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "served"
            );
            Ok(res)
        };
        Box::pin(CURRENT.scope(id, inner.instrument(span)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test as atest;
    use actix_web::{web, App};

    use super::*;

    #[test]
    fn only_short_plain_ids_are_accepted() {
        assert!(acceptable(b"abc-DEF_0.9:x"));
        assert!(acceptable("a".repeat(MAX_LEN).as_bytes()));
        for bad in
            [&b""[..], "a".repeat(MAX_LEN + 1).as_bytes(), b"a b", b"a\"b", "caf\u{e9}".as_bytes(), b"a\nb"]
        {
            assert!(!acceptable(bad), "{bad:?}");
        }
    }

    /// The 500 body's reference is the id in `X-Request-Id`, given or
    /// generated, so the client can quote it to the operator.
    #[test]
    fn the_opaque_500_names_the_request_id() {
        actix_web::rt::System::new().block_on(async {
            let app = atest::init_service(App::new().wrap(RequestIds).route(
                "/boom",
                web::get().to(|| async {
                    crate::internal_error::response("internal", &"disk /var/lib/secret failed")
                }),
            ))
            .await;
            for given in [Some("client-ref-1"), None, Some("bad id")] {
                let mut req = atest::TestRequest::get().uri("/boom");
                if let Some(id) = given {
                    req = req.insert_header(("X-Request-Id", id));
                }
                let resp = atest::call_service(&app, req.to_request()).await;
                assert_eq!(resp.status().as_u16(), 500);
                let id = resp.headers().get(&HEADER).unwrap().to_str().unwrap().to_owned();
                if given == Some("client-ref-1") {
                    assert_eq!(id, "client-ref-1");
                } else {
                    assert_eq!(id.len(), 16, "{id}");
                }
                let body: serde_json::Value = atest::read_body_json(resp).await;
                assert_eq!(body["reference"], id.as_str());
                assert!(!body.to_string().contains("/var/lib"), "{body}");
            }
        });
    }
}
