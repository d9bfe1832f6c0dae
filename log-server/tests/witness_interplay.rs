//! The checkpointer against real C2SP tlog-witnesses over HTTP.
//!
//! The witnesses are the test kit's in-process `fake_witness::Witness`,
//! which implements `add-checkpoint` faithfully: it verifies the log
//! signature, the old size and the consistency proof before cosigning, and
//! updates its state atomically with the check. The log side runs through
//! the library API (RocksStore + sequencer + checkpointer), no log HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_log::checkpointer::{CheckpointHealth, CheckpointerConfig, Publisher};
use custody_log::embedded::EmbeddedLog;
use custody_log::sequencer::SequencerHandle;
use custody_log::store::{RocksStore, Store};
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::{consistency_proof, tree_hash, verify_consistency, Hash, Policy, SignerKey};
use custody_testkit::fake_witness::Witness;
use tokio::task::JoinHandle;

const ORIGIN: &str = "example.com/custody-test-log";
const WAIT: Duration = Duration::from_secs(20);

struct Log {
    store: Arc<dyn Store>,
    seq: SequencerHandle,
    publisher: Publisher,
    tasks: Vec<JoinHandle<()>>,
}

impl Log {
    async fn start(dir: &std::path::Path, key: &SignerKey, policy: &Policy) -> Log {
        let cfg = CheckpointerConfig {
            interval: Duration::from_millis(50),
            witness_timeout: Duration::from_secs(2),
            witness_retries: 1,
            ..CheckpointerConfig::default()
        };
        Log::start_with(dir, key, policy, cfg).await
    }

    async fn start_with(
        dir: &std::path::Path,
        key: &SignerKey,
        policy: &Policy,
        cfg: CheckpointerConfig,
    ) -> Log {
        // After a restart, blocking tasks of the old instance may hold the
        // RocksDB lock for a moment longer.
        let path = dir.join("db");
        let mut tries = 0;
        let store: Arc<dyn Store> = loop {
            match RocksStore::open(&path) {
                Ok(s) => break Arc::new(s),
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot open the store: {e}"),
            }
        };
        let EmbeddedLog { store, seq, publisher, tasks } =
            EmbeddedLog::start(store, key, Some(policy.clone()), cfg).unwrap();
        Log { store, seq, publisher, tasks }
    }

    async fn append(&self, n: usize, tag: &str) {
        for i in 0..n {
            self.seq.submit(format!("{tag} entry {i}").into_bytes()).await.unwrap();
        }
    }

    /// Stops the tasks and waits until they (and their store handles) are gone.
    async fn stop(self) {
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

fn log_key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[7; 32]).unwrap()
}

async fn three_witnesses(key: &SignerKey) -> (Vec<Witness>, Policy) {
    let mut ws = Vec::new();
    let mut text = format!("log {}\n", key.verifier());
    for (i, name) in ["w1.example", "w2.example", "w3.example"].iter().enumerate() {
        let w = Witness::start(name, 40 + i as u8, &key.verifier().to_string());
        text.push_str(&format!("witness {name} {} {}\n", w.vkey, w.url));
        ws.push(w);
    }
    text.push_str("group two 2 w1.example w2.example w3.example\nquorum two\n");
    (ws, Policy::parse(text.as_bytes()).unwrap())
}

/// Polls `f` every 20 ms until it returns Some, failing after [`WAIT`].
async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cosigner_count(policy: &Policy, note: &[u8]) -> usize {
    policy.verify_checkpoint(note).expect("published note satisfies the policy").cosigners.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_met_and_stale_witness_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let key = log_key();
    let (ws, policy) = three_witnesses(&key).await;
    // w3 already cosigned size 4 of this log, but the log has no record of
    // it: the first call sends old 0 and must learn 4 from the 409.
    let log = Log::start(dir.path(), &key, &policy).await;
    ws[2].set_down(true);
    log.append(4, "a").await;
    let root4 = tree_hash(4, &*log.store).unwrap();
    ws[2].set_latest(4, root4);
    ws[2].set_down(false);
    log.append(6, "b").await;
    let p = log.publisher.wait_for(10, WAIT).await.expect("a checkpoint of size 10 is published");
    assert!(cosigner_count(&policy, &p.note) >= 2);
    assert_eq!(p.root, tree_hash(p.size, &*log.store).unwrap());
    assert_eq!(log.store.published_checkpoint(p.size).unwrap().as_deref(), Some(&p.note[..]));

    // w3 gets caught up through the 409 path and cosigns the latest size.
    poll("w3 to cosign the latest size", || (ws[2].size() == log.seq.tree_size()).then_some(())).await;
    assert!(ws[2].conflicts() >= 1, "w3 answered 409 at least once");
    // Eventually a published checkpoint carries all three cosignatures.
    log.append(1, "c").await;
    let mut extra = 0;
    let full = loop {
        let p = log.publisher.wait_for(log.seq.tree_size(), WAIT).await.unwrap();
        if cosigner_count(&policy, &p.note) == 3 {
            break p;
        }
        extra += 1;
        assert!(extra < 20, "never got all three cosignatures");
        log.append(1, "more").await;
    };
    let h = log.publisher.health();
    assert!(h.quorum_ok && h.reason.is_none() && h.alarms.is_empty(), "{h:?}");
    assert_eq!(h.last_published_size, Some(full.size));
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_lost_freezes_publication_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let key = log_key();
    let (ws, policy) = three_witnesses(&key).await;
    let log = Log::start(dir.path(), &key, &policy).await;
    log.append(5, "a").await;
    let frozen = log.publisher.wait_for(5, WAIT).await.expect("published with all witnesses up");

    ws[0].set_down(true);
    ws[1].set_down(true);
    log.append(7, "b").await;
    let grown = log.seq.tree_size();
    assert!(grown >= frozen.size + 7, "sequencing continues without witnesses");
    let h: CheckpointHealth = poll("health to report the lost quorum", || {
        let h = log.publisher.health();
        (!h.quorum_ok && h.last_signed_size == Some(grown)).then_some(h)
    })
    .await;
    assert!(h.reason.as_deref().unwrap_or("").contains("not published"), "{h:?}");
    for w in &h.witnesses[..2] {
        assert!(!w.ok && w.last_error.as_deref().unwrap_or("").contains("503"), "{w:?}");
    }
    assert!(h.witnesses[2].ok, "{:?}", h.witnesses[2]);
    let still = log.publisher.latest().unwrap();
    assert_eq!((still.size, &still.note), (frozen.size, &frozen.note), "publication is frozen");
    assert!(log.publisher.wait_for(grown, Duration::from_millis(300)).await.is_none());

    ws[0].set_down(false);
    ws[1].set_down(false);
    let new = log.publisher.wait_for(grown, WAIT).await.expect("publication resumes");
    assert!(cosigner_count(&policy, &new.note) >= 2);
    let proof = consistency_proof(frozen.size, new.size, &*log.store).unwrap();
    verify_consistency(frozen.size, new.size, &proof, &frozen.root, &new.root)
        .expect("new checkpoint is consistent with the frozen one");
    let h = poll("health to recover", || Some(log.publisher.health()).filter(|h| h.quorum_ok)).await;
    assert!(h.reason.is_none(), "{h:?}");
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_latest_published_and_witness_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let key = log_key();
    let (ws, policy) = three_witnesses(&key).await;
    let log = Log::start(dir.path(), &key, &policy).await;
    log.append(3, "a").await;
    let before = log.publisher.wait_for(3, WAIT).await.unwrap();
    // Let every witness reach the published size so their sizes are saved.
    poll("all witnesses at the published size", || ws.iter().all(|w| w.size() == before.size).then_some(()))
        .await;
    log.append(1, "b").await;
    let before = log.publisher.wait_for(4, WAIT).await.unwrap();
    log.stop().await;

    let conflicts: usize = ws.iter().map(|w| w.conflicts()).sum();
    let log = Log::start(dir.path(), &key, &policy).await;
    let loaded = log.publisher.latest().expect("latest published checkpoint survives the restart");
    assert_eq!((loaded.size, &loaded.note, loaded.root), (before.size, &before.note, before.root));
    log.append(2, "c").await;
    let after = log.publisher.wait_for(before.size + 2, WAIT).await.unwrap();
    let proof = consistency_proof(before.size, after.size, &*log.store).unwrap();
    verify_consistency(before.size, after.size, &proof, &before.root, &after.root).unwrap();
    let cosigners_with_saved_size = ws.iter().filter(|w| w.size() >= after.size).count();
    assert!(cosigners_with_saved_size >= 2);
    let now: usize = ws.iter().map(|w| w.conflicts()).sum();
    assert!(now <= conflicts + 1, "witness sizes were persisted, so at most a straggler needs a 409");
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_ahead_of_the_log_raises_an_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let key = log_key();
    let (ws, policy) = three_witnesses(&key).await;
    // w1 claims to have cosigned a tree far bigger than ours.
    ws[0].set_latest(1000, Hash([9; 32]));
    let log = Log::start(dir.path(), &key, &policy).await;
    log.append(3, "a").await;
    let p = log.publisher.wait_for(3, WAIT).await.expect("w2 and w3 still make a quorum");
    assert!(cosigner_count(&policy, &p.note) >= 2);
    let h = poll("the alarm", || Some(log.publisher.health()).filter(|h| !h.alarms.is_empty())).await;
    assert!(h.alarms[0].contains("w1.example") && h.alarms[0].contains("split view"), "{h:?}");
    assert!(h.witnesses[0].alarm.is_some() && !h.witnesses[0].ok);
    assert_eq!(ws[0].size(), 1000, "the witness was never rolled back");
    log.stop().await;
}

/// Rounds started by durable batches, with an `interval` far longer than
/// the test: whatever is published comes from the batch trigger.
fn paced(min_interval: Duration) -> CheckpointerConfig {
    CheckpointerConfig {
        interval: Duration::from_secs(3600),
        min_interval,
        witness_timeout: Duration::from_secs(2),
        witness_retries: 0,
        ..CheckpointerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_batch_is_published_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let key = log_key();
    let (_ws, policy) = three_witnesses(&key).await;
    let log = Log::start_with(dir.path(), &key, &policy, paced(Duration::from_millis(20))).await;
    for (n, size, tag) in [(1, 1, "a"), (2, 3, "b")] {
        log.append(n, tag).await;
        let p = log.publisher.wait_for(size, Duration::from_secs(5)).await;
        let p = p.expect("the batch is published in a round of its own, long before the interval");
        assert!(cosigner_count(&policy, &p.note) >= 2);
        assert_eq!(p.root, tree_hash(p.size, &*log.store).unwrap());
    }
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_start_at_most_once_per_minimum_interval() {
    let dir = tempfile::tempdir().unwrap();
    let key = log_key();
    let (ws, policy) = three_witnesses(&key).await;
    let log = Log::start_with(dir.path(), &key, &policy, paced(Duration::from_millis(400))).await;
    // One batch every few milliseconds for 1.2 s: at most one round per
    // 400 ms (and the first) may call the witnesses.
    let start = Instant::now();
    let mut batches = 0;
    while start.elapsed() < Duration::from_millis(1200) {
        log.append(1, &format!("a{batches}")).await;
        batches += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let calls = ws[0].requests();
    assert!(batches > 20, "only {batches} batches");
    assert!(calls <= 5, "{calls} add-checkpoint calls for {batches} batches in 1.2 s");
    let p = log.publisher.wait_for(log.seq.tree_size(), Duration::from_secs(5)).await;
    assert!(p.is_some(), "the last batch is published by the round after the minimum interval");
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_without_quorum_is_retried_after_the_interval_not_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let key = log_key();
    let (ws, policy) = three_witnesses(&key).await;
    ws[0].set_down(true);
    ws[1].set_down(true);
    let log = Log::start_with(dir.path(), &key, &policy, paced(Duration::from_millis(10))).await;
    log.append(1, "a").await;
    poll("the first round to fail", || (!log.publisher.health().quorum_ok).then_some(())).await;
    let calls = ws[2].requests();
    for i in 0..20 {
        log.append(1, &format!("b{i}")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ws[2].requests(), calls, "no round before the interval after a failed one");
    assert!(log.publisher.latest().is_none());
    log.stop().await;
}
