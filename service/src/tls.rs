//! HTTPS: `--tls-cert PATH --tls-key PATH` serve the API over TLS (rustls),
//! and SIGHUP re-reads both files, so a renewed certificate is picked up
//! without a restart (and without dropping connections).
//!
//! The certificate in use sits behind a [`CertReloader`], the rustls
//! certificate resolver: every handshake takes the current
//! `Arc<CertifiedKey>`, and a reload swaps it in one step only once the new
//! files parsed and the key matched the certificate. A bad renewal (a
//! truncated file, a key for another certificate) is logged and the old
//! certificate stays in use. Plain HTTP stays the default, for loopback
//! and for deployments behind a TLS-terminating proxy.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use clap::Args;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// Largest certificate chain or key file read (PEM); caps the read before
/// parsing.
pub const MAX_PEM_SIZE: u64 = 1 << 20;

/// The HTTPS flags, flattened into each server's `serve` command.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// PEM certificate chain (leaf first) to serve HTTPS with; needs
    /// `--tls-key`. Re-read with the key on SIGHUP. Without it the server
    /// speaks plain HTTP.
    #[arg(long = "tls-cert", env = "CUSTODY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long = "tls-key", env = "CUSTODY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The reloader for the configured files, or `None` for plain HTTP.
    pub fn load(&self) -> Result<Option<Arc<CertReloader>>, TlsError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => CertReloader::load(cert, key).map(Some),
            _ => Ok(None),
        }
    }
}

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_PEM_SIZE`].
    #[error("{path} is larger than {MAX_PEM_SIZE} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// No PEM certificate in the certificate file.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No PEM private key in the key file.
    #[error("{path} holds no PEM private key")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is of a kind rustls cannot sign with.
    #[error("unusable private key in {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rustls::Error,
    },
    /// The key is not the certificate's.
    #[error("the key in {key} does not belong to the certificate in {cert}: {source}")]
    Mismatch {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// The cause.
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The *ring* provider: the same one the workspace's HTTP clients use, and
/// it builds without the C toolchain aws-lc needs. rustls deprecates it
/// only for lacking post-quantum key exchange, which our clients do not
/// offer either.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read = |source| TlsError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_SIZE + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > MAX_PEM_SIZE {
        return Err(TlsError::TooLarge { path: path.to_owned() });
    }
    Ok(bytes)
}

/// Reads and checks a certificate chain and its key.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read_pem(cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read { path: cert.to_owned(), source })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_owned() });
    }
    let key_pem = read_pem(key)?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read { path: key.to_owned(), source })?
        .ok_or_else(|| TlsError::NoKey { path: key.to_owned() })?;
    let signing = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| TlsError::Key { path: key.to_owned(), source })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|source| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })?;
    Ok(certified)
}

/// The certificate resolver: the current certificate and key, swapped by
/// [`CertReloader::reload`].
#[derive(Debug)]
pub struct CertReloader {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertReloader {
    /// Loads the files once; fails if they are unusable.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let certified = load_certified_key(cert, key)?;
        Ok(Arc::new(CertReloader {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            current: RwLock::new(Arc::new(certified)),
        }))
    }

    /// Re-reads both files; on success the next handshakes use them, on
    /// failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load_certified_key(&self.cert_path, &self.key_path)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// [`CertReloader::reload`], logging the outcome (the SIGHUP hook).
    pub fn reload_logged(&self) {
        match self.reload() {
            Ok(()) => tracing::info!(cert = %self.cert_path.display(), "reloaded the TLS certificate"),
            Err(e) => tracing::error!(
                error = %e,
                "TLS certificate reload failed; keeping the previous certificate"
            ),
        }
    }

    /// The certificate and key in use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A rustls server configuration that asks this resolver on every
    /// handshake (TLS 1.2 and 1.3, no client certificates).
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        Ok(config)
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k, cert.der().to_vec())
    }

    #[test]
    fn reload_swaps_only_a_good_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, der1) = write_pair(dir.path(), "a");
        let r = CertReloader::load(&cert, &key).unwrap();
        assert_eq!(r.current().cert[0].as_ref(), der1.as_slice());
        // A key of another certificate: refused, old pair kept.
        let (_, other_key, _) = write_pair(dir.path(), "b");
        std::fs::copy(&other_key, &key).unwrap();
        assert!(matches!(r.reload(), Err(TlsError::Mismatch { .. })));
        assert_eq!(r.current().cert[0].as_ref(), der1.as_slice());
        // A truncated certificate: refused, old pair kept.
        std::fs::write(&cert, b"-----BEGIN CERTIFICATE-----\nAAAA").unwrap();
        assert!(r.reload().is_err());
        assert_eq!(r.current().cert[0].as_ref(), der1.as_slice());
        // A good new pair: used.
        let (c2, k2, der2) = write_pair(dir.path(), "c");
        std::fs::copy(&c2, &cert).unwrap();
        std::fs::copy(&k2, &key).unwrap();
        r.reload().unwrap();
        assert_eq!(r.current().cert[0].as_ref(), der2.as_slice());
        assert!(r.server_config().is_ok());
    }
}
