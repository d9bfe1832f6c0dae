//! Entry listings proven complete: the log lists the entries about a
//! name, a digest or an actor (`GET .../entries`), and the registry state
//! its checkpoint commits to holds the hash chain of exactly those entries
//! (`NameEntries`, `DigestEntries`, `ActorEntries`, docs/protocol.md
//! section 9). A list whose chain is not the proven one omits, adds or
//! reorders an entry and is refused (exit 2); the entries themselves are
//! then fetched with inclusion proofs, so every row a client shows comes
//! from a signed statement in the log, never from the listing.

use std::time::Duration;

use custody_registry::commitment::{EntriesValue, StateKey, StateValue};
use custody_registry::leaf::{Leaf, LogLeaf};
use custody_registry::log_event::{LogEvent, SignedLogEvent};
use custody_registry::statement::SignedStatement;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::state::describe;
use crate::statements::{fetch_proven, is_state_expired, wait_checkpoint};
use crate::trust::{Trust, Trusted};

/// Indexes asked for per listing page (the log's maximum).
const PAGE: u32 = 1000;

/// The log's listing of the entries an entries key covers, `None` for
/// other keys.
pub fn listing_path(key: &StateKey) -> Option<String> {
    match key {
        StateKey::NameEntries { name } => Some(format!("registry/models/{}/entries", name.as_str())),
        StateKey::DigestEntries { digest } => Some(format!("registry/artifacts/{digest}/entries")),
        StateKey::ActorEntries { actor } => Some(format!("registry/actors/{}/entries", actor.as_str())),
        _ => None,
    }
}

/// Every index the log lists under `path` after `after` (all when `None`)
/// and below `below`, in the order listed. A listing of nothing (404) is
/// an empty list: the committed chain says whether it should be.
pub fn listed(trust: &Trust, path: &str, after: Option<u64>, below: u64) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut after = after;
    loop {
        let q = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let page: Value = match trust.client().get_json(&format!("{path}?limit={PAGE}{q}")) {
            Ok(p) => p,
            Err(Error::Refused { status: 404, .. }) => return Ok(out),
            Err(e) => return Err(e),
        };
        let indexes: Vec<u64> =
            page["indexes"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
        let done = indexes.iter().any(|&i| i >= below);
        out.extend(indexes.iter().copied().filter(|&i| i < below));
        match page["next_after"].as_u64() {
            // Indexes must grow page after page: a log looping us is cut.
            Some(n) if !done && !indexes.is_empty() && after.map_or(true, |a| n > a) && n < below => {
                after = Some(n)
            }
            _ => break,
        }
    }
    Ok(out)
}

/// `value` extended by `indexes`, in order: what the chain must become when
/// exactly those entries were logged after it.
pub fn extended(value: EntriesValue, indexes: &[u64]) -> EntriesValue {
    let mut v = value;
    for &i in indexes {
        v.push(i);
    }
    v
}

/// The committed entries value of `key` in a proven state (empty when the
/// key is proven absent).
pub fn entries_value(state: &crate::state::ProvenState, key: &StateKey) -> EntriesValue {
    match state.get(key) {
        Some(StateValue::Entries(e)) => *e,
        _ => EntriesValue::default(),
    }
}

/// A listing proven complete under one checkpoint.
#[derive(Debug, Clone)]
pub struct Complete {
    /// The checkpoint whose committed state proves the list.
    pub checkpoint: Trusted,
    /// Every entry the key covers, in log order.
    pub indexes: Vec<u64>,
    /// The committed value (count, last, chain).
    pub committed: EntriesValue,
}

/// Lists the entries of `key` from `path` and proves the list complete:
/// list everything now, wait for a checkpoint covering the last one (and
/// the commitment after it), list again below that commitment (entries
/// logged in between are then in both), prove the key's value under the
/// checkpoint and refuse a list whose chain differs.
///
/// A log that no longer serves the state of that checkpoint (410
/// `state_expired`, for example right after its restart) is asked again
/// under the next checkpoint, until `timeout`: the answer is not a verdict.
pub fn proven_complete(trust: &Trust, key: &StateKey, path: &str, timeout: Duration) -> Result<Complete> {
    let deadline = std::time::Instant::now() + timeout;
    let all = listed(trust, path, None, u64::MAX)?;
    let mut need = all.last().map_or(0, |l| l + 1);
    let (checkpoint, indexes, state) = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let checkpoint = wait_checkpoint(trust, need, left)?;
        let covered = checkpoint.checkpoint.size.saturating_sub(1);
        let indexes = listed(trust, path, None, covered)?;
        match crate::state::prove(trust, &checkpoint, std::slice::from_ref(key)) {
            Err(e) if is_state_expired(&e) && std::time::Instant::now() < deadline => {
                need = checkpoint.checkpoint.size;
            }
            state => break (checkpoint, indexes, state?),
        }
    };
    let committed = entries_value(&state, key);
    if EntriesValue::of(indexes.iter().copied()) != committed {
        return Err(Error::verify(format!(
            "the log's list of {} is not complete: it lists {}, the committed state counts {} (last at entry {})",
            describe(key),
            indexes.len(),
            committed.count,
            committed.last
        )));
    }
    Ok(Complete { checkpoint, indexes, committed })
}

/// A statement whose entry was proven included.
#[derive(Debug, Clone)]
pub struct ProvenStatement {
    /// Leaf index.
    pub index: u64,
    /// The log's receive time, ms since the epoch.
    pub received_ms: u64,
    /// The signed statement in the entry.
    pub signed: SignedStatement,
}

/// A log-signed entry ([`custody_registry::log_event`]) proven included
/// and verified with the log's key.
#[derive(Debug, Clone)]
pub struct ProvenLogEvent {
    /// Leaf index.
    pub index: u64,
    /// When the log made it, ms since the epoch.
    pub received_ms: u64,
    /// The event.
    pub event: LogEvent,
}

/// A proven entry of an entry list: a statement, or an event the log
/// signed. Almost every entry is a statement, so it stays inline.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum ProvenEntry {
    /// A signed statement.
    Statement(ProvenStatement),
    /// A log event.
    LogEvent(ProvenLogEvent),
}

/// Fetches entry `index`, proves it included under `checkpoint`, and
/// decodes its statement, or its log event verified with the key the
/// policy trusts for the checkpoint's origin (a log event signed by any
/// other key is refused, exit 2).
pub fn proven_entry(trust: &Trust, index: u64, checkpoint: &Trusted) -> Result<ProvenEntry> {
    let (entry, _) = fetch_proven(trust, index, checkpoint)?;
    let fail = |e: &dyn std::fmt::Display| Error::verify(format!("entry {index}: {e}"));
    match LogLeaf::decode(&entry).map_err(|e| fail(&e))? {
        LogLeaf::LogEvent(leaf) => {
            let origin = &checkpoint.checkpoint.origin;
            let key = trust.policy().logs().iter().find(|l| l.key.name() == origin.as_str()).map(|l| &l.key);
            let signed = SignedLogEvent::parse(leaf.envelope).map_err(|e| fail(&e))?;
            signed.verify(key.ok_or_else(|| fail(&"no log key for this origin"))?).map_err(|e| fail(&e))?;
            Ok(ProvenEntry::LogEvent(ProvenLogEvent {
                index,
                received_ms: leaf.receive_time_ms,
                event: signed.event,
            }))
        }
        _ => proven_from(index, &entry).map(ProvenEntry::Statement),
    }
}

/// Fetches entry `index`, proves it included under `checkpoint` and
/// decodes its statement.
pub fn proven_statement(trust: &Trust, index: u64, checkpoint: &Trusted) -> Result<ProvenStatement> {
    let (entry, _) = fetch_proven(trust, index, checkpoint)?;
    proven_from(index, &entry)
}

fn proven_from(index: u64, entry: &[u8]) -> Result<ProvenStatement> {
    let leaf = Leaf::decode(entry).map_err(|e| Error::verify(format!("entry {index}: {e}")))?;
    let signed =
        SignedStatement::parse(leaf.envelope).map_err(|e| Error::verify(format!("entry {index}: {e}")))?;
    Ok(ProvenStatement { index, received_ms: leaf.receive_time_ms, signed })
}
