//! A configured connection to one log: the home directories, the trusted
//! policy and the HTTP client, resolved the way the `custody` command line
//! resolves them. The CLI and the Python bindings both open their log
//! through [`Session::open`], so a home made by `custody init` serves every
//! caller unchanged and there is one set of precedence rules:
//!
//! - the log URL: the caller's, else `log_url` in `config.json`;
//! - the policy: the caller's file, else the copy `init` saved;
//! - the CA file: the caller's, else the one `init` saved;
//! - the key: the caller's file, else `key` in the configuration directory.

use std::path::PathBuf;
use std::time::Duration;

use custody_standards::Policy;

use crate::client::LogClient;
use crate::error::Result;
use crate::home::{load_policy, normalize_url, Home};
use crate::statements::Why;
use crate::trust::Trust;

/// Seconds to wait for a checkpoint covering a new entry, when the caller
/// does not say.
pub const DEFAULT_WAIT_SECS: u64 = 30;

/// HTTP timeout of every request to the log.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// What a caller may set instead of the saved configuration; `None` means
/// "what `custody init` saved".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `--home` / `CUSTODY_HOME`.
    pub home: Option<PathBuf>,
    /// `--log` / `CUSTODY_LOG_URL`.
    pub log_url: Option<String>,
    /// `--tiles-url` / `CUSTODY_TILES_URL`.
    pub tiles_url: Option<String>,
    /// `--ca-cert` / `CUSTODY_CA_CERT`.
    pub ca_cert: Option<PathBuf>,
    /// `--policy` / `CUSTODY_POLICY`.
    pub policy: Option<PathBuf>,
    /// `--key` / `CUSTODY_KEY`.
    pub key: Option<PathBuf>,
}

impl Settings {
    /// The settings the `CUSTODY_*` environment variables give, for library
    /// callers (the CLI reads the same variables through clap).
    pub fn from_env() -> Settings {
        let path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let text = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Settings {
            home: path("CUSTODY_HOME"),
            log_url: text("CUSTODY_LOG_URL"),
            tiles_url: text("CUSTODY_TILES_URL"),
            ca_cert: path("CUSTODY_CA_CERT"),
            policy: path("CUSTODY_POLICY"),
            key: path("CUSTODY_KEY"),
        }
    }

    /// The environment's `CUSTODY_WAIT_SECS`, else [`DEFAULT_WAIT_SECS`].
    pub fn wait_from_env() -> Duration {
        let secs = std::env::var("CUSTODY_WAIT_SECS").ok().and_then(|v| v.trim().parse().ok());
        Duration::from_secs(secs.unwrap_or(DEFAULT_WAIT_SECS))
    }

    /// The statement context from `CUSTODY_REASON`, `CUSTODY_ENVIRONMENT`,
    /// `CUSTODY_PIPELINE` and `CUSTODY_SOURCE`; `default_reason` when no
    /// reason is set.
    pub fn why_from_env(default_reason: &str) -> Why {
        let text = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Why {
            reason: text("CUSTODY_REASON").unwrap_or_else(|| default_reason.to_owned()),
            environment: text("CUSTODY_ENVIRONMENT"),
            pipeline: text("CUSTODY_PIPELINE"),
            source: text("CUSTODY_SOURCE"),
        }
    }
}

/// Everything a networked command needs.
pub struct Session {
    /// Configuration and state directories.
    pub home: Home,
    /// The trusted policy.
    pub policy: Policy,
    /// The log.
    pub client: LogClient,
    key: Option<PathBuf>,
}

impl Session {
    /// Opens the log `settings` and the saved configuration of `home` name.
    pub fn open(home: Home, settings: &Settings) -> Result<Session> {
        let url = match settings.log_url.as_deref() {
            Some(u) => normalize_url(u)?,
            None => home.load_config()?.log_url,
        };
        let policy = policy(settings, &home)?;
        let mut client = LogClient::new(&url, HTTP_TIMEOUT, ca_cert(settings, &home))?;
        if let Some(tiles) = &settings.tiles_url {
            client = client.with_read_path(&normalize_url(tiles)?);
        }
        Ok(Session { home, policy, client, key: settings.key.clone() })
    }

    /// [`Session::open`] with the home `settings` names (else `CUSTODY_HOME`
    /// is not consulted: pass [`Settings::from_env`] for that).
    pub fn resolve(settings: &Settings) -> Result<Session> {
        Session::open(Home::resolve(settings.home.as_deref())?, settings)
    }

    /// Trust in this log under the policy and the remembered checkpoint.
    pub fn trust(&self) -> Trust<'_> {
        Trust::new(&self.home, &self.policy, &self.client)
    }

    /// The actor key file: the caller's, else `key` in the configuration
    /// directory.
    pub fn key_path(&self) -> PathBuf {
        self.key.clone().unwrap_or_else(|| self.home.key_file())
    }
}

/// The caller's policy file, else the copy `custody init` saved, parsed.
pub fn policy(settings: &Settings, home: &Home) -> Result<Policy> {
    match &settings.policy {
        Some(p) => load_policy(p),
        None => home.load_policy(),
    }
}

/// The caller's CA file, else the one `custody init` saved.
pub fn ca_cert(settings: &Settings, home: &Home) -> Option<PathBuf> {
    settings.ca_cert.clone().or_else(|| home.load_config().ok().and_then(|c| c.ca_cert))
}
