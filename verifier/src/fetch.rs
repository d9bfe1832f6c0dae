//! Parallel fetching of immutable log resources (tiles, entry bundles)
//! with a local cache of the ones already authenticated, so an audit can be
//! interrupted and resumed, and a second audit fetches only what is new.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use custody_standards::stored::ReadError;
use custody_standards::tiles::Tile;
use custody_standards::TileFetcher;
use indicatif::ProgressBar;

use crate::client::{LogClient, MAX_TILE};
use crate::error::{Error, Result};
use crate::home::{read_capped, write_cache};

/// One resource to get.
#[derive(Debug, Clone)]
pub struct Want {
    /// Path under the log's base URL.
    pub path: String,
    /// Cache file for it, if it is immutable (full tiles and bundles).
    pub cache: Option<PathBuf>,
    /// Largest acceptable body.
    pub cap: u64,
}

/// A fetched body and whether it came from the cache.
#[derive(Debug)]
pub struct Got {
    /// The bytes (untrusted until the caller checks them).
    pub body: Vec<u8>,
    /// Read from the local cache rather than the network.
    pub cached: bool,
}

/// Gets every resource in `wants`, `jobs` at a time, in order. With
/// `read_cache`, cache hits are read locally; the caller must still authenticate everything (a
/// cache is only written with [`save`] after authentication).
pub fn fetch_all(
    client: &LogClient,
    wants: &[Want],
    jobs: usize,
    read_cache: bool,
    bar: &ProgressBar,
) -> Result<Vec<Got>> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<Got>>>> = Mutex::new((0..wants.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 64) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(w) = wants.get(i) else { break };
                let cached = w.cache.as_ref().filter(|_| read_cache).and_then(|p| read_capped(p, w.cap).ok());
                let got = match cached {
                    Some(body) => Ok(Got { body, cached: true }),
                    None => client.get(&w.path, w.cap).map(|body| Got { body, cached: false }),
                };
                let failed = got.is_err();
                bar.inc(1);
                slots.lock().expect("fetch slots lock")[i] = Some(got);
                if failed {
                    // Stop handing out work; the error is reported below.
                    next.store(wants.len(), Ordering::SeqCst);
                    break;
                }
            });
        }
    });
    let slots = slots.into_inner().expect("fetch slots lock");
    let mut out = Vec::with_capacity(wants.len());
    for (slot, w) in slots.into_iter().zip(wants) {
        match slot {
            Some(r) => out.push(r?),
            None => {
                return Err(Error::Network(format!("GET /{}: not fetched (an earlier fetch failed)", w.path)))
            }
        }
    }
    Ok(out)
}

/// Saves authenticated bodies of cacheable resources that were not cached.
/// Without fsync: a cache file is authenticated again on every use, and a
/// bad one is fetched again (see `audit`), so durability would only cost
/// two fsyncs per tile (most of a cold audit's time).
pub fn save(wants: &[Want], got: &[Got]) -> Result<()> {
    for (w, g) in wants.iter().zip(got) {
        if let (Some(path), false) = (&w.cache, g.cached) {
            write_cache(path, &g.body)?;
        }
    }
    Ok(())
}

/// Writes authenticated bodies to the cache ([`save`]) on a thread of its
/// own, in the order given, so that creating thousands of small files
/// (slow on some file systems) overlaps the audit's replay instead of
/// pausing it.
pub struct CacheWriter {
    tx: Option<std::sync::mpsc::SyncSender<(Vec<Want>, Vec<Got>)>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl CacheWriter {
    /// A writer with its thread started.
    pub fn start() -> Self {
        // Two batches queued at most: each holds a chunk's bodies.
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Want>, Vec<Got>)>(2);
        let thread = std::thread::spawn(move || {
            for (wants, got) in rx {
                save(&wants, &got)?;
            }
            Ok(())
        });
        CacheWriter { tx: Some(tx), thread: Some(thread) }
    }

    /// Queues `got` (authenticated bodies of `wants`) for [`save`]. An
    /// error of an earlier write is reported here or by [`CacheWriter::finish`].
    pub fn save(&mut self, wants: Vec<Want>, got: Vec<Got>) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send((wants, got)).is_ok());
        if sent {
            Ok(())
        } else {
            // The thread stopped at a failed write: its error.
            self.finish()
        }
    }

    /// Waits for every queued write; the first error, if any.
    pub fn finish(&mut self) -> Result<()> {
        self.tx.take();
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            // A panic in `save` is a bug, not bad input: propagate it.
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for CacheWriter {
    /// Queued writes still complete (an audit that stops at a finding keeps
    /// what it authenticated).
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Hash tiles over HTTP for core's [`custody_standards::TileHashReader`], which
/// authenticates every tile against a checkpoint root before using it.
pub struct HttpTiles<'a> {
    client: &'a LogClient,
}

impl<'a> HttpTiles<'a> {
    /// Tiles of the log behind `client`.
    pub fn new(client: &'a LogClient) -> Self {
        HttpTiles { client }
    }
}

impl TileFetcher for HttpTiles<'_> {
    fn fetch_tiles(&self, tiles: &[Tile]) -> std::result::Result<Vec<Vec<u8>>, ReadError> {
        let wants: Vec<Want> =
            tiles.iter().map(|t| Want { path: t.path(), cache: None, cap: MAX_TILE }).collect();
        let got = fetch_all(self.client, &wants, 8, false, &ProgressBar::hidden())
            .map_err(|e| ReadError::Backend(Box::new(e)))?;
        Ok(got.into_iter().map(|g| g.body).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(path: &std::path::Path) -> Want {
        Want { path: "tile/0/000".into(), cache: Some(path.to_owned()), cap: 1 << 20 }
    }

    /// What the writer was given is on disk once it finishes, cached
    /// bodies are not written again, and a write that fails is reported
    /// (by the next `save` or by `finish`), not lost on the thread.
    #[test]
    fn the_cache_writer_writes_everything_and_reports_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = CacheWriter::start();
        for i in 0..50u8 {
            let path = dir.path().join("entries").join(i.to_string());
            w.save(vec![want(&path)], vec![Got { body: vec![i; 300], cached: false }]).unwrap();
        }
        let skipped = dir.path().join("cached");
        w.save(vec![want(&skipped)], vec![Got { body: vec![1], cached: true }]).unwrap();
        w.finish().unwrap();
        for i in 0..50u8 {
            assert_eq!(std::fs::read(dir.path().join("entries").join(i.to_string())).unwrap(), vec![i; 300]);
        }
        assert!(!skipped.exists(), "a body read from the cache is not written back");

        // A regular file where a directory must be: every write fails.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"x").unwrap();
        let mut w = CacheWriter::start();
        let mut failed = false;
        for _ in 0..4 {
            let got = vec![Got { body: vec![0; 10], cached: false }];
            failed |= w.save(vec![want(&blocked.join("under"))], got).is_err();
        }
        assert!(failed || w.finish().is_err(), "the failed write is reported");
    }
}
