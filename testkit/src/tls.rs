//! The hostile servers of [`crate::hostile`] over HTTPS, with a certificate
//! from the test PKI ([`crate::pki`]): a client's TLS checks (trusted CA,
//! wrong CA, no CA) are tested against a real handshake, and the same
//! scripted lies work behind it.

use std::net::TcpListener;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::hostile::{serve_connection, Reply, Request};
use crate::pki::{CertFiles, PkiError};

/// Serves `handler` over TLS with `cert` on 127.0.0.1; returns the
/// `https://` base URL and the count of requests read (a failed handshake
/// reads none).
pub fn serve_tls(
    handler: impl Fn(Request) -> Reply + Send + Sync + 'static,
    cert: &CertFiles,
) -> Result<(String, Arc<AtomicU64>), PkiError> {
    let handler = Arc::new(handler);
    // ring, as the clients under test use (deprecated only for lacking
    // post-quantum key exchange, which a loopback test does not need).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
            )?,
    );
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("https://{}", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let (handler, counter, config) = (handler.clone(), counter.clone(), config.clone());
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                serve_connection(&mut tls, &counter, &*handler);
                tls.conn.send_close_notify();
                let _ = std::io::Write::flush(&mut tls);
            });
        }
    });
    Ok((url, count))
}
