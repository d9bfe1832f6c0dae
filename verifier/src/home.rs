//! Where the client keeps its configuration, keys and trust state.
//!
//! Layout (see docs/verifier.md):
//! - `$CUSTODY_HOME` set: everything lives in that one directory.
//! - otherwise configuration in `$XDG_CONFIG_HOME/custody` (default
//!   `~/.config/custody`) and state in `$XDG_STATE_HOME/custody` (default
//!   `~/.local/state/custody`).
//!
//! The configuration directory holds `config.json`, a copy of the trusted
//! `policy` and the actor `key` (mode 0600). The state directory holds the
//! latest verified checkpoint per origin (`checkpoints/`), evidence reports
//! (`evidence/`) and the audit cache (`audit/`). Every state write is a
//! write to a temporary file, fsync, then rename: a crash leaves the old or
//! the new checkpoint, never a torn one.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use custody_standards::Policy;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest config or key file read.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// The client's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// Configuration: `config.json`, `policy`, `key`.
    pub config_dir: PathBuf,
    /// State: remembered checkpoints, evidence, audit cache.
    pub state_dir: PathBuf,
}

/// `config.json`, written by `custody init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the log, e.g. `http://127.0.0.1:8080`.
    pub log_url: String,
    /// Absolute path of a PEM file of extra CAs trusted for the log's
    /// HTTPS (`custody init --ca-cert`); `--ca-cert` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

impl Home {
    /// Resolves the directories from an explicit home (`--home` /
    /// `CUSTODY_HOME`) or the XDG variables and `$HOME`.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        if let Some(h) = explicit {
            return Ok(Home { config_dir: h.to_owned(), state_dir: h.to_owned() });
        }
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("HOME");
        let base = |xdg: &str, fallback: &str| -> Result<PathBuf> {
            var(xdg)
                .filter(|p| p.is_absolute())
                .or_else(|| home.as_ref().map(|h| h.join(fallback)))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "cannot locate the custody directory: set CUSTODY_HOME, {xdg} or HOME"
                    ))
                })
        };
        Ok(Home {
            config_dir: base("XDG_CONFIG_HOME", ".config")?.join("custody"),
            state_dir: base("XDG_STATE_HOME", ".local/state")?.join("custody"),
        })
    }

    /// `config.json`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.json")
    }

    /// The trusted policy copied in by `init`.
    pub fn policy_file(&self) -> PathBuf {
        self.config_dir.join("policy")
    }

    /// The default actor key file.
    pub fn key_file(&self) -> PathBuf {
        self.config_dir.join("key")
    }

    /// The remembered checkpoint of `origin`.
    pub fn checkpoint_file(&self, origin: &str) -> PathBuf {
        self.state_dir.join("checkpoints").join(escape(origin))
    }

    /// Directory of evidence reports.
    pub fn evidence_dir(&self) -> PathBuf {
        self.state_dir.join("evidence")
    }

    /// Reads `config.json`.
    pub fn load_config(&self) -> Result<Config> {
        let path = self.config_file();
        let bytes = read_capped(&path, MAX_SMALL_FILE).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::Config(
                format!("{} not found: run `custody init --policy FILE --log URL` first", path.display()),
            ),
            e => e,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Reads and parses the trusted policy.
    pub fn load_policy(&self) -> Result<Policy> {
        load_policy(&self.policy_file())
    }

    /// `custody init`: checks the policy parses (and the CA file holds
    /// certificates), then writes the policy copy and `config.json`.
    /// Re-running it replaces both; remembered checkpoints are kept (they
    /// must stay consistent whatever the config).
    pub fn init(&self, policy_file: &Path, log_url: &str, ca_cert: Option<&Path>) -> Result<()> {
        let bytes = read_capped(policy_file, MAX_SMALL_FILE)?;
        Policy::parse(&bytes).map_err(|e| Error::Config(format!("{}: {e}", policy_file.display())))?;
        let url = normalize_url(log_url)?;
        let ca_cert = match ca_cert {
            Some(p) => {
                custody_client::config::load_ca_file(p).map_err(|e| Error::Config(e.to_string()))?;
                // Absolute, so the saved config works from any directory.
                Some(fs::canonicalize(p).map_err(|e| Error::io(p, e))?)
            }
            None => None,
        };
        write_atomic(&self.policy_file(), &bytes, 0o644)?;
        let config = Config { log_url: url, ca_cert };
        let json = serde_json::to_vec_pretty(&config).expect("config serializes");
        write_atomic(&self.config_file(), &json, 0o644)
    }
}

/// Checks a log URL is `http(s)://...` and drops a trailing slash.
pub fn normalize_url(url: &str) -> Result<String> {
    let u = url.trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() <= "https://".len() {
        return Err(Error::Usage(format!("log URL must start with http:// or https://: {url:?}")));
    }
    Ok(u.to_owned())
}

/// Reads and parses a policy file.
pub fn load_policy(path: &Path) -> Result<Policy> {
    let bytes = read_capped(path, MAX_SMALL_FILE)?;
    Policy::parse(&bytes).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// An origin as a file name: bytes outside `[A-Za-z0-9._-]` are `%XX`.
fn escape(origin: &str) -> String {
    let mut out = String::new();
    for (i, b) in origin.bytes().enumerate() {
        // A leading dot is escaped so no origin can name `.` or `..`.
        if b.is_ascii_alphanumeric() || (b == b'.' && i > 0) || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a whole file, refusing one larger than `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // Sized from the file's length (an audit reads thousands of 200 KB
    // bundles: growing the buffer by doubling copied each one several
    // times); only a hint, the cap is enforced on what is read.
    let hint = f.metadata().map_or(0, |m| m.len().min(cap));
    let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    f.take(cap + 1).read_to_end(&mut out).map_err(|e| Error::io(path, e))?;
    if out.len() as u64 > cap {
        return Err(Error::Config(format!("{}: larger than {cap} bytes", path.display())));
    }
    Ok(out)
}

/// Writes a cache file: whole or not at all for readers (temporary file,
/// rename), but without fsync. Only for data authenticated on every read.
pub fn write_cache(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, 0o644, false)
}

/// Writes `bytes` to `path` atomically (temporary file in the same
/// directory, fsync, rename, fsync of the directory) with `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    replace(path, bytes, mode, true)
}

/// Replaces `path` through a temporary file in the same directory and a
/// rename; with `durable`, the file and the directory are fsynced too.
fn replace(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.as_file().set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    if durable {
        tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    if durable {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_become_safe_file_names() {
        assert_eq!(escape("log.example.com/custody"), "log.example.com%2Fcustody");
        assert_eq!(escape("../x"), "%2E.%2Fx");
        assert_eq!(escape(".."), "%2E.");
    }

    #[test]
    fn explicit_home_holds_everything() {
        let h = Home::resolve(Some(Path::new("/tmp/h"))).unwrap();
        assert_eq!(h.config_dir, h.state_dir);
        assert_eq!(h.checkpoint_file("a/b"), Path::new("/tmp/h/checkpoints/a%2Fb"));
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(normalize_url("http://127.0.0.1:8/").unwrap(), "http://127.0.0.1:8");
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("http://").is_err());
    }
}
