//! The witness's in-memory state: what it trusts (reloadable on SIGHUP) and,
//! per origin, the latest cosigned checkpoint and whether it is frozen.
//!
//! Per-origin state sits behind its own mutex. add-checkpoint holds it from
//! the old-size check until its change is queued for the group commit, which
//! makes check-and-update atomic per origin (tlog-witness: "checking the old
//! size against the latest checkpoint and persisting the new checkpoint must
//! be performed atomically") while different origins never wait for each
//! other. Locks are never held across an `.await`.
//!
//! Two views of the latest checkpoint are kept: `pending` (what the next
//! request must chain on, possibly not durable yet) and `durable` (what has
//! been fsynced). Only `durable` is ever shown to anyone: serving a
//! cosignature that a crash could forget would let the witness later cosign a
//! conflicting checkpoint of the same size.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use custody_registry::evidence::Evidence;
use custody_standards::cosignature::CosignatureSigner;
use custody_standards::hash::sha256;

use crate::committer::Committer;
use crate::log_list::LogList;
use crate::metrics::{Gauges, Metrics};
use crate::peers::Peer;
use crate::store::{Latest, Store, StoreError};

/// Everything the operator configures: reloaded as a unit on SIGHUP.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Logs we witness.
    pub logs: LogList,
    /// Peer witnesses we gossip with.
    pub peers: Vec<Peer>,
}

/// Per-origin state (see the module docs).
#[derive(Debug, Default)]
pub struct OriginState {
    /// Latest accepted checkpoint, possibly not yet durable.
    pub pending: Option<Latest>,
    /// Latest durable cosigned checkpoint.
    pub durable: Option<Latest>,
    /// ID of the evidence that froze this origin, if any.
    pub frozen: Option<String>,
}

/// Summary of one evidence record, for listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceInfo {
    /// Evidence ID (hex SHA-256 of the text).
    pub id: String,
    /// Origin it is about.
    pub origin: String,
    /// When it was recorded (POSIX seconds).
    pub detected: u64,
    /// Witness that recorded it first.
    pub reporter: String,
}

/// The witness: trust, keys, per-origin state, storage.
pub struct Witness {
    name: String,
    signers: Vec<CosignatureSigner>,
    trust: RwLock<Arc<Trust>>,
    origins: Mutex<HashMap<String, Arc<Mutex<OriginState>>>>,
    by_hex: Mutex<HashMap<String, String>>,
    evidence: Mutex<BTreeMap<String, EvidenceInfo>>,
    /// Split key ([`crate::evidence::split_key`]) -> ID of the first
    /// evidence recorded for that split.
    splits: Mutex<HashMap<String, String>>,
    /// IDs of evidence texts seen to repeat a recorded split (not stored),
    /// so gossip does not fetch them again every round. Bounded: a peer
    /// can mint any number of them.
    duplicates: Mutex<std::collections::HashSet<String>>,
    store: Arc<dyn Store>,
    committer: Committer,
    metrics: Arc<Metrics>,
    test_stall: RwLock<Option<std::time::Duration>>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Most evidence IDs remembered as repeats of a recorded split.
const MAX_DUPLICATE_IDS: usize = 4096;

/// Lowercase hex SHA-256 of an origin: the path segment of its monitoring
/// URL `/<hex>/checkpoint`.
pub fn origin_hex(origin: &str) -> String {
    sha256(origin.as_bytes()).to_hex()
}

/// Seconds since the epoch (cosignature timestamps, evidence times).
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave these maps half-updated in
    // a way that matters more than refusing to serve; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Witness {
    /// Loads durable state from `store`. `signers` must not be empty: every
    /// one of them cosigns (several are active during a key rotation).
    pub fn open(
        name: String,
        signers: Vec<CosignatureSigner>,
        trust: Trust,
        store: Arc<dyn Store>,
        committer: Committer,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StoreError> {
        if signers.is_empty() {
            return Err(StoreError::Corrupt("no witness keys".into()));
        }
        let w = Witness {
            name,
            signers,
            trust: RwLock::new(Arc::new(trust)),
            origins: Mutex::new(HashMap::new()),
            by_hex: Mutex::new(HashMap::new()),
            evidence: Mutex::new(BTreeMap::new()),
            splits: Mutex::new(HashMap::new()),
            duplicates: Mutex::new(std::collections::HashSet::new()),
            store,
            committer,
            metrics,
            test_stall: RwLock::new(None),
        };
        for (origin, latest) in w.store.all_latest()? {
            let st = w.origin(&origin);
            let mut st = lock(&st);
            st.pending = Some(latest.clone());
            st.durable = Some(latest);
        }
        for (origin, id) in w.store.frozen()? {
            lock(&w.origin(&origin)).frozen = Some(id);
        }
        for (id, bytes) in w.store.all_evidence()? {
            match Evidence::parse(&bytes) {
                Ok(ev) => w.index_evidence(id, &ev),
                Err(e) => tracing::warn!(%id, error = %e, "stored evidence does not parse"),
            }
        }
        Ok(Arc::new(w))
    }

    /// The witness name (the name of its keys).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosigning keys.
    pub fn signers(&self) -> &[CosignatureSigner] {
        &self.signers
    }

    /// Current trust configuration.
    pub fn trust(&self) -> Arc<Trust> {
        Arc::clone(&self.trust.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the trust configuration (SIGHUP). In-flight requests keep
    /// the configuration they started with.
    pub fn set_trust(&self, trust: Trust) {
        *self.trust.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(trust);
    }

    /// Test hook: see `--test-stall-ms`.
    pub fn set_test_stall(&self, stall: Option<std::time::Duration>) {
        *self.test_stall.write().unwrap_or_else(|p| p.into_inner()) = stall;
    }

    /// The configured test stall, if any.
    pub fn test_stall(&self) -> Option<std::time::Duration> {
        *self.test_stall.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The store (read-only uses: evidence bodies).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The group committer.
    pub fn committer(&self) -> &Committer {
        &self.committer
    }

    /// Process metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The state cell of `origin`, created on first use.
    pub fn origin(&self, origin: &str) -> Arc<Mutex<OriginState>> {
        let mut map = lock(&self.origins);
        if let Some(s) = map.get(origin) {
            return Arc::clone(s);
        }
        let s = Arc::new(Mutex::new(OriginState::default()));
        map.insert(origin.to_owned(), Arc::clone(&s));
        lock(&self.by_hex).insert(origin_hex(origin), origin.to_owned());
        s
    }

    /// Locks an origin cell.
    pub fn lock_origin<'a>(&self, cell: &'a Mutex<OriginState>) -> MutexGuard<'a, OriginState> {
        lock(cell)
    }

    /// The latest durable cosigned checkpoint of `origin`.
    pub fn latest(&self, origin: &str) -> Option<Latest> {
        let cell = lock(&self.origins).get(origin).cloned()?;
        let st = lock(&cell);
        st.durable.clone()
    }

    /// The latest durable checkpoint by the hex SHA-256 of its origin.
    pub fn latest_by_hex(&self, hex: &str) -> Option<Latest> {
        let origin = lock(&self.by_hex).get(hex).cloned()?;
        self.latest(&origin)
    }

    /// Origins with a durable checkpoint.
    pub fn known_origins(&self) -> Vec<String> {
        let cells: Vec<(String, Arc<Mutex<OriginState>>)> =
            lock(&self.origins).iter().map(|(o, c)| (o.clone(), Arc::clone(c))).collect();
        cells.into_iter().filter(|(_, c)| lock(c).durable.is_some()).map(|(o, _)| o).collect()
    }

    /// Frozen origins and the evidence that froze each.
    pub fn frozen_origins(&self) -> Vec<(String, String)> {
        let cells: Vec<(String, Arc<Mutex<OriginState>>)> =
            lock(&self.origins).iter().map(|(o, c)| (o.clone(), Arc::clone(c))).collect();
        let mut out: Vec<(String, String)> =
            cells.into_iter().filter_map(|(o, c)| lock(&c).frozen.clone().map(|id| (o, id))).collect();
        out.sort();
        out
    }

    /// Records an evidence summary in the in-memory index.
    pub(crate) fn index_evidence(&self, id: String, ev: &Evidence) {
        let info = EvidenceInfo {
            id: id.clone(),
            origin: ev.origin.clone(),
            detected: ev.detected,
            reporter: ev.reporter.clone(),
        };
        if let Some(key) = crate::evidence::split_key(ev) {
            lock(&self.splits).entry(key).or_insert_with(|| id.clone());
        }
        lock(&self.evidence).insert(id, info);
    }

    /// The evidence already recorded for the split with this key
    /// ([`crate::evidence::split_key`]), cleared or not.
    pub fn evidence_for_split(&self, key: &str) -> Option<String> {
        lock(&self.splits).get(key).cloned()
    }

    /// Whether evidence `id` is stored, or known to repeat a stored split.
    pub fn has_evidence(&self, id: &str) -> bool {
        lock(&self.evidence).contains_key(id) || lock(&self.duplicates).contains(id)
    }

    /// Remembers that evidence `id` repeats a split already recorded.
    pub(crate) fn note_duplicate(&self, id: String) {
        let mut d = lock(&self.duplicates);
        if d.len() >= MAX_DUPLICATE_IDS {
            d.clear();
        }
        d.insert(id);
    }

    /// Evidence records about `origin`.
    pub fn evidence_count_for(&self, origin: &str) -> usize {
        lock(&self.evidence).values().filter(|e| e.origin == origin).count()
    }

    /// Every evidence summary, by ID.
    pub fn evidence_list(&self) -> Vec<EvidenceInfo> {
        lock(&self.evidence).values().cloned().collect()
    }

    /// Gauges for `/metrics` and `/health`.
    pub fn gauges(&self) -> Gauges {
        let trust = self.trust();
        Gauges {
            evidence: lock(&self.evidence).len(),
            frozen_origins: self.frozen_origins().len(),
            logs: trust.logs.logs.len(),
            peers: trust.peers.len(),
            store_failed: self.committer.is_failed(),
        }
    }
}
