//! Sequencer tests against a real RocksDB in a temporary directory.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use custody_registry::statement::SignedStatement;
use custody_standards::{proof::tree_hash, HashReader, MemoryHashStore, NodeId, ReadError};

use super::*;
use crate::store::RocksStore;

fn cfg(wait_ms: u64) -> SequencerConfig {
    SequencerConfig {
        batch_max: 256,
        batch_wait: Duration::from_millis(wait_ms),
        ..SequencerConfig::default()
    }
}

fn open(path: &Path) -> Arc<RocksStore> {
    Arc::new(RocksStore::open(path).unwrap())
}

/// Stops the sequencer and waits until it has released the store.
async fn stop<P: Send + 'static>(handle: SequencerHandle<P>, task: tokio::task::JoinHandle<()>) {
    drop(handle);
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("sequencer stops").unwrap();
}

/// Every entry of the store, checked against a memory tree built from them in
/// index order.
fn check_tree(store: &RocksStore) -> Vec<Vec<u8>> {
    let n = store.tree_size().unwrap();
    let all = store.entries(0, n).unwrap();
    assert_eq!(all.len() as u64, n);
    let mut mem = MemoryHashStore::new();
    for e in &all {
        mem.append(leaf_hash(e));
    }
    assert_eq!(tree_hash(n, store).unwrap(), mem.root(), "root at {n}");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_are_durable_unique_and_batched() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (h, task) = start_sequencer(store.clone(), cfg(5)).unwrap();
    let mut size_rx = h.subscribe();
    let observed = Arc::new(AtomicU64::new(0));
    let o = observed.clone();
    h.set_batch_observer(Arc::new(move |n, secs| {
        assert!(secs >= 0.0);
        o.fetch_add(n as u64, Ordering::SeqCst);
    }));
    const TASKS: u32 = 50;
    const PER_TASK: u32 = 100;
    let mut joins = Vec::new();
    for t in 0..TASKS {
        let h = h.clone();
        joins.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..PER_TASK {
                let bytes = format!("task {t} entry {i}").into_bytes();
                let ack = h.submit(bytes.clone()).await.unwrap();
                // Acknowledged means durable: the size already covers it.
                assert!(h.tree_size() > ack.index);
                acks.push((ack, bytes));
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for j in joins {
        acks.extend(j.await.unwrap());
    }
    let n = (TASKS * PER_TASK) as u64;
    let indexes: HashSet<u64> = acks.iter().map(|(a, _)| a.index).collect();
    assert_eq!(indexes, (0..n).collect::<HashSet<_>>());
    assert!(acks.iter().all(|(a, b)| !a.duplicate && a.leaf_hash == leaf_hash(b)));
    assert_eq!(h.tree_size(), n);
    assert_eq!(*size_rx.borrow_and_update(), n);
    let commits = h.commits();
    assert!(commits >= 1 && commits < n / 4, "{commits} commits for {n} entries");
    assert_eq!(observed.load(Ordering::SeqCst), n);
    stop(h, task).await;
    drop(store);
    // Durable: a fresh open sees every acknowledged entry at its index.
    let store = RocksStore::open(dir.path()).unwrap();
    let all = check_tree(&store);
    for (ack, bytes) in &acks {
        assert_eq!(&all[ack.index as usize], bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_get_the_existing_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (h, task) = start_sequencer(store.clone(), cfg(20)).unwrap();
    let first = h.submit(b"a".to_vec()).await.unwrap();
    let b = h.submit(b"b".to_vec()).await.unwrap();
    assert_eq!((first.index, first.duplicate, b.index), (0, false, 1));
    // Sequential retry of a durable entry.
    let again = h.submit(b"a".to_vec()).await.unwrap();
    assert_eq!(again, Ack { index: 0, leaf_hash: first.leaf_hash, duplicate: true });
    // Concurrent identical submissions land in one batch: one new leaf.
    let acks: Vec<Ack> =
        submit_all(&h, vec![b"same".to_vec(); 20]).await.into_iter().map(Result::unwrap).collect();
    let idx: HashSet<u64> = acks.iter().map(|a| a.index).collect();
    assert_eq!(idx, HashSet::from([2]));
    assert_eq!(acks.iter().filter(|a| !a.duplicate).count(), 1);
    assert_eq!(h.tree_size(), 3);
    stop(h, task).await;
    assert_eq!(check_tree(&store), vec![b"a".to_vec(), b"b".to_vec(), b"same".to_vec()]);
}

/// Submits every entry from its own task, concurrently; results in order.
async fn submit_all(h: &SequencerHandle, entries: Vec<Vec<u8>>) -> Vec<Result<Ack, SequenceError>> {
    let tasks: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let h = h.clone();
            tokio::spawn(async move { h.submit(e).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn oversize_and_empty_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let config = SequencerConfig { max_entry_size: 10, ..cfg(1) };
    let (h, task) = start_sequencer(store.clone(), config).unwrap();
    h.submit(b"ok".to_vec()).await.unwrap();
    match h.submit(vec![7; 11]).await {
        Err(SequenceError::TooLarge { size: 11, max: 10 }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(h.submit(Vec::new()).await, Err(SequenceError::Empty)));
    h.submit(vec![7; 10]).await.unwrap();
    assert_eq!(h.tree_size(), 2);
    assert_eq!(h.commits(), 2);
    stop(h, task).await;
    assert_eq!(check_tree(&store), vec![b"ok".to_vec(), vec![7; 10]]);
    // A configured cap above the bundle format's limit is clamped.
    let config = SequencerConfig { max_entry_size: 1 << 20, ..cfg(1) };
    let (h, task) = start_sequencer(store.clone(), config).unwrap();
    assert!(matches!(h.submit(vec![1; MAX_ENTRY_SIZE + 1]).await, Err(SequenceError::TooLarge { .. })));
    stop(h, task).await;
    assert_eq!(store.tree_size().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_continues_at_the_right_size_and_root() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0u32..3 {
        let store = open(dir.path());
        let before = store.tree_size().unwrap();
        assert_eq!(before, u64::from(round) * 37);
        let (h, task) = start_sequencer(store.clone(), cfg(2)).unwrap();
        assert_eq!(h.tree_size(), before);
        let entries = (0..37).map(|i| format!("round {round} entry {i}").into_bytes()).collect();
        let acks = submit_all(&h, entries).await;
        assert!(acks.iter().all(|a| matches!(a, Ok(a) if a.index >= before && a.index < before + 37)));
        // An entry of an earlier round is still recognised after restart.
        if round > 0 {
            let dup = h.submit(b"round 0 entry 5".to_vec()).await.unwrap();
            assert!(dup.duplicate && dup.index < 37);
        }
        stop(h, task).await;
        check_tree(&store);
    }
}

/// A store whose writes fail on demand, to check that a failed commit
/// acknowledges nothing and the sequencer recovers.
struct Flaky {
    inner: RocksStore,
    fail: AtomicBool,
}

impl HashReader for Flaky {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.inner.read_hashes(ids)
    }
}

impl Store for Flaky {
    fn tree_size(&self) -> Result<u64, StoreError> {
        self.inner.tree_size()
    }
    fn append_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt("injected write failure".into()));
        }
        self.inner.append_batch(batch)
    }
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.entry(index)
    }
    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.entries(start, end)
    }
    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        self.inner.index_of(leaf_hash)
    }
    fn put_published_checkpoint(&self, size: u64, note: &[u8]) -> Result<(), StoreError> {
        self.inner.put_published_checkpoint(size, note)
    }
    fn published_checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.published_checkpoint(size)
    }
    fn latest_published_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.inner.latest_published_checkpoint()
    }
    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_meta(key)
    }
    fn put_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.inner.put_meta(key, value)
    }
    fn scan_index(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.scan_index(prefix, after, limit)
    }
    fn scan_state(&self, prefix: &[u8]) -> Result<Vec<crate::store::StoredStateRow>, StoreError> {
        self.inner.scan_state(prefix)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_acknowledges_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let flaky =
        Arc::new(Flaky { inner: RocksStore::open(dir.path()).unwrap(), fail: AtomicBool::new(false) });
    let (h, task) = start_sequencer(flaky.clone(), cfg(10)).unwrap();
    let a = h.submit(b"a".to_vec()).await.unwrap();
    flaky.fail.store(true, Ordering::SeqCst);
    let results = submit_all(&h, vec![b"x".to_vec(), b"y".to_vec(), b"a".to_vec()]).await;
    assert!(matches!(results[0], Err(SequenceError::Store(_))));
    assert!(matches!(results[1], Err(SequenceError::Store(_))));
    // The durable duplicate is still a truthful acknowledgement.
    assert_eq!(results[2].as_ref().unwrap(), &Ack { duplicate: true, ..a });
    assert_eq!(h.tree_size(), 1);
    flaky.fail.store(false, Ordering::SeqCst);
    let y = h.submit(b"y".to_vec()).await.unwrap();
    assert_eq!((y.index, y.duplicate), (1, false));
    stop(h, task).await;
    assert_eq!(check_tree(&flaky.inner), vec![b"a".to_vec(), b"y".to_vec()]);
}

/// A grant statement by `by` to `to` (admin on `*`), as leaf bytes.
fn grant_leaf(
    by: &custody_registry::actor_key::ActorSigner,
    to: &custody_registry::actor_key::ActorSigner,
    n: u8,
) -> Vec<u8> {
    use custody_registry::leaf::Leaf;
    use custody_registry::names::Pattern;
    use custody_registry::registry::Role;
    use custody_registry::statement::events::GrantRole;
    use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
    use custody_registry::timestamp::Timestamp;
    let now = crate::registry::now_ms();
    let event = Event::Grant(GrantRole {
        actor: to.actor().clone(),
        key: to.public().clone(),
        role: Role::Admin,
        pattern: Pattern::new("*").unwrap(),
    });
    let time = Timestamp::from_unix_secs(now / 1000).unwrap();
    let stmt = Statement::new(by, time, Nonce([n; 16]), Context::reason(Text::new("test").unwrap()), event);
    Leaf::new(now, &stmt.sign(by).unwrap()).unwrap().encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_admission_is_undone_when_the_batch_is_not_durable() {
    use crate::registry::RegistryService;
    use custody_registry::actor_key::ActorSigner;
    use custody_registry::names::ActorName;
    use custody_registry::registry::{Config, Rejection};

    let signer = |n: &str| ActorSigner::from_seed(&ActorName::new(n).unwrap(), &[n.len() as u8; 32]);
    let (root, alice) = (signer("root"), signer("alice"));
    let dir = tempfile::tempdir().unwrap();
    let flaky =
        Arc::new(Flaky { inner: RocksStore::open(dir.path()).unwrap(), fail: AtomicBool::new(false) });
    let registry = Arc::new(RegistryService::load(flaky.as_ref(), Config::default()).unwrap());
    let admission: Arc<dyn Admission<Parsed = SignedStatement>> = registry.clone();
    let (h, task) = start_sequencer_with(flaky.clone(), cfg(5), Some(admission)).unwrap();
    // Genesis, unauthenticated (raw) submission: the admission verifies it.
    h.submit(grant_leaf(&root, &root, 1)).await.unwrap();
    // A failed write: alice's grant is refused with a store error...
    flaky.fail.store(true, Ordering::SeqCst);
    assert!(matches!(h.submit(grant_leaf(&root, &alice, 2)).await, Err(SequenceError::Store(_))));
    flaky.fail.store(false, Ordering::SeqCst);
    // ...and left no trace: alice is unknown, so her own statement is refused.
    assert!(registry.read().actor(alice.actor()).is_none());
    let refused = h.submit(grant_leaf(&alice, &alice, 3)).await;
    assert!(
        matches!(refused, Err(SequenceError::Refused(Refusal::Registry(Rejection::UnknownKey(_))))),
        "{refused:?}"
    );
    // The same grant goes through once the store works again (after the
    // genesis batch's commitment leaf at 1).
    assert_eq!(h.submit(grant_leaf(&root, &alice, 2)).await.unwrap().index, 2);
    assert!(registry.read().actor(alice.actor()).is_some());
    // Garbage is not a registry entry.
    assert!(matches!(
        h.submit(b"not a leaf".to_vec()).await,
        Err(SequenceError::Refused(Refusal::Malformed(_)))
    ));
    stop(h, task).await;
    // Each durable batch ended with a commitment to the state after it;
    // the failed one left none.
    assert_eq!(flaky.inner.tree_size().unwrap(), 4);
    for i in [1, 3] {
        let entry = flaky.inner.entry(i).unwrap().unwrap();
        let c = custody_registry::leaf::CommitmentLeaf::decode(&entry).unwrap();
        assert_eq!(c.index, i);
    }
    assert_eq!(registry.snapshots().latest_size(), Some(4));
    // The failed batch left nothing in the persisted state either: a start
    // reads exactly the replay, without replaying.
    let reloaded = RegistryService::load(&flaky.inner, Config::default()).unwrap();
    assert_eq!(reloaded.replayed_at_start(), 0);
    let replayed = crate::registry::replay(&flaky.inner, Config::default()).unwrap();
    assert_eq!(reloaded.read().fingerprint(), replayed.fingerprint());
    assert_eq!(registry.read().fingerprint(), replayed.fingerprint());
}

/// An admission that admits every entry and seals each batch with a
/// trailer naming its index and one state row, to test the plumbing of
/// [`Sealed`] without the registry.
struct Trailing {
    seals: Mutex<Vec<u64>>,
}

struct TrailingBatch<'a> {
    admitted: usize,
    seals: &'a Mutex<Vec<u64>>,
}

impl Admission for Trailing {
    type Parsed = Unparsed;
    fn begin(&self) -> Box<dyn AdmissionBatch<Unparsed> + '_> {
        Box::new(TrailingBatch { admitted: 0, seals: &self.seals })
    }
}

impl AdmissionBatch<Unparsed> for TrailingBatch<'_> {
    fn admit(&mut self, _: &[u8], _: u64, _: bool, _: Option<&Unparsed>) -> Admit {
        self.admitted += 1;
        Admit::Append(Vec::new())
    }
    fn seal(&mut self, next_index: u64) -> Sealed {
        self.seals.lock().unwrap().push(next_index);
        if self.admitted == 0 {
            return Sealed::default();
        }
        Sealed {
            trailer: Some(format!("trailer {next_index}").into_bytes()),
            state_rows: vec![
                (b"last".to_vec(), Some(next_index.to_be_bytes().to_vec())),
                (format!("seal {next_index}").into_bytes(), Some(vec![1])),
                (b"gone".to_vec(), None),
            ],
        }
    }
    fn finish(self: Box<Self>, _: bool, _: &dyn Store) {}
}

/// Checks that `index` is in the tree the store holds, by an inclusion
/// proof and by the level-0 tile that covers it.
fn check_included(store: &RocksStore, entry: &[u8], index: u64) {
    use custody_standards::tile_data::read_tile_data;
    use custody_standards::tiles::Tile;
    use custody_standards::verify::verify_inclusion;
    let size = store.tree_size().unwrap();
    let root = tree_hash(size, store).unwrap();
    let proof = custody_standards::proof::inclusion_proof(index, size, store).unwrap();
    verify_inclusion(&leaf_hash(entry), index, size, &proof, &root).unwrap();
    let width = ((size - (index & !255)).min(256)) as u16;
    let tile = read_tile_data(&Tile::new(0, index >> 8, width).unwrap(), store).unwrap();
    let at = (index % 256) as usize * 32;
    assert_eq!(&tile[at..at + 32], &leaf_hash(entry).0[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_trailer_lands_at_next_index_with_its_state_rows() {
    let dir = tempfile::tempdir().unwrap();
    let flaky =
        Arc::new(Flaky { inner: RocksStore::open(dir.path()).unwrap(), fail: AtomicBool::new(false) });
    let trailing = Arc::new(Trailing { seals: Mutex::new(Vec::new()) });
    let admission: Arc<dyn Admission<Parsed = Unparsed>> = trailing.clone();
    let (h, task) = start_sequencer_with(flaky.clone(), cfg(5), Some(admission)).unwrap();
    // One entry per batch: [a, trailer 1], then [b, trailer 3].
    let a = h.submit(b"a".to_vec()).await.unwrap();
    assert_eq!((a.index, h.tree_size()), (0, 2));
    let b = h.submit(b"b".to_vec()).await.unwrap();
    assert_eq!((b.index, h.tree_size()), (2, 4));
    // Each batch was sealed once, at the index after its entries.
    assert_eq!(trailing.seals.lock().unwrap().as_slice(), &[1, 3]);
    // A failed write takes its trailer and state rows with it.
    flaky.fail.store(true, Ordering::SeqCst);
    assert!(matches!(h.submit(b"c".to_vec()).await, Err(SequenceError::Store(_))));
    assert_eq!(h.tree_size(), 4);
    flaky.fail.store(false, Ordering::SeqCst);
    // A batch that admits nothing (a durable duplicate) and whose seal
    // adds nothing writes nothing.
    let commits = h.commits();
    let again = h.submit(b"a".to_vec()).await.unwrap();
    assert!(again.duplicate && again.index == 0);
    assert_eq!((h.commits(), h.tree_size()), (commits, 4));
    let c = h.submit(b"c".to_vec()).await.unwrap();
    assert_eq!((c.index, h.tree_size()), (4, 6));
    stop(h, task).await;
    let store = &flaky.inner;
    let all = check_tree(store);
    let want: Vec<Vec<u8>> = ["a", "trailer 1", "b", "trailer 3", "c", "trailer 5"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    assert_eq!(all, want);
    for (i, e) in all.iter().enumerate() {
        check_included(store, e, i as u64);
    }
    // The failed batch (sealed at 5 too) left no row of its own; the
    // durable ones did, and the deletes found nothing to delete.
    assert_eq!(store.scan_state(b"last").unwrap(), vec![(b"last".to_vec(), 5u64.to_be_bytes().to_vec())]);
    let seals: Vec<Vec<u8>> = store.scan_state(b"seal ").unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(seals, vec![b"seal 1".to_vec(), b"seal 3".to_vec(), b"seal 5".to_vec()]);
    assert!(store.scan_state(b"gone").unwrap().is_empty());
}
