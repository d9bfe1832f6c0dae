//! Gossip with peer witnesses, to catch a log that shows different
//! witnesses different trees.
//!
//! Every interval, for each peer:
//! 1. Import its evidence (`GET <peer>/evidence`, then each unknown
//!    `/evidence/<id>`) about logs we witness. Evidence is self-verifying,
//!    so we accept it after [`Witness::record_evidence`] has checked it with
//!    our own log keys, whoever found it. This matters: only a witness that
//!    can fetch the larger tree's tiles can prove a split, and a split log
//!    shows each witness only its own view.
//! 2. Fetch its latest cosigned checkpoint of every origin we have cosigned
//!    (`GET <peer>/<hex(SHA-256(origin))>/checkpoint`), require a valid
//!    cosignature from the peer's keys, and [`Witness::compare`] it.
//!
//! Peers may also push checkpoints (`POST /gossip/checkpoint`,
//! [`Gossip::accept_push`]). A push that cannot be decided yet is kept (one
//! per origin and peer) and retried every round.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_registry::evidence::{Evidence, MAX_EVIDENCE_SIZE};
use custody_standards::hash::sha256;
use custody_standards::note::{open_note, NoteVerifier};
use custody_standards::witness::MAX_CHECKPOINT_SIZE;
use custody_standards::Hash;

use crate::evidence::{CompareError, Comparison};
use crate::log_client::HttpClient;
use crate::peers::Peer;
use crate::state::{origin_hex, EvidenceInfo, Witness};

/// Largest evidence listing read from a peer.
pub const MAX_EVIDENCE_LIST_SIZE: usize = 1 << 20;
/// Most evidence records imported from one peer per round.
pub const MAX_IMPORTS_PER_ROUND: usize = 16;

/// Why a pushed checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No valid cosignature from any configured peer.
    #[error("no valid cosignature from a configured peer witness")]
    NotFromPeer,
    /// The comparison could not run.
    #[error(transparent)]
    Compare(#[from] CompareError),
}

/// `GET /evidence` body.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct EvidenceList {
    /// Summaries of every stored evidence record.
    pub evidence: Vec<EvidenceListItem>,
}

/// One entry of [`EvidenceList`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct EvidenceListItem {
    /// Evidence ID (hex SHA-256 of the evidence text).
    pub id: String,
    /// Log origin.
    pub origin: String,
    /// POSIX seconds when it was recorded by its reporter.
    pub detected: u64,
    /// Witness that recorded it first.
    pub reporter: String,
    /// Whether the origin is currently frozen by this record.
    pub active: bool,
}

impl EvidenceListItem {
    /// Listing entry for `info`.
    pub fn new(info: EvidenceInfo, active: bool) -> Self {
        EvidenceListItem {
            id: info.id,
            origin: info.origin,
            detected: info.detected,
            reporter: info.reporter,
            active,
        }
    }
}

/// (origin, peer name).
type OriginPeer = (String, String);

/// Gossip state shared by the periodic task and the push endpoint.
#[derive(Debug)]
pub struct Gossip {
    witness: Arc<Witness>,
    client: HttpClient,
    /// Undecided pushes: (origin, peer name) -> note.
    unresolved: Mutex<HashMap<OriginPeer, Vec<u8>>>,
    /// Last pair found consistent per (origin, peer): (our size, our root,
    /// SHA-256 of the peer's note). An unchanged pair is not re-checked, so
    /// a peer that is ahead of us does not cost the log tile fetches every
    /// round.
    consistent: Mutex<HashMap<OriginPeer, (u64, Hash, Hash)>>,
}

fn peer_keys(peer: &Peer) -> Vec<&dyn NoteVerifier> {
    peer.keys.iter().map(|k| k as &dyn NoteVerifier).collect()
}

impl Gossip {
    /// Gossip for `witness` using `client` for all outgoing requests.
    pub fn new(witness: Arc<Witness>, client: HttpClient) -> Arc<Self> {
        Arc::new(Gossip {
            witness,
            client,
            unresolved: Mutex::new(HashMap::new()),
            consistent: Mutex::new(HashMap::new()),
        })
    }

    /// Runs rounds forever, one per `interval`.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.round().await;
        }
    }

    /// One round (see the module docs): every peer concurrently, so one
    /// slow peer cannot delay the others beyond its request timeouts.
    pub async fn round(self: &Arc<Self>) {
        let trust = self.witness.trust();
        let mut peers = tokio::task::JoinSet::new();
        for peer in &trust.peers {
            let (me, peer) = (Arc::clone(self), peer.clone());
            peers.spawn(async move { me.gossip_with(&peer).await });
        }
        while peers.join_next().await.is_some() {}
        self.retry_unresolved().await;
    }

    async fn gossip_with(&self, peer: &Peer) {
        let trust = self.witness.trust();
        self.import_evidence(peer).await;
        for origin in self.witness.known_origins() {
            if trust.logs.get(&origin).is_none() || self.is_frozen(&origin) {
                continue;
            }
            let url = format!("{}/{}/checkpoint", peer.url, origin_hex(&origin));
            let note = match self.witness_client_get(&url, MAX_CHECKPOINT_SIZE).await {
                Some(n) => n,
                None => continue,
            };
            if open_note(&note, &peer_keys(peer)).is_err() {
                tracing::warn!(peer = %peer.name, %url, "peer checkpoint lacks a valid cosignature from the peer");
                continue;
            }
            let Some(mine) = self.witness.latest(&origin) else { continue };
            let key = (origin.clone(), peer.name.clone());
            let pair = (mine.size, mine.root, sha256(&note));
            if self.consistent.lock().unwrap_or_else(|p| p.into_inner()).get(&key) == Some(&pair) {
                continue;
            }
            let c = self.compare_and_log(&note, &format!("peer {} {url}", peer.name)).await;
            if c == Some(Comparison::Consistent) {
                self.consistent.lock().unwrap_or_else(|p| p.into_inner()).insert(key, pair);
            }
        }
    }

    async fn retry_unresolved(&self) {
        let retry: Vec<((String, String), Vec<u8>)> =
            self.unresolved.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        for ((origin, peer), note) in retry {
            if let Some(Comparison::Unresolved(_)) =
                self.compare_and_log(&note, &format!("pushed by peer {peer}")).await
            {
                self.unresolved.lock().unwrap_or_else(|p| p.into_inner()).insert((origin, peer), note);
            }
        }
    }

    fn is_frozen(&self, origin: &str) -> bool {
        let cell = self.witness.origin(origin);
        let frozen = self.witness.lock_origin(&cell).frozen.is_some();
        frozen
    }

    /// GET with metrics; `None` on 404 or failure (logged).
    async fn witness_client_get(&self, url: &str, max: usize) -> Option<Vec<u8>> {
        match self.client.get(url, max).await {
            Ok(body) => {
                self.witness.metrics().count_gossip(true);
                body
            }
            Err(e) => {
                self.witness.metrics().count_gossip(false);
                tracing::warn!(%url, error = %e, "gossip fetch failed");
                None
            }
        }
    }

    async fn compare_and_log(&self, note: &[u8], source: &str) -> Option<Comparison> {
        match self.witness.compare(&self.client, note, source).await {
            Ok(c) => {
                match &c {
                    Comparison::Unresolved(why) => {
                        tracing::info!(%source, %why, "gossip: undecided, will retry")
                    }
                    Comparison::SplitView(id) => {
                        tracing::error!(%source, evidence = %id, "gossip: split view")
                    }
                    _ => tracing::debug!(%source, ?c, "gossip: compared"),
                }
                Some(c)
            }
            Err(e) => {
                tracing::warn!(%source, error = %e, "gossip: checkpoint refused");
                None
            }
        }
    }

    async fn import_evidence(&self, peer: &Peer) {
        let url = format!("{}/evidence", peer.url);
        let Some(body) = self.witness_client_get(&url, MAX_EVIDENCE_LIST_SIZE).await else { return };
        let list: EvidenceList = match serde_json::from_slice(&body) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(peer = %peer.name, error = %e, "peer evidence list is not valid JSON");
                return;
            }
        };
        let trust = self.witness.trust();
        let wanted = list
            .evidence
            .into_iter()
            .filter(|e| trust.logs.get(&e.origin).is_some() && !self.witness.has_evidence(&e.id))
            .filter(|e| e.id.len() == 64 && e.id.bytes().all(|b| b.is_ascii_hexdigit()))
            .take(MAX_IMPORTS_PER_ROUND);
        for item in wanted {
            let url = format!("{}/evidence/{}", peer.url, item.id);
            let Some(bytes) = self.witness_client_get(&url, MAX_EVIDENCE_SIZE).await else { continue };
            if sha256(&bytes).to_hex() != item.id {
                tracing::warn!(peer = %peer.name, %url, "peer evidence does not match its ID");
                continue;
            }
            let ev = match Evidence::parse(&bytes) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(peer = %peer.name, %url, error = %e, "peer evidence does not parse");
                    continue;
                }
            };
            match self.witness.record_evidence(ev).await {
                Ok(id) => {
                    tracing::error!(peer = %peer.name, evidence = %id, "imported verified split-view evidence")
                }
                Err(e) => tracing::warn!(peer = %peer.name, %url, error = %e, "peer evidence refused"),
            }
        }
    }

    /// Handles a checkpoint pushed by a peer: it must carry a valid
    /// cosignature from a configured peer, then it is compared like a
    /// fetched one.
    pub async fn accept_push(&self, note: &[u8]) -> Result<Comparison, PushError> {
        let trust = self.witness.trust();
        let peer = trust
            .peers
            .iter()
            .find(|p| open_note(note, &peer_keys(p)).is_ok())
            .ok_or(PushError::NotFromPeer)?;
        let c = self.witness.compare(&self.client, note, &format!("pushed by peer {}", peer.name)).await?;
        if matches!(c, Comparison::Unresolved(_)) {
            if let Ok(origin) = custody_standards::note::Note::parse(note)
                .map_err(|_| ())
                .and_then(|n| custody_standards::Checkpoint::parse(&n.text).map_err(|_| ()))
                .map(|c| c.origin)
            {
                self.unresolved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((origin, peer.name.clone()), note.to_vec());
            }
        }
        Ok(c)
    }

    /// The witness this gossips for.
    pub fn witness(&self) -> &Arc<Witness> {
        &self.witness
    }

    /// The outgoing HTTP client.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }
}
