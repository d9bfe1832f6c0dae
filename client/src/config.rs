//! How a client is built: timeouts, retries, and whom it trusts for HTTPS.
//!
//! TLS is rustls only (no OpenSSL to install or keep patched), trusting the
//! operating system's roots plus, optionally, one extra PEM file of CA
//! certificates (`--ca-cert`): the usual way a private deployment's logs
//! and witnesses are reached without putting their CA into the system store.

use std::io::Read as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ClientError;
use crate::retry::RetryPolicy;

/// Largest CA file read (a bundle of a few hundred certificates).
pub const MAX_CA_FILE: u64 = 4 << 20;

/// Everything that shapes a [`crate::Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `User-Agent` of every request (`custody/0.1.0`, ...).
    pub user_agent: String,
    /// Limit on each attempt, from sending to the end of the body.
    pub timeout: Duration,
    /// Limit on opening a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// PEM file of extra CA certificates to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// Retries of retry-safe requests.
    pub retry: RetryPolicy,
    /// Idle keep-alive connections kept per host (`None`: reqwest's default).
    pub pool_max_idle_per_host: Option<usize>,
    /// Local address outgoing connections are bound to.
    pub local_address: Option<IpAddr>,
    /// Whether `HTTPS_PROXY` and friends from the environment are used.
    pub env_proxy: bool,
}

impl ClientConfig {
    /// Defaults: 60 s per attempt, 10 s to connect, [`RetryPolicy::default`],
    /// system roots only, environment proxies honoured.
    pub fn new(user_agent: impl Into<String>) -> Self {
        ClientConfig {
            user_agent: user_agent.into(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            ca_cert: None,
            retry: RetryPolicy::default(),
            pool_max_idle_per_host: None,
            local_address: None,
            env_proxy: true,
        }
    }

    /// Sets the per-attempt timeout (and caps the connect timeout by it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.connect_timeout = self.connect_timeout.min(timeout);
        self
    }

    /// Sets the extra CA file.
    pub fn ca_cert(mut self, path: Option<PathBuf>) -> Self {
        self.ca_cert = path;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the reqwest client this configuration describes.
    pub(crate) fn build(&self) -> Result<reqwest::Client, ClientError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(&self.user_agent)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            // Never follow a server somewhere its URL does not say: a
            // redirected POST could hand a checkpoint or statement to a
            // third party, and a redirected GET evades the caller's checks
            // on where it fetches from.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &self.ca_cert {
            for cert in load_ca_file(path)? {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some(n) = self.pool_max_idle_per_host {
            b = b.pool_max_idle_per_host(n);
        }
        if let Some(addr) = self.local_address {
            b = b.local_address(addr);
        }
        if !self.env_proxy {
            b = b.no_proxy();
        }
        b.build().map_err(|e| ClientError::Build(crate::error::chain(&e)))
    }
}

/// Reads the PEM certificates of a CA file, refusing a file that is too
/// large, unreadable, or holds none.
pub fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let bad = |detail: String| ClientError::CaCert { path: path.to_owned(), detail };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE + 1).read_to_end(&mut pem).map_err(|e| bad(e.to_string()))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(bad(format!("larger than {MAX_CA_FILE} bytes")));
    }
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(bad("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned()));
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(crate::error::chain(&e)))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = load_ca_file(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = load_ca_file(&junk).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let cfg = ClientConfig::new("t").ca_cert(Some(junk));
        assert!(matches!(cfg.build(), Err(ClientError::CaCert { .. })));
    }

    #[test]
    fn connect_timeout_never_exceeds_the_request_timeout() {
        let cfg = ClientConfig::new("t").timeout(Duration::from_millis(300));
        assert_eq!(cfg.connect_timeout, Duration::from_millis(300));
        cfg.build().unwrap();
    }
}
