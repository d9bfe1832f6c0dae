//! The sequencer: turns submitted entries into durable leaves of the tree.
//!
//! Submitters put entries into a bounded pool (a full pool makes `submit`
//! wait: backpressure instead of unbounded memory). One task, the only writer
//! of the store, takes the first pending entry and everything queued behind
//! it (group commit: up to `batch_max` entries, collecting for at most
//! `batch_wait`, and never waiting on an empty queue), deduplicates them by leaf
//! hash, computes the new stored hashes with [`custody_standards::Appender`] (no
//! reads), and commits everything with ONE synced write. Only then is every
//! submitter answered and the new size published. Many entries share one
//! fsync, which is where the throughput comes from; nothing is acknowledged
//! that a crash could take back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody_standards::entries::MAX_ENTRY_SIZE;
use custody_standards::{leaf_hash, Appender, Hash};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use crate::store::{Batch, IndexRow, Store, StoreError};

/// Decides, in sequence order, which entries may join the log: the
/// registry's authorization. It runs inside the sequencer loop because "is
/// this allowed" depends on every entry before it (a tag's previous move, a
/// grant earlier in the same batch), so two racing statements are decided
/// one after the other and exactly one of two conflicting ones wins.
pub trait Admission: Send + Sync + 'static {
    /// What a submitter already decoded from an entry it hands over with
    /// [`SequencerHandle::submit_authenticated`] (the registry's parsed
    /// statement), typed so the serial path never has to guess or decode.
    type Parsed: Send + 'static;
    /// Starts deciding one batch. The returned guard is held until the
    /// batch is durable (or failed), so nobody observes effects of entries
    /// that a crash could still take back.
    fn begin(&self) -> Box<dyn AdmissionBatch<Self::Parsed> + '_>;
}

/// One batch's admission decisions; see [`Admission`].
pub trait AdmissionBatch<P> {
    /// Decides entry `index`. `authenticated` is true when the submitter
    /// already verified the entry's signature (the HTTP handler does, in
    /// parallel); raw appends are not, so the admission must. `parsed` is
    /// what the submitter already decoded from the entry (see
    /// [`SequencerHandle::submit_authenticated`]), so the serial path need
    /// not decode it again.
    fn admit(&mut self, entry: &[u8], index: u64, authenticated: bool, parsed: Option<&P>) -> Admit;
    /// What the admission adds to this batch's atomic write. Called once per
    /// batch, after the last [`AdmissionBatch::admit`] and before the write,
    /// even when nothing was admitted (an empty [`Sealed`] then adds
    /// nothing and no write happens). `next_index` is the index the trailer
    /// would get: the batch's start plus its admitted entries. Whatever it
    /// returns is durable exactly when the batch's entries are, which is
    /// what lets state derived from the entries be stored next to them.
    fn seal(&mut self, next_index: u64) -> Sealed {
        let _ = next_index;
        Sealed::default()
    }
    /// The batch was written (`durable`) or not; on failure every decision
    /// since [`Admission::begin`] must be undone (the store says what is
    /// durable).
    fn finish(self: Box<Self>, durable: bool, store: &dyn Store);
}

/// What an admission adds to one batch's atomic write
/// ([`AdmissionBatch::seal`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// One extra leaf appended after the admitted entries, at `next_index`
    /// (a state-commitment leaf). The sequencer appends it to the Merkle
    /// tree and the entries like any entry, in the same write, acks it to
    /// nobody, and counts it in the tree size. It must be a valid entry
    /// (1 to [`MAX_ENTRY_SIZE`] bytes), or the store refuses the whole
    /// batch and every submitter of the batch gets the store error.
    pub trailer: Option<Vec<u8>>,
    /// Rows of the `state` keyspace to put (`Some`) or delete (`None`),
    /// written in the same WriteBatch as the entries.
    pub state_rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Sealed {
    /// Whether it adds nothing to the write.
    pub fn is_empty(&self) -> bool {
        self.trailer.is_none() && self.state_rows.is_empty()
    }
}

/// The parsed type of a sequencer without an admission: nothing is ever
/// handed over, so it has no values.
#[derive(Debug)]
pub enum Unparsed {}

/// An admission decision.
#[derive(Debug)]
pub enum Admit {
    /// Append the entry, writing these index rows in the same batch.
    Append(Vec<IndexRow>),
    /// Nothing to append: an equivalent entry already exists at this index.
    Existing(u64),
    /// Refused; nothing is appended.
    Reject(Refusal),
}

/// Why the admission refused an entry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// The bytes are not a well-formed entry for this log (raw appends only).
    #[error("not a valid registry entry: {0}")]
    Malformed(String),
    /// The registry's rules refuse the statement.
    #[error(transparent)]
    Registry(#[from] custody_registry::registry::Rejection),
    /// The admission cannot decide right now (its state was lost).
    #[error("{0}")]
    Unavailable(String),
}

/// Pending entries the pool holds before `submit` starts to wait.
pub const QUEUE_CAPACITY: usize = 65536;

/// Called after every committed batch with (new entries in it, seconds from
/// the first entry being taken to durability). Lets metrics observe batches
/// without this module depending on them.
pub type BatchObserver = Arc<dyn Fn(usize, f64) + Send + Sync>;

/// Batching knobs.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// Most entries per batch (per fsync).
    pub batch_max: usize,
    /// Longest time a batch keeps collecting entries that are still
    /// arriving; a batch is committed as soon as the queue is empty.
    pub batch_wait: Duration,
    /// Largest accepted entry; at most [`MAX_ENTRY_SIZE`] (the u16 length
    /// prefix of entry bundles), larger values are clamped.
    pub max_entry_size: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            batch_max: 4096,
            batch_wait: Duration::from_millis(100),
            max_entry_size: MAX_ENTRY_SIZE,
        }
    }
}

/// Acknowledgement of a durable entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ack {
    /// Leaf index of the entry.
    pub index: u64,
    /// RFC 6962 leaf hash of the entry (standard base64 in JSON).
    #[serde(serialize_with = "hash_base64")]
    pub leaf_hash: Hash,
    /// True when the log already held these exact bytes (a retry): `index`
    /// is the existing one and nothing new was appended.
    pub duplicate: bool,
}

fn hash_base64<S: serde::Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_base64())
}

/// Why an entry was not sequenced.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SequenceError {
    /// The entry exceeds the configured cap (HTTP 413).
    #[error("entry is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Entry size.
        size: usize,
        /// Configured cap.
        max: usize,
    },
    /// Zero-length entries are refused: they carry no statement.
    #[error("entry is empty")]
    Empty,
    /// The durable write failed; the entry was NOT appended (retry is safe).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sequencer task has stopped.
    #[error("sequencer is shutting down")]
    ShuttingDown,
    /// The admission (registry) refused the entry; nothing was appended.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

struct Request<P> {
    entry: Vec<u8>,
    leaf: Hash,
    authenticated: bool,
    parsed: Option<P>,
    reply: oneshot::Sender<Result<Ack, SequenceError>>,
}

struct Shared {
    size: AtomicU64,
    commits: AtomicU64,
    max_entry_size: usize,
    observer: Mutex<Option<BatchObserver>>,
}

/// Cheap, cloneable access to the sequencer. When every handle is dropped
/// the sequencer task finishes its current batch and stops.
pub struct SequencerHandle<P = Unparsed> {
    tx: mpsc::Sender<Request<P>>,
    size_rx: watch::Receiver<u64>,
    shared: Arc<Shared>,
}

impl<P> Clone for SequencerHandle<P> {
    fn clone(&self) -> Self {
        SequencerHandle { tx: self.tx.clone(), size_rx: self.size_rx.clone(), shared: self.shared.clone() }
    }
}

/// A read-only view of the durable tree size, for tasks (the checkpointer)
/// that follow the log but never submit, so they need not name the
/// admission's parsed type.
#[derive(Clone)]
pub struct DurableSize {
    shared: Arc<Shared>,
    size_rx: watch::Receiver<u64>,
}

impl DurableSize {
    /// Durable tree size (cheap atomic read).
    pub fn tree_size(&self) -> u64 {
        self.shared.size.load(Ordering::SeqCst)
    }

    /// Notified with the new durable tree size after each commit; closed
    /// once the sequencer has stopped.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.size_rx.clone()
    }
}

impl std::fmt::Debug for DurableSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DurableSize").field(&self.tree_size()).finish()
    }
}

impl<P> std::fmt::Debug for SequencerHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerHandle")
            .field("tree_size", &self.shared.size.load(Ordering::SeqCst))
            .finish()
    }
}

impl<P: Send + 'static> SequencerHandle<P> {
    /// Submits an entry; resolves only after the batch holding it is durable
    /// (or with the error that prevented it). Waits while the pool is full.
    pub async fn submit(&self, entry: Vec<u8>) -> Result<Ack, SequenceError> {
        self.submit_inner(entry, false, None).await
    }

    /// Like [`SequencerHandle::submit`] for an entry whose signature the
    /// caller has verified and which it has decoded into `parsed` (which
    /// must be exactly what the entry bytes decode to), so the admission
    /// need neither verify nor decode it again.
    pub async fn submit_authenticated(&self, entry: Vec<u8>, parsed: P) -> Result<Ack, SequenceError> {
        self.submit_inner(entry, true, Some(parsed)).await
    }

    async fn submit_inner(
        &self,
        entry: Vec<u8>,
        authenticated: bool,
        parsed: Option<P>,
    ) -> Result<Ack, SequenceError> {
        if entry.is_empty() {
            return Err(SequenceError::Empty);
        }
        if entry.len() > self.shared.max_entry_size {
            return Err(SequenceError::TooLarge { size: entry.len(), max: self.shared.max_entry_size });
        }
        // Hash on the submitter's task, so hashing spreads over all cores
        // instead of serialising in the sequencer loop.
        let leaf = leaf_hash(&entry);
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { entry, leaf, authenticated, parsed, reply })
            .await
            .map_err(|_| SequenceError::ShuttingDown)?;
        rx.await.unwrap_or(Err(SequenceError::ShuttingDown))
    }

    /// Whether the sequencer task still takes entries (it stops on
    /// shutdown or after a storage failure); `/readyz` reports it.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Durable tree size (cheap atomic read).
    pub fn tree_size(&self) -> u64 {
        self.shared.size.load(Ordering::SeqCst)
    }

    /// A view of the durable tree size that outlives no submitter: it does
    /// not keep the sequencer running.
    pub fn durable_size(&self) -> DurableSize {
        DurableSize { shared: self.shared.clone(), size_rx: self.size_rx.clone() }
    }

    /// Notified with the new durable tree size after each commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.size_rx.clone()
    }

    /// Number of batches committed since start (tests and metrics use it to
    /// see that entries really share writes).
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::SeqCst)
    }

    /// Installs the per-batch observer (e.g. `Metrics::observe_batch`),
    /// replacing any earlier one.
    pub fn set_batch_observer(&self, observer: BatchObserver) {
        *self.shared.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }
}

/// Recovers the tree frontier from `store` and starts the sequencer task on
/// the current tokio runtime, with no admission (a generic log).
pub fn start_sequencer(
    store: Arc<dyn Store>,
    cfg: SequencerConfig,
) -> Result<(SequencerHandle, tokio::task::JoinHandle<()>), StoreError> {
    start_sequencer_with(store, cfg, None)
}

/// [`start_sequencer`] with an admission deciding every new entry.
pub fn start_sequencer_with<P: Send + 'static>(
    store: Arc<dyn Store>,
    cfg: SequencerConfig,
    admission: Option<Arc<dyn Admission<Parsed = P>>>,
) -> Result<(SequencerHandle<P>, tokio::task::JoinHandle<()>), StoreError> {
    let appender = recover(&*store)?;
    let size = appender.size();
    let max_entry_size = if cfg.max_entry_size > MAX_ENTRY_SIZE {
        tracing::warn!(requested = cfg.max_entry_size, MAX_ENTRY_SIZE, "max entry size clamped");
        MAX_ENTRY_SIZE
    } else {
        cfg.max_entry_size
    };
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let (size_tx, size_rx) = watch::channel(size);
    let shared = Arc::new(Shared {
        size: AtomicU64::new(size),
        commits: AtomicU64::new(0),
        max_entry_size,
        observer: Mutex::new(None),
    });
    let core = Core { store, appender, size_tx, shared: shared.clone(), admission };
    let batch_max = cfg.batch_max.max(1);
    tracing::info!(size, batch_max, batch_wait_ms = cfg.batch_wait.as_millis() as u64, "sequencer started");
    let task = tokio::spawn(run(core, rx, batch_max, cfg.batch_wait));
    Ok((SequencerHandle { tx, size_rx, shared }, task))
}

/// The frontier of the durable tree: one batched read of at most 64 hashes.
fn recover(store: &dyn Store) -> Result<Appender, StoreError> {
    let size = store.tree_size()?;
    Appender::from_reader(size, store)
        .map_err(|e| StoreError::Corrupt(format!("cannot recover the tree frontier at size {size}: {e}")))
}

/// State owned by the loop; moved into the blocking pool for each commit.
struct Core<P> {
    store: Arc<dyn Store>,
    appender: Appender,
    size_tx: watch::Sender<u64>,
    shared: Arc<Shared>,
    admission: Option<Arc<dyn Admission<Parsed = P>>>,
}

async fn run<P: Send + 'static>(
    mut core: Core<P>,
    mut rx: mpsc::Receiver<Request<P>>,
    batch_max: usize,
    batch_wait: Duration,
) {
    let mut batch_no: u64 = 0;
    while let Some(first) = rx.recv().await {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + batch_wait;
        let mut reqs = vec![first];
        // Group commit: everything queued while the previous batch was being
        // written joins this one, and the batch is committed as soon as the
        // queue is drained. Under load the fsync itself is the batching
        // window (batches grow with the load); when idle an entry is
        // committed at once. `batch_wait` only caps how long a batch keeps
        // collecting entries that are still streaming in.
        while reqs.len() < batch_max && tokio::time::Instant::now() < deadline {
            match rx.try_recv() {
                Ok(r) => reqs.push(r),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Let submitters that are mid-send on other workers in
                    // once, then commit what we have.
                    tokio::task::yield_now().await;
                    match rx.try_recv() {
                        Ok(r) => reqs.push(r),
                        Err(_) => break,
                    }
                }
            }
        }
        batch_no += 1;
        let span = tracing::debug_span!("batch", n = batch_no, submitted = reqs.len());
        // Store calls block (fsync), so the whole commit runs off the async
        // workers. The submitters' reply channels travel with it; if the
        // blocking task dies they are dropped and submitters see ShuttingDown,
        // never a false acknowledgement.
        let joined = tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            core.commit(reqs, started);
            core
        })
        .in_current_span()
        .await;
        match joined {
            Ok(c) => core = c,
            Err(e) => {
                tracing::error!(error = %e, "sequencer commit task failed; sequencer stops");
                return;
            }
        }
    }
    tracing::info!("sequencer stopped: all handles dropped");
}

/// What to tell one submitter once the batch outcome is known.
enum Outcome {
    /// A new leaf at this index.
    New(u64),
    /// A duplicate of a leaf already durable before this batch.
    Durable(u64),
    /// A duplicate of a new leaf in this same batch.
    SameBatch(u64),
}

impl<P: Send + 'static> Core<P> {
    fn commit(&mut self, reqs: Vec<Request<P>>, started: Instant) {
        let before = self.appender.clone();
        let start = self.appender.size();
        let mut batch = Batch { start, ..Batch::default() };
        let mut in_batch: HashMap<Hash, u64> = HashMap::new();
        let mut plan = Vec::with_capacity(reqs.len());
        let mut replies = Vec::with_capacity(reqs.len());
        // Held until the batch is durable or failed (see Admission::begin).
        let mut admission = self.admission.as_ref().map(|a| a.begin());
        for Request { entry, leaf, authenticated, parsed, reply } in reqs {
            // A registry statement's leaf carries its receive time, and the
            // admission answers a re-sent statement by its nonce
            // (`Admit::Existing`), so looking its leaf hash up would be a
            // wasted point read per entry in this serial loop (issue 8).
            let dedup_by_hash = !(authenticated && admission.is_some());
            let outcome = if let Some(&i) = in_batch.get(&leaf).filter(|_| dedup_by_hash) {
                Outcome::SameBatch(i)
            } else {
                let known = if dedup_by_hash { self.store.index_of(&leaf) } else { Ok(None) };
                match known {
                    // Only trust an index inside the durable tree.
                    Ok(Some(i)) if i < start => Outcome::Durable(i),
                    Ok(_) => {
                        let i = start + batch.entries.len() as u64;
                        if let Some(adm) = admission.as_mut() {
                            match adm.admit(&entry, i, authenticated, parsed.as_ref()) {
                                Admit::Append(rows) => batch.index_rows.extend(rows),
                                Admit::Existing(existing) if existing < start => {
                                    let _ = reply.send(Ok(Ack {
                                        index: existing,
                                        leaf_hash: leaf,
                                        duplicate: true,
                                    }));
                                    continue;
                                }
                                Admit::Existing(existing) => {
                                    // Equivalent to an entry of this batch:
                                    // answered only once the batch is durable.
                                    plan.push((Outcome::SameBatch(existing), leaf));
                                    replies.push(reply);
                                    continue;
                                }
                                Admit::Reject(r) => {
                                    let _ = reply.send(Err(r.into()));
                                    continue;
                                }
                            }
                        }
                        in_batch.insert(leaf, i);
                        self.appender.append(leaf, &mut batch.nodes);
                        batch.entries.push(entry);
                        batch.leaf_hashes.push(leaf);
                        Outcome::New(i)
                    }
                    Err(e) => {
                        // Cannot tell whether it is a duplicate: refuse it.
                        let _ = reply.send(Err(e.into()));
                        continue;
                    }
                }
            };
            plan.push((outcome, leaf));
            replies.push(reply);
        }
        if let Some(adm) = admission.as_mut() {
            let Sealed { trailer, state_rows } = adm.seal(start + batch.entries.len() as u64);
            if let Some(entry) = trailer {
                // A leaf like any other, but nobody's: no reply, and no
                // dedup entry (a submitter's identical bytes get their own).
                let leaf = leaf_hash(&entry);
                self.appender.append(leaf, &mut batch.nodes);
                batch.entries.push(entry);
                batch.leaf_hashes.push(leaf);
            }
            batch.state_rows = state_rows;
        }
        let new = batch.entries.len();
        let result =
            if new == 0 && batch.state_rows.is_empty() { Ok(()) } else { self.store.append_batch(&batch) };
        if let Some(adm) = admission {
            adm.finish(result.is_ok(), &*self.store);
        }
        match result {
            Ok(()) => {
                let end = self.appender.size();
                if new > 0 {
                    self.shared.size.store(end, Ordering::SeqCst);
                    self.shared.commits.fetch_add(1, Ordering::SeqCst);
                    self.size_tx.send_replace(end);
                }
                // Observe before answering: whoever holds an acknowledgement
                // must find its batch already counted in the metrics.
                let secs = started.elapsed().as_secs_f64();
                tracing::debug!(new, end, secs, "batch committed");
                let observer = self.shared.observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let (Some(obs), true) = (observer, new > 0) {
                    obs(new, secs);
                }
                for ((outcome, leaf), reply) in plan.into_iter().zip(replies) {
                    let (index, duplicate) = match outcome {
                        Outcome::New(i) => (i, false),
                        Outcome::Durable(i) | Outcome::SameBatch(i) => (i, true),
                    };
                    let _ = reply.send(Ok(Ack { index, leaf_hash: leaf, duplicate }));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, start, new, "batch commit failed; nothing acknowledged");
                for ((outcome, leaf), reply) in plan.into_iter().zip(replies) {
                    // A leaf durable before this batch is still durable.
                    let answer = match outcome {
                        Outcome::Durable(i) => Ok(Ack { index: i, leaf_hash: leaf, duplicate: true }),
                        _ => Err(SequenceError::Store(e.clone())),
                    };
                    let _ = reply.send(answer);
                }
                // Resume from whatever the store now says is durable.
                self.appender = match recover(&*self.store) {
                    Ok(a) => a,
                    Err(re) => {
                        tracing::error!(error = %re, "cannot re-read the frontier; keeping the pre-batch one");
                        before
                    }
                };
                let size = self.appender.size();
                if size != start {
                    // The failed write became visible after all (e.g. the
                    // sync failed after the data landed): publish it.
                    self.shared.size.store(size, Ordering::SeqCst);
                    self.size_tx.send_replace(size);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "sequencer_tests.rs"]
mod tests;
