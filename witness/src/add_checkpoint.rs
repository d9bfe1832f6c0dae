//! C2SP tlog-witness `add-checkpoint`: verify, check consistency with the
//! latest cosigned checkpoint, persist, cosign.
//!
//! Each check quotes the spec sentence it implements. Order matters for the
//! status codes: the origin is looked up before signatures are checked (404
//! before 403), and the old size is compared only after the signature has
//! verified, so unauthenticated clients learn nothing about our state.
//!
//! Two answers share "409 Conflict", as the spec says: a stale `old` size
//! ([`AddError::Conflict`], with the `text/x.tlog.size` body a client retries
//! from) and a second root for the size we cosigned
//! ([`AddError::RootConflict`], a JSON body without that content type, so a
//! client cannot mistake it for a retry hint). The second is also a split
//! view proven by the request alone, so it is handled like any failed
//! consistency check: the witness looks for evidence.

use std::time::Instant;

use custody_standards::checkpoint::{open_checkpoint_with, Checkpoint, CheckpointError};
use custody_standards::cosignature::CosignatureError;
use custody_standards::note::{Note, NoteError, NoteSignature, NoteVerifier};
use custody_standards::verify::VerifyError;
use custody_standards::witness::{AddCheckpointRequest, WitnessBodyError};
use custody_standards::{empty_root, verify_consistency};

use crate::state::{now_secs, Witness};
use crate::store::{Latest, Op, StoreError};

/// Why a checkpoint was not cosigned. [`crate::api::error`] maps each
/// variant to its HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The body violates the request format (400; 413 if too large).
    #[error("malformed request: {0}")]
    Body(#[from] WitnessBodyError),
    /// The checkpoint note or text is malformed (400).
    #[error("malformed checkpoint: {0}")]
    Malformed(CheckpointError),
    /// No log with this origin is witnessed (404).
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No signature from a trusted log key verified, or one failed (403).
    #[error("checkpoint is not validly signed by a trusted key for {origin:?}: {reason}")]
    Unauthorized {
        /// Checkpoint origin.
        origin: String,
        /// Why.
        reason: NoteError,
    },
    /// `old` above the checkpoint size (400).
    #[error("old size {old} is larger than the checkpoint size {size}")]
    OldAboveSize {
        /// Old size sent.
        old: u64,
        /// Checkpoint size.
        size: u64,
    },
    /// `old` is not our latest cosigned size (409 with the size body).
    #[error("the latest cosigned size is {0}")]
    Conflict(u64),
    /// `old` equals the checkpoint size, which we cosigned with another root
    /// (409 without the size body): the log signed two roots for one size.
    #[error("size {0} was cosigned with a different root")]
    RootConflict(u64),
    /// The checkpoint is not consistent with what we cosigned, or the
    /// request contradicts itself (422).
    #[error("inconsistent checkpoint: {0}")]
    Inconsistent(String),
    /// The origin is frozen by split-view evidence (503).
    #[error("refusing to cosign for this log: split-view evidence {0} is recorded (see /evidence)")]
    Frozen(String),
    /// Durable storage failed or is shut down (503).
    #[error("storage unavailable: {0}")]
    Store(#[from] StoreError),
    /// Our own key could not sign (500).
    #[error("cosigning failed: {0}")]
    Cosign(#[from] CosignatureError),
}

impl AddError {
    /// Whether the failure involves a log-signed checkpoint that does not
    /// extend what we cosigned: worth a tile-based look for a split view.
    pub fn is_inconsistency(&self) -> bool {
        matches!(self, AddError::Inconsistent(_) | AddError::RootConflict(_))
    }
}

/// A successful add-checkpoint: the reply body and what was cosigned.
#[derive(Debug, Clone)]
pub struct Cosigned {
    /// Cosignature lines, one per witness key, each ending in `\n`.
    pub lines: String,
    /// The checkpoint now recorded as latest.
    pub latest: Latest,
}

impl Witness {
    /// Handles one `POST /add-checkpoint` body.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<Cosigned, AddError> {
        let req = AddCheckpointRequest::parse(body)?;
        self.add_checkpoint_request(req).await
    }

    /// The request after framing; pull mode calls this directly.
    pub async fn add_checkpoint_request(&self, req: AddCheckpointRequest) -> Result<Cosigned, AddError> {
        let started = Instant::now();
        let note = Note::parse(&req.checkpoint).map_err(|e| AddError::Malformed(e.into()))?;
        let parsed = Checkpoint::parse(&note.text).map_err(AddError::Malformed)?;
        // "If the checkpoint origin is unknown, the witness MUST respond with
        // a 404 Not Found HTTP status code."
        let trust = self.trust();
        let log =
            trust.logs.get(&parsed.origin).ok_or_else(|| AddError::UnknownOrigin(parsed.origin.clone()))?;
        // "The witness MUST verify the checkpoint signature against the
        // public key(s) it trusts for the checkpoint origin, and it MUST
        // ignore signatures from unknown keys. ... If none of the signatures
        // verify against a trusted public key, the witness MUST respond with
        // a 403 Forbidden HTTP status code."
        let opened = {
            let verifiers: Vec<&dyn NoteVerifier> = log.keys.iter().map(|k| k as &dyn NoteVerifier).collect();
            open_checkpoint_with(&req.checkpoint, &verifiers).map_err(|e| match e {
                CheckpointError::Note(reason) => {
                    AddError::Unauthorized { origin: parsed.origin.clone(), reason }
                }
                other => AddError::Malformed(other),
            })?
        };
        let cp = opened.checkpoint;
        // "The old size MUST be equal to or lower than the checkpoint size.
        // Otherwise, the witness MUST respond with a 400 Bad Request."
        if req.old_size > cp.size {
            return Err(AddError::OldAboveSize { old: req.old_size, size: cp.size });
        }
        // "The proof MUST be empty if the old size is zero." Checked here,
        // before our state, because it is wrong whatever we cosigned.
        if req.old_size == 0 && !req.proof.is_empty() {
            return Err(AddError::Inconsistent("a consistency proof from size 0 must be empty".into()));
        }
        if cp.size == 0 && cp.root != empty_root() {
            return Err(AddError::Inconsistent("an empty tree must have the empty-tree root".into()));
        }
        // Cheap early answer for the common conflict (a client with a stale
        // old size), before spending a signature on it. Rechecked under the
        // lock below, which is what makes the answer authoritative.
        let cell = self.origin(&cp.origin);
        {
            let st = self.lock_origin(&cell);
            let known = st.pending.as_ref().map_or(0, |l| l.size);
            if st.frozen.is_none() && req.old_size != known {
                return Err(AddError::Conflict(known));
            }
        }
        // Cosign before taking the origin lock for the update (signing is
        // the costly part); the signatures are thrown away if a check below
        // fails.
        let now = now_secs();
        let mut ours = Vec::with_capacity(self.signers().len());
        for s in self.signers() {
            ours.push(s.sign(&opened.note.note.text, now)?);
        }
        let lines: String = ours.iter().map(NoteSignature::to_line).collect();
        if let Some(stall) = self.test_stall() {
            tokio::time::sleep(stall).await;
        }
        // What we store and serve: the log's verified signatures and ours.
        let stored = Note {
            text: opened.note.note.text.clone(),
            signatures: opened
                .note
                .note
                .signatures
                .iter()
                .filter(|s| opened.note.verified.iter().any(|v| v.name == s.name && v.key_id == s.key_id))
                .cloned()
                .chain(ours)
                .collect(),
        }
        .to_bytes()
        .map_err(|e| AddError::Malformed(e.into()))?;
        let latest = Latest { size: cp.size, root: cp.root, note: std::sync::Arc::new(stored) };

        let done = {
            let mut st = self.lock_origin(&cell);
            if self.committer().is_failed() {
                return Err(
                    StoreError::Closed("an earlier synced write failed; restart needed".into()).into()
                );
            }
            if let Some(id) = &st.frozen {
                return Err(AddError::Frozen(id.clone()));
            }
            // "The witness MUST check that the old size matches the size of
            // the latest checkpoint it cosigned for the checkpoint's origin
            // (or zero if it never cosigned a checkpoint for that origin). If
            // it doesn't match, the witness MUST respond with a 409 Conflict."
            let known = st.pending.as_ref().map(|l| (l.size, l.root));
            let (known_size, known_root) = known.unwrap_or((0, empty_root()));
            if req.old_size != known_size {
                return Err(AddError::Conflict(known_size));
            }
            if known.is_some() {
                // "If the old size matches the checkpoint size, the witness
                // MUST check that the root hashes are also identical. If they
                // don't match, the witness MUST respond with a 409 Conflict
                // HTTP status code."
                if req.old_size == cp.size && known_root != cp.root {
                    return Err(AddError::RootConflict(cp.size));
                }
                // "If the Merkle Consistency Proof doesn't verify, the witness
                // MUST respond with a 422 Unprocessable Entity."
                verify_consistency(req.old_size, cp.size, &req.proof, &known_root, &cp.root)
                    .map_err(|e: VerifyError| AddError::Inconsistent(format!("consistency proof: {e}")))?;
            }
            // "The witness MUST persist the new checkpoint before responding."
            // Queued under the lock: the next request for this origin chains
            // on it and can only become durable in the same or a later batch.
            st.pending = Some(latest.clone());
            self.committer().submit(vec![Op::Latest { origin: cp.origin.clone(), latest: latest.clone() }])
        };
        let result = done.await.unwrap_or_else(|_| Err(StoreError::Closed("committer stopped".into())));
        if let Err(e) = result {
            // The committer refuses everything from now on; the pending
            // state is moot until a restart reloads what is durable.
            return Err(e.into());
        }
        {
            let mut st = self.lock_origin(&cell);
            if st.durable.as_ref().map_or(true, |d| d.size <= latest.size) {
                st.durable = Some(latest.clone());
            }
        }
        self.metrics().observe_cosign(started.elapsed().as_secs_f64());
        tracing::debug!(origin = %cp.origin, size = cp.size, old = req.old_size, "cosigned");
        Ok(Cosigned { lines, latest })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use custody_standards::checkpoint::sign_checkpoint;
    use custody_standards::cosignature::CosignatureSigner;
    use custody_standards::keys::SIG_TYPE_ED25519;
    use custody_standards::{consistency_proof, leaf_hash, MemoryHashStore, SignerKey};

    use super::*;
    use crate::committer::Committer;
    use crate::log_list::LogList;
    use crate::metrics::Metrics;
    use crate::state::Trust;
    use crate::store::Store;

    /// A store that records what reached "disk", and can be made to fail.
    #[derive(Default)]
    struct Disk {
        written: Mutex<Vec<(String, u64)>>,
        fail: AtomicBool,
        writes: AtomicUsize,
    }

    impl Store for Disk {
        fn write(&self, ops: &[Op]) -> Result<(), StoreError> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Corrupt("injected write failure".into()));
            }
            for op in ops {
                if let Op::Latest { origin, latest } = op {
                    self.written.lock().unwrap().push((origin.clone(), latest.size));
                }
            }
            Ok(())
        }
        fn all_latest(&self) -> Result<Vec<(String, Latest)>, StoreError> {
            Ok(vec![])
        }
        fn frozen(&self) -> Result<Vec<(String, String)>, StoreError> {
            Ok(vec![])
        }
        fn all_evidence(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            Ok(vec![])
        }
        fn evidence(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
    }

    const ORIGIN: &str = "example.com/unit";

    fn setup(disk: Arc<Disk>) -> (Arc<Witness>, SignerKey) {
        let key = SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[3; 32]).unwrap();
        let list = LogList::parse(format!("logs/v0\nvkey {}\n", key.verifier()).as_bytes()).unwrap();
        let signer = CosignatureSigner::from_seed("witness.example/unit", &[4; 32]).unwrap();
        let metrics = Metrics::new();
        let (committer, _thread) = Committer::start(disk.clone(), metrics.clone()).unwrap();
        let trust = Trust { logs: list, peers: vec![] };
        let w = Witness::open("witness.example/unit".into(), vec![signer], trust, disk, committer, metrics)
            .unwrap();
        (w, key)
    }

    fn body(tree: &MemoryHashStore, key: &SignerKey, old: u64) -> Vec<u8> {
        let cp =
            Checkpoint { origin: ORIGIN.into(), size: tree.size(), root: tree.root(), extensions: vec![] };
        let proof = consistency_proof(old, tree.size(), tree).unwrap();
        AddCheckpointRequest { old_size: old, proof, checkpoint: sign_checkpoint(&cp, key).unwrap() }
            .to_bytes()
    }

    #[tokio::test]
    async fn a_reply_means_the_checkpoint_reached_the_store() {
        let disk = Arc::new(Disk::default());
        let (w, key) = setup(disk.clone());
        let mut tree = MemoryHashStore::new();
        for i in 0..3u8 {
            tree.append(leaf_hash(&[i]));
        }
        let c = w.add_checkpoint(&body(&tree, &key, 0)).await.unwrap();
        assert_eq!(disk.written.lock().unwrap().as_slice(), &[(ORIGIN.to_owned(), 3)]);
        assert_eq!(w.latest(ORIGIN).unwrap(), c.latest);
        assert!(c.lines.starts_with("\u{2014} witness.example/unit "));
    }

    #[tokio::test]
    async fn a_failed_write_is_never_acknowledged_and_stops_cosigning() {
        let disk = Arc::new(Disk::default());
        let (w, key) = setup(disk.clone());
        let mut tree = MemoryHashStore::new();
        tree.append(leaf_hash(b"a"));
        disk.fail.store(true, Ordering::SeqCst);
        let err = w.add_checkpoint(&body(&tree, &key, 0)).await.unwrap_err();
        assert!(matches!(err, AddError::Store(_)), "{err}");
        assert!(w.latest(ORIGIN).is_none(), "nothing durable is shown");
        // Even with a healthy disk again, the witness refuses until restart.
        disk.fail.store(false, Ordering::SeqCst);
        let writes = disk.writes.load(Ordering::SeqCst);
        tree.append(leaf_hash(b"b"));
        let err = w.add_checkpoint(&body(&tree, &key, 1)).await.unwrap_err();
        assert!(matches!(err, AddError::Store(_)), "{err}");
        assert_eq!(disk.writes.load(Ordering::SeqCst), writes, "no further write attempted");
        assert!(disk.written.lock().unwrap().is_empty());
    }
}
