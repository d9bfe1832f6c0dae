//! Group commit: many requests' changes share one synced write.
//!
//! A synced write costs an `fsync`, which would cap a witness at a few
//! hundred cosignatures per second if each request paid for its own. Instead
//! each request hands its changes to one committer thread and waits; the
//! thread takes everything queued (up to a batch limit), writes it in one
//! synced `WriteBatch`, then wakes every waiter. Nothing is acknowledged
//! before the batch holding it is durable, and batches are written in
//! submission order, so a change submitted after another (for example the
//! next checkpoint of the same origin, chained on the previous one) can never
//! become durable without it.
//!
//! A failed write is not retried: RocksDB's state after a failed synced
//! write is unknown, so the committer stops, every waiter gets the error and
//! the witness refuses all further work until an operator restarts it (which
//! reloads whatever is durable).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::store::{Op, Store, StoreError};

/// Most jobs written in one batch (bounds the latency of the first one).
pub const MAX_BATCH_JOBS: usize = 1024;

struct Job {
    ops: Vec<Op>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Handle to the committer thread. Dropping every handle stops it after the
/// queued jobs are written.
#[derive(Clone)]
pub struct Committer {
    tx: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").field("failed", &self.is_failed()).finish()
    }
}

impl Committer {
    /// Starts the committer thread over `store`.
    pub fn start(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel::<Job>();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let handle = std::thread::Builder::new()
            .name("witness-commit".into())
            .spawn(move || run(store.as_ref(), &rx, &flag, &metrics))?;
        Ok((Committer { tx: Arc::new(Mutex::new(Some(tx))), failed }, handle))
    }

    /// Queues `ops` for the next batch. The receiver resolves once they are
    /// durable (or the write failed). Never blocks: call it while holding the
    /// per-origin lock so per-origin order is submission order.
    pub fn submit(&self, ops: Vec<Op>) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done, rx) = oneshot::channel();
        let job = Job { ops, done };
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(tx) if !self.is_failed() => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    let _ = job.done.send(Err(StoreError::Closed("committer stopped".into())));
                }
            }
            _ => {
                let _ = job.done.send(Err(StoreError::Closed("an earlier write failed or shutdown".into())));
            }
        }
        rx
    }

    /// Whether a write has failed (the witness must stop acknowledging).
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Whether jobs are still accepted (not closed for shutdown, no failed
    /// write); `/readyz` reports it.
    pub fn is_running(&self) -> bool {
        !self.is_failed() && self.tx.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Stops accepting jobs; the thread exits after writing queued ones.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn run(store: &dyn Store, rx: &mpsc::Receiver<Job>, failed: &AtomicBool, metrics: &Metrics) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH_JOBS {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if failed.load(Ordering::SeqCst) {
            for j in jobs {
                let _ = j.done.send(Err(StoreError::Closed("an earlier write failed".into())));
            }
            continue;
        }
        let ops: Vec<Op> = jobs.iter().flat_map(|j| j.ops.iter().cloned()).collect();
        let started = Instant::now();
        let result = store.write(&ops);
        metrics.observe_commit(jobs.len(), started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::error!(error = %e, jobs = jobs.len(), "synced write failed; refusing all further work");
            failed.store(true, Ordering::SeqCst);
        }
        for j in jobs {
            let _ = j.done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Latest;
    use custody_standards::Hash;

    #[derive(Default)]
    struct Recorder {
        writes: Mutex<Vec<usize>>,
        fail: AtomicBool,
    }

    impl Store for Recorder {
        fn write(&self, ops: &[Op]) -> Result<(), StoreError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Corrupt("disk on fire".into()));
            }
            self.writes.lock().unwrap().push(ops.len());
            Ok(())
        }
        fn all_latest(&self) -> Result<Vec<(String, Latest)>, StoreError> {
            Ok(vec![])
        }
        fn frozen(&self) -> Result<Vec<(String, String)>, StoreError> {
            Ok(vec![])
        }
        fn all_evidence(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            Ok(vec![])
        }
        fn evidence(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
    }

    fn op(size: u64) -> Op {
        Op::Latest {
            origin: "o".into(),
            latest: Latest { size, root: Hash([0; 32]), note: Arc::new(b"n".to_vec()) },
        }
    }

    #[tokio::test]
    async fn acknowledges_after_write_and_stops_after_a_failure() {
        let store = Arc::new(Recorder::default());
        let (c, thread) = Committer::start(store.clone(), Metrics::new()).unwrap();
        let waits: Vec<_> = (0..50).map(|i| c.submit(vec![op(i)])).collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        let writes = store.writes.lock().unwrap().clone();
        assert_eq!(writes.iter().sum::<usize>(), 50, "every op written exactly once");
        store.fail.store(true, Ordering::SeqCst);
        assert!(c.submit(vec![op(51)]).await.unwrap().is_err());
        assert!(c.is_failed());
        store.fail.store(false, Ordering::SeqCst);
        assert!(c.submit(vec![op(52)]).await.unwrap().is_err(), "no write after a failure");
        c.close();
        thread.join().unwrap();
    }
}
