//! HTTPS: a server whose certificate is issued by a private CA (the test
//! kit's in-process PKI) is reached with `--ca-cert` (the CA file), and refused
//! without it or with another CA, with an error that names the
//! certificate problem rather than "error sending request".

use std::path::PathBuf;
use std::time::Duration;

use custody_client::{Client, ClientConfig, ClientError, RetryPolicy};
use custody_testkit::hostile::Reply;
use custody_testkit::pki::TestPki;
use custody_testkit::tls::serve_tls;

/// An HTTPS server for 127.0.0.1 and localhost with the PKI's server
/// certificate (issued by its trusted CA).
fn https_server(pki: &TestPki) -> String {
    serve_tls(|_| Reply::ok(b"over tls"), &pki.server).unwrap().0
}

fn client(ca_cert: Option<PathBuf>) -> Client {
    let cfg =
        ClientConfig::new("custody-client-test").timeout(Duration::from_secs(5)).ca_cert(ca_cert).retry(
            RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(5), ..RetryPolicy::default() },
        );
    Client::new(cfg).unwrap()
}

fn assert_unknown_issuer(e: &ClientError) {
    assert!(matches!(e, ClientError::Tls { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("invalid peer certificate: UnknownIssuer"), "{msg}");
    assert!(msg.contains("certificate signed by unknown authority"), "{msg}");
    assert!(msg.contains("127.0.0.1:"), "{msg}");
}

#[tokio::test]
async fn the_ca_file_makes_the_server_trusted() {
    let pki = TestPki::new().unwrap();
    let url = format!("{}/checkpoint", https_server(&pki));
    let c = client(Some(pki.ca_cert().to_owned()));
    assert_eq!(c.get(&url, 1024).await.unwrap(), b"over tls");
    // Also by name, through the localhost SAN.
    let by_name = url.replace("127.0.0.1", "localhost");
    assert_eq!(c.get(&by_name, 1024).await.unwrap(), b"over tls");
}

#[tokio::test]
async fn without_the_ca_file_the_error_names_the_unknown_issuer() {
    let pki = TestPki::new().unwrap();
    let url = format!("{}/checkpoint", https_server(&pki));
    let e = client(None).get(&url, 1024).await.unwrap_err();
    assert_unknown_issuer(&e);
    assert!(!e.is_transient(), "a certificate problem is not retried");
}

#[tokio::test]
async fn another_ca_is_refused_too() {
    let pki = TestPki::new().unwrap();
    let url = format!("{}/checkpoint", https_server(&pki));
    let e = client(Some(pki.wrong_ca_cert().to_owned())).get(&url, 1024).await.unwrap_err();
    assert_unknown_issuer(&e);
}

#[test]
fn the_blocking_client_uses_the_ca_file_too() {
    let pki = TestPki::new().unwrap();
    let url = format!("{}/checkpoint", https_server(&pki));
    let with = ClientConfig::new("t").ca_cert(Some(pki.ca_cert().to_owned()));
    let c = custody_client::blocking::Client::new(with).unwrap();
    assert_eq!(c.get(&url, 1024).unwrap(), b"over tls");
    let c = custody_client::blocking::Client::new(ClientConfig::new("t")).unwrap();
    assert_unknown_issuer(&c.get(&url, 1024).unwrap_err());
}
