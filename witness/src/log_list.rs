//! The logs this witness trusts, read from a file in the witness network's
//! log-list format (transparency-dev/witness-network `log-list-format.md`),
//! extended with one optional line, `url`, for pull mode.
//!
//! ```text
//! logs/v0
//!
//! vkey example.com/log+0123abcd+AW...
//! origin none
//! qpd 86400
//! contact ops@example.com
//! url https://example.com/log
//! ```
//!
//! Spec rules implemented here:
//! - "Blank lines are ignored. Lines starting with `#` denote comments and
//!   are also ignored."
//! - "The list starts with a single line declaring the list format." (`logs/v0`)
//! - A log starts at its `vkey` line; "`ORIGIN` is either `none` or the log's
//!   origin line ... If `none`, the log's origin line is the same as the vkey
//!   key-name."
//! - `QPD` "is the number of add-checkpoint requests the log may do per
//!   day"; we also use it to pace pull-mode polling.
//!
//! Like torchwood's parser we skip (with a warning) entries we cannot use,
//! such as keys of a signature type we do not support, rather than refuse a
//! whole public list for one odd entry; and we ignore unknown keys
//! (`bastion`, future additions). Several `vkey` entries for one origin are
//! merged: all those keys are trusted for it (a log rotating its key).

use std::collections::BTreeMap;

use custody_standards::encoding::parse_decimal_u64;
use custody_standards::VerifierKey;

/// Largest list accepted. Public lists aim at a million logs of about 150
/// bytes each; the cap bounds memory before anything is parsed.
pub const MAX_LOG_LIST_SIZE: usize = 256 << 20;
/// Longest line accepted.
pub const MAX_LINE_LEN: usize = 4096;
/// Format header line.
pub const HEADER: &str = "logs/v0";

/// Why a log list was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogListError {
    /// Larger than [`MAX_LOG_LIST_SIZE`].
    #[error("log list is {0} bytes, the limit is {MAX_LOG_LIST_SIZE}")]
    TooLarge(usize),
    /// Not UTF-8, bad header, a line before the first `vkey`, ...
    #[error("log list line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// One witnessed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Checkpoint origin line.
    pub origin: String,
    /// Keys trusted to sign its checkpoints (at least one).
    pub keys: Vec<VerifierKey>,
    /// Add-checkpoint requests per day the log may make, if given.
    pub qpd: Option<u64>,
    /// Human contact, if given.
    pub contact: Option<String>,
    /// Log prefix URL (tlog-tiles), for pull mode and for tile-based
    /// consistency checks during gossip.
    pub url: Option<String>,
}

/// A parsed log list, keyed by origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogList {
    /// Logs by origin.
    pub logs: BTreeMap<String, LogEntry>,
    /// Human-readable reasons for entries or lines that were skipped.
    pub warnings: Vec<String>,
}

/// Whether `url` is an absolute http(s) URL we can append paths to.
pub fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.contains(char::is_whitespace))
}

struct Pending {
    line: usize,
    key: Result<VerifierKey, custody_standards::keys::KeyError>,
    origin: Option<String>,
    qpd: Option<u64>,
    contact: Option<String>,
    url: Option<String>,
}

impl LogList {
    /// Parses a log list (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<Self, LogListError> {
        if bytes.len() > MAX_LOG_LIST_SIZE {
            return Err(LogListError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| LogListError::Malformed { line: 0, reason: "not UTF-8" })?;
        let mut list = LogList::default();
        let mut seen_header = false;
        let mut pending: Option<Pending> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let bad = |reason| LogListError::Malformed { line: n, reason };
            if raw.len() > MAX_LINE_LEN {
                return Err(bad("line too long"));
            }
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !seen_header {
                if line != HEADER {
                    return Err(bad("the first line must be `logs/v0`"));
                }
                seen_header = true;
                continue;
            }
            let (key, value) = line.split_once(' ').map(|(k, v)| (k, v.trim())).unwrap_or((line, ""));
            if key == "vkey" {
                if let Some(p) = pending.take() {
                    list.finish(p);
                }
                if value.is_empty() {
                    return Err(bad("empty vkey"));
                }
                pending = Some(Pending {
                    line: n,
                    key: VerifierKey::parse(value),
                    origin: None,
                    qpd: None,
                    contact: None,
                    url: None,
                });
                continue;
            }
            let Some(p) = pending.as_mut() else {
                return Err(bad("expected a `vkey` line to start a log"));
            };
            match key {
                "origin" if value.is_empty() => return Err(bad("empty origin")),
                "origin" if value != "none" => p.origin = Some(value.to_owned()),
                "origin" => {}
                "qpd" => match parse_decimal_u64(value) {
                    Some(q) if q > 0 => p.qpd = Some(q),
                    _ => list.warnings.push(format!("line {n}: ignoring bad qpd {value:?}")),
                },
                "contact" => p.contact = Some(value.to_owned()),
                "url" if is_http_url(value) => p.url = Some(value.trim_end_matches('/').to_owned()),
                "url" => list.warnings.push(format!("line {n}: ignoring url {value:?} (not http or https)")),
                // "bastion" and anything newer: not used by this witness.
                _ => {}
            }
        }
        if !seen_header {
            return Err(LogListError::Malformed { line: 0, reason: "missing `logs/v0` header" });
        }
        if let Some(p) = pending.take() {
            list.finish(p);
        }
        Ok(list)
    }

    fn finish(&mut self, p: Pending) {
        let key = match p.key {
            Ok(k) => k,
            Err(e) => {
                self.warnings.push(format!("line {}: skipping log with unusable vkey: {e}", p.line));
                return;
            }
        };
        if key.sig_type() != custody_standards::keys::SIG_TYPE_ED25519 {
            self.warnings.push(format!("line {}: skipping log key of type 0x{:02x}", p.line, key.sig_type()));
            return;
        }
        let origin = p.origin.unwrap_or_else(|| key.name().to_owned());
        if origin.chars().any(char::is_control) {
            self.warnings.push(format!("line {}: skipping origin with control characters", p.line));
            return;
        }
        match self.logs.get_mut(&origin) {
            Some(entry) => {
                // Another key for a known origin: trust both (key rotation).
                if !entry.keys.contains(&key) {
                    entry.keys.push(key);
                }
                entry.url = entry.url.take().or(p.url);
                entry.qpd = entry.qpd.or(p.qpd);
                entry.contact = entry.contact.take().or(p.contact);
            }
            None => {
                self.logs.insert(
                    origin.clone(),
                    LogEntry { origin, keys: vec![key], qpd: p.qpd, contact: p.contact, url: p.url },
                );
            }
        }
    }

    /// The log with this origin.
    pub fn get(&self, origin: &str) -> Option<&LogEntry> {
        self.logs.get(origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_standards::keys::{SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519};
    use custody_standards::SignerKey;

    fn vkey(name: &str, seed: u8, t: u8) -> String {
        SignerKey::from_seed(name, t, &[seed; 32]).unwrap().verifier().to_string()
    }

    #[test]
    fn parses_the_network_format_with_url() {
        let a = vkey("example.com/a", 1, SIG_TYPE_ED25519);
        let b = vkey("example.com/b", 2, SIG_TYPE_ED25519);
        let b2 = vkey("example.com/b", 3, SIG_TYPE_ED25519);
        let w = vkey("witness.example/w", 4, SIG_TYPE_COSIGNATURE_V1);
        let text = format!(
            "# comment\n#\nlogs/v0\n\n# a\nvkey {a}\norigin none\nqpd 86400\nbastion none\n\
             contact ops (at) example.com\nurl http://127.0.0.1:9/log/\n\n\
             vkey {b}\norigin foreign.example/origin\nqpd 0\n\nvkey {b2}\norigin foreign.example/origin\n\
             vkey {w}\nvkey not-a-key\nfuture-key value\n"
        );
        let list = LogList::parse(text.as_bytes()).unwrap();
        assert_eq!(list.logs.len(), 2);
        let la = list.get("example.com/a").unwrap();
        assert_eq!(la.qpd, Some(86400));
        assert_eq!(la.url.as_deref(), Some("http://127.0.0.1:9/log"));
        assert_eq!(la.contact.as_deref(), Some("ops (at) example.com"));
        let lb = list.get("foreign.example/origin").unwrap();
        assert_eq!(lb.keys.len(), 2, "both keys of a rotating log are trusted");
        assert_eq!(lb.qpd, None);
        assert!(list.get("example.com/b").is_none());
        // qpd 0, the witness key and the bad key were reported.
        assert_eq!(list.warnings.len(), 3, "{:?}", list.warnings);
    }

    #[test]
    fn refuses_bad_structure() {
        let a = vkey("example.com/a", 1, SIG_TYPE_ED25519);
        for bad in [
            String::new(),
            "# only comments\n".to_owned(),
            format!("logs/v1\nvkey {a}\n"),
            format!("logs/v0\norigin x\nvkey {a}\n"),
            "logs/v0\nvkey \n".to_owned(),
            format!("logs/v0\nvkey {a}\norigin {}\n", "x".repeat(MAX_LINE_LEN)),
        ] {
            assert!(LogList::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(LogList::parse(b"logs/v0\n").unwrap().logs.is_empty());
        assert!(LogList::parse(b"\xff").is_err());
    }

    #[test]
    fn url_check() {
        assert!(is_http_url("http://127.0.0.1:8080"));
        assert!(is_http_url("https://log.example/prefix"));
        for bad in ["ftp://x", "http://", "https://a b", "example.com"] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }
}
