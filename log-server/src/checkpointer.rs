//! Checkpoint signing, witness cosigning and publication.
//!
//! Sequencing and publication are decoupled on purpose: the sequencer keeps
//! making entries durable whatever the witnesses do, and this task, in
//! rounds, signs the newest durable tree head, collects cosignatures, and
//! publishes the checkpoint only when the policy's quorum is met. A round
//! starts as soon as a batch is durable and the previous round is over (the
//! witnesses are free), at most once per `min_interval`, so an entry is
//! covered by a published checkpoint about one round after its
//! acknowledgement instead of waiting for a fixed tick; a round that failed
//! is retried after the longer `interval`. If the
//! quorum is lost, clients keep getting the last checkpoint that satisfied
//! it (never a weaker one) and [`Publisher::health`] says why.
//!
//! Every published note is also written to the store's checkpoint history,
//! so consistency proofs between any two published sizes can be served, and
//! `/checkpoint` survives restarts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use custody_standards::checkpoint::{open_checkpoint, sign_checkpoint, Checkpoint};
use custody_standards::policy::PolicyWitness;
use custody_standards::{tree_hash, Hash, Policy, SignerKey, VerifierKey};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::Metrics;
use crate::sequencer::DurableSize;
use crate::store::{Store, StoreError};
use crate::tile_mirror::TileMirror;
use crate::witness_client::WitnessClient;
use crate::witness_round::WitnessJob;

/// Why one checkpointing round did not sign or publish a checkpoint. Its
/// text is the `reason` `/health` shows; the next round tries again.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    /// The tree hash could not be computed from the stored hashes.
    #[error("cannot compute the tree hash: {0}")]
    TreeHash(#[from] custody_standards::ProofError),
    /// The log key cannot sign this checkpoint.
    #[error("cannot sign the checkpoint: {0}")]
    Sign(#[from] custody_standards::checkpoint::CheckpointError),
    /// Our own signed note did not parse back.
    #[error("signed checkpoint does not parse: {0}")]
    Note(#[from] custody_standards::note::NoteError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the read path to the bucket failed: the checkpoint is not
    /// published until its tiles are there.
    #[error("writing the read path to the bucket failed: {0}")]
    Mirror(#[from] crate::tile_mirror::MirrorError),
    /// Storing the published checkpoint failed.
    #[error("storing published checkpoint failed: {0}")]
    StorePublished(StoreError),
    /// A blocking task died.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The cosignatures gathered do not satisfy the policy.
    #[error("checkpoint of size {size} not published: {policy}; {failing}")]
    NoQuorum {
        /// Tree size of the checkpoint.
        size: u64,
        /// What the policy found missing.
        policy: custody_standards::policy::PolicyError,
        /// Each failing witness and its last error.
        failing: String,
    },
}

/// Meta key of the newest checkpoint this log signed (published or not).
pub const META_LATEST_SIGNED: &[u8] = b"latest_signed";
/// After the quorum is met, how long slower witnesses may still add their
/// cosignature before we publish without them (they catch up next round).
const QUORUM_GRACE: Duration = Duration::from_millis(250);

/// Tuning of the checkpointer.
#[derive(Clone, Debug)]
pub struct CheckpointerConfig {
    /// Longest time between the starts of two rounds (default 1 s): a
    /// round runs this long after the previous one even if the tree did not
    /// grow (so a bucket that fell behind catches up), and a round that did
    /// not publish is retried only this long after it started, so failing
    /// witnesses are not called at the pace of the batches.
    pub interval: Duration,
    /// Shortest time between the starts of two rounds (default 100 ms,
    /// never more than `interval`). A round starts as soon as a batch is
    /// durable and the previous round is over, but not sooner than this:
    /// it bounds how many checkpoints per second the log signs, stores and
    /// asks each witness to cosign, whatever the batch rate.
    pub min_interval: Duration,
    /// Per add-checkpoint request timeout (default 5 s).
    pub witness_timeout: Duration,
    /// Retries of a transient failure (timeout, transport, 5xx, 429),
    /// default 2.
    pub witness_retries: u32,
    /// PEM file of extra CAs trusted for https:// witnesses (`--ca-cert`).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Bucket receiving each published checkpoint's read path (`--store`).
    pub bucket: Option<crate::bucket::Bucket>,
}

impl Default for CheckpointerConfig {
    fn default() -> Self {
        CheckpointerConfig {
            interval: Duration::from_secs(1),
            min_interval: Duration::from_millis(100),
            witness_timeout: Duration::from_secs(5),
            witness_retries: 2,
            ca_cert: None,
            bucket: None,
        }
    }
}

/// A checkpoint that satisfied the policy (or was log-signed, without a
/// policy) and is what `/checkpoint` serves.
#[derive(Clone, Debug)]
pub struct Published {
    /// Tree size.
    pub size: u64,
    /// Root hash at `size`.
    pub root: Hash,
    /// Signed note: log signature followed by every verified cosignature.
    pub note: Vec<u8>,
    /// When this process published (or, after a restart, loaded) it.
    pub published_at: SystemTime,
}

/// One witness as seen by the last round.
#[derive(Clone, Debug, Serialize)]
pub struct WitnessStatus {
    /// Policy name.
    pub name: String,
    /// Whether the last round got a valid cosignature from it.
    pub ok: bool,
    /// The last size we know it cosigned.
    pub last_size: u64,
    /// Why the last round failed for it, if it did.
    pub last_error: Option<String>,
    /// Duration of its last round.
    pub latency_ms: Option<u64>,
    /// Sticky alarm: the witness claims a bigger tree than ours (split view
    /// or rollback of this log). Needs an operator.
    pub alarm: Option<String>,
}

/// Checkpoint state for `/health` and metrics.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointHealth {
    /// Whether the last publication attempt succeeded (policy satisfied).
    pub quorum_ok: bool,
    /// Why not, when `quorum_ok` is false.
    pub reason: Option<String>,
    /// Size of the checkpoint `/checkpoint` serves.
    pub last_published_size: Option<u64>,
    /// Seconds since it was published (or loaded at startup).
    pub last_published_age_secs: Option<u64>,
    /// Size of the newest checkpoint signed by the log.
    pub last_signed_size: Option<u64>,
    /// Serious witness alarms (a witness has cosigned a bigger tree than
    /// ours: split view or rollback). Publication may continue, but an
    /// operator must look.
    pub alarms: Vec<String>,
    /// Per-witness state, in policy order.
    pub witnesses: Vec<WitnessStatus>,
}

struct Shared {
    latest: watch::Sender<Option<Arc<Published>>>,
    health: Mutex<CheckpointHealth>,
}

/// Read side of the checkpointer, cheap to clone, used by the HTTP API.
#[derive(Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    /// The newest published checkpoint (the one `/checkpoint` serves).
    pub fn latest(&self) -> Option<Arc<Published>> {
        self.shared.latest.borrow().clone()
    }

    /// Waits until a checkpoint of at least `size_at_least` is published, so
    /// a submitter can get a checkpoint that covers its entry. `None` on
    /// timeout or if the checkpointer stopped.
    pub async fn wait_for(&self, size_at_least: u64, timeout: Duration) -> Option<Arc<Published>> {
        let mut rx = self.shared.latest.subscribe();
        let wait = rx.wait_for(|p| p.as_ref().is_some_and(|p| p.size >= size_at_least));
        let found = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(p)) => p.clone(),
            _ => None,
        };
        found
    }

    /// Current checkpoint health.
    pub fn health(&self) -> CheckpointHealth {
        let mut h = self.shared.health.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let latest = self.latest();
        h.last_published_size = latest.as_ref().map(|p| p.size);
        h.last_published_age_secs = latest.map(|p| {
            SystemTime::now().duration_since(p.published_at).map(|d| d.as_secs()).unwrap_or_default()
        });
        h
    }
}

/// Starts the checkpointer task. Loads the latest published checkpoint (so
/// `/checkpoint` is served right after a restart) and each witness's last
/// cosigned size. Fails on a store error or stored checkpoints that this
/// log key did not sign.
pub fn start_checkpointer(
    store: Arc<dyn Store>,
    seq: DurableSize,
    key: SignerKey,
    policy: Option<Policy>,
    cfg: CheckpointerConfig,
    metrics: Arc<Metrics>,
) -> Result<(Publisher, JoinHandle<()>), StoreError> {
    let vkey = key.verifier();
    let latest = match store.latest_published_checkpoint()? {
        Some((size, note)) => {
            let cp = open_stored(&note, &vkey, "latest published checkpoint")?;
            if cp.size != size {
                return Err(StoreError::Corrupt(format!(
                    "published checkpoint under size {size} has size {}",
                    cp.size
                )));
            }
            Some(Arc::new(Published { size, root: cp.root, note, published_at: SystemTime::now() }))
        }
        None => None,
    };
    let last_signed = match store.get_meta(META_LATEST_SIGNED)? {
        Some(note) => {
            let cp = open_stored(&note, &vkey, "latest signed checkpoint")?;
            Some(Signed { size: cp.size, note })
        }
        None => None,
    };
    let mut witnesses = Vec::new();
    if let Some(p) = &policy {
        if !p.logs().iter().any(|l| l.key == vkey) {
            tracing::error!(
                origin = key.name(),
                "the witness policy does not list this log's key; no checkpoint will satisfy it"
            );
        }
        for w in p.witnesses() {
            let size = match store.get_meta(format!("witness/{}", w.name).as_bytes())? {
                Some(v) => u64::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt(format!("meta witness/{} is not a u64", w.name)))?,
                ),
                None => 0,
            };
            witnesses.push(WitnessState::new(w, size));
        }
    }
    let health = CheckpointHealth {
        quorum_ok: true,
        reason: None,
        last_published_size: latest.as_ref().map(|p| p.size),
        last_published_age_secs: None,
        last_signed_size: last_signed.as_ref().map(|s| s.size),
        alarms: Vec::new(),
        witnesses: witnesses.iter().map(|w| w.status.clone()).collect(),
    };
    let (tx, _) = watch::channel(latest);
    let shared = Arc::new(Shared { latest: tx, health: Mutex::new(health) });
    let client = WitnessClient::new(cfg.witness_timeout, cfg.witness_retries, cfg.ca_cert.clone())
        .map_err(|e| StoreError::Corrupt(format!("cannot build the witness HTTP client: {e}")))?;
    let mirror = match cfg.bucket.clone() {
        Some(b) => Some(TileMirror::new(b, Arc::clone(&store))?),
        None => None,
    };
    let cp = Checkpointer {
        mirror,
        store,
        seq,
        key,
        policy: policy.map(Arc::new),
        cfg,
        metrics,
        client,
        shared: shared.clone(),
        last_signed,
        witnesses,
        reason: None,
    };
    let task = tokio::spawn(cp.run());
    Ok((Publisher { shared }, task))
}

/// Opens a stored note with our own key; anything else is corruption.
fn open_stored(note: &[u8], vkey: &VerifierKey, what: &str) -> Result<Checkpoint, StoreError> {
    open_checkpoint(note, vkey)
        .map(|o| o.checkpoint)
        .map_err(|e| StoreError::Corrupt(format!("{what} does not open with the log key: {e}")))
}

struct Signed {
    size: u64,
    note: Vec<u8>,
}

struct WitnessState {
    name: String,
    url: Option<String>,
    key: VerifierKey,
    /// Last size we know it cosigned (learned from 200 and 409 replies).
    known_size: u64,
    /// Value of meta "witness/<name>".
    persisted_size: u64,
    status: WitnessStatus,
}

impl WitnessState {
    fn new(w: &PolicyWitness, size: u64) -> Self {
        let status = WitnessStatus {
            name: w.name.clone(),
            ok: false,
            last_size: size,
            last_error: w.url.is_none().then(|| "no URL in the policy; never contacted".to_owned()),
            latency_ms: None,
            alarm: None,
        };
        WitnessState {
            name: w.name.clone(),
            url: w.url.clone(),
            key: w.key.clone(),
            known_size: size,
            persisted_size: size,
            status,
        }
    }
}

struct Checkpointer {
    /// Writes each checkpoint's read path to the bucket before it is
    /// published (`--store`).
    mirror: Option<TileMirror>,
    store: Arc<dyn Store>,
    seq: DurableSize,
    key: SignerKey,
    policy: Option<Arc<Policy>>,
    cfg: CheckpointerConfig,
    metrics: Arc<Metrics>,
    client: WitnessClient,
    shared: Arc<Shared>,
    last_signed: Option<Signed>,
    witnesses: Vec<WitnessState>,
    reason: Option<String>,
}

impl Checkpointer {
    fn published_size(&self) -> Option<u64> {
        self.shared.latest.borrow().as_ref().map(|p| p.size)
    }

    /// Runs rounds until the task is dropped. After a round that left
    /// nothing unpublished, the next starts when the sequencer reports a
    /// new durable batch (the batches of the round itself included), but
    /// not before `min_interval` since this one started, or after
    /// `interval` at the latest; after a failed round, after `interval`.
    async fn run(mut self) {
        let mut growth = Some(self.seq.subscribe());
        let min_interval = self.cfg.min_interval.min(self.cfg.interval);
        loop {
            let started = tokio::time::Instant::now();
            // Seen before the round reads the size: a batch made durable
            // while the round runs starts the next one.
            if let Some(g) = growth.as_mut() {
                g.borrow_and_update();
            }
            let settled = self.round().await;
            let latest = started + self.cfg.interval;
            if settled {
                tokio::select! {
                    () = next_batch(&mut growth) => {}
                    () = tokio::time::sleep_until(latest) => {}
                }
                tokio::time::sleep_until(started + min_interval).await;
            } else {
                tokio::time::sleep_until(latest).await;
            }
        }
    }

    /// One round: sign if the tree grew, then try to publish the newest
    /// signed checkpoint if it is not published yet. False when something
    /// failed (the reason is in `/health`) and the round must be retried.
    async fn round(&mut self) -> bool {
        if let Err(e) = self.catch_up_mirror().await {
            tracing::warn!(error = %e, "the bucket's read path is behind");
            self.reason = Some(e.to_string());
            self.update_health();
            return false;
        }
        let durable = self.seq.tree_size();
        let signed_size = self.last_signed.as_ref().map_or(0, |s| s.size);
        if durable > signed_size {
            if let Err(e) = self.sign(durable).await {
                tracing::error!(size = durable, error = %e, "signing checkpoint failed");
                self.reason = Some(format!("signing checkpoint of size {durable} failed: {e}"));
                self.update_health();
                return false;
            }
        }
        let Some(signed) = &self.last_signed else { return true };
        if self.published_size().is_some_and(|p| p >= signed.size) {
            return true;
        }
        let (size, note) = (signed.size, signed.note.clone());
        let settled = match self.cosign_and_publish(size, note).await {
            Ok(()) => {
                self.reason = None;
                true
            }
            Err(reason) => {
                tracing::warn!(size, %reason, "checkpoint not published");
                self.reason = Some(reason.to_string());
                false
            }
        };
        self.update_health();
        settled
    }

    async fn sign(&mut self, size: u64) -> Result<(), RoundError> {
        let store = self.store.clone();
        let root = tokio::task::spawn_blocking(move || tree_hash(size, &*store)).await??;
        let cp = Checkpoint { origin: self.key.name().to_owned(), size, root, extensions: Vec::new() };
        let note = sign_checkpoint(&cp, &self.key)?;
        let store = self.store.clone();
        let n = note.clone();
        tokio::task::spawn_blocking(move || store.put_meta(META_LATEST_SIGNED, &n)).await??;
        tracing::debug!(size, root = %root, "signed checkpoint");
        self.last_signed = Some(Signed { size, note });
        Ok(())
    }

    /// Collects cosignatures (with a policy) and publishes if the policy is
    /// satisfied. The error is the reason for `/health`.
    async fn cosign_and_publish(&mut self, size: u64, note: Vec<u8>) -> Result<(), RoundError> {
        let Some(policy) = self.policy.clone() else {
            return self.publish(size, note).await;
        };
        let mut jobs = JoinSet::new();
        for (index, w) in self.witnesses.iter().enumerate() {
            let Some(url) = w.url.clone() else { continue };
            let job = WitnessJob {
                index,
                url,
                key: w.key.clone(),
                known_size: w.known_size,
                size,
                note: note.clone(),
                store: self.store.clone(),
                client: self.client.clone(),
            };
            jobs.spawn(job.run());
        }
        let mut lines: Vec<Option<Vec<String>>> = vec![None; self.witnesses.len()];
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, jobs.join_next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                },
                None => jobs.join_next().await,
            };
            let Some(joined) = next else { break };
            let Ok(out) = joined else { continue };
            let w = &mut self.witnesses[out.index];
            self.metrics.observe_witness(&w.name, out.error.is_none(), out.elapsed.as_secs_f64());
            w.known_size = out.known_size;
            w.status.ok = out.error.is_none();
            w.status.last_size = out.known_size;
            w.status.latency_ms = Some(out.elapsed.as_millis() as u64);
            if let Some(e) = &out.error {
                tracing::warn!(witness = %w.name, error = %e, "witness round failed");
            }
            w.status.last_error = out.error;
            if let Some(alarm) = out.alarm {
                tracing::error!(witness = %w.name, %alarm, "witness is ahead of this log");
                w.status.alarm = Some(alarm);
            }
            if !out.lines.is_empty() {
                lines[out.index] = Some(out.lines);
            }
            if deadline.is_none()
                && !jobs.is_empty()
                && policy.verify_checkpoint(&assemble(&note, &lines)).is_ok()
            {
                deadline = Some(tokio::time::Instant::now() + QUORUM_GRACE);
            }
        }
        // Witnesses still running after the grace period: abandoned for this
        // round; a 409 teaches us their size next time if they did cosign.
        jobs.abort_all();
        for (i, w) in self.witnesses.iter_mut().enumerate() {
            if w.url.is_some() && lines[i].is_none() && w.status.ok {
                w.status.ok = false;
                w.status.last_error = Some("no answer before the quorum was published".to_owned());
            }
        }
        let full = assemble(&note, &lines);
        match policy.verify_checkpoint(&full) {
            Ok(v) => {
                tracing::info!(size, cosigners = v.cosigners.len(), "witness quorum met");
                // Witness sizes first: once awaiters wake, a shutdown may follow.
                self.persist_witness_sizes().await;
                self.publish(size, full).await
            }
            Err(e) => {
                let failing: Vec<String> = self
                    .witnesses
                    .iter()
                    .filter(|w| !w.status.ok)
                    .map(|w| {
                        format!("{}: {}", w.name, w.status.last_error.as_deref().unwrap_or("no cosignature"))
                    })
                    .collect();
                Err(RoundError::NoQuorum { size, policy: e, failing: failing.join("; ") })
            }
        }
    }

    /// Brings the bucket up to the checkpoint already published (a log
    /// that ran without `--store`, or whose last mirror failed).
    async fn catch_up_mirror(&mut self) -> Result<(), RoundError> {
        let latest = self.shared.latest.borrow().clone();
        if let (Some(mirror), Some(p)) = (self.mirror.as_mut(), latest) {
            if mirror.mirrored() < p.size {
                if let Err(e) = mirror.publish(p.size, &p.note).await {
                    self.metrics.inc_bucket_failure();
                    return Err(e.into());
                }
            }
            self.metrics.set_bucket_size(mirror.mirrored());
        }
        Ok(())
    }

    async fn publish(&mut self, size: u64, note: Vec<u8>) -> Result<(), RoundError> {
        if let Some(mirror) = self.mirror.as_mut() {
            if let Err(e) = mirror.publish(size, &note).await {
                self.metrics.inc_bucket_failure();
                return Err(e.into());
            }
            self.metrics.set_bucket_size(size);
        }
        let root = Checkpoint::parse(&custody_standards::Note::parse(&note)?.text)?.root;
        let store = self.store.clone();
        let n = note.clone();
        tokio::task::spawn_blocking(move || store.put_published_checkpoint(size, &n))
            .await?
            .map_err(RoundError::StorePublished)?;
        let p = Published { size, root, note, published_at: SystemTime::now() };
        // Health first: whoever sees the new checkpoint must not find a
        // stale "not published" reason next to it.
        self.reason = None;
        self.update_health();
        self.shared.latest.send_replace(Some(Arc::new(p)));
        tracing::debug!(size, "published checkpoint");
        Ok(())
    }

    /// Saves each witness's new size so a restart sends the right old size
    /// straight away. Best effort: a stale value only costs one 409.
    async fn persist_witness_sizes(&mut self) {
        for w in self.witnesses.iter_mut().filter(|w| w.known_size != w.persisted_size) {
            let store = self.store.clone();
            let (key, value) = (format!("witness/{}", w.name), w.known_size.to_be_bytes());
            let r = tokio::task::spawn_blocking(move || store.put_meta(key.as_bytes(), &value)).await;
            match r {
                Ok(Ok(())) => w.persisted_size = w.known_size,
                Ok(Err(e)) => tracing::warn!(witness = %w.name, error = %e, "persisting witness size failed"),
                Err(e) => tracing::warn!(witness = %w.name, error = %e, "persisting witness size failed"),
            }
        }
    }

    fn update_health(&self) {
        let policy_ok = self.reason.is_none();
        let published = self.published_size();
        let mut h = self.shared.health.lock().unwrap_or_else(|e| e.into_inner());
        h.quorum_ok = policy_ok;
        h.reason = self.reason.clone();
        h.alarms = self
            .witnesses
            .iter()
            .filter_map(|w| w.status.alarm.as_ref().map(|a| format!("{}: {a}", w.name)))
            .collect();
        h.last_published_size = published;
        h.last_signed_size = self.last_signed.as_ref().map(|s| s.size);
        h.witnesses = self.witnesses.iter().map(|w| w.status.clone()).collect();
    }
}

/// Resolves when the sequencer reports a batch not seen yet; never once the
/// sequencer has stopped (the `interval` rounds go on).
async fn next_batch(growth: &mut Option<watch::Receiver<u64>>) {
    let stopped = match growth.as_mut() {
        Some(rx) => rx.changed().await.is_err(),
        None => true,
    };
    if stopped {
        *growth = None;
        std::future::pending::<()>().await;
    }
}

/// The note with the log signature and every collected cosignature line.
fn assemble(note: &[u8], lines: &[Option<Vec<String>>]) -> Vec<u8> {
    let mut out = note.to_vec();
    for l in lines.iter().flatten().flatten() {
        out.extend_from_slice(l.as_bytes());
    }
    out
}
