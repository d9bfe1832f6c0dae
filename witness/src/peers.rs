//! The peer witnesses this witness gossips with, read from a small file the
//! operator writes. The layout mirrors the log list so one parser style
//! covers both:
//!
//! ```text
//! peers/v0
//!
//! witness witness.example/w2
//! vkey witness.example/w2+0123abcd+BA...
//! url https://w2.witness.example
//! ```
//!
//! A peer starts at its `witness` line (its name), has one or more `vkey`
//! lines (cosignature/v1 keys named after it; several while it rotates keys)
//! and exactly one `url`: its monitoring prefix, where we fetch
//! `<url>/<hex(SHA-256(origin))>/checkpoint` and `<url>/evidence`. Unlike the
//! public log list, this file is ours, so any mistake refuses the whole file
//! and the previous configuration stays in force.

use custody_standards::cosignature::CosignatureVerifier;
use custody_standards::keys::is_valid_key_name;
use custody_standards::VerifierKey;

use crate::log_list::is_http_url;

/// Largest peers file accepted.
pub const MAX_PEERS_SIZE: usize = 1 << 20;
/// Format header line.
pub const HEADER: &str = "peers/v0";

/// Why a peers file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeersError {
    /// Larger than [`MAX_PEERS_SIZE`].
    #[error("peers file is {0} bytes, the limit is {MAX_PEERS_SIZE}")]
    TooLarge(usize),
    /// A format violation.
    #[error("peers file line {line}: {reason}")]
    Malformed {
        /// 1-based line number (0 for the whole file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One peer witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Witness name (the name of its cosignature keys).
    pub name: String,
    /// Its cosignature/v1 keys.
    pub keys: Vec<CosignatureVerifier>,
    /// Monitoring prefix, without a trailing slash.
    pub url: String,
}

/// Parses a peers file.
pub fn parse_peers(bytes: &[u8]) -> Result<Vec<Peer>, PeersError> {
    if bytes.len() > MAX_PEERS_SIZE {
        return Err(PeersError::TooLarge(bytes.len()));
    }
    let bad = |line: usize, reason: &str| PeersError::Malformed { line, reason: reason.to_owned() };
    let text = std::str::from_utf8(bytes).map_err(|_| bad(0, "not UTF-8"))?;
    let mut peers: Vec<Peer> = Vec::new();
    let mut seen_header = false;
    let mut last_start = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !seen_header {
            if line != HEADER {
                return Err(bad(n, "the first line must be `peers/v0`"));
            }
            seen_header = true;
            continue;
        }
        let (key, value) = line.split_once(' ').map(|(k, v)| (k, v.trim())).unwrap_or((line, ""));
        if key == "witness" {
            check_complete(peers.last(), last_start)?;
            if !is_valid_key_name(value) {
                return Err(bad(n, "invalid witness name"));
            }
            if peers.iter().any(|p| p.name == value) {
                return Err(bad(n, "duplicate witness"));
            }
            peers.push(Peer { name: value.to_owned(), keys: Vec::new(), url: String::new() });
            last_start = n;
            continue;
        }
        let Some(peer) = peers.last_mut() else {
            return Err(bad(n, "expected a `witness` line to start a peer"));
        };
        match key {
            "vkey" => {
                let key = VerifierKey::parse(value).map_err(|e| bad(n, &e.to_string()))?;
                if key.name() != peer.name {
                    return Err(bad(n, "vkey name differs from the witness name"));
                }
                let key = CosignatureVerifier::new(key).map_err(|e| bad(n, &e.to_string()))?;
                peer.keys.push(key);
            }
            "url" if !peer.url.is_empty() => return Err(bad(n, "second url for one witness")),
            "url" if is_http_url(value) => peer.url = value.trim_end_matches('/').to_owned(),
            "url" => return Err(bad(n, "url must be http:// or https://")),
            _ => return Err(bad(n, "unknown line (expected witness, vkey or url)")),
        }
    }
    if !seen_header {
        return Err(bad(0, "missing `peers/v0` header"));
    }
    check_complete(peers.last(), last_start)?;
    Ok(peers)
}

fn check_complete(peer: Option<&Peer>, line: usize) -> Result<(), PeersError> {
    match peer {
        Some(p) if p.keys.is_empty() => {
            Err(PeersError::Malformed { line, reason: format!("witness {} has no vkey", p.name) })
        }
        Some(p) if p.url.is_empty() => {
            Err(PeersError::Malformed { line, reason: format!("witness {} has no url", p.name) })
        }
        _ => Ok(()),
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
    fn parses_peers_with_rotated_keys() {
        let k1 = vkey("w2.example", 1, SIG_TYPE_COSIGNATURE_V1);
        let k2 = vkey("w2.example", 2, SIG_TYPE_COSIGNATURE_V1);
        let k3 = vkey("w3.example", 3, SIG_TYPE_COSIGNATURE_V1);
        let text = format!(
            "# peers\npeers/v0\n\nwitness w2.example\nvkey {k1}\nvkey {k2}\nurl http://127.0.0.1:1/\n\n\
             witness w3.example\nurl https://w3.example\nvkey {k3}\n"
        );
        let peers = parse_peers(text.as_bytes()).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].keys.len(), 2);
        assert_eq!(peers[0].url, "http://127.0.0.1:1");
        assert_eq!(peers[1].name, "w3.example");
        assert!(parse_peers(b"peers/v0\n").unwrap().is_empty());
    }

    #[test]
    fn refuses_mistakes() {
        let k1 = vkey("w2.example", 1, SIG_TYPE_COSIGNATURE_V1);
        let log = vkey("w2.example", 1, SIG_TYPE_ED25519);
        let other = vkey("w9.example", 1, SIG_TYPE_COSIGNATURE_V1);
        for bad in [
            String::new(),
            format!("peers/v1\nwitness w2.example\nvkey {k1}\nurl http://x\n"),
            format!("peers/v0\nvkey {k1}\n"),
            "peers/v0\nwitness w2.example\nurl http://x\n".to_owned(),
            format!("peers/v0\nwitness w2.example\nvkey {k1}\n"),
            format!("peers/v0\nwitness w2.example\nvkey {log}\nurl http://x\n"),
            format!("peers/v0\nwitness w2.example\nvkey {other}\nurl http://x\n"),
            format!("peers/v0\nwitness w2.example\nvkey {k1}\nurl ftp://x\n"),
            format!("peers/v0\nwitness w2.example\nvkey {k1}\nurl http://x\nurl http://y\n"),
            format!("peers/v0\nwitness w2.example\nvkey {k1}\nurl http://x\nwitness w2.example\n"),
            format!("peers/v0\nwitness w2.example\nvkey {k1}\nurl http://x\nbastion none\n"),
            "peers/v0\nwitness bad name\n".to_owned(),
        ] {
            assert!(parse_peers(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
