//! The `state` family of [`RocksStore`]: plain rows (no packing, no merge
//! operands) put or deleted in an entries batch's `WriteBatch`, read back
//! by prefix. What the rows mean belongs to their writer (the registry's
//! persisted state, [`crate::registry`]).

use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch};

use super::{RocksStore, StateRow, StoreError, CF_STATE};

impl RocksStore {
    /// The `state` family; `None` only in a read-only open of a database
    /// written before it existed (which then has no state rows).
    fn state_cf(&self) -> Option<&ColumnFamily> {
        self.db().cf_handle(CF_STATE)
    }

    /// Adds `rows` to a batch being built. A writable open always has the
    /// family, and a read-only one never writes.
    pub(super) fn put_state_rows(&self, wb: &mut WriteBatch, rows: &[StateRow]) {
        let Some(cf) = self.state_cf() else { return };
        for (key, value) in rows {
            match value {
                Some(v) => wb.put_cf(cf, key, v),
                None => wb.delete_cf(cf, key),
            }
        }
    }

    /// Every `state` row whose key starts with `prefix`, in key order.
    pub(super) fn scan_state_rows(&self, prefix: &[u8]) -> Result<Vec<super::StoredStateRow>, StoreError> {
        let Some(cf) = self.state_cf() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for item in self.db().iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward)) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.into_vec(), value.into_vec()));
        }
        Ok(out)
    }
}
