//! Reading the leaves a page shows, and decoding them.
//!
//! Entries are stored 16 to a RocksDB row ([`crate::store::layout`]), and
//! the entries of one model sit close together in a busy registry's log.
//! Reading them one `entry()` call at a time would cost a row lookup per
//! history line (10^4 for a model with 10^4 accesses); instead the sorted
//! indexes are coalesced into runs and each run is one range read,
//! [`Store::entries`], whose cost is per row, not per entry.

use custody_registry::leaf::LogLeaf;
use custody_registry::log_event::{LogEvent, SignedLogEvent};
use custody_registry::statement::{SignedStatement, Statement};

use crate::store::{Store, StoreError};

/// Two wanted indexes at most this far apart are read in the same range
/// (the entries between them are read and dropped): one packed row.
const GAP: u64 = 16;
/// Longest single range read, in entries, so one run never buffers more
/// than a few megabytes.
const MAX_RUN: u64 = 4096;

/// What a leaf is, for display.
#[derive(Debug, Clone)]
pub enum Shown {
    /// A signed statement (signature checked when it was logged; the
    /// browser re-checks inclusion, `custody audit` everything).
    Statement(Box<Statement>),
    /// An event signed by the log itself.
    LogEvent(Box<LogEvent>),
    /// A state commitment leaf (no event to show).
    Commitment,
    /// Bytes that decode as none of these (a generic log's raw entries).
    Raw,
}

impl Shown {
    /// Decodes the leaf bytes `entry`.
    pub fn decode(entry: &[u8]) -> Shown {
        match LogLeaf::decode(entry) {
            Ok(LogLeaf::Statement(leaf)) => match SignedStatement::parse(leaf.envelope) {
                Ok(s) => Shown::Statement(Box::new(s.statement)),
                Err(_) => Shown::Raw,
            },
            Ok(LogLeaf::LogEvent(leaf)) => match SignedLogEvent::parse(leaf.envelope) {
                Ok(e) => Shown::LogEvent(Box::new(e.event)),
                Err(_) => Shown::Raw,
            },
            Ok(LogLeaf::Commitment(_)) => Shown::Commitment,
            Err(_) => Shown::Raw,
        }
    }
}

/// The entries at `indexes` (ascending, no duplicates), in that order;
/// an index beyond the tree is left out. One range read per run of
/// nearby indexes.
pub fn read_entries(store: &dyn Store, indexes: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    coalesced(indexes, |start, end| store.entries(start, end))
}

/// [`read_entries`] over any range reader `range(start, end)`.
fn coalesced(
    indexes: &[u64],
    mut range: impl FnMut(u64, u64) -> Result<Vec<Vec<u8>>, StoreError>,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut out = Vec::with_capacity(indexes.len());
    let mut i = 0;
    while i < indexes.len() {
        let start = indexes[i];
        let mut j = i + 1;
        while j < indexes.len() && indexes[j] - indexes[j - 1] <= GAP && indexes[j] - start < MAX_RUN {
            j += 1;
        }
        let end = indexes[j - 1] + 1;
        let run = range(start, end)?;
        for &index in &indexes[i..j] {
            if let Some(entry) = usize::try_from(index - start).ok().and_then(|k| run.get(k)) {
                out.push((index, entry.clone()));
            }
        }
        i = j;
    }
    Ok(out)
}

/// [`read_entries`], decoded.
pub fn read_shown(store: &dyn Store, indexes: &[u64]) -> Result<Vec<(u64, Shown)>, StoreError> {
    Ok(read_entries(store, indexes)?.into_iter().map(|(i, e)| (i, Shown::decode(&e))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesced_reads_return_exactly_the_wanted_entries() {
        let log: Vec<Vec<u8>> = (0..200u64).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut reads = 0;
        let want = [0u64, 3, 17, 18, 40, 199, 250];
        let got = coalesced(&want, |start, end| {
            reads += 1;
            let end = (end as usize).min(log.len());
            Ok(log[(start as usize).min(end)..end].to_vec())
        })
        .unwrap();
        let indexes: Vec<u64> = got.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [0, 3, 17, 18, 40, 199]);
        for (i, e) in got {
            assert_eq!(e, i.to_be_bytes());
        }
        // Nearby indexes cost one read: the runs are [0..=18], [40], [199].
        assert_eq!(reads, 4, "runs [0..=18], [40], [199], [250]");
    }
}
