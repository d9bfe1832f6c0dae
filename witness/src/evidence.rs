//! Split-view detection and durable evidence.
//!
//! [`Witness::compare`] takes any checkpoint signed by a log we witness (from
//! a peer, a push, a poll of the log, or a rejected add-checkpoint request)
//! and checks it against our latest cosigned checkpoint of that origin:
//! - same size, different root: proof by itself;
//! - different sizes: the larger tree's root at the smaller size, with a
//!   consistency proof, computed from the log's tiles authenticated against
//!   the larger checkpoint ([`crate::log_client::prefix_proof`]). If the log
//!   cannot serve that tree (for example a split log showing us the other
//!   view), the question stays open and is retried: we never call a split
//!   view without proof.
//!
//! [`Witness::record_evidence`] verifies evidence with `custody-standards` exactly
//! as an offline verifier would, writes it durably (synced, together with the
//! freeze), and only then refuses cosignatures for the origin. A split is
//! recorded once: evidence for the same two signed checkpoints ([`split_key`])
//! is the same evidence, so a peer re-serving cleared evidence with another
//! `detected` time, or the log showing the same two trees again, does not
//! freeze the origin again.

use custody_registry::evidence::{Evidence, EvidenceCheckpoint, EvidenceError, PrefixProof};
use custody_standards::checkpoint::{open_checkpoint_with, Checkpoint, CheckpointError};
use custody_standards::hash::sha256;
use custody_standards::note::{Note, NoteVerifier};

use crate::log_client::{prefix_proof, HttpClient};
use crate::state::{now_secs, Witness};
use crate::store::{Latest, Op, StoreError};

/// Evidence records kept per origin: the first proves the point; a few more
/// help an investigation; beyond that a hostile peer could fill the disk.
pub const MAX_EVIDENCE_PER_ORIGIN: usize = 16;

/// Why a checkpoint could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Not a well-formed checkpoint note.
    #[error("malformed checkpoint: {0}")]
    Malformed(CheckpointError),
    /// We do not witness this origin.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// Not validly signed by the log's keys.
    #[error("checkpoint is not validly signed by the log: {0}")]
    Unauthorized(CheckpointError),
    /// Evidence could not be recorded.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// Why evidence was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// We do not witness the evidence's origin, so we cannot judge it.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// It does not verify with the log keys we trust.
    #[error("evidence does not verify: {0}")]
    Invalid(#[from] EvidenceError),
    /// Writing it failed.
    #[error("storing evidence: {0}")]
    Store(#[from] StoreError),
}

/// The result of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// We have cosigned nothing for this origin yet.
    NothingToCompare,
    /// Consistent with our latest checkpoint.
    Consistent,
    /// Could not be decided now (no log URL, tiles unavailable or not
    /// authenticating); retried later.
    Unresolved(String),
    /// Split view: evidence with this ID is recorded and the origin frozen.
    SplitView(String),
}

/// One side of the evidence from our own latest checkpoint.
fn ours(w: &Witness, latest: &Latest) -> EvidenceCheckpoint {
    EvidenceCheckpoint { note: latest.note.to_vec(), source: format!("cosigned by {}", w.name()) }
}

impl Witness {
    /// Compares a log-signed checkpoint note with our latest cosigned one
    /// (see the module docs). `source` says where it came from (one line).
    pub async fn compare(
        &self,
        client: &HttpClient,
        note: &[u8],
        source: &str,
    ) -> Result<Comparison, CompareError> {
        let parsed = Note::parse(note).map_err(|e| CompareError::Malformed(e.into()))?;
        let origin = Checkpoint::parse(&parsed.text).map_err(CompareError::Malformed)?.origin;
        let trust = self.trust();
        let log = trust.logs.get(&origin).ok_or_else(|| CompareError::UnknownOrigin(origin.clone()))?;
        let theirs = {
            let keys: Vec<&dyn NoteVerifier> = log.keys.iter().map(|k| k as &dyn NoteVerifier).collect();
            open_checkpoint_with(note, &keys).map_err(CompareError::Unauthorized)?.checkpoint
        };
        let Some(mine) = self.latest(&origin) else {
            return Ok(Comparison::NothingToCompare);
        };
        let theirs_cp = EvidenceCheckpoint { note: note.to_vec(), source: one_line(source) };
        if mine.size == theirs.size {
            if mine.root == theirs.root {
                return Ok(Comparison::Consistent);
            }
            let id = self.record_evidence(self.build_evidence(ours(self, &mine), theirs_cp, None)).await?;
            return Ok(Comparison::SplitView(id));
        }
        let Some(url) = log.url.as_deref() else {
            return Ok(Comparison::Unresolved(
                "no url for the log in the log list; cannot fetch tiles".into(),
            ));
        };
        let (small, large) = if mine.size < theirs.size {
            ((mine.size, mine.root), (theirs.size, theirs.root))
        } else {
            ((theirs.size, theirs.root), (mine.size, mine.root))
        };
        let p = match prefix_proof(client, url, small.0, large.0, large.1).await {
            Ok(p) => p,
            Err(e) => {
                return Ok(Comparison::Unresolved(format!(
                    "no proof between sizes {} and {} from the log's tiles: {e}",
                    small.0, large.0
                )))
            }
        };
        if p.prefix == small.1 {
            return Ok(Comparison::Consistent);
        }
        let id = self.record_evidence(self.build_evidence(ours(self, &mine), theirs_cp, Some(p))).await?;
        Ok(Comparison::SplitView(id))
    }

    /// Evidence from our latest checkpoint and another one.
    pub(crate) fn build_evidence(
        &self,
        mine: EvidenceCheckpoint,
        theirs: EvidenceCheckpoint,
        prefix: Option<PrefixProof>,
    ) -> Evidence {
        let origin = Note::parse(&mine.note)
            .ok()
            .and_then(|n| Checkpoint::parse(&n.text).ok())
            .map(|c| c.origin)
            .unwrap_or_default();
        Evidence {
            origin,
            detected: now_secs(),
            reporter: self.name().to_owned(),
            checkpoints: [mine, theirs],
            prefix,
        }
    }

    /// Verifies `ev` against the log keys we trust, stores it durably with
    /// the freeze of its origin, then refuses cosignatures for that origin.
    /// Returns the evidence ID (also for evidence we already had).
    pub async fn record_evidence(&self, ev: Evidence) -> Result<String, RecordError> {
        let trust = self.trust();
        let log = trust.logs.get(&ev.origin).ok_or_else(|| RecordError::UnknownOrigin(ev.origin.clone()))?;
        // Never call a split view without proof: the same check anyone
        // verifying the evidence offline will run.
        let split = {
            let keys: Vec<&dyn NoteVerifier> = log.keys.iter().map(|k| k as &dyn NoteVerifier).collect();
            ev.verify(&keys)?
        };
        let bytes = ev.to_bytes()?;
        let id = sha256(&bytes).to_hex();
        if self.has_evidence(&id) {
            return Ok(id);
        }
        // The same two signed checkpoints, whatever the unsigned fields
        // (`detected`, `reporter`, sources) say: already known, and if an
        // operator cleared the freeze it stays cleared.
        if let Some(known) = split_key(&ev).and_then(|k| self.evidence_for_split(&k)) {
            self.note_duplicate(id);
            return Ok(known);
        }
        let cell = self.origin(&ev.origin);
        let already = self.lock_origin(&cell).frozen.clone();
        if let Some(existing) = already {
            if self.evidence_count_for(&ev.origin) >= MAX_EVIDENCE_PER_ORIGIN {
                return Ok(existing);
            }
        }
        let done =
            self.committer().submit(vec![Op::Evidence { id: id.clone(), origin: ev.origin.clone(), bytes }]);
        done.await.unwrap_or_else(|_| Err(StoreError::Closed("committer stopped".into())))?;
        self.lock_origin(&cell).frozen = Some(id.clone());
        self.index_evidence(id.clone(), &ev);
        tracing::error!(
            origin = %ev.origin,
            evidence = %id,
            reporter = %ev.reporter,
            smaller_size = split.smaller.size,
            larger_size = split.larger.size,
            "SPLIT VIEW: the log signed checkpoints that are not consistent; \
             refusing further cosignatures for this origin until an operator clears it"
        );
        Ok(id)
    }
}

/// What identifies a split view: the two checkpoints the log signed
/// (origin, size, root and extension lines), in a canonical order. Not the
/// evidence ID, which hashes the whole text, including the fields any peer
/// can rewrite (`detected`, `reporter`, the sources, the cosignatures on
/// the notes) without changing what is proven. `None` if a note does not
/// parse (such evidence never verifies).
pub fn split_key(ev: &Evidence) -> Option<String> {
    let mut texts = Vec::with_capacity(2);
    for c in &ev.checkpoints {
        let note = Note::parse(&c.note).ok()?;
        let cp = Checkpoint::parse(&note.text).ok()?;
        texts.push((cp.size, cp.root.0, note.text));
    }
    texts.sort();
    let mut buf = format!("custody split view\n{}\n", ev.origin).into_bytes();
    for (_, _, text) in &texts {
        buf.extend_from_slice(format!("{}\n", text.len()).as_bytes());
        buf.extend_from_slice(text.as_bytes());
    }
    Some(sha256(&buf).to_hex())
}

/// `source` as one printable line (it goes into the evidence text).
fn one_line(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut clean = clean.trim().to_owned();
    if clean.is_empty() {
        clean.push_str("unknown");
    }
    clean.chars().take(256).collect()
}
