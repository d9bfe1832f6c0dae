//! An in-test PKI for the HTTPS tests: a CA, server certificates for
//! `127.0.0.1` and `localhost` signed by it, and a second, unrelated
//! "wrong" CA (with its own server certificate) for the test that a client
//! pinned to one CA refuses a server proven by another. Everything is
//! generated in process with `rcgen` and written as PEM files to a
//! temporary directory, since the binaries take TLS material as file paths.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// What can go wrong making the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing PEM files: {0}")]
    Io(#[from] std::io::Error),
}

/// A certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA able to issue more certificates.
pub struct Ca {
    /// The CA certificate's PEM file (what a client trusts).
    pub cert_file: PathBuf,
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Result<Ca, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let cert_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert_file, cert.pem())?;
        Ok(Ca { cert_file, cert, key })
    }

    /// Issues a server certificate for `names` (IP addresses or DNS names),
    /// written as `dir/<file>.pem` and `dir/<file>.key`.
    pub fn issue(&self, dir: &Path, file: &str, names: &[&str]) -> Result<CertFiles, PkiError> {
        let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or(file));
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        let files = CertFiles { cert: dir.join(format!("{file}.pem")), key: dir.join(format!("{file}.key")) };
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        Ok(files)
    }
}

/// The test PKI; its files live as long as it does.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    /// The CA clients are told to trust.
    pub ca: Ca,
    /// A server certificate for `127.0.0.1` and `localhost` from [`TestPki::ca`].
    pub server: CertFiles,
    /// A CA nobody was told to trust.
    pub wrong_ca: Ca,
    /// A server certificate for the same names from [`TestPki::wrong_ca`]:
    /// a server a pinned client must refuse.
    pub wrong_server: CertFiles,
}

impl TestPki {
    pub fn new() -> Result<TestPki, PkiError> {
        let dir = tempfile::tempdir()?;
        let ca = Ca::new(dir.path(), "custody")?;
        let server = ca.issue(dir.path(), "server", &["127.0.0.1", "localhost"])?;
        let wrong_ca = Ca::new(dir.path(), "wrong")?;
        let wrong_server = wrong_ca.issue(dir.path(), "wrong-server", &["127.0.0.1", "localhost"])?;
        Ok(TestPki { dir, ca, server, wrong_ca, wrong_server })
    }

    /// The trusted CA's PEM file.
    pub fn ca_cert(&self) -> &Path {
        &self.ca.cert_file
    }

    /// The wrong CA's PEM file.
    pub fn wrong_ca_cert(&self) -> &Path {
        &self.wrong_ca.cert_file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files_for_both_cas() {
        let pki = TestPki::new().unwrap();
        for path in [pki.ca_cert(), pki.wrong_ca_cert(), &pki.server.cert, &pki.wrong_server.cert] {
            let pem = std::fs::read_to_string(path).unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{}", path.display());
        }
        let key = std::fs::read_to_string(&pki.server.key).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        assert_ne!(
            std::fs::read(pki.ca_cert()).unwrap(),
            std::fs::read(pki.wrong_ca_cert()).unwrap(),
            "two distinct CAs"
        );
    }
}
