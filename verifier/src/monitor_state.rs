//! `custody monitor` on state proofs, for rules that watch only exact
//! model names ([`Rules::exact_names`]).
//!
//! Every event such rules can report is an entry about a watched name, and
//! the registry state each checkpoint commits to holds, per name, the hash
//! chain of exactly those entries (`NameEntries`, docs/protocol.md section
//! 9). So per new checkpoint the monitor:
//! 1. proves the watched names' values in one batched state-proof call;
//! 2. for each name whose count grew, lists only the entries after the
//!    previous value's last one (`GET /registry/models/NAME/entries?after=`);
//! 3. checks that the previous proven value extended by the listed indexes
//!    is the new proven value: a log that hid or invented an entry is
//!    refused (exit 2);
//! 4. fetches just those entries, each proven included under the
//!    checkpoint and about the name, and reports the matching ones.
//!
//! The proven values are saved with the position, so the next pass starts
//! from a proven value. A position without values (a monitor that ran with
//! other rules) catches up with one full scan of the new entries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use custody_registry::commitment::{EntriesValue, StateKey};
use custody_registry::names::ModelName;
use custody_standards::hash::Hash;
use serde::{Deserialize, Serialize};

use crate::entries::{entries_value, extended, listed, listing_path, proven_statement};
use crate::error::{Error, Result};
use crate::home::{read_capped, write_atomic};
use crate::monitor::{alert, scan, Rules};
use crate::state::prove;
use crate::trust::{Trust, Trusted};

/// Most keys per state-proof request (the log's cap).
const KEYS_PER_REQUEST: usize = 64;
/// Largest saved-values file read back.
const MAX_SAVED: u64 = 16 << 20;

/// A proven entries value as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedValue {
    count: u64,
    last: u64,
    chain: String,
}

/// The proven values of the watched names at a checkpoint size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Saved {
    size: u64,
    names: BTreeMap<String, SavedValue>,
}

fn values_file(pos_file: &Path) -> PathBuf {
    let mut name = pos_file.file_name().unwrap_or_default().to_os_string();
    name.push(".names.json");
    pos_file.with_file_name(name)
}

/// The saved values of `names` at exactly `size`, if every one is saved.
fn load(pos_file: &Path, names: &[ModelName], size: u64) -> Option<BTreeMap<ModelName, EntriesValue>> {
    let saved: Saved = serde_json::from_slice(&read_capped(&values_file(pos_file), MAX_SAVED).ok()?).ok()?;
    if saved.size != size {
        return None;
    }
    names
        .iter()
        .map(|n| {
            let v = saved.names.get(n.as_str())?;
            let chain = Hash::from_hex(&v.chain).ok()?;
            Some((n.clone(), EntriesValue { count: v.count, last: v.last, chain }))
        })
        .collect()
}

fn save(pos_file: &Path, size: u64, values: &BTreeMap<ModelName, EntriesValue>) -> Result<()> {
    let saved = Saved {
        size,
        names: values
            .iter()
            .map(|(n, v)| {
                (n.as_str().to_owned(), SavedValue { count: v.count, last: v.last, chain: v.chain.to_hex() })
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&saved).map_err(|e| Error::Config(format!("monitor values: {e}")))?;
    write_atomic(&values_file(pos_file), &bytes, 0o644)
}

/// The watched names' values proven under `t` (batched, see the module
/// docs).
fn prove_names(trust: &Trust, t: &Trusted, names: &[ModelName]) -> Result<BTreeMap<ModelName, EntriesValue>> {
    let mut out = BTreeMap::new();
    for chunk in names.chunks(KEYS_PER_REQUEST) {
        let keys: Vec<StateKey> = chunk.iter().map(|n| StateKey::NameEntries { name: n.clone() }).collect();
        let state = prove(trust, t, &keys)?;
        for (n, k) in chunk.iter().zip(&keys) {
            out.insert(n.clone(), entries_value(&state, k));
        }
    }
    Ok(out)
}

/// One pass under checkpoint `t` from position `next` (see the module
/// docs). `fresh`: no position was saved yet.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pass(
    trust: &Trust,
    t: &Trusted,
    pos_file: &Path,
    rules: &Rules,
    names: &[ModelName],
    next: u64,
    fresh: bool,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let size = t.checkpoint.size;
    if next >= size {
        if fresh {
            if size > 0 {
                save(pos_file, size, &prove_names(trust, t, names)?)?;
            }
            write_atomic(pos_file, size.to_string().as_bytes(), 0o644)?;
        }
        return Ok(());
    }
    // At size 0 every chain is empty: no values need to be saved for it.
    let previous = if next == 0 {
        Some(names.iter().map(|n| (n.clone(), EntriesValue::default())).collect())
    } else {
        load(pos_file, names, next)
    };
    let Some(previous) = previous else {
        // No proven values at this position: scan up to the checkpoint,
        // then start from values proven there.
        scan(trust, t, pos_file, rules, next, out)?;
        return save(pos_file, size, &prove_names(trust, t, names)?);
    };
    let current = prove_names(trust, t, names)?;
    // The state ending this checkpoint covers every leaf before its last.
    let covered = size - 1;
    let mut new_entries: Vec<(u64, &ModelName)> = Vec::new();
    for (name, now) in &current {
        let before = previous.get(name).copied().unwrap_or_default();
        if *now == before {
            continue;
        }
        let key = StateKey::NameEntries { name: name.clone() };
        let path = listing_path(&key).ok_or_else(|| Error::verify("no listing for a name".to_string()))?;
        let after = (before.count > 0).then_some(before.last);
        let indexes = listed(trust, &path, after, covered)?;
        if extended(before, &indexes) != *now {
            return Err(Error::verify(format!(
                "the log's list of new entries about {} is not complete: it lists {} after {} entries, the committed state counts {} (last at entry {})",
                name.as_str(),
                indexes.len(),
                before.count,
                now.count,
                now.last
            )));
        }
        new_entries.extend(indexes.into_iter().map(|i| (i, name)));
    }
    new_entries.sort();
    for (index, name) in new_entries {
        let p = proven_statement(trust, index, t)?;
        if p.signed.statement.event.name() != Some(name) {
            return Err(Error::verify(format!(
                "entry {index} is listed for {} but is not about it",
                name.as_str()
            )));
        }
        alert(rules, &p.signed, index, size, out)?;
    }
    save(pos_file, size, &current)?;
    write_atomic(pos_file, size.to_string().as_bytes(), 0o644)
}
