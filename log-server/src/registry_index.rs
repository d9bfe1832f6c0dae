//! The secondary index rows the log writes beside each entry, and the
//! `state` row keys of the committed state map.
//!
//! Index rows are `prefix || key || index (u64 BE)`: a prefix scan lists
//! the entries of a digest, an actor or a name in log order, which is the
//! order the committed entries chains
//! ([`custody_registry::commitment::EntriesValue`]) hash them in. They are
//! written in the same RocksDB batch as the entries they point at, and
//! `restore` rebuilds them with the same functions.

use custody_registry::commitment::committer::log_event_names;
use custody_registry::commitment::StateKey;
use custody_registry::log_event::LogEvent;
use custody_registry::names::{ActorName, Digest, ModelName};
use custody_registry::registry::{Applied, Effect, Registry};
use custody_registry::statement::Statement;

use crate::store::IndexRow;

/// Index row prefix: access history of a digest (`a` || digest || index).
const PREFIX_ACCESS: u8 = b'a';
/// Index row prefix: every publish and access of a digest (`d` || digest
/// || index), the list the committed `DigestEntries` chain proves complete.
/// Written from the release that added it on: see [`crate::index_check`].
const PREFIX_DIGEST: u8 = b'd';
/// Index row prefix: entries of an actor (`u` || len || actor || index),
/// the list the committed `ActorEntries` chain proves complete.
const PREFIX_ACTOR: u8 = b'u';
/// Index row prefix: entries about a model name (`n` || len || name ||
/// index), the list the committed `NameEntries` chain proves complete.
const PREFIX_NAME: u8 = b'n';

/// The secondary index rows of statement `index`, applied as `applied`:
/// its actor's, its name's, and its digest's (and the access history's).
/// Written in the batch of the entry; `restore` rebuilds them the same way.
pub fn index_rows(statement: &Statement, applied: &Applied, index: u64) -> Vec<IndexRow> {
    let mut rows = vec![actor_row(&applied.actor, index)];
    if let Some(name) = statement.event.name() {
        rows.push(name_row(name, index));
    }
    match &applied.effect {
        Effect::Accessed { digest } => {
            rows.push(access_row(digest, index));
            rows.push(digest_row(digest, index));
        }
        Effect::Published { digest, .. } => rows.push(digest_row(digest, index)),
        _ => {}
    }
    rows
}

/// The index rows of log event `index`: its digest's, and the names' that
/// published the digest (the entry lists it joins in the committed state).
pub fn log_event_rows(registry: &Registry, event: &LogEvent, index: u64) -> Vec<IndexRow> {
    let digest = event.event.digest();
    let mut rows = vec![digest_row(digest, index)];
    rows.extend(log_event_names(registry, digest).iter().map(|n| name_row(n, index)));
    rows
}

/// Prefix of the `state` rows holding the state map's values: `M` || key
/// encoding -> value encoding.
pub const STATE_MAP_PREFIX: u8 = b'M';

/// The `state` row key of a state map key.
pub fn state_row_key(key: &StateKey) -> Vec<u8> {
    let enc = key.encode();
    let mut k = Vec::with_capacity(1 + enc.len());
    k.push(STATE_MAP_PREFIX);
    k.extend_from_slice(&enc);
    k
}

fn index_suffix(mut key: Vec<u8>, index: u64) -> Vec<u8> {
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Prefix of the access-history rows of `digest`.
pub fn access_prefix(digest: &Digest) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(PREFIX_ACCESS);
    k.extend_from_slice(&digest.0 .0);
    k
}

/// Row recording that entry `index` accessed `digest`.
pub fn access_row(digest: &Digest, index: u64) -> IndexRow {
    index_suffix(access_prefix(digest), index)
}

/// Prefix of the rows of every publish and access of `digest`.
pub fn digest_prefix(digest: &Digest) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(PREFIX_DIGEST);
    k.extend_from_slice(&digest.0 .0);
    k
}

/// Row recording that entry `index` published or accessed `digest`.
pub fn digest_row(digest: &Digest, index: u64) -> IndexRow {
    index_suffix(digest_prefix(digest), index)
}

/// Prefix of the rows of `actor`'s entries. Length-prefixed, so one
/// actor's prefix is never a prefix of another's.
pub fn actor_prefix(actor: &ActorName) -> Vec<u8> {
    let name = actor.as_str().as_bytes();
    let mut k = Vec::with_capacity(2 + name.len());
    k.push(PREFIX_ACTOR);
    // Actor names are far shorter than 256 bytes (custody_registry::names).
    k.push(name.len().min(255) as u8);
    k.extend_from_slice(name);
    k
}

/// Prefix of the rows of the entries about model `name` (length-prefixed).
pub fn name_prefix(name: &ModelName) -> Vec<u8> {
    let n = name.as_str().as_bytes();
    let mut k = Vec::with_capacity(2 + n.len());
    k.push(PREFIX_NAME);
    // Model names are capped well below 256 bytes (custody_registry::names).
    k.push(n.len().min(255) as u8);
    k.extend_from_slice(n);
    k
}

/// Row recording that entry `index` is about model `name`.
pub fn name_row(name: &ModelName, index: u64) -> IndexRow {
    index_suffix(name_prefix(name), index)
}

/// Row recording that entry `index` was made by `actor`.
pub fn actor_row(actor: &ActorName, index: u64) -> IndexRow {
    index_suffix(actor_prefix(actor), index)
}

/// The leaf index at the end of an index row.
pub fn row_index(row: &[u8]) -> Option<u64> {
    let tail = row.len().checked_sub(8)?;
    crate::store::decode_u64(&row[tail..])
}
