//! The client's trust in a log: a checkpoint is used only if it satisfies
//! the policy (log signature and witness quorum) *and* is consistent with
//! the latest checkpoint this client verified before, proven with an RFC
//! 9162 consistency proof checked by `custody-core`. Only then is it
//! remembered (atomically), so the remembered checkpoint only ever grows.
//!
//! An inconsistency (two policy-satisfying checkpoints that cannot both be
//! views of one append-only log) is written up as a self-contained evidence
//! report and returned as [`Error::Inconsistent`] (exit code 3).

use std::path::PathBuf;

use custody_core::policy::PolicyVerified;
use custody_core::{verify_consistency, Checkpoint, Hash, Policy};

use crate::client::LogClient;
use crate::error::{Error, Result};
use crate::home::{read_capped, write_atomic, Home};

/// A checkpoint that satisfied the policy and is consistent with local state.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The signed note, verbatim (with every cosignature).
    pub note: Vec<u8>,
    /// Its parsed contents.
    pub checkpoint: Checkpoint,
    /// Policy witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
}

impl Trusted {
    fn from_verified(note: Vec<u8>, v: PolicyVerified) -> Self {
        Trusted {
            note,
            checkpoint: v.checkpoint,
            cosigners: v.cosigners.into_iter().map(|(n, _)| n).collect(),
        }
    }
}

/// Checkpoint verification against a policy and the remembered state.
pub struct Trust<'a> {
    home: &'a Home,
    policy: &'a Policy,
    client: &'a LogClient,
}

impl<'a> Trust<'a> {
    /// Trust for the log behind `client`.
    pub fn new(home: &'a Home, policy: &'a Policy, client: &'a LogClient) -> Self {
        Trust { home, policy, client }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        self.policy
    }

    /// The log client.
    pub fn client(&self) -> &LogClient {
        self.client
    }

    /// Fetches the log's current checkpoint and accepts it (see [`Trust::accept`]).
    pub fn refresh(&self) -> Result<Trusted> {
        let note = self.client.checkpoint()?;
        self.accept(&note)
    }

    /// The remembered checkpoint for `origin`, re-verified against the
    /// policy (a policy change that no longer trusts it is a config error).
    pub fn remembered(&self, origin: &str) -> Result<Option<Trusted>> {
        let path = self.home.checkpoint_file(origin);
        let note = match read_capped(&path, crate::client::MAX_CHECKPOINT) {
            Ok(n) => n,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let v = self.policy.verify_checkpoint(&note).map_err(|e| {
            Error::Config(format!(
                "remembered checkpoint {} no longer satisfies the policy: {e}",
                path.display()
            ))
        })?;
        Ok(Some(Trusted::from_verified(note, v)))
    }

    /// Accepts a checkpoint note from the log: it must satisfy the policy
    /// and be consistent with the remembered checkpoint of its origin. The
    /// larger of the two is remembered and returned (a log serving an older
    /// checkpoint than one we saw is tolerated once the older one is proven
    /// a prefix, and the newer one stays in use).
    pub fn accept(&self, note: &[u8]) -> Result<Trusted> {
        let v = self
            .policy
            .verify_checkpoint(note)
            .map_err(|e| Error::verify(format!("checkpoint from {}: {e}", self.client.base())))?;
        let new = Trusted::from_verified(note.to_vec(), v);
        let origin = new.checkpoint.origin.clone();
        let Some(old) = self.remembered(&origin)? else {
            self.remember(&new)?;
            return Ok(new);
        };
        let (o, n) = (&old.checkpoint, &new.checkpoint);
        if o.size == n.size {
            if o.root != n.root {
                return Err(self.evidence(
                    &old,
                    &new,
                    None,
                    "two checkpoints of the same size with different roots",
                ));
            }
            return Ok(old);
        }
        let (small, big) = if o.size < n.size { (&old, &new) } else { (&new, &old) };
        let proof = self.client.consistency_proof(small.checkpoint.size, big.checkpoint.size)?;
        if let Err(e) = verify_consistency(
            small.checkpoint.size,
            big.checkpoint.size,
            &proof,
            &small.checkpoint.root,
            &big.checkpoint.root,
        ) {
            return Err(self.evidence(&old, &new, Some(&proof), &format!("consistency proof failed: {e}")));
        }
        if n.size > o.size {
            self.remember(&new)?;
            Ok(new)
        } else {
            tracing::warn!(
                served = n.size,
                remembered = o.size,
                "log served an older checkpoint than one already verified"
            );
            Ok(old)
        }
    }

    /// Stores `t` unless another process already stored a larger one
    /// (both were verified consistent with what each saw, so keeping the
    /// larger never weakens the state).
    fn remember(&self, t: &Trusted) -> Result<()> {
        if let Ok(Some(current)) = self.remembered(&t.checkpoint.origin) {
            if current.checkpoint.size >= t.checkpoint.size {
                return Ok(());
            }
        }
        write_atomic(&self.home.checkpoint_file(&t.checkpoint.origin), &t.note, 0o644)
    }

    /// Writes the evidence report and returns the error to exit with.
    fn evidence(&self, old: &Trusted, new: &Trusted, proof: Option<&[Hash]>, detail: &str) -> Error {
        let report = evidence_report(self.client.base(), old, new, proof, detail);
        eprint!("{report}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path: PathBuf = self.home.evidence_dir().join(format!(
            "{}-{now}.txt",
            self.home
                .checkpoint_file(&old.checkpoint.origin)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("log")
        ));
        if let Err(e) = write_atomic(&path, report.as_bytes(), 0o644) {
            tracing::error!("could not write the evidence report: {e}");
        }
        Error::Inconsistent { detail: detail.to_owned(), report: path }
    }
}

/// A self-contained inconsistency report: both signed checkpoints
/// verbatim (each verifiable against the policy on its own) and the proof
/// that failed, so a third party can check the claim without this client.
pub fn evidence_report(
    log: &str,
    old: &Trusted,
    new: &Trusted,
    proof: Option<&[Hash]>,
    detail: &str,
) -> String {
    let mut r = String::from("custody inconsistency evidence v1\n");
    r.push_str(&format!("log: {log}\norigin: {}\nfinding: {detail}\n", old.checkpoint.origin));
    r.push_str(&format!("\n-- remembered checkpoint (size {}) --\n", old.checkpoint.size));
    r.push_str(&String::from_utf8_lossy(&old.note));
    r.push_str(&format!("\n-- served checkpoint (size {}) --\n", new.checkpoint.size));
    r.push_str(&String::from_utf8_lossy(&new.note));
    if let Some(p) = proof {
        let (a, b) = if old.checkpoint.size < new.checkpoint.size {
            (old.checkpoint.size, new.checkpoint.size)
        } else {
            (new.checkpoint.size, old.checkpoint.size)
        };
        r.push_str(&format!("\n-- consistency proof served by the log (old {a}, new {b}) --\n"));
        for h in p {
            r.push_str(&h.to_base64());
            r.push('\n');
        }
    }
    r.push_str("-- end --\n");
    r
}
