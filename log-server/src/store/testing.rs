//! Test support (for other crates behind the `test-util` feature): alters one entry of a
//! stopped log's database in place, as an operator with write access to its
//! disk could. Scenario tests use it to prove that `fsck`, `audit` and a
//! verified pull name the altered entry; the server never calls it.

use std::path::Path;

use super::{layout, RocksStore, StoreError, CF_ENTRIES};

/// Replaces entry `index` of the database at `db_dir` (the server stopped)
/// with `edit(old entry)`, leaving every stored hash and index untouched.
pub fn rewrite_entry(
    db_dir: &Path,
    index: u64,
    edit: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<(), StoreError> {
    let store = RocksStore::open(db_dir)?;
    edit_entry(&store, index, edit)?;
    store.db().flush_cf(store.cf(CF_ENTRIES))?;
    Ok(())
}

/// [`rewrite_entry`] on an open store: rewrites the packed row holding
/// entry `index` with that one entry replaced by `edit(old entry)`.
pub fn edit_entry(
    store: &RocksStore,
    index: u64,
    edit: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<(), StoreError> {
    let (db, cf, key) = (store.db(), store.cf(CF_ENTRIES), layout::entry_row_key(index));
    let row =
        db.get_cf(cf, key)?.ok_or_else(|| StoreError::Corrupt(format!("no row holds entry {index}")))?;
    let entries = layout::split_entries(&row).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let at = (index % layout::ROW_WIDTH) as usize;
    let old = entries.get(at).ok_or_else(|| StoreError::Corrupt(format!("no entry {index}")))?;
    let new = edit(old);
    layout::check_entry(&new).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut rewritten = Vec::with_capacity(row.len() + new.len());
    for (i, e) in entries.iter().enumerate() {
        layout::push_entry(&mut rewritten, if i == at { &new } else { e });
    }
    db.put_cf(cf, key, rewritten)?;
    Ok(())
}
