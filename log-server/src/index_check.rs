//! The registry index rows against the committed entries chains.
//!
//! Clients list a name's, a digest's or an actor's entries from the index
//! rows (`n`, `d`, `u` in [`crate::registry`]) and refuse the list unless
//! its hash chain equals the one the registry state commits to
//! (`NameEntries`, `DigestEntries`, `ActorEntries`). So the rows must list
//! exactly the entries those chains cover: [`check_index_rows`] is the
//! `fsck` check of that.
//!
//! The digest rows (`d`: every publish and access) were added after the
//! other rows, and a store can only write index rows in the batch of the
//! entries they name, so a log written before them lacks them for its
//! older entries and is not rebuilt: its digest listings stop short and
//! clients refuse them (exit 2) rather than trust them. Start-up says so
//! ([`warn_if_digest_rows_lack_history`]) and `fsck` names the first digest
//! whose rows fall short.

use std::collections::HashMap;

use custody_registry::commitment::{EntriesValue, StateCommitter, StateKey, StateValue};
use custody_registry::names::Digest;
use custody_registry::registry::Registry;

use crate::fsck::{FsckProblem, FsckProblemKind};
use crate::registry::{actor_prefix, digest_prefix, digest_row, name_prefix, row_index};
use crate::store::{Store, StoreError};

/// Rows read per store call while checking.
const SCAN_PAGE: usize = 10_000;

/// The earliest publish in `registry` whose digest row is missing: the
/// log was written (at least up to it) before digest rows existed. Only
/// the earliest is looked at: rows are written with their entries, so
/// once one is there every later one is too.
pub fn first_publish_without_digest_row(
    store: &dyn Store,
    registry: &Registry,
) -> Result<Option<(u64, Digest)>, StoreError> {
    let first = registry
        .models()
        .flat_map(|(_, m)| m.versions.values().map(|v| (v.published_at, v.digest)))
        .min_by_key(|(index, _)| *index);
    let Some((index, digest)) = first else { return Ok(None) };
    let prefix = digest_prefix(&digest);
    let after = index.checked_sub(1).map(|i| digest_row(&digest, i));
    let rows = store.scan_index(&prefix, after.as_deref(), 1)?;
    let found = rows.first().and_then(|r| row_index(r)) == Some(index);
    Ok((!found).then_some((index, digest)))
}

/// Logs a warning at start-up when the digest rows do not reach back to
/// the first publish (see the module docs): digest listings of this log
/// are incomplete for older entries, and clients will refuse them.
pub fn warn_if_digest_rows_lack_history(store: &dyn Store, registry: &Registry) -> Result<(), StoreError> {
    if let Some((index, digest)) = first_publish_without_digest_row(store, registry)? {
        tracing::warn!(
            first_publish = index,
            %digest,
            "this log was written before digest index rows existed: /registry/artifacts/{{digest}}/entries \
             omits its older publishes and accesses, and clients refuse digest reports on them (exit 2); \
             see docs/operations.md (index rows)"
        );
    }
    Ok(())
}

/// What a chain's rows are about, as people write it.
fn describe_prefix(prefix: &[u8]) -> String {
    match prefix.split_first() {
        Some((b'd', digest)) => format!("digest sha256:{}", hex::encode(digest)),
        Some((b'n', rest)) => format!("name {}", String::from_utf8_lossy(rest.get(1..).unwrap_or_default())),
        Some((b'u', rest)) => format!("actor {}", String::from_utf8_lossy(rest.get(1..).unwrap_or_default())),
        _ => format!("rows {}", hex::encode(prefix)),
    }
}

/// The row prefix of an entries key, `None` for other keys.
fn entries_prefix(key: &StateKey) -> Option<Vec<u8>> {
    match key {
        StateKey::NameEntries { name } => Some(name_prefix(name)),
        StateKey::DigestEntries { digest } => Some(digest_prefix(digest)),
        StateKey::ActorEntries { actor } => Some(actor_prefix(actor)),
        _ => None,
    }
}

fn mismatch(prefix: &[u8], detail: String) -> Option<FsckProblem> {
    Some(FsckProblem {
        kind: FsckProblemKind::RegistryIndex,
        location: format!("index rows of {}", describe_prefix(prefix)),
        detail,
    })
}

/// Checks that the `n`, `d` and `u` index rows list exactly the entries
/// of the entries chains in `state` (the replay of the whole log): every
/// chain has rows whose indexes hash to it, and no rows name a chain the
/// state does not hold.
pub fn check_index_rows(
    store: &dyn Store,
    state: &StateCommitter,
) -> Result<Option<FsckProblem>, StoreError> {
    // Statements after the last commitment (a log from before commitments)
    // are in the replay but not sealed yet.
    let mut state = state.clone();
    state.seal();
    let mut expected: HashMap<Vec<u8>, EntriesValue> = state
        .records()
        .filter_map(|(k, v)| match v {
            StateValue::Entries(e) => entries_prefix(k).map(|p| (p, *e)),
            _ => None,
        })
        .collect();
    for kind in [b"n", b"d", b"u"] {
        let mut after: Option<Vec<u8>> = None;
        let mut group: Option<(Vec<u8>, EntriesValue)> = None;
        loop {
            let rows = store.scan_index(kind, after.as_deref(), SCAN_PAGE)?;
            let done = rows.len() < SCAN_PAGE;
            for row in &rows {
                let (Some(index), Some(cut)) = (row_index(row), row.len().checked_sub(8)) else {
                    return Ok(mismatch(row, "a row too short to name an entry".into()));
                };
                let prefix = &row[..cut];
                match &mut group {
                    Some((p, chain)) if p.as_slice() == prefix => chain.push(index),
                    _ => {
                        if let Some((p, chain)) = group.take() {
                            if let Some(problem) = compare(&mut expected, &p, &chain) {
                                return Ok(Some(problem));
                            }
                        }
                        group = Some((prefix.to_vec(), EntriesValue::of([index])));
                    }
                }
            }
            after = rows.last().cloned();
            if done {
                break;
            }
        }
        if let Some((p, chain)) = group {
            if let Some(problem) = compare(&mut expected, &p, &chain) {
                return Ok(Some(problem));
            }
        }
    }
    let mut left: Vec<_> = expected.into_iter().filter(|(_, e)| e.count > 0).collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(left.first().and_then(|(p, e)| {
        let hint = if p.first() == Some(&b'd') {
            " (a log written before digest rows existed: see docs/operations.md, index rows)"
        } else {
            ""
        };
        mismatch(
            p,
            format!("no rows, but the committed chain counts {} entries (last at {}){hint}", e.count, e.last),
        )
    }))
}

/// Compares one prefix's rows (hashed into `chain`) with its committed
/// chain, removing it from `expected`.
fn compare(
    expected: &mut HashMap<Vec<u8>, EntriesValue>,
    prefix: &[u8],
    chain: &EntriesValue,
) -> Option<FsckProblem> {
    let Some(want) = expected.remove(prefix) else {
        return mismatch(
            prefix,
            format!("{} rows (last at entry {}), but no committed chain", chain.count, chain.last),
        );
    };
    if want == *chain {
        return None;
    }
    mismatch(
        prefix,
        format!(
            "the rows list {} entries (last at {}), the committed chain counts {} (last at {})",
            chain.count, chain.last, want.count, want.last
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{now_ms, replay};
    use crate::store::{Batch, IndexRow, RocksStore};
    use custody_registry::actor_key::ActorSigner;
    use custody_registry::leaf::Leaf;
    use custody_registry::names::{ActorName, MediaType, ModelName, Pattern, Version};
    use custody_registry::registry::{Config, Role};
    use custody_registry::statement::events::{GrantRole, Kind, Publish};
    use custody_registry::statement::metadata::{Lineage, Metadata};
    use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
    use custody_registry::timestamp::Timestamp;
    use custody_standards::{leaf_hash, Appender};

    fn leaf(who: &ActorSigner, n: u8, event: Event) -> Vec<u8> {
        let now = now_ms();
        let time = Timestamp::from_unix_secs(now / 1000).unwrap();
        let stmt = Statement::new(who, time, Nonce([n; 16]), Context::reason(Text::new("t").unwrap()), event);
        Leaf::new(now, &stmt.sign(who).unwrap()).unwrap().encode()
    }

    /// Appends `leaf` with `rows`, keeping the tree sound.
    fn append(store: &RocksStore, leaf: Vec<u8>, rows: Vec<IndexRow>) {
        let size = store.tree_size().unwrap();
        let mut appender = Appender::from_reader(size, store).unwrap();
        let mut batch = Batch { start: size, index_rows: rows, ..Batch::default() };
        appender.append(leaf_hash(&leaf), &mut batch.nodes);
        batch.leaf_hashes.push(leaf_hash(&leaf));
        batch.entries.push(leaf);
        store.append_batch(&batch).unwrap();
    }

    /// A genesis and a publish, the publish with `rows`; what the check
    /// says about it.
    fn first_missing(rows: impl Fn(&Digest) -> Vec<IndexRow>) -> Option<(u64, Digest)> {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        let root = ActorSigner::from_seed(&ActorName::new("root").unwrap(), &[1; 32]);
        let grant = Event::Grant(GrantRole {
            actor: root.actor().clone(),
            key: root.public().clone(),
            role: Role::Admin,
            pattern: Pattern::new("*").unwrap(),
        });
        append(&store, leaf(&root, 0, grant), Vec::new());
        let digest = Digest(custody_standards::hash::sha256(b"weights"));
        let publish = Event::Publish(Publish {
            name: ModelName::new("acme/m").unwrap(),
            version: Version::new("1").unwrap(),
            kind: Kind::Model,
            digest,
            size: 7,
            media_type: MediaType::new("application/octet-stream").unwrap(),
            metadata: Metadata::default(),
            lineage: Lineage::default(),
        });
        append(&store, leaf(&root, 1, publish), rows(&digest));
        let registry = replay(&store, Config::default()).unwrap();
        first_publish_without_digest_row(&store, &registry).unwrap()
    }

    #[test]
    fn a_log_written_before_digest_rows_is_recognised() {
        let digest = Digest(custody_standards::hash::sha256(b"weights"));
        assert_eq!(first_missing(|_| Vec::new()), Some((1, digest)));
        // Another digest's row, or the access history's, is not it.
        let other = Digest(custody_standards::hash::sha256(b"other"));
        assert_eq!(first_missing(|_| vec![digest_row(&other, 1)]), Some((1, digest)));
        assert_eq!(first_missing(|d| vec![crate::registry::access_row(d, 1)]), Some((1, digest)));
        assert_eq!(first_missing(|d| vec![digest_row(d, 1)]), None);
    }
}
