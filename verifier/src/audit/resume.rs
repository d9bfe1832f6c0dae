//! Where an audit's replay starts: right after the last clean audit, from
//! the replay state it saved ([`super::state_file`]), once that state is
//! checked against the log; otherwise at entry 0.
//!
//! The saved state is checked against the commitment leaf at `N - 1` (`N`
//! the saved size) *as this audit authenticates it*: the leaf must hash to
//! its leaf hash in the tree rebuilt from the level-0 tiles, which has the
//! root of the checkpoint being audited (and of the one audited before, at
//! `N`). [`Auditor::resume`] then requires the saved map to have that
//! leaf's root and the saved registry records to derive every committed
//! value. Anything else is a full replay, with the reason in the report.
//!
//! Reading and restoring the state (the replay window is millions of
//! nonces under load) runs on a thread of its own ([`preload`]) while the
//! audit rebuilds the tree, which the checks need; nothing restored is
//! used before they pass.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use custody_registry::leaf::{CommitmentLeaf, LogLeaf};
use custody_registry::registry::{Auditor, Config, Restored, ResumeError};
use custody_standards::entries::decode_bundle;
use custody_standards::tiles::{EntryBundle, TILE_WIDTH};
use custody_standards::{leaf_hash, Checkpoint, Hash, MemoryHashStore, NodeId};
use indicatif::ProgressBar;

use super::state_file::{self, Header, StateFileError};
use crate::client::{LogClient, MAX_ENTRY_BUNDLE};
use crate::fetch::{fetch_all, Want};

/// Why an audit replays from entry 0.
#[derive(Debug, thiserror::Error)]
pub enum FullReplay {
    /// Nothing to resume from.
    #[error("no earlier clean audit of a checkpoint this one extends")]
    FirstAudit,
    /// `--refetch` asks for everything again.
    #[error("--refetch")]
    Refetch,
    /// The saved state cannot be used.
    #[error(transparent)]
    StateFile(#[from] StateFileError),
    /// The leaf the saved state must match could not be authenticated.
    #[error("the commitment leaf at {0} could not be read from the log: {1}")]
    Leaf(u64, String),
    /// The leaf at `N - 1` is not a commitment.
    #[error("the leaf at {0} is not a state commitment")]
    NotCommitment(u64),
    /// The saved state is that of another commitment than the log's.
    #[error("the saved state is of state root {saved}, the log committed {logged} at {at}")]
    OtherRoot {
        /// Where the commitment is.
        at: u64,
        /// The root the file names.
        saved: String,
        /// The root of the log's commitment leaf.
        logged: String,
    },
    /// The saved state is not what the log committed to.
    #[error("the saved state was refused: {0}")]
    Refused(#[from] ResumeError),
}

/// The saved state being read and restored, or why there is none to use.
pub enum Preload {
    /// A full replay, for this reason.
    Skip(FullReplay),
    /// The state file's root and the restored state, on their way.
    Loading(JoinHandle<Result<(Hash, Restored), FullReplay>>),
}

/// Starts reading and restoring the state saved by the audit of
/// `previous` (see the module docs), unless there is none to use.
pub fn preload(
    dir: &Path,
    origin: &str,
    previous: Option<&Checkpoint>,
    config: Config,
    refetch: bool,
    exact: bool,
) -> Preload {
    if refetch {
        return Preload::Skip(FullReplay::Refetch);
    }
    let Some(p) = previous.filter(|p| p.size > 0) else {
        return Preload::Skip(FullReplay::FirstAudit);
    };
    let header = Header {
        origin: origin.to_owned(),
        size: p.size,
        tree_root: p.root,
        // Not compared by `load`: returned, and compared in `start`.
        state_root: Hash([0; 32]),
        window_ms: config.window_ms,
        exact,
    };
    let dir: PathBuf = dir.to_owned();
    Preload::Loading(std::thread::spawn(move || {
        let (root, state) = state_file::load(&dir, &header)?;
        Ok((root, state.restore(config)?))
    }))
}

/// What the replay starts from.
pub struct Start {
    /// The auditor to feed.
    pub auditor: Auditor,
    /// The first entry to feed it.
    pub from: u64,
    /// Why `from` is 0 although an earlier audit exists (or there is none).
    pub full: Option<FullReplay>,
}

/// Inputs of [`start`] that describe the audit under way.
pub struct Audited<'a> {
    /// The log.
    pub client: &'a LogClient,
    /// Its audit cache directory.
    pub dir: &'a Path,
    /// The checkpoint audited clean before, consistent with this one.
    pub previous: Option<&'a Checkpoint>,
    /// The size being audited.
    pub size: u64,
    /// The tree rebuilt from this audit's level-0 tiles (authenticated).
    pub store: &'a MemoryHashStore,
    /// The registry configuration.
    pub config: Config,
}

/// The auditor to start the replay with (see the module docs).
pub fn start(a: &Audited<'_>, preload: Preload) -> Start {
    match resumed(a, preload) {
        Ok((auditor, from)) => Start { auditor, from, full: None },
        Err(why) => Start { auditor: Auditor::new(a.config), from: 0, full: Some(why) },
    }
}

fn resumed(a: &Audited<'_>, preload: Preload) -> Result<(Auditor, u64), FullReplay> {
    let loading = match preload {
        Preload::Skip(why) => return Err(why),
        Preload::Loading(h) => h,
    };
    let Some(p) = a.previous.filter(|p| p.size > 0 && p.size <= a.size) else {
        return Err(FullReplay::FirstAudit);
    };
    let at = p.size - 1;
    let commitment = commitment_at(a, at)?;
    // A panic while restoring is a bug in this program, not bad input.
    let (saved_root, restored) = loading.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
    if saved_root != commitment.root {
        return Err(FullReplay::OtherRoot {
            at,
            saved: saved_root.to_base64(),
            logged: commitment.root.to_base64(),
        });
    }
    let auditor = Auditor::resume_restored(restored, at, commitment)?;
    Ok((auditor, p.size))
}

/// The commitment leaf at `at`, authenticated by its leaf hash in the
/// rebuilt tree. A cached bundle that does not match is fetched again.
fn commitment_at(a: &Audited<'_>, at: u64) -> Result<CommitmentLeaf, FullReplay> {
    let width = u64::from(TILE_WIDTH);
    let leaf_err = |m: String| FullReplay::Leaf(at, m);
    let bundle =
        EntryBundle::at_size(at / width, a.size).ok_or_else(|| leaf_err("beyond the tree".into()))?;
    let want = Want {
        path: bundle.path(),
        cache: bundle.is_full().then(|| a.dir.join("entries").join(bundle.index().to_string())),
        cap: MAX_ENTRY_BUNDLE,
    };
    let expected: Option<Hash> = a.store.get(NodeId::new(0, at));
    for read_cache in [true, false] {
        let got = fetch_all(a.client, std::slice::from_ref(&want), 1, read_cache, &ProgressBar::hidden())
            .map_err(|e| leaf_err(e.to_string()))?;
        let Some(g) = got.first() else { break };
        let entries = decode_bundle(&g.body, usize::from(bundle.width())).ok();
        let leaf = entries.as_ref().and_then(|e| e.get((at % width) as usize).copied());
        if let Some(leaf) = leaf.filter(|l| expected.is_some() && Some(leaf_hash(l)) == expected) {
            return match LogLeaf::decode(leaf) {
                Ok(LogLeaf::Commitment(c)) => Ok(c),
                _ => Err(FullReplay::NotCommitment(at)),
            };
        }
        if !g.cached {
            break;
        }
    }
    // The full replay checks every entry and names the one that differs.
    Err(leaf_err("it does not hash to its leaf hash in the checkpoint's tree".into()))
}
