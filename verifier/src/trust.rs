//! The client's trust in a log: a checkpoint is used only if it satisfies
//! the policy (log signature and witness quorum) *and* is consistent with
//! the latest checkpoint this client verified before, proven with an RFC
//! 9162 consistency proof checked by `custody-standards`. Only then is it
//! remembered (atomically), so the remembered checkpoint only ever grows.
//!
//! An inconsistency (two policy-satisfying checkpoints that cannot both be
//! views of one append-only log) is written up as a self-contained evidence
//! report and returned as [`Error::Inconsistent`] (exit code 3).

use std::path::PathBuf;

use custody_registry::evidence::{Evidence, EvidenceCheckpoint, PrefixProof};
use custody_standards::policy::PolicyVerified;
use custody_standards::{
    consistency_proof, tree_hash, verify_consistency, Checkpoint, Hash, Policy, TileHashReader,
};

use crate::client::LogClient;
use crate::error::{Error, Result};
use crate::fetch::HttpTiles;
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

    /// Builds the evidence, writes it and returns the error to exit with.
    ///
    /// When the sizes differ, the log's own tiles for the larger tree
    /// (authenticated against its root by core's `TileHashReader`) give the
    /// root that tree has at the smaller size, with a consistency proof:
    /// core split-view evidence (`custody verify evidence` checks it with the
    /// log key alone). If that root *is* the smaller checkpoint's root, the
    /// checkpoints are consistent after all and only the served proof was
    /// bad: a verification failure, not a split view.
    fn evidence(&self, old: &Trusted, new: &Trusted, proof: Option<&[Hash]>, detail: &str) -> Error {
        let (small, big) = if old.checkpoint.size <= new.checkpoint.size { (old, new) } else { (new, old) };
        let prefix = if small.checkpoint.size == big.checkpoint.size {
            None
        } else {
            match self.prefix_proof(small.checkpoint.size, big) {
                Ok(p) if p.prefix == small.checkpoint.root => {
                    return Error::verify(format!(
                        "the log served an invalid consistency proof ({detail}), though its tiles show the checkpoints are consistent"
                    ))
                }
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!("no split-view proof from the log's tiles: {e}");
                    None
                }
            }
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let stem = format!(
            "{}-{}",
            self.home
                .checkpoint_file(&old.checkpoint.origin)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("log"),
            now.as_nanos()
        );
        let mut report = evidence_report(self.client.base(), old, new, proof, detail);
        let mut path: PathBuf = self.home.evidence_dir().join(format!("{stem}.txt"));
        let provable = small.checkpoint.size == big.checkpoint.size || prefix.is_some();
        if provable {
            let ev = Evidence {
                origin: old.checkpoint.origin.clone(),
                detected: now.as_secs(),
                reporter: "custody-verifier".into(),
                checkpoints: [
                    EvidenceCheckpoint { note: old.note.clone(), source: "remembered by this client".into() },
                    EvidenceCheckpoint {
                        note: new.note.clone(),
                        source: format!("served by {}", self.client.base()),
                    },
                ],
                prefix,
            };
            match ev.to_bytes() {
                Ok(bytes) => {
                    let p = self.home.evidence_dir().join(format!("{stem}.evidence"));
                    match write_atomic(&p, &bytes, 0o644) {
                        Ok(()) => {
                            report.push_str(&format!(
                                "split-view evidence (custody verify evidence): {}\n",
                                p.display()
                            ));
                            path = p;
                        }
                        Err(e) => tracing::error!("could not write the evidence: {e}"),
                    }
                }
                Err(e) => tracing::error!("could not encode the evidence: {e}"),
            }
        }
        eprint!("{report}");
        let txt = self.home.evidence_dir().join(format!("{stem}.txt"));
        if let Err(e) = write_atomic(&txt, report.as_bytes(), 0o644) {
            tracing::error!("could not write the evidence report: {e}");
        }
        Error::Inconsistent { detail: detail.to_owned(), report: path }
    }

    /// The root the tree of `big` has at `size`, and the consistency proof
    /// from there to `big`, from the log's tiles authenticated against
    /// `big`'s root.
    fn prefix_proof(&self, size: u64, big: &Trusted) -> Result<PrefixProof> {
        let reader =
            TileHashReader::new(big.checkpoint.size, big.checkpoint.root, HttpTiles::new(self.client));
        let prefix = tree_hash(size, &reader).map_err(|e| Error::Network(format!("tiles: {e}")))?;
        let proof = consistency_proof(size, big.checkpoint.size, &reader)
            .map_err(|e| Error::Network(format!("tiles: {e}")))?;
        Ok(PrefixProof { prefix, proof })
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
