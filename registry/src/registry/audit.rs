//! Replaying a log as an auditor: decode each leaf, verify the signatures
//! in one batch, then run the same state machine the server ran. Any leaf
//! the rules would have refused is a finding: an honest log never
//! sequences one.
//!
//! Pure like the rest of core: the caller fetches the leaves (and their
//! inclusion in a checkpoint it trusts) and feeds them here in order, in
//! chunks of its choosing (a few hundred per batch is a good size).

use std::collections::HashMap;

use crate::actor_key::{ActorKey, KeyId};
use crate::commitment::StateCommitter;
use crate::dsse::{verify_batch, verify_each, BatchItem};
use crate::leaf::{CommitmentLeaf, LeafError, LogLeaf};
use crate::registry::resume::{authenticate, Restored, ResumeError, ResumeState};
use crate::registry::{Applied, Config, Outcome, Registry, Rejection};
use crate::statement::{SignedStatement, StatementError};
use custody_standards::hash::Hash;

/// What is wrong with a logged leaf.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AuditProblem {
    /// Not a registry leaf.
    #[error("leaf does not decode: {0}")]
    Leaf(#[from] LeafError),
    /// The envelope or statement does not parse.
    #[error("statement does not parse: {0}")]
    Statement(#[from] StatementError),
    /// The signature does not verify with the key its key ID names.
    #[error("signature does not verify")]
    BadSignature,
    /// The registry rules refuse the statement at this point of the log.
    #[error("the registry would have rejected it: {0}")]
    Rejected(Rejection),
    /// A state commitment whose root is not the root of the state the
    /// leaves before it produce (or which names another position).
    #[error(
        "the state commitment ending checkpoint {} says index {logged_index} and root {logged}; the replayed state at index {index} has root {computed}",
        .index + 1
    )]
    StateRoot {
        /// Index written in the leaf.
        logged_index: u64,
        /// Root written in the leaf.
        logged: Hash,
        /// The leaf's real position.
        index: u64,
        /// Root of the replayed state.
        computed: Hash,
    },
    /// A log-signed entry that is not the log's, or breaks its rules.
    #[error("log-signed entry: {0}")]
    LogEvent(#[from] crate::log_event::LogEventError),
    /// A publish already logged at `original` was appended again.
    #[error("duplicate of the publish at leaf {original}, which must not be appended")]
    Duplicate {
        /// Leaf of the original publish.
        original: u64,
    },
}

/// The first problem found, with the leaf index where it is.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("leaf {index}: {problem}")]
pub struct AuditFinding {
    /// Leaf index.
    pub index: u64,
    /// What is wrong.
    pub problem: AuditProblem,
}

/// A replaying auditor: the registry state after the leaves fed so far.
#[derive(Clone, Debug)]
pub struct Auditor {
    registry: Registry,
    committer: StateCommitter,
    last_commitment: Option<CommitmentLeaf>,
    next_index: u64,
    exact: bool,
    threads: usize,
    log_key: Option<custody_standards::VerifierKey>,
}

impl Auditor {
    /// An auditor starting at leaf 0, with the log's registry config.
    pub fn new(config: Config) -> Self {
        Auditor {
            registry: Registry::new(config),
            committer: StateCommitter::new(),
            last_commitment: None,
            next_index: 0,
            exact: false,
            threads: 1,
            log_key: None,
        }
    }

    /// The log's checkpoint key, which log-signed entries
    /// ([`crate::log_event`]) must verify with; without it such an entry
    /// is a finding.
    pub fn log_key(mut self, key: custody_standards::VerifierKey) -> Self {
        self.log_key = Some(key);
        self
    }

    /// Decode and verify signatures on `threads` threads. Signature checks
    /// are almost all of a replay's cost and are independent of each other;
    /// only the state machine itself must run in log order. The verdicts do
    /// not depend on the thread count.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Verify each signature on its own instead of in batches: slower, but
    /// exactly the server's verdict even for maliciously crafted signatures
    /// (see [`crate::dsse::verify_batch`]).
    pub fn exact(mut self) -> Self {
        self.exact = true;
        self
    }

    /// The state after the leaves fed so far.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The state map after the last commitment leaf fed (its root equals
    /// that leaf's root, or `feed` reported a finding).
    pub fn state(&self) -> &StateCommitter {
        &self.committer
    }

    /// The last commitment leaf fed, if any.
    pub fn last_commitment(&self) -> Option<CommitmentLeaf> {
        self.last_commitment
    }

    /// The index the next fed leaf must have.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The state to resume from later ([`Auditor::resume`]), when the
    /// last leaf fed was a commitment: only there is the map sealed and
    /// comparable with a leaf of the log. `None` anywhere else.
    pub fn export(&self) -> Option<ResumeState> {
        let c = self.last_commitment?;
        (c.index + 1 == self.next_index).then(|| ResumeState {
            records: self.registry.export_records(),
            nonces: self.registry.nonce_pairs_by_expiry(),
            position: self.registry.position(),
            map: self.committer.records().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// An auditor continuing after the commitment leaf `commitment`, which
    /// the caller authenticated at leaf `at` of a checkpoint it trusts, from
    /// a saved [`ResumeState`] that is checked against it (see
    /// [`crate::registry::resume`]): the next leaf to feed is `at + 1`.
    pub fn resume(
        config: Config,
        state: ResumeState,
        at: u64,
        commitment: CommitmentLeaf,
    ) -> Result<Self, ResumeError> {
        Self::resume_restored(state.restore(config)?, at, commitment)
    }

    /// [`Auditor::resume`] from a state already restored
    /// ([`ResumeState::restore`]).
    pub fn resume_restored(
        restored: Restored,
        at: u64,
        commitment: CommitmentLeaf,
    ) -> Result<Self, ResumeError> {
        let (registry, committer) = authenticate(restored, at, &commitment)?;
        Ok(Auditor {
            registry,
            committer,
            last_commitment: Some(commitment),
            next_index: at.saturating_add(1),
            exact: false,
            threads: 1,
            log_key: None,
        })
    }

    /// Checks and applies the next `leaves` (indexes `next_index()..`).
    /// Returns what each leaf changed, in order, so the caller can build
    /// its indexes (access history, entries per actor...). Stops at the
    /// first finding; the leaves before it stay applied.
    ///
    /// The same as [`Auditor::preparer`], [`Preparer::prepare`] and
    /// [`Auditor::apply`] in a row; a caller that wants the signature
    /// checks of the next chunk to run while this one is applied uses
    /// those instead.
    pub fn feed(&mut self, leaves: &[&[u8]]) -> Result<Vec<Applied>, AuditFinding> {
        let prepared = self.preparer().prepare(leaves);
        self.apply(prepared)
    }

    /// A [`Preparer`] for the leaves from `next_index()` on, knowing every
    /// key the replayed state knows.
    pub fn preparer(&self) -> Preparer {
        Preparer {
            keys: self.registry.state.keys.iter().map(|(id, r)| (*id, r.key.clone())).collect(),
            threads: self.threads,
            exact: self.exact,
        }
    }

    /// Applies the next chunk, prepared by a [`Preparer`] (indexes
    /// `next_index()..`): the state machine, in log order, with the
    /// signature verdicts the preparer reached. See [`Auditor::feed`].
    ///
    /// A statement whose key the state knows but the preparer did not
    /// check (a preparer made before that key was granted and not fed the
    /// grant) is verified here, on its own: a verdict never depends on how
    /// the caller paired preparers and chunks.
    pub fn apply(&mut self, prepared: Prepared) -> Result<Vec<Applied>, AuditFinding> {
        let Prepared { decoded, checked, decode_error, first_bad } = prepared;
        let base = self.next_index;
        let finding = |i: usize, problem: AuditProblem| AuditFinding { index: base + i as u64, problem };
        let mut applied = Vec::with_capacity(decoded.len());
        for (i, d) in decoded.iter().enumerate() {
            let index = base + i as u64;
            let (time, s) = match d {
                Decoded::Statement(time, s, pae) => {
                    let known = self.registry.key(&s.key_id()).map(|r| &r.key);
                    let bad = first_bad == Some(i)
                        || (!checked[i] && known.is_some_and(|k| !k.verify(pae, s.signature())));
                    // A bad signature by a key the state does not know is
                    // left to the rules, which refuse the unknown key.
                    if bad && known.is_some() {
                        return Err(finding(i, AuditProblem::BadSignature));
                    }
                    if bad {
                        return Err(match self.registry.process(&s.statement, index, *time) {
                            Err(r) => finding(i, AuditProblem::Rejected(r)),
                            Ok(_) => finding(i, AuditProblem::BadSignature),
                        });
                    }
                    (*time, s)
                }
                Decoded::LogEvent(bytes) => {
                    let reg = &self.registry;
                    let verdict = crate::log_event::check(bytes, self.log_key.as_ref(), index, |d| {
                        !reg.publishes_of(d).is_empty()
                    });
                    match verdict {
                        Ok((_, signed)) => {
                            self.committer.record_log_event(&self.registry, &signed.event, index)
                        }
                        Err(e) => return Err(finding(i, AuditProblem::LogEvent(e))),
                    }
                    self.next_index = index + 1;
                    continue;
                }
                Decoded::Commitment(c) => {
                    let computed = self.committer.seal().root;
                    if c.index != index || c.root != computed {
                        return Err(finding(
                            i,
                            AuditProblem::StateRoot {
                                logged_index: c.index,
                                logged: c.root,
                                index,
                                computed,
                            },
                        ));
                    }
                    self.last_commitment = Some(*c);
                    self.next_index = index + 1;
                    continue;
                }
            };
            match self.registry.process(&s.statement, index, time) {
                Ok(Outcome::Applied(a)) => {
                    self.committer.record(&self.registry, &s.statement, &a);
                    applied.push(*a)
                }
                Ok(Outcome::AlreadyLogged { index: original }) => {
                    return Err(finding(i, AuditProblem::Duplicate { original }))
                }
                Err(r) => return Err(finding(i, AuditProblem::Rejected(r))),
            }
            self.next_index = index + 1;
        }
        match decode_error {
            Some((i, problem)) => Err(finding(i, problem)),
            None => Ok(applied),
        }
    }
}

/// Decodes leaves and checks their signatures ahead of the replay: the
/// work of an audit that does not need the state, so it can run on other
/// threads while [`Auditor::apply`] replays the chunk before.
///
/// Signatures need only keys, and a key ID names one key for good (it is
/// the key's hash), so the preparer keeps every key it has seen granted or
/// rotated in: a superset of what the state knows at any later leaf.
/// Whether a key was allowed to sign at that point is the replay's
/// question, not the preparer's.
#[derive(Clone, Debug)]
pub struct Preparer {
    keys: HashMap<KeyId, ActorKey>,
    threads: usize,
    exact: bool,
}

/// A chunk of leaves decoded and signature-checked by a [`Preparer`], to be
/// applied with [`Auditor::apply`].
pub struct Prepared {
    decoded: Vec<Decoded>,
    /// Per decoded leaf: a statement whose signature the preparer checked.
    checked: Vec<bool>,
    /// The first leaf that does not decode (the chunk ends before it).
    decode_error: Option<(usize, AuditProblem)>,
    /// The first statement whose signature does not verify.
    first_bad: Option<usize>,
}

impl Prepared {
    /// Leaves decoded (the chunk up to its first undecodable leaf).
    pub fn len(&self) -> usize {
        self.decoded.len()
    }

    /// Whether no leaf decoded.
    pub fn is_empty(&self) -> bool {
        self.decoded.is_empty()
    }
}

impl Preparer {
    /// Decodes `leaves` (the next chunk, in log order, after every chunk
    /// this preparer prepared before) and checks their signatures, in a
    /// batch unless exact.
    pub fn prepare(&mut self, leaves: &[&[u8]]) -> Prepared {
        let threads = self.threads;
        let mut decoded: Vec<Decoded> = Vec::with_capacity(leaves.len());
        let mut decode_error = None;
        for (i, parsed) in par_map(leaves, threads, |bytes| decode(bytes)).into_iter().enumerate() {
            match parsed {
                Ok(x) => decoded.push(x),
                Err(p) => {
                    decode_error = Some((i, p));
                    break;
                }
            }
        }
        for s in decoded.iter().filter_map(Decoded::statement) {
            if let Some(k) = s.statement.event.introduced_key() {
                self.keys.entry(k.id()).or_insert_with(|| k.clone());
            }
        }
        // A statement whose key is nowhere to be found is left to the
        // replay, which rejects it as an unknown key.
        let mut checked = vec![false; decoded.len()];
        let mut positions = Vec::with_capacity(decoded.len());
        let mut items = Vec::with_capacity(decoded.len());
        for (i, d) in decoded.iter().enumerate() {
            let Decoded::Statement(_, s, pae) = d else { continue };
            if let Some(key) = self.keys.get(&s.key_id()) {
                checked[i] = true;
                positions.push(i);
                items.push(BatchItem { message: pae, sig: s.signature(), key });
            }
        }
        let batches_ok = !self.exact
            && par_chunks(&items, threads, |chunk| vec![verify_batch(chunk)]).into_iter().all(|ok| ok);
        let first_bad = if batches_ok {
            None
        } else {
            par_chunks(&items, threads, verify_each).iter().position(|ok| !ok).map(|p| positions[p])
        };
        Prepared { decoded, checked, decode_error, first_bad }
    }
}

/// A decoded leaf: a statement with its receive time and signed bytes, or
/// a commitment. Almost every leaf is a statement, so the statement stays
/// inline: boxing it would cost an allocation per leaf to save bytes on
/// the rare commitment.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    Statement(u64, SignedStatement, Vec<u8>),
    Commitment(CommitmentLeaf),
    /// A log-signed leaf, checked in order (it needs the registry).
    LogEvent(Vec<u8>),
}

impl Decoded {
    fn statement(&self) -> Option<&SignedStatement> {
        match self {
            Decoded::Statement(_, s, _) => Some(s),
            Decoded::Commitment(_) | Decoded::LogEvent(_) => None,
        }
    }
}

fn decode(bytes: &[u8]) -> Result<Decoded, AuditProblem> {
    match LogLeaf::decode(bytes)? {
        LogLeaf::Commitment(c) => Ok(Decoded::Commitment(c)),
        LogLeaf::LogEvent(_) => Ok(Decoded::LogEvent(bytes.to_vec())),
        LogLeaf::Statement(leaf) => {
            let statement = SignedStatement::parse(leaf.envelope)?;
            let pae = statement.pae();
            Ok(Decoded::Statement(leaf.receive_time_ms, statement, pae))
        }
    }
}

/// Splits `items` into at most `threads` contiguous chunks, runs `f` on each
/// (on scoped threads when there is more than one) and concatenates the
/// results in order.
fn par_chunks<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    // Below this, a thread costs more than it saves.
    const MIN_PER_THREAD: usize = 32;
    let threads = threads.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(size).map(|c| s.spawn(|| f(c))).collect();
        // Sized once: results are large (a decoded leaf is about 600
        // bytes), and growing by doubling would copy each several times.
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            // A panic in `f` is a bug in core, not bad input: propagate it.
            out.extend(h.join().expect("audit worker panicked"));
        }
        out
    })
}

fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    par_chunks(items, threads, |c| c.iter().map(&f).collect())
}
