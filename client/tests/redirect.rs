//! Redirects: the client follows none, except the one 307 of a request
//! that opted in (an artifact download a log serves from object storage),
//! and then sends the storage host none of the request's headers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_client::{Client, ClientConfig, ClientError, Request};
use custody_testkit::hostile::{serve_counted, Reply, Request as Seen, Response};

fn client() -> Client {
    Client::new(ClientConfig::new("custody-client-test").timeout(Duration::from_secs(5))).unwrap()
}

/// A storage host recording the headers it was sent, and a "log" that
/// answers every GET with a 307 to it plus its own headers.
fn log_and_bucket() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let (bucket, _) = serve_counted(move |req: Seen| {
        record.lock().unwrap().push(req);
        Reply::Send(Response::new(200, "the object").with_header("Custody-Leaf-Index", "999"))
    });
    let location = format!("{bucket}/b/artifacts/sha256/ab?X-Amz-Signature=00");
    let (log, _) = serve_counted(move |_| {
        Reply::Send(
            Response::new(307, "").with_header("Location", &location).with_header("Custody-Leaf-Index", "42"),
        )
    });
    (log, seen)
}

#[tokio::test]
async fn an_opted_in_download_follows_the_307_without_the_request_headers() {
    let (log, seen) = log_and_bucket();
    let req = Request::get(format!("{log}/blobs/sha256:ab"), 0)
        .header("custody-statement", "c2lnbmVk")
        .unwrap()
        .follow_presigned(true);
    let mut s = client().stream(&req, None).await.unwrap();
    assert!(s.redirected());
    // The log's headers speak for the log, not the storage host's.
    assert_eq!(s.header("custody-leaf-index"), Some("42"));
    assert_eq!(s.chunk().await.unwrap().as_deref(), Some(&b"the object"[..]));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].line.starts_with("GET /b/artifacts/sha256/ab?X-Amz-Signature=00 "), "{}", seen[0].line);
    assert_eq!(seen[0].header("custody-statement"), None, "the signed statement must not reach the bucket");
}

#[tokio::test]
async fn every_other_request_treats_a_redirect_as_an_answer() {
    let (log, seen) = log_and_bucket();
    let req =
        Request::get(format!("{log}/blobs/sha256:ab"), 0).header("custody-statement", "c2lnbmVk").unwrap();
    let err = client().stream(&req, None).await.unwrap_err();
    assert!(matches!(err, ClientError::Status { status: 307, .. }), "{err}");
    let post = Request::post(format!("{log}/statements"), "{}", 1024).follow_presigned(true);
    assert!(matches!(client().stream(&post, None).await, Err(ClientError::Status { status: 307, .. })));
    assert_eq!(client().send(&Request::get(format!("{log}/checkpoint"), 1024)).await.unwrap().status, 307);
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the storage host");
}

#[tokio::test]
async fn a_redirect_to_something_other_than_a_plain_http_url_is_refused() {
    for location in ["file:///etc/passwd", "/relative", "http://user:pw@127.0.0.1:1/x"] {
        let location = location.to_owned();
        let (log, _) =
            serve_counted(move |_| Reply::Send(Response::new(307, "").with_header("Location", &location)));
        let req = Request::get(format!("{log}/blobs/sha256:ab"), 0).follow_presigned(true);
        let err = client().stream(&req, None).await.unwrap_err();
        assert!(matches!(err, ClientError::Redirect { .. }), "{err}");
    }
}
