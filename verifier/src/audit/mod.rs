//! `custody audit`: check a whole log, not just one entry.
//!
//! 1. The checkpoint must satisfy the policy and be consistent with the
//!    remembered one ([`crate::trust`]).
//! 2. Every level-0 hash tile is fetched; the tree rebuilt from them
//!    (`custody-standards` [`MemoryHashStore`]) must have the checkpoint's root.
//!    That authenticates every leaf hash. Every higher tile is compared with
//!    the rebuilt tree, so the log serves one tree to everyone.
//! 3. Every entry bundle is fetched; each entry must hash to its
//!    authenticated leaf hash (an entry altered in the log's storage is
//!    named by index here).
//! 4. Every entry is replayed with `custody-registry`'s [`Auditor`]: envelope
//!    signatures (batched Ed25519), the key and role of every signer at that
//!    point (grants, rotations and revocations replayed), time window,
//!    nonces, immutability, tag chains, lifecycle and two-person rules,
//!    lineage, access statements, and the root of every state commitment.
//!    The first leaf an honest registry would not have appended is reported
//!    with its index.
//!
//! Full tiles and bundles are immutable: once authenticated they are cached
//! under the state directory, so an interrupted audit resumes and a second
//! audit fetches only what is new (after the consistency check of step 1
//! and a local one: the rebuilt tree must also have the root of the last
//! audited checkpoint).
//!
//! The replay is incremental too. A clean audit of size `N` saves the
//! replay state after its last leaf, the commitment at `N - 1`
//! ([`state_file`]); the next audit of a larger checkpoint restores it and
//! replays only `[N, M)`. The saved state is not trusted: it is used only
//! if it is the state the log committed to at `N - 1`, as this audit
//! authenticates that leaf (the `resume` module); otherwise, and with
//! `--refetch`, the replay starts at 0 and the report says why
//! (`replay_from`, `full_replay`). docs/verifier.md lists what the
//! commitment covers and what only the local files vouch for.
//!
//! [`Auditor`]: custody_registry::registry::Auditor

use std::path::PathBuf;
use std::time::Duration;

pub mod directories;
mod resume;
pub mod state_file;

use custody_registry::registry::{Config, Prepared, Preparer};
use custody_standards::entries::decode_bundle;
use custody_standards::tile_data::read_tile_data;
use custody_standards::tiles::{EntryBundle, Tile, TILE_WIDTH};
use custody_standards::{leaf_hash, tree_hash, Hash, MemoryHashStore, NodeId};
use serde::Serialize;

use crate::client::{LogClient, MAX_ENTRY_BUNDLE, MAX_TILE};
use crate::error::{Error, Result};
use crate::fetch::{fetch_all, CacheWriter, Got, Want};
use crate::home::{read_capped, write_atomic, Home};
use crate::progress::bar;
use crate::trust::Trust;
use indicatif::ProgressBar;

/// How to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The log's statement window (`--statement-window` of the server).
    pub window: Duration,
    /// Parallel fetches.
    pub jobs: usize,
    /// Verify every signature on its own (exactly the server's verdicts even
    /// for maliciously crafted signatures; slower).
    pub exact: bool,
    /// Ignore the local cache and fetch everything again (to check what the
    /// log serves *now*, e.g. after a storage incident).
    pub refetch: bool,
    /// Threads decoding and verifying signatures during the replay (the
    /// replay's cost is almost all signature checks).
    pub threads: usize,
}

/// The first problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// Leaf index.
    pub index: u64,
    /// What is wrong.
    pub problem: String,
}

/// What an audit did and found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The log's origin.
    pub origin: String,
    /// Tree size audited.
    pub size: u64,
    /// Root hash (base64).
    pub root: String,
    /// Witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
    /// Size of the previously audited checkpoint this one extends, if any.
    pub resumed_from: Option<u64>,
    /// Tiles and bundles fetched over the network.
    pub fetched: usize,
    /// Tiles and bundles read from the local cache.
    pub cached: usize,
    /// The first entry replayed: the size of the previous clean audit when
    /// its saved state was checked and used, else 0.
    pub replay_from: u64,
    /// Why the replay started at 0 (no earlier audit, `--refetch`, or the
    /// saved state could not be used), `None` when it resumed.
    pub full_replay: Option<String>,
    /// Entries known to replay without a finding: `[0, replay_from)` by
    /// the earlier audits whose state this one resumed, and those this
    /// audit replayed (`entries_replayed - replay_from` of them).
    pub entries_replayed: u64,
    /// The state root committed at the audited size (base64), recomputed
    /// by the replay.
    pub state_root: Option<String>,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// Versions published as directories, for `--directories`.
    #[serde(skip)]
    pub directories: Vec<directories::PublishedDirectory>,
    /// What `--directories` found, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_audit: Option<directories::DirectoryAudit>,
}

/// Where the audit of the log `origin` keeps its cache and state.
pub fn audit_dir(home: &Home, origin: &str) -> PathBuf {
    let name = home.checkpoint_file(origin).file_name().map(|f| f.to_owned()).unwrap_or_default();
    home.state_dir.join("audit").join(name)
}

/// Largest tree audited: the rebuilt tree is held in memory (about 64
/// bytes per entry), so a hostile checkpoint cannot exhaust it.
pub const MAX_AUDIT_SIZE: u64 = 1 << 31;

/// Entries fed to the replay per batch (batched signature verification).
const REPLAY_BUNDLES: u64 = 16;

/// Receives every entry an audit authenticated (it hashes to its leaf hash
/// in the checkpoint's tree), in log order, with its index: entries before
/// the replay's resume point too, read from the cache or the log.
pub type EntrySink<'a> = &'a mut dyn FnMut(u64, &[u8]);

/// Audits the log behind `trust` (see the module docs).
pub fn audit(trust: &Trust, home: &Home, opts: &AuditOptions) -> Result<AuditReport> {
    audit_with(trust, home, opts, None)
}

/// [`audit`], handing every authenticated entry `[0, size)` to `sink`
/// (whose verdict is the audit's: a caller uses what it received only when
/// the report has no violation).
pub fn audit_with(
    trust: &Trust,
    home: &Home,
    opts: &AuditOptions,
    mut sink: Option<EntrySink<'_>>,
) -> Result<AuditReport> {
    let began = std::time::Instant::now();
    let t = trust.refresh()?;
    let (size, root) = (t.checkpoint.size, t.checkpoint.root);
    let dir = audit_dir(home, &t.checkpoint.origin);
    let audited_file = dir.join("checkpoint");
    let previous = match read_capped(&audited_file, crate::client::MAX_CHECKPOINT) {
        Ok(note) => Some(trust.policy().verify_checkpoint(&note).map_err(|e| {
            Error::Config(format!("{}: no longer satisfies the policy: {e}", audited_file.display()))
        })?),
        Err(_) => None,
    }
    .map(|v| v.checkpoint)
    .filter(|p| p.size <= size);
    let mut report = AuditReport {
        origin: t.checkpoint.origin.clone(),
        size,
        root: root.to_base64(),
        cosigners: t.cosigners.clone(),
        resumed_from: previous.as_ref().map(|p| p.size),
        replay_from: 0,
        full_replay: None,
        fetched: 0,
        cached: 0,
        entries_replayed: 0,
        state_root: None,
        violation: None,
        directories: Vec::new(),
        directory_audit: None,
    };

    // The saved replay state is read and restored while the tree is
    // rebuilt; it is checked against the rebuilt tree before any use.
    let window_ms = u64::try_from(opts.window.as_millis()).unwrap_or(u64::MAX);
    let config = Config { window_ms };
    let preload =
        resume::preload(&dir, &t.checkpoint.origin, previous.as_ref(), config, opts.refetch, opts.exact);

    if size > MAX_AUDIT_SIZE {
        return Err(Error::verify(format!(
            "checkpoint size {size} is beyond what one audit holds in memory ({MAX_AUDIT_SIZE})"
        )));
    }
    // 2. Level-0 tiles rebuild the tree; it must have the checkpoint root.
    let width = u64::from(TILE_WIDTH);
    let n_tiles = size.div_ceil(width);
    let wants: Vec<Want> = (0..n_tiles)
        .filter_map(|i| Tile::at_size(0, i, size))
        .map(|tile| Want {
            path: tile.path(),
            cache: tile.is_full().then(|| dir.join("tile0").join(tile.index().to_string())),
            cap: MAX_TILE,
        })
        .collect();
    let pb = bar(wants.len() as u64, "leaf hash tiles", false);
    let mut got = fetch_all(trust.client(), &wants, opts.jobs, !opts.refetch, &pb)?;
    let mut store = rebuild(&wants, &got)?;
    if (store.size() != size || store.root() != root) && got.iter().any(|g| g.cached) {
        // The local cache (written without fsync) is not evidence against
        // the log: try again with the log's own tiles only.
        got = fetch_all(trust.client(), &wants, opts.jobs, false, &pb)?;
        store = rebuild(&wants, &got)?;
    }
    pb.finish_and_clear();
    if store.size() != size || store.root() != root {
        return Err(Error::verify(format!(
            "the log's level-0 tiles do not rebuild the checkpoint root at size {size}"
        )));
    }
    if let Some(p) = &previous {
        let old = tree_hash(p.size, &store).map_err(|e| Error::verify(e.to_string()))?;
        if old != p.root {
            return Err(Error::verify(format!(
                "the log's tree disagrees with the audited checkpoint of size {}",
                p.size
            )));
        }
    }
    count(&mut report, &got);
    let mut cache = CacheWriter::start();
    cache.save(wants, got)?;
    tracing::info!(
        size,
        elapsed_s = began.elapsed().as_secs_f64(),
        "audit: tree rebuilt from the level-0 tiles"
    );

    // Higher tiles must be the ones of this tree. Full tiles entirely inside
    // the previously audited tree were checked then.
    let done = previous.as_ref().map_or(0, |p| p.size);
    let mut higher = Vec::new();
    for level in 1..=7u8 {
        let shift = 8 * u32::from(level);
        let hashes = if shift >= 64 { 0 } else { size >> shift };
        if hashes == 0 {
            break;
        }
        for i in 0..hashes.div_ceil(width) {
            let Some(tile) = Tile::at_size(level, i, size) else { continue };
            let covered = (i + 1).checked_mul(width).and_then(|n| n.checked_shl(shift)).unwrap_or(u64::MAX);
            if tile.is_full() && covered <= done {
                continue;
            }
            higher.push(tile);
        }
    }
    let wants: Vec<Want> =
        higher.iter().map(|t| Want { path: t.path(), cache: None, cap: MAX_TILE }).collect();
    let got = fetch_all(trust.client(), &wants, opts.jobs, !opts.refetch, &bar(0, "", false))?;
    for (tile, g) in higher.iter().zip(&got) {
        let expected = read_tile_data(tile, &store).map_err(|e| Error::verify(e.to_string()))?;
        if g.body != expected {
            return Err(Error::verify(format!("{} does not match the tree of the checkpoint", tile.path())));
        }
    }
    count(&mut report, &got);

    // 3 + 4. Entry bundles, checked against the leaf hashes, then replayed
    // from the saved state of the last clean audit when it checks out.
    let start = resume::start(
        &resume::Audited {
            client: trust.client(),
            dir: &dir,
            previous: previous.as_ref(),
            size,
            store: &store,
            config,
        },
        preload,
    );
    let from = start.from;
    report.replay_from = from;
    report.entries_replayed = from;
    report.full_replay = start.full.map(|why| why.to_string());
    tracing::info!(
        from,
        full_replay = report.full_replay.as_deref().unwrap_or("no"),
        elapsed_s = began.elapsed().as_secs_f64(),
        "audit: replay start chosen"
    );
    let mut auditor = start.auditor.threads(opts.threads);
    // Log-signed entries verify with the key the policy trusts for this
    // log's checkpoints.
    if let Some(log) = trust.policy().logs().iter().find(|l| l.key.name() == t.checkpoint.origin) {
        auditor = auditor.log_key(log.key.clone());
    }
    if opts.exact {
        auditor = auditor.exact();
    }
    let pb = bar(size - from, "replaying", false);
    // A sink needs every entry, so bundles are read from the first even
    // when the replay resumes later.
    let first = if sink.is_some() { 0 } else { from };
    // Three stages overlap: fetching (network, cache reads) one window
    // ahead; checking each entry against its leaf hash, decoding and the
    // signature checks (a `Preparer`, which needs no state) one chunk
    // ahead; and the replay itself, the only part bound to log order.
    let step = REPLAY_BUNDLES * opts.jobs.max(1) as u64;
    let client = trust.client();
    let mut preparer = auditor.preparer();
    let done = std::thread::scope(|s| -> Result<bool> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Fetched>>(1);
        let dir = &dir;
        s.spawn(move || {
            let mut bundle = first / width;
            while bundle < n_tiles {
                let end = (bundle + step).min(n_tiles);
                let wants: Vec<Want> = (bundle..end)
                    .filter_map(|i| EntryBundle::at_size(i, size))
                    .map(|b| Want {
                        path: b.path(),
                        cache: b.is_full().then(|| dir.join("entries").join(b.index().to_string())),
                        cap: MAX_ENTRY_BUNDLE,
                    })
                    .collect();
                let got = fetch_all(client, &wants, opts.jobs, !opts.refetch, &ProgressBar::hidden());
                let failed = got.is_err();
                // A closed channel means the replay stopped: stop too.
                if tx.send(got.map(|got| Fetched { bundle, end, wants, got })).is_err() || failed {
                    break;
                }
                bundle = end;
            }
        });
        let (staged_tx, staged_rx) = std::sync::mpsc::sync_channel::<Result<Staged>>(1);
        let store = &store;
        s.spawn(move || {
            for fetched in rx {
                let staged = fetched.and_then(|f| stage(client, store, size, from, &mut preparer, f));
                let failed = staged.is_err();
                if staged_tx.send(staged).is_err() || failed {
                    break;
                }
            }
        });
        for staged in staged_rx {
            let (fetched, prepared, leaves) = match staged? {
                Staged::Ready { fetched, prepared, leaves } => (fetched, prepared, leaves),
                Staged::Altered(index) => {
                    report.violation = Some(Violation {
                        index,
                        problem: "the entry served does not hash to its leaf hash in the checkpoint's tree (altered in storage)".into(),
                    });
                    return Ok(false);
                }
            };
            if let Some(sink) = sink.as_mut() {
                // Bundles may start before `from`: those entries are in
                // the saved state, and only the sink sees them.
                for (i, g) in (fetched.bundle..fetched.end).zip(&fetched.got) {
                    let count = EntryBundle::at_size(i, size).map_or(0, |b| b.width() as usize);
                    let entries = decode_bundle(&g.body, count)
                        .map_err(|e| Error::verify(format!("entry bundle {i}: {e}")))?;
                    for (j, e) in entries.into_iter().enumerate() {
                        sink(i * width + j as u64, e);
                    }
                }
            }
            if let Err(f) = auditor.apply(prepared) {
                report.entries_replayed = f.index;
                report.violation = Some(Violation { index: f.index, problem: f.problem.to_string() });
                return Ok(false);
            }
            report.entries_replayed += leaves;
            pb.inc(leaves);
            count(&mut report, &fetched.got);
            cache.save(fetched.wants, fetched.got)?;
        }
        Ok(true)
    })?;
    pb.finish_and_clear();
    cache.finish()?;
    if done {
        if report.entries_replayed != size {
            return Err(Error::Network(format!(
                "replayed entries {from} to {} of {size}",
                report.entries_replayed
            )));
        }
        // Every checkpoint of a registry log ends with the commitment to
        // the state after it; one that does not cannot be proven current
        // by any loader. Each commitment's root was checked during replay.
        match auditor.last_commitment() {
            Some(c) if c.index + 1 == size => report.state_root = Some(c.root.to_base64()),
            _ if size == 0 => {}
            _ => {
                report.violation = Some(Violation {
                    index: size - 1,
                    problem: format!("checkpoint {size} does not end with a state commitment leaf"),
                });
                return Ok(report);
            }
        }
        tracing::info!(elapsed_s = began.elapsed().as_secs_f64(), "audit: replayed");
        report.directories = directories::published_directories(auditor.registry());
        // The state first: a crash before the checkpoint is written leaves
        // a state that names another checkpoint, so it is not used.
        if let (Some(state), Some(c)) = (auditor.export(), auditor.last_commitment()) {
            let header = state_file::Header {
                origin: t.checkpoint.origin.clone(),
                size,
                tree_root: root,
                state_root: c.root,
                window_ms,
                // An exact audit resumes only from an exact state, so
                // every entry before `size` was checked exactly.
                exact: opts.exact,
            };
            state_file::save(&dir, &header, &state)?;
            tracing::info!(elapsed_s = began.elapsed().as_secs_f64(), "audit: replay state saved");
        }
        write_atomic(&audited_file, &t.note, 0o644)?;
    }
    Ok(report)
}

/// Entry bundles `[bundle, end)` as fetched (or read from the cache).
struct Fetched {
    bundle: u64,
    end: u64,
    wants: Vec<Want>,
    got: Vec<Got>,
}

/// A chunk of bundles after the checks that need no replay state. One per
/// chunk of thousands of entries, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Staged {
    /// Every entry hashes to its leaf hash; `prepared` holds the `leaves`
    /// entries from the replay start on, decoded and signature-checked.
    Ready { fetched: Fetched, prepared: Prepared, leaves: u64 },
    /// The log's own copy of this entry does not hash to its leaf hash.
    Altered(u64),
}

/// Checks every entry of `fetched` against its authenticated leaf hash
/// and prepares those from `from` on for the replay.
///
/// A local cache file is not evidence against the log (cache files are
/// written without fsync and may be torn by a crash): a cached bundle that
/// fails is fetched again, and only the log's own copy can be a violation.
fn stage(
    client: &LogClient,
    store: &MemoryHashStore,
    size: u64,
    from: u64,
    preparer: &mut Preparer,
    mut fetched: Fetched,
) -> Result<Staged> {
    loop {
        match first_mismatch(&fetched.got, fetched.bundle, size, store)? {
            None => break,
            Some((k, _)) if fetched.got[k].cached => {
                let fresh = fetch_all(client, &fetched.wants[k..=k], 1, false, &ProgressBar::hidden())?;
                fetched.got[k] = fresh.into_iter().next().ok_or_else(|| Error::Network("refetch".into()))?;
            }
            Some((_, index)) => return Ok(Staged::Altered(index)),
        }
    }
    let width = u64::from(TILE_WIDTH);
    let mut leaves: Vec<&[u8]> = Vec::with_capacity(fetched.got.len() * TILE_WIDTH as usize);
    for (i, g) in (fetched.bundle..fetched.end).zip(&fetched.got) {
        let count = EntryBundle::at_size(i, size).map_or(0, |b| b.width() as usize);
        let entries =
            decode_bundle(&g.body, count).map_err(|e| Error::verify(format!("entry bundle {i}: {e}")))?;
        for (j, e) in entries.into_iter().enumerate() {
            if i * width + j as u64 >= from {
                leaves.push(e);
            }
        }
    }
    let prepared = preparer.prepare(&leaves);
    let leaves = leaves.len() as u64;
    Ok(Staged::Ready { fetched, prepared, leaves })
}

/// The tree of the level-0 tiles `got`, in order.
fn rebuild(wants: &[Want], got: &[Got]) -> Result<MemoryHashStore> {
    let mut store = MemoryHashStore::new();
    for (w, g) in wants.iter().zip(got) {
        if g.body.len() % 32 != 0 {
            return Err(Error::verify(format!("{}: not a whole number of hashes", w.path)));
        }
        for h in g.body.chunks_exact(32) {
            store.append(Hash::from_slice(h).expect("32-byte chunk"));
        }
    }
    Ok(store)
}

/// The first entry of the bundles `got` (starting at bundle `first`) that
/// does not hash to its leaf hash in `store`: (position in `got`, index).
fn first_mismatch(
    got: &[Got],
    first: u64,
    size: u64,
    store: &MemoryHashStore,
) -> Result<Option<(usize, u64)>> {
    let width = u64::from(TILE_WIDTH);
    for (k, g) in got.iter().enumerate() {
        let i = first + k as u64;
        let count = EntryBundle::at_size(i, size).map_or(0, |b| b.width() as usize);
        let entries =
            decode_bundle(&g.body, count).map_err(|e| Error::verify(format!("entry bundle {i}: {e}")))?;
        for (j, e) in entries.into_iter().enumerate() {
            let index = i * width + j as u64;
            if store.get(NodeId::new(0, index)) != Some(leaf_hash(e)) {
                return Ok(Some((k, index)));
            }
        }
    }
    Ok(None)
}

fn count(r: &mut AuditReport, got: &[Got]) {
    for g in got {
        if g.cached {
            r.cached += 1;
        } else {
            r.fetched += 1;
        }
    }
}
