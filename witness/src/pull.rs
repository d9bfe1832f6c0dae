//! Pull mode, for logs that do not call add-checkpoint themselves: poll the
//! log's `<url>/checkpoint`, build the consistency proof from its tiles, and
//! cosign through the same add-checkpoint path as a push (same checks, same
//! atomic update, same durability).
//!
//! Each log is polled at most once per `max(interval, 86400 / qpd)` seconds:
//! the log list's `qpd` is what the log agreed to, so we do not exceed it in
//! either direction. A polled checkpoint that contradicts ours is handed to
//! [`Witness::compare`], which records evidence when the log's own tiles
//! prove the split.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_standards::checkpoint::open_checkpoint_with;
use custody_standards::note::NoteVerifier;
use custody_standards::witness::{AddCheckpointRequest, MAX_CHECKPOINT_SIZE};

use crate::add_checkpoint::AddError;
use crate::evidence::{CompareError, Comparison};
use crate::log_client::{prefix_proof, FetchError, HttpClient, ProveError};
use crate::log_list::LogEntry;
use crate::state::Witness;

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// The log's checkpoint is the one we cosigned.
    Unchanged,
    /// We cosigned the log's new checkpoint of this size.
    Cosigned(u64),
    /// The checkpoint was compared with ours instead (equal size or older).
    Compared(Comparison),
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The log did not answer usefully.
    #[error("fetching the checkpoint: {0}")]
    Fetch(#[from] FetchError),
    /// The log serves no checkpoint.
    #[error("the log serves no checkpoint (404)")]
    NoCheckpoint,
    /// The checkpoint is not validly signed, or of another origin.
    #[error("the log's checkpoint is not acceptable: {0}")]
    BadCheckpoint(String),
    /// The tiles could not prove consistency (unavailable or not
    /// authenticating).
    #[error("building the consistency proof from tiles: {0}")]
    Prove(#[from] ProveError),
    /// add-checkpoint refused it.
    #[error(transparent)]
    Add(#[from] AddError),
    /// The comparison failed.
    #[error(transparent)]
    Compare(#[from] CompareError),
}

/// Polls one log once.
pub async fn pull_once(w: &Witness, client: &HttpClient, log: &LogEntry) -> Result<PullOutcome, PullError> {
    let Some(url) = log.url.as_deref() else {
        return Err(PullError::BadCheckpoint("no url in the log list".into()));
    };
    let note = client
        .get(&format!("{url}/checkpoint"), MAX_CHECKPOINT_SIZE)
        .await?
        .ok_or(PullError::NoCheckpoint)?;
    let cp = {
        let keys: Vec<&dyn NoteVerifier> = log.keys.iter().map(|k| k as &dyn NoteVerifier).collect();
        open_checkpoint_with(&note, &keys).map_err(|e| PullError::BadCheckpoint(e.to_string()))?.checkpoint
    };
    if cp.origin != log.origin {
        return Err(PullError::BadCheckpoint(format!("origin {:?} is not {:?}", cp.origin, log.origin)));
    }
    let (old, proof) = match w.latest(&log.origin) {
        None => (0, Vec::new()),
        Some(mine) if mine.size == cp.size && mine.root == cp.root => return Ok(PullOutcome::Unchanged),
        Some(mine) if mine.size < cp.size => {
            let p = prefix_proof(client, url, mine.size, cp.size, cp.root).await?;
            if p.prefix != mine.root {
                // The log's own tiles say our checkpoint is not a prefix.
                let c = w.compare(client, &note, &format!("log {url}/checkpoint")).await?;
                return Ok(PullOutcome::Compared(c));
            }
            (mine.size, p.proof)
        }
        Some(_) => {
            let c = w.compare(client, &note, &format!("log {url}/checkpoint")).await?;
            return Ok(PullOutcome::Compared(c));
        }
    };
    let size = cp.size;
    w.add_checkpoint_request(AddCheckpointRequest { old_size: old, proof, checkpoint: note }).await?;
    Ok(PullOutcome::Cosigned(size))
}

/// Polls every log with a `url`, forever; `interval` is the shortest period.
pub async fn run_pull(w: Arc<Witness>, client: HttpClient, interval: Duration) {
    let mut next_due: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let trust = w.trust();
        let now = Instant::now();
        next_due.retain(|origin, _| trust.logs.get(origin).is_some());
        let mut polls = tokio::task::JoinSet::new();
        for log in trust.logs.logs.values().filter(|l| l.url.is_some()) {
            if next_due.get(&log.origin).is_some_and(|due| *due > now) {
                continue;
            }
            let period =
                log.qpd.map_or(interval, |q| interval.max(Duration::from_secs_f64(86_400.0 / q as f64)));
            next_due.insert(log.origin.clone(), now + period);
            // Bounded fan-out: one slow log cannot hold up the others.
            while polls.len() >= MAX_CONCURRENT_POLLS {
                polls.join_next().await;
            }
            let (w, client, log) = (Arc::clone(&w), client.clone(), log.clone());
            polls.spawn(async move { poll_and_count(&w, &client, &log).await });
        }
        while polls.join_next().await.is_some() {}
    }
}

/// Most logs polled concurrently.
pub const MAX_CONCURRENT_POLLS: usize = 16;

async fn poll_and_count(w: &Witness, client: &HttpClient, log: &LogEntry) {
    match pull_once(w, client, log).await {
        Ok(outcome) => {
            w.metrics().count_pull(true);
            tracing::debug!(origin = %log.origin, ?outcome, "pulled");
        }
        Err(PullError::Add(AddError::Conflict(_))) => {
            // A push advanced the origin meanwhile; the next poll catches up.
            w.metrics().count_pull(true);
        }
        Err(e) => {
            w.metrics().count_pull(false);
            tracing::warn!(origin = %log.origin, error = %e, "pull failed");
        }
    }
}
