//! What the dashboard shows about the keys it is verified with: the log's
//! key, and the tlog-policy the log was started with (`--policy`), whose
//! witnesses the panel lists and whose text `/ui/api/trust` serves.
//!
//! The server can only say which keys *it* uses; a browser that trusts
//! them only because this page says so trusts the server it is judging.
//! So every page shows the keys' fingerprints for a person to compare,
//! and the JavaScript lets the user pin a policy of their own
//! (docs/dashboard-verification.md).

use custody_standards::{Policy, VerifierKey};

/// The trust root as the log knows it.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The log's verifier key (its name is the origin).
    pub log_key: VerifierKey,
    /// The policy file the log was started with: parsed, and its text.
    pub policy: Option<(Policy, String)>,
}

impl Trust {
    /// The trust root of a log with `log_key` and, if it has one, the
    /// policy whose file text is `policy_text`.
    pub fn new(log_key: VerifierKey, policy: Option<(Policy, String)>) -> Self {
        Trust { log_key, policy }
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.log_key.name()
    }

    /// The policy, if the log has one.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref().map(|(p, _)| p)
    }
}

/// The fingerprint people compare: lowercase hex of the SHA-256 of the
/// key's 32 public key bytes, in groups of four separated by spaces.
pub fn fingerprint(key: &VerifierKey) -> String {
    let hex = custody_standards::hash::sha256(&key.public_key()).to_hex();
    let groups: Vec<&str> = (0..hex.len()).step_by(4).map(|i| &hex[i..i + 4]).collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_the_grouped_hash_of_the_public_key() {
        let key = custody_standards::SignerKey::from_seed("example.com/log", 1, &[7; 32]).unwrap().verifier();
        let fp = fingerprint(&key);
        let want = custody_standards::hash::sha256(&key.public_key()).to_hex();
        assert_eq!(fp.replace(' ', ""), want);
        assert_eq!(fp.len(), 64 + 15);
        assert!(fp.split(' ').all(|g| g.len() == 4));
    }
}
