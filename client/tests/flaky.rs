//! The client against a hostile, flaky server: overload answers with
//! `Retry-After` (seconds and HTTP-date), rate limiting, and connections
//! cut before or during the answer. Retry-safe requests still complete;
//! other requests are sent once; oversized bodies are refused.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use common::{ok, spawn, status, Action, Seen};
use custody_client::{Client, ClientConfig, ClientError, Request, RetryPolicy};

fn client(retry: RetryPolicy) -> Client {
    let retry =
        RetryPolicy { base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(2), ..retry };
    Client::new(ClientConfig::new("custody-client-test").timeout(Duration::from_secs(5)).retry(retry))
        .unwrap()
}

/// Request `n` on the server: three of every four fail, each in another way.
fn flaky(seen: Seen) -> Action {
    match seen.n % 4 {
        0 => status(503, "Retry-After: 0\r\n"),
        1 => status(429, &format!("Retry-After: {}\r\n", httpdate::fmt_http_date(SystemTime::now()))),
        2 => {
            if seen.n % 8 == 2 {
                Action::Cut
            } else {
                // Promise 100 bytes, send 5, hang up.
                Action::Raw(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort".to_vec(),
                )
            }
        }
        _ => ok(seen.line.as_bytes()),
    }
}

/// Per path: the first three attempts fail (503, 429, cut), the fourth
/// succeeds, whatever other requests run meanwhile.
fn flaky_per_path() -> impl Fn(Seen) -> Action + Send + Sync + 'static {
    let tries = Mutex::new(HashMap::<String, u64>::new());
    move |seen: Seen| {
        let k = {
            let mut t = tries.lock().unwrap();
            let k = t.entry(seen.line.clone()).or_default();
            *k += 1;
            *k
        };
        match k {
            1 => status(503, "Retry-After: 0\r\n"),
            2 => status(429, ""),
            3 => Action::Cut,
            _ => ok(seen.line.as_bytes()),
        }
    }
}

#[tokio::test]
async fn a_long_series_of_gets_completes_against_a_flaky_server() {
    let (base, count) = spawn(flaky).await;
    let c = client(RetryPolicy { max_attempts: 6, ..RetryPolicy::default() });
    for i in 0..150 {
        let body =
            c.get(&format!("{base}/tile/{i}"), 1024).await.unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(body, format!("GET /tile/{i} HTTP/1.1").into_bytes());
    }
    // Each success cost four requests: the failures really happened.
    assert_eq!(count.load(Ordering::SeqCst), 600);
}

#[tokio::test]
async fn concurrent_gets_complete_against_a_flaky_server() {
    let (base, count) = spawn(flaky_per_path()).await;
    let c = client(RetryPolicy { max_attempts: 4, ..RetryPolicy::default() });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let (c, url) = (c.clone(), format!("{base}/entries/{i}"));
        tasks.spawn(async move { c.get(&url, 1024).await.map(|b| (i, b)) });
    }
    while let Some(r) = tasks.join_next().await {
        let (i, body) = r.unwrap().unwrap();
        assert_eq!(body, format!("GET /entries/{i} HTTP/1.1").into_bytes());
    }
    assert_eq!(count.load(Ordering::SeqCst), 64 * 4);
}

#[tokio::test]
async fn without_retries_the_same_server_fails_most_requests() {
    // The control for the two tests above: they pass because of retries.
    let (base, _) = spawn(flaky).await;
    let c = client(RetryPolicy::never());
    let mut failed = 0;
    for i in 0..40 {
        if c.get(&format!("{base}/x/{i}"), 1024).await.is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 30);
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let (base, count) =
        spawn(|s: Seen| if s.n == 0 { status(503, "Retry-After: 1\r\n") } else { ok(b"ready") }).await;
    let c = client(RetryPolicy::default());
    let start = Instant::now();
    assert_eq!(c.get(&format!("{base}/checkpoint"), 64).await.unwrap(), b"ready");
    assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_gives_up_at_once() {
    let (base, count) = spawn(|_| status(429, "Retry-After: 3600\r\n")).await;
    let c = client(RetryPolicy::default());
    let start = Instant::now();
    let e = c.get(&format!("{base}/checkpoint"), 64).await.unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (base, count) = spawn(|_| status(503, "")).await;
    let c = client(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() });
    let e = c.get(&format!("{base}/checkpoint"), 64).await.unwrap_err();
    assert!(matches!(e, ClientError::Status { status: 503, .. }), "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn posts_are_sent_once_unless_marked_retry_safe() {
    let (base, count) = spawn(|s: Seen| if s.n % 3 != 2 { status(503, "") } else { ok(&s.body) }).await;
    let c = client(RetryPolicy::default());
    let url = format!("{base}/add-checkpoint");
    let reply = c.send(&Request::post(&url, b"old 0\n".to_vec(), 64)).await.unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let reply = c.send(&Request::post(&url, b"old 0\n".to_vec(), 64).retry_safe(true)).await.unwrap();
    assert_eq!((reply.status, reply.body.as_slice()), (200, b"old 0\n".as_slice()));
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_declared_body_over_the_cap_is_refused() {
    let (base, _) = spawn(|_| {
        Action::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\nxxxx".to_vec())
    })
    .await;
    let c = client(RetryPolicy::default());
    let e = c.get(&format!("{base}/tile/0/000"), 8192).await.unwrap_err();
    assert!(matches!(e, ClientError::TooLarge { cap: 8192, .. }), "{e}");
}

#[tokio::test]
async fn an_undeclared_body_over_the_cap_is_refused_and_cut_short() {
    // No Content-Length: the body runs until the server closes. 4 MiB
    // would be sent; the client must stop after the cap.
    let (base, _) = spawn(|_| {
        let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        out.resize(out.len() + (4 << 20), b'x');
        Action::Raw(out)
    })
    .await;
    let c = client(RetryPolicy::default());
    let e = c.get(&format!("{base}/entries/0"), 65_535).await.unwrap_err();
    assert!(matches!(e, ClientError::TooLarge { cap: 65_535, .. }), "{e}");
    // Exactly the cap is fine.
    let (base, _) = spawn(|_| {
        let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        out.resize(out.len() + 1000, b'y');
        Action::Raw(out)
    })
    .await;
    assert_eq!(c.get(&format!("{base}/entries/0"), 1000).await.unwrap().len(), 1000);
}

#[tokio::test]
async fn a_404_is_none_for_get_opt() {
    let (base, count) = spawn(|_| status(404, "")).await;
    let c = client(RetryPolicy::default());
    assert_eq!(c.get_opt(&format!("{base}/evidence/x"), 64).await.unwrap(), None);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn the_blocking_client_retries_too() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, count) = rt.block_on(spawn(flaky_per_path()));
    let retry =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(5), ..RetryPolicy::default() };
    let c = custody_client::blocking::Client::new(ClientConfig::new("t").retry(retry)).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (c, base) = (&c, &base);
            s.spawn(move || {
                for i in 0..10 {
                    let path = format!("/t{t}/{i}");
                    let body = c.get(&format!("{base}{path}"), 1024).unwrap();
                    assert_eq!(body, format!("GET {path} HTTP/1.1").into_bytes());
                }
            });
        }
    });
    assert_eq!(count.load(Ordering::SeqCst), 160);
}
