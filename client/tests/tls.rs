//! HTTPS: a server whose certificate is issued by a private CA (made here
//! with rcgen) is reached with `--ca-cert` (the CA file), and refused
//! without it or with another CA, with an error that names the
//! certificate problem rather than "error sending request".

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{ok, spawn_with};
use custody_client::{Client, ClientConfig, ClientError, RetryPolicy};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    Ca { cert: params.self_signed(&key).unwrap(), key }
}

/// An HTTPS server for 127.0.0.1 and localhost with a certificate from `ca`.
async fn https_server(ca: &Ca) -> String {
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    // ring, as reqwest uses (deprecated only for lacking post-quantum key
    // exchange, which a loopback test does not need).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (base, _) = spawn_with(
        |_| ok(b"over tls"),
        move |tcp| {
            let acceptor = acceptor.clone();
            async move { acceptor.accept(tcp).await.ok() }
        },
    )
    .await;
    base.replace("http://", "https://")
}

fn write_pem(dir: &tempfile::TempDir, name: &str, ca: &Ca) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, ca.cert.pem()).unwrap();
    path
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
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("custody test CA");
    let url = format!("{}/checkpoint", https_server(&ca).await);
    let c = client(Some(write_pem(&dir, "ca.pem", &ca)));
    assert_eq!(c.get(&url, 1024).await.unwrap(), b"over tls");
    // Also by name, through the localhost SAN.
    let by_name = url.replace("127.0.0.1", "localhost");
    assert_eq!(c.get(&by_name, 1024).await.unwrap(), b"over tls");
}

#[tokio::test]
async fn without_the_ca_file_the_error_names_the_unknown_issuer() {
    let ca = ca("custody test CA");
    let url = format!("{}/checkpoint", https_server(&ca).await);
    let e = client(None).get(&url, 1024).await.unwrap_err();
    assert_unknown_issuer(&e);
    assert!(!e.is_transient(), "a certificate problem is not retried");
}

#[tokio::test]
async fn another_ca_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let (right, wrong) = (ca("custody test CA"), ca("someone else's CA"));
    let url = format!("{}/checkpoint", https_server(&right).await);
    let e = client(Some(write_pem(&dir, "wrong.pem", &wrong))).get(&url, 1024).await.unwrap_err();
    assert_unknown_issuer(&e);
}

#[test]
fn the_blocking_client_uses_the_ca_file_too() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("custody test CA");
    let url = format!("{}/checkpoint", rt.block_on(https_server(&ca)));
    let with = ClientConfig::new("t").ca_cert(Some(write_pem(&dir, "ca.pem", &ca)));
    let c = custody_client::blocking::Client::new(with).unwrap();
    assert_eq!(c.get(&url, 1024).unwrap(), b"over tls");
    let c = custody_client::blocking::Client::new(ClientConfig::new("t")).unwrap();
    assert_unknown_issuer(&c.get(&url, 1024).unwrap_err());
}
