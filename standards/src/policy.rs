//! [C2SP tlog-policy](https://c2sp.org/tlog-policy): which logs and
//! witnesses a client trusts, and the quorum of cosignatures a checkpoint
//! needs ([Policy file syntax and structure](https://c2sp.org/tlog-policy#policy-file-syntax-and-structure)).
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> <all|any|k> <name>...
//! quorum <name|none>
//! ```
//!
//! Names are compared as exact octet strings, as the spec requires
//! ([Character set](https://c2sp.org/tlog-policy#character-set): "names must
//! be handled as opaque octet strings"). One
//! limitation: names and URLs are exposed as `String`, so a name or URL that
//! is not valid UTF-8 is rejected (comments may hold any allowed octet).

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::encoding::parse_decimal_u64;
use crate::keys::{KeyError, VerifierKey, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519};
use crate::note::{open_note, NoteError, NoteVerifier};

/// Largest policy file accepted (64 KiB), checked before parsing.
pub const MAX_POLICY_SIZE: usize = 64 * 1024;
/// Most logs; the spec strongly recommends supporting at least 32.
pub const MAX_LOGS: usize = 64;
/// Most witnesses (at least 32 recommended).
pub const MAX_WITNESSES: usize = 64;
/// Most groups (at least 32 recommended).
pub const MAX_GROUPS: usize = 64;

/// Why a policy was rejected, or a checkpoint did not satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// File larger than [`MAX_POLICY_SIZE`].
    #[error("policy is larger than {MAX_POLICY_SIZE} bytes")]
    TooLarge,
    /// Syntax or semantic error on a line (1-based).
    #[error("policy line {line}: {reason}")]
    Syntax {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Bad vkey on a line.
    #[error("policy line {line}: {source}")]
    Key {
        /// Line number, from 1.
        line: usize,
        /// Key error.
        source: KeyError,
    },
    /// No `quorum` line.
    #[error("policy has no quorum line")]
    MissingQuorum,
    /// The checkpoint note is bad, or a known key's signature failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// No policy log is named after the checkpoint origin.
    #[error("no log in the policy for origin {0:?}")]
    UnknownLog(String),
    /// No signature from a policy log for this origin.
    #[error("checkpoint is not signed by a policy log")]
    NoLogSignature,
    /// Cosignatures do not satisfy the quorum.
    #[error("witness quorum not satisfied")]
    QuorumNotMet,
}

/// A log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    /// Log key (type `0x01`); its name is the log origin.
    pub key: VerifierKey,
    /// Optional URL (application specific).
    pub url: Option<String>,
}

/// A witness line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    /// Policy-local name.
    pub name: String,
    /// Witness key (type `0x04`).
    pub key: VerifierKey,
    /// Optional URL, recommended to be the tlog-witness submission prefix.
    pub url: Option<String>,
}

/// A group member or quorum target, by index into the policy's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Index into [`Policy::witnesses`].
    Witness(usize),
    /// Index into [`Policy::groups`].
    Group(usize),
}

/// A group line, thresholds resolved (`any` = 1, `all` = n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyGroup {
    /// Policy-local name.
    pub name: String,
    /// Members needed, `1 <= threshold <= members.len()`.
    pub threshold: usize,
    /// Members, each defined on an earlier line, each at most once.
    pub members: Vec<Member>,
}

/// A parsed, validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<PolicyGroup>,
    quorum: Option<Member>,
}

/// What [`Policy::verify_checkpoint`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVerified {
    /// The checkpoint, now trusted.
    pub checkpoint: Checkpoint,
    /// Name of the log key that signed it (= origin).
    pub log_key_name: String,
    /// Witnesses (policy names) whose cosignatures verified, with timestamps.
    pub cosigners: Vec<(String, u64)>,
    /// Names of witnesses and groups that are satisfied, in policy order.
    pub satisfied: Vec<String>,
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl Policy {
    /// Parses and validates a policy file.
    ///
    /// Spec ([tlog-policy, Structure](https://c2sp.org/tlog-policy#structure)):
    /// "A line defining a group can only reference names of groups and
    /// witnesses defined on preceding lines. Similarly, the quorum line must
    /// specify a witness or group defined earlier." Thresholds follow
    /// [Defining a witness group](https://c2sp.org/tlog-policy#defining-a-witness-group)
    /// ("it is required that 1 <= k <= n"), keys
    /// [Public key representation](https://c2sp.org/tlog-policy#public-key-representation),
    /// and "A policy file must include exactly one quorum line"
    /// ([Defining the quorum](https://c2sp.org/tlog-policy#defining-the-quorum)).
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::cosignature::CosignatureSigner;
    /// use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
    /// use custody_standards::policy::{Member, Policy, PolicyError};
    ///
    /// // Keys from fixed seeds: one log, two witnesses (type 0x04 keys).
    /// let log = SignerKey::from_seed("log.example/a", SIG_TYPE_ED25519, &[1; 32])?.verifier();
    /// let w1 = CosignatureSigner::from_seed("witness.example/w1", &[11; 32])?.verifier();
    /// let w2 = CosignatureSigner::from_seed("witness.example/w2", &[12; 32])?.verifier();
    /// let text = format!(
    ///     "# two witnesses, either will do\n\
    ///      log {log} https://log.example/a/\n\
    ///      witness w1 {w1}\n\
    ///      witness w2 {w2}\n\
    ///      group both-of-us any w1 w2\n\
    ///      quorum both-of-us\n"
    /// );
    /// let policy = Policy::parse(text.as_bytes())?;
    /// assert_eq!(policy.logs()[0].key, log);
    /// assert_eq!(policy.groups()[0].threshold, 1);
    /// assert_eq!(policy.quorum(), Some(Member::Group(0)));
    ///
    /// // A threshold of 3 in a group of 2 can never be met: refused, with
    /// // the line it is on.
    /// let bad = text.replace("any w1 w2", "3 w1 w2");
    /// assert_eq!(
    ///     Policy::parse(bad.as_bytes()),
    ///     Err(PolicyError::Syntax { line: 5, reason: "threshold must satisfy 1 <= k <= n" })
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(file: &[u8]) -> Result<Self, PolicyError> {
        if file.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge);
        }
        let mut p = Policy { logs: Vec::new(), witnesses: Vec::new(), groups: Vec::new(), quorum: None };
        let mut have_quorum = false;
        if !file.is_empty() && !file.ends_with(b"\n") {
            // "each line is terminated by ASCII newline".
            return Err(PolicyError::Syntax {
                line: file.split(|&b| b == b'\n').count(),
                reason: "last line has no newline",
            });
        }
        let body = file.strip_suffix(b"\n").unwrap_or(file);
        for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let err = |reason| PolicyError::Syntax { line, reason };
            // "allowed octet values are 0x09, 0x0A, 0x20-0x7E, and 0x80-0xFF".
            if raw.iter().any(|&b| !(b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)) {
                return Err(err("disallowed control character"));
            }
            let tokens: Vec<&[u8]> = raw.split(|&b| is_ws(b)).filter(|t| !t.is_empty()).collect();
            let Some(first) = tokens.first() else {
                continue;
            };
            if first.starts_with(b"#") {
                continue;
            }
            let tokens = tokens
                .iter()
                .map(|t| std::str::from_utf8(t).map_err(|_| err("non-UTF-8 name, key or URL")))
                .collect::<Result<Vec<&str>, _>>()?;
            let key = |s: &str, ty: u8| {
                let k = VerifierKey::parse(s).map_err(|source| PolicyError::Key { line, source })?;
                k.require_type(ty).map_err(|source| PolicyError::Key { line, source })?;
                Ok::<_, PolicyError>(k)
            };
            match tokens[0] {
                "log" => {
                    if !(2..=3).contains(&tokens.len()) {
                        return Err(err("expected: log <vkey> [<url>]"));
                    }
                    let k = key(tokens[1], SIG_TYPE_ED25519)?;
                    if p.logs.iter().any(|l| l.key.public_key() == k.public_key()) {
                        return Err(err("duplicate log key"));
                    }
                    if p.logs.len() == MAX_LOGS {
                        return Err(err("too many logs"));
                    }
                    p.logs.push(PolicyLog { key: k, url: tokens.get(2).map(|s| s.to_string()) });
                }
                "witness" => {
                    if !(3..=4).contains(&tokens.len()) {
                        return Err(err("expected: witness <name> <vkey> [<url>]"));
                    }
                    p.check_new_name(tokens[1]).map_err(err)?;
                    let k = key(tokens[2], SIG_TYPE_COSIGNATURE_V1)?;
                    if p.witnesses.iter().any(|w| w.key.public_key() == k.public_key()) {
                        return Err(err("duplicate witness key"));
                    }
                    if p.witnesses.len() == MAX_WITNESSES {
                        return Err(err("too many witnesses"));
                    }
                    p.witnesses.push(PolicyWitness {
                        name: tokens[1].to_owned(),
                        key: k,
                        url: tokens.get(3).map(|s| s.to_string()),
                    });
                }
                "group" => {
                    if tokens.len() < 4 {
                        return Err(err("expected: group <name> <all|any|k> <name>..."));
                    }
                    p.check_new_name(tokens[1]).map_err(err)?;
                    if p.groups.len() == MAX_GROUPS {
                        return Err(err("too many groups"));
                    }
                    let mut members = Vec::with_capacity(tokens.len() - 3);
                    for name in &tokens[3..] {
                        // "A line defining a group can only reference names
                        // ... defined on preceding lines"; `none` is
                        // "invalid as a group member".
                        let m = p.lookup(name).ok_or(err("group member not defined on an earlier line"))?;
                        if members.contains(&m) {
                            return Err(err("group member listed twice"));
                        }
                        members.push(m);
                    }
                    let n = members.len();
                    let threshold = match tokens[2] {
                        "all" => n,
                        "any" => 1,
                        k => parse_decimal_u64(k)
                            .ok_or(err("threshold is not all, any or a decimal number"))?
                            as usize,
                    };
                    if threshold < 1 || threshold > n {
                        return Err(err("threshold must satisfy 1 <= k <= n"));
                    }
                    p.groups.push(PolicyGroup { name: tokens[1].to_owned(), threshold, members });
                }
                "quorum" => {
                    if tokens.len() != 2 {
                        return Err(err("expected: quorum <name>"));
                    }
                    if have_quorum {
                        return Err(err("more than one quorum line"));
                    }
                    have_quorum = true;
                    p.quorum = match tokens[1] {
                        "none" => None,
                        name => {
                            Some(p.lookup(name).ok_or(err("quorum name not defined on an earlier line"))?)
                        }
                    };
                }
                _ => return Err(err("unknown keyword")),
            }
        }
        if !have_quorum {
            return Err(PolicyError::MissingQuorum);
        }
        Ok(p)
    }

    fn lookup(&self, name: &str) -> Option<Member> {
        if let Some(i) = self.witnesses.iter().position(|w| w.name == name) {
            return Some(Member::Witness(i));
        }
        self.groups.iter().position(|g| g.name == name).map(Member::Group)
    }

    fn check_new_name(&self, name: &str) -> Result<(), &'static str> {
        if name == "none" {
            return Err("the name none is reserved");
        }
        if self.lookup(name).is_some() {
            return Err("name already defined (witnesses and groups share one namespace)");
        }
        Ok(())
    }

    /// Trusted logs, in file order.
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// Known witnesses, in file order.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// Groups, in file order (each refers only to earlier entries).
    pub fn groups(&self) -> &[PolicyGroup] {
        &self.groups
    }

    /// The quorum target; `None` for `quorum none`.
    pub fn quorum(&self) -> Option<Member> {
        self.quorum
    }

    /// The name of a member.
    pub fn member_name(&self, m: Member) -> &str {
        match m {
            Member::Witness(i) => &self.witnesses[i].name,
            Member::Group(i) => &self.groups[i].name,
        }
    }

    /// Evaluates the quorum given which witnesses cosigned (by index).
    /// Returns whether it is met and the satisfied names (witnesses, then
    /// groups, in file order). Groups refer only to earlier groups, so one
    /// pass in order is enough.
    pub fn evaluate(&self, cosigned: &[bool]) -> (bool, Vec<String>) {
        let w_ok: Vec<bool> =
            (0..self.witnesses.len()).map(|i| cosigned.get(i).copied().unwrap_or(false)).collect();
        let mut g_ok: Vec<bool> = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let count = g
                .members
                .iter()
                .filter(|m| match **m {
                    Member::Witness(i) => w_ok[i],
                    Member::Group(i) => g_ok[i],
                })
                .count();
            g_ok.push(count >= g.threshold);
        }
        let met = match self.quorum {
            None => true,
            Some(Member::Witness(i)) => w_ok[i],
            Some(Member::Group(i)) => g_ok[i],
        };
        let satisfied = self
            .witnesses
            .iter()
            .zip(&w_ok)
            .filter(|(_, ok)| **ok)
            .map(|(w, _)| w.name.clone())
            .chain(self.groups.iter().zip(&g_ok).filter(|(_, ok)| **ok).map(|(g, _)| g.name.clone()))
            .collect();
        (met, satisfied)
    }

    /// Verifies a signed checkpoint note against the policy: it must be
    /// signed by a policy log whose key name is the origin (tlog-policy:
    /// the log's key name "MUST correspond to the log's origin line"), and
    /// the verified witness cosignatures must satisfy the quorum. A failing
    /// signature from any policy key rejects the note.
    pub fn verify_checkpoint(&self, msg: &[u8]) -> Result<PolicyVerified, PolicyError> {
        let origin = Checkpoint::parse(&crate::note::Note::parse(msg)?.text)?.origin;
        let logs: Vec<&PolicyLog> = self.logs.iter().filter(|l| l.key.name() == origin).collect();
        if logs.is_empty() {
            return Err(PolicyError::UnknownLog(origin));
        }
        let mut verifiers: Vec<&dyn NoteVerifier> =
            logs.iter().map(|l| &l.key as &dyn NoteVerifier).collect();
        verifiers.extend(self.witnesses.iter().map(|w| &w.key as &dyn NoteVerifier));
        let opened = open_note(msg, &verifiers)?;
        let checkpoint = Checkpoint::parse(&opened.note.text)?;
        let log_key_name = opened
            .verified
            .iter()
            .find(|v| v.verifier < logs.len())
            .map(|v| v.name.clone())
            .ok_or(PolicyError::NoLogSignature)?;
        let mut cosigned = vec![false; self.witnesses.len()];
        let mut cosigners = Vec::new();
        for v in opened.verified.iter().filter(|v| v.verifier >= logs.len()) {
            let w = v.verifier - logs.len();
            cosigned[w] = true;
            // Type 0x04 verification succeeded, so the timestamp is present.
            cosigners.push((self.witnesses[w].name.clone(), v.timestamp.unwrap_or_default()));
        }
        let (met, satisfied) = self.evaluate(&cosigned);
        if !met {
            return Err(PolicyError::QuorumNotMet);
        }
        Ok(PolicyVerified { checkpoint, log_key_name, cosigners, satisfied })
    }
}
