//! What [`super::RocksStore::append_batch`] checks before it writes: a
//! batch that would not pack into whole, ordered rows is refused whole.

use std::collections::BTreeMap;

use super::{layout, Batch, StoreError};

/// Refuses a batch that would not pack into whole, ordered rows: every
/// entry must be encodable, and on every kept level the batch must
/// carry exactly the subtrees it completes, in order (so each row's
/// merge operands land at the right positions).
pub(super) fn check_batch(batch: &Batch, start: u64, end: u64) -> Result<(), StoreError> {
    let corrupt = |m: String| Err(StoreError::Corrupt(m));
    if batch.entries.len() != batch.leaf_hashes.len() {
        return corrupt(format!(
            "batch has {} entries but {} leaf hashes",
            batch.entries.len(),
            batch.leaf_hashes.len()
        ));
    }
    if end > layout::MAX_INDEX {
        return corrupt(format!("tree size {end} exceeds the leaf index's 40-bit positions"));
    }
    for (i, e) in batch.entries.iter().enumerate() {
        layout::check_entry(e).map_err(|e| StoreError::Corrupt(format!("batch entry {i}: {e}")))?;
    }
    let mut next: BTreeMap<u8, u64> = BTreeMap::new();
    for (id, _) in &batch.nodes {
        match id.leaf_range() {
            Some((_, e)) if e <= end => {}
            _ => return corrupt(format!("batch node {id} lies beyond tree size {end}")),
        }
        if layout::is_stored_level(id.level) {
            let want = next.entry(id.level).or_insert(start >> id.level);
            if id.index != *want {
                return corrupt(format!("batch node {id} is out of order (expected index {want})"));
            }
            *want += 1;
        }
    }
    for level in (0..64u8).step_by(usize::from(layout::STRATUM)) {
        let (from, to) = (start >> level, end >> level);
        if next.get(&level).copied().unwrap_or(from) != to {
            return corrupt(format!("batch lacks stored hashes of level {level} below index {to}"));
        }
    }
    for row in &batch.index_rows {
        match crate::registry::row_index(row) {
            Some(i) if (start..end).contains(&i) => {}
            _ => return corrupt("batch index row names no entry of the batch".to_owned()),
        }
    }
    for (key, _) in &batch.state_rows {
        if key.is_empty() {
            return corrupt("batch state row has an empty key".to_owned());
        }
    }
    Ok(())
}
