//! RocksStore against a real database in a temporary directory.

use super::layout;
use super::*;
use custody_standards::{leaf_hash, proof::tree_hash, Appender, MemoryHashStore};

/// Builds the batch appending `entries` after `appender`'s current size.
pub(crate) fn make_batch(appender: &mut Appender, entries: &[Vec<u8>]) -> Batch {
    let mut b = Batch { start: appender.size(), ..Batch::default() };
    for e in entries {
        let l = leaf_hash(e);
        appender.append(l, &mut b.nodes);
        b.entries.push(e.clone());
        b.leaf_hashes.push(l);
    }
    b
}

fn entries(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| format!("entry {i}").into_bytes()).collect()
}

#[test]
fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let all = entries(0..37);
    let mut mem = MemoryHashStore::new();
    for e in &all {
        mem.append(leaf_hash(e));
    }
    {
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(s.tree_size().unwrap(), 0);
        let mut a = Appender::new();
        s.append_batch(&make_batch(&mut a, &all[..20])).unwrap();
        s.append_batch(&make_batch(&mut a, &all[20..])).unwrap();
        assert_eq!(s.tree_size().unwrap(), 37);
        assert_eq!(s.entry(5).unwrap().unwrap(), all[5]);
        assert_eq!(s.entry(37).unwrap(), None);
        assert_eq!(s.entries(10, 100).unwrap(), all[10..].to_vec());
        assert_eq!(s.index_of(&leaf_hash(&all[33])).unwrap(), Some(33));
        assert_eq!(s.index_of(&leaf_hash(b"absent")).unwrap(), None);
        assert_eq!(tree_hash(37, &s).unwrap(), mem.root());
        s.put_published_checkpoint(20, b"cp20").unwrap();
        s.put_published_checkpoint(37, b"cp37").unwrap();
        s.put_meta(b"origin", b"example.com/log").unwrap();
        assert!(s.put_meta(META_TREE_SIZE, &[0; 8]).is_err());
    }
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(s.tree_size().unwrap(), 37);
    assert_eq!(tree_hash(37, &s).unwrap(), mem.root());
    for size in [1u64, 2, 3, 17, 32, 36] {
        assert_eq!(tree_hash(size, &s).unwrap(), tree_hash(size, &mem).unwrap(), "size {size}");
    }
    let a = Appender::from_reader(37, &s).unwrap();
    assert_eq!(a.root(), mem.root());
    assert_eq!(s.published_checkpoint(20).unwrap().unwrap(), b"cp20");
    assert_eq!(s.latest_published_checkpoint().unwrap().unwrap(), (37, b"cp37".to_vec()));
    assert_eq!(s.get_meta(b"origin").unwrap().unwrap(), b"example.com/log");
    match s.read_hashes(&[NodeId::new(0, 40)]) {
        Err(ReadError::Missing(id)) => assert_eq!(id, NodeId::new(0, 40)),
        other => panic!("expected Missing, got {other:?}"),
    }
    drop(s);
    let ro = RocksStore::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.tree_size().unwrap(), 37);
    assert_eq!(tree_hash(37, &ro).unwrap(), mem.root());
}

#[test]
fn conflict_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    let mut a = Appender::new();
    s.append_batch(&make_batch(&mut a, &entries(0..3))).unwrap();
    // A stale writer retrying from size 1.
    let mut stale = Appender::from_reader(1, &s).unwrap();
    let b = make_batch(&mut stale, &entries(100..102));
    match s.append_batch(&b) {
        Err(StoreError::Conflict { expected: 3, got: 1 }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(s.tree_size().unwrap(), 3);
    assert_eq!(s.entry(1).unwrap().unwrap(), b"entry 1");
    assert_eq!(s.index_of(&leaf_hash(b"entry 100")).unwrap(), None);
    // A malformed batch (missing leaf hash) is refused too.
    let mut bad = make_batch(&mut a, &entries(3..5));
    bad.leaf_hashes.pop();
    assert!(matches!(s.append_batch(&bad), Err(StoreError::Corrupt(_))));
    assert_eq!(s.tree_size().unwrap(), 3);
    drop(s);
    assert_eq!(RocksStore::open(dir.path()).unwrap().tree_size().unwrap(), 3);
}

/// Memory-only reads answer from memtables and the block cache and
/// say so (rather than wait) when a hash is only on disk.
#[test]
fn memory_only_reads_never_touch_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let all = entries(0..300);
    let ids: Vec<NodeId> = [NodeId::leaf(7), NodeId::new(3, 5), NodeId::leaf(299)].into();
    let expected = {
        let s = RocksStore::open(dir.path()).unwrap();
        s.append_batch(&make_batch(&mut Appender::new(), &all)).unwrap();
        // Still in the memtable.
        let got = s.read_hashes_in_memory(&ids).unwrap();
        assert_eq!(got, s.read_hashes(&ids).unwrap());
        assert!(matches!(s.read_hashes_in_memory(&[NodeId::leaf(300)]), Err(ReadError::Missing(_))));
        s.db().flush_cf(s.cf(CF_HASHES)).unwrap();
        got
    };
    // Reopened: the hashes are in a table file and no data block is
    // cached yet.
    let s = RocksStore::open(dir.path()).unwrap();
    match s.read_hashes_in_memory(&ids) {
        Err(e) => assert!(NotInMemory::is(&e), "{e:?}"),
        Ok(_) => panic!("a cold cache answered from memory"),
    }
    assert!(!NotInMemory::is(&ReadError::Missing(NodeId::leaf(1))));
    assert_eq!(s.read_hashes(&ids).unwrap(), expected);
    assert_eq!(s.read_hashes_in_memory(&ids).unwrap(), expected, "cached by the disk read");
    let usage = s.memory_usage().unwrap();
    assert!(usage.cache > 0);
    assert!(usage.sst_bytes.iter().any(|(cf, b)| *cf == CF_HASHES && *b > 0), "{usage:?}");
}

#[test]
fn read_only_open_of_missing_dir_fails() {
    let dir = tempfile::tempdir().unwrap();
    assert!(RocksStore::open_read_only(&dir.path().join("nope")).is_err());
    assert!(!dir.path().join("nope").exists());
}

/// Every tree size up to 130, appended in batches of every shape from one
/// entry to all of them: every complete subtree reads back as the
/// in-memory store (which keeps every level) has it, and so does every
/// entry and every leaf-hash lookup. Packed rows are filled across batch
/// boundaries here, so this is what would catch a fragment at the wrong
/// position.
#[test]
fn packed_rows_read_back_at_every_size() {
    let all = entries(0..130);
    let mut mem = MemoryHashStore::new();
    for e in &all {
        mem.append(leaf_hash(e));
    }
    for step in [1usize, 3, 16, 17, 130] {
        let dir = tempfile::tempdir().unwrap();
        let s = RocksStore::open(dir.path()).unwrap();
        let mut a = Appender::new();
        for chunk in all.chunks(step) {
            s.append_batch(&make_batch(&mut a, chunk)).unwrap();
            let size = s.tree_size().unwrap();
            assert_eq!(tree_hash(size, &s).unwrap(), tree_hash(size, &mem).unwrap(), "size {size}");
            for level in 0..8u8 {
                let ids: Vec<NodeId> = (0..size >> level).map(|i| NodeId::new(level, i)).collect();
                let want: Vec<Hash> = ids.iter().map(|id| mem.get(*id).unwrap()).collect();
                assert_eq!(s.read_hashes(&ids).unwrap(), want, "level {level} at size {size}");
                let beyond = NodeId::new(level, size >> level);
                assert!(matches!(s.read_hashes(&[beyond]), Err(ReadError::Missing(_))), "{beyond} at {size}");
            }
        }
        assert_eq!(s.entries(0, 130).unwrap(), all, "step {step}");
        for start in [0u64, 5, 15, 16, 17, 100, 129] {
            assert_eq!(
                s.entries(start, start + 20).unwrap(),
                all[start as usize..(start as usize + 20).min(130)]
            );
        }
        for (i, e) in all.iter().enumerate() {
            assert_eq!(s.entry(i as u64).unwrap().as_ref(), Some(e));
            assert_eq!(s.index_of(&leaf_hash(e)).unwrap(), Some(i as u64));
        }
    }
}

#[test]
fn leaf_lookup_confirms_candidates_against_the_stored_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    let all = entries(0..40);
    s.append_batch(&make_batch(&mut Appender::new(), &all)).unwrap();
    // A posting that carries entry 3's bucket and tag but points at 30, as
    // an accidental (or crafted) 48-bit collision would: ignored.
    let three = leaf_hash(&all[3]);
    let mut fake = Vec::new();
    layout::push_posting(&mut fake, &three, 30);
    s.db().merge_cf(s.cf(CF_LEAF_INDEX), layout::leaf_bucket(&three), &fake).unwrap();
    assert_eq!(s.index_of(&three).unwrap(), Some(3));
    let absent = leaf_hash(b"absent");
    let mut fake = Vec::new();
    layout::push_posting(&mut fake, &absent, 31);
    s.db().merge_cf(s.cf(CF_LEAF_INDEX), layout::leaf_bucket(&absent), &fake).unwrap();
    assert_eq!(s.index_of(&absent).unwrap(), None);
}

#[test]
fn registry_rows_read_back_in_order_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    let mut a = Appender::new();
    let (p, q) = (b"\x01digest-p".to_vec(), b"\x01digest-q".to_vec());
    let row = |prefix: &[u8], i: u64| [prefix, &i.to_be_bytes()].concat();
    let mut want_p = Vec::new();
    for chunk in entries(0..600).chunks(70) {
        let mut b = make_batch(&mut a, chunk);
        for i in b.start..b.start + chunk.len() as u64 {
            if i % 3 != 1 {
                b.index_rows.push(row(&p, i));
                want_p.push(row(&p, i));
            }
            b.index_rows.push(row(&q, i));
        }
        s.append_batch(&b).unwrap();
    }
    assert_eq!(s.scan_index(&p, None, 10_000).unwrap(), want_p);
    let mut paged = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = s.scan_index(&p, after.as_deref(), 37).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        paged.extend(page);
    }
    assert_eq!(paged, want_p, "pages of 37 across packed rows of 256");
    assert_eq!(s.scan_index(&q, None, 5).unwrap().len(), 5);
    assert_eq!(s.scan_index(b"\x01digest-r", None, 5).unwrap(), Vec::<Vec<u8>>::new());
    // A row naming no entry of its batch is refused, and nothing is written.
    let mut b = make_batch(&mut a, &entries(600..601));
    b.index_rows.push(row(&p, 5));
    assert!(matches!(s.append_batch(&b), Err(StoreError::Corrupt(_))));
    assert_eq!(s.tree_size().unwrap(), 600);
}

#[test]
fn batches_that_would_not_pack_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    let mut a = Appender::new();
    s.append_batch(&make_batch(&mut a, &entries(0..5))).unwrap();
    let good = make_batch(&mut a.clone(), &entries(5..40));
    let mut swapped = good.clone();
    let (x, y) = (
        swapped.nodes.iter().position(|(id, _)| id.level == 0 && id.index == 6).unwrap(),
        swapped.nodes.iter().position(|(id, _)| id.level == 0 && id.index == 7).unwrap(),
    );
    swapped.nodes.swap(x, y);
    let mut short = good.clone();
    short.nodes.retain(|(id, _)| *id != NodeId::new(4, 1));
    let mut empty_entry = good.clone();
    empty_entry.entries[0].clear();
    for bad in [swapped, short, empty_entry] {
        assert!(matches!(s.append_batch(&bad), Err(StoreError::Corrupt(_))));
        assert_eq!(s.tree_size().unwrap(), 5);
    }
    s.append_batch(&good).unwrap();
    assert_eq!(s.tree_size().unwrap(), 40);
}

#[test]
fn another_storage_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(s.get_meta(META_FORMAT).unwrap(), Some(FORMAT.to_be_bytes().to_vec()));
        s.append_batch(&make_batch(&mut Appender::new(), &entries(0..3))).unwrap();
        // What a format-1 database looks like: a tree size, no format.
        s.db().delete_cf(s.cf(CF_META), META_FORMAT).unwrap();
    }
    for open in [RocksStore::open, RocksStore::open_read_only] {
        match open(dir.path()) {
            Err(e @ StoreError::Format { found: 1 }) => assert!(e.to_string().contains("format 2"), "{e}"),
            other => panic!("expected Format, got {other:?}"),
        }
    }
}

/// Rows grow while readers read: a reader that took the tree size just
/// before a batch landed sees the longer row, and must answer for the size
/// it took rather than call the store corrupt.
#[test]
fn readers_of_the_growing_row_see_a_consistent_tree() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(RocksStore::open(dir.path()).unwrap());
    let all = entries(0..300);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (s, done, all) = (s.clone(), done.clone(), all.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let size = s.tree_size().unwrap();
                if size == 0 {
                    continue;
                }
                assert_eq!(s.entry(size - 1).unwrap().as_ref(), Some(&all[size as usize - 1]));
                let first = (size - 1) & !(layout::ROW_WIDTH - 1);
                assert!(s.entries(first, u64::MAX).unwrap().len() as u64 >= size - first);
                reads += 1;
            }
            reads
        })
    };
    let mut a = Appender::new();
    for e in all.chunks(1) {
        s.append_batch(&make_batch(&mut a, e)).unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
}

/// State rows are written in the batch (also a batch of state rows only),
/// read back by prefix, and deleted by a `None` row.
#[test]
fn state_rows_are_written_with_the_batch_and_scanned_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    let mut a = Appender::new();
    let mut b = make_batch(&mut a, &entries(0..3));
    b.state_rows = vec![(b"p/1".to_vec(), Some(b"one".to_vec())), (b"p/2".to_vec(), Some(b"two".to_vec()))];
    s.append_batch(&b).unwrap();
    let only_state = Batch {
        start: 3,
        state_rows: vec![(b"p/1".to_vec(), None), (b"q".to_vec(), Some(b"q".to_vec()))],
        ..Batch::default()
    };
    s.append_batch(&only_state).unwrap();
    assert_eq!(s.tree_size().unwrap(), 3);
    assert_eq!(s.scan_state(b"p/").unwrap(), vec![(b"p/2".to_vec(), b"two".to_vec())]);
    assert_eq!(s.scan_state(b"").unwrap().len(), 2);
    // A state row with an empty key is refused with the whole batch.
    let mut bad = make_batch(&mut a.clone(), &entries(3..4));
    bad.state_rows = vec![(Vec::new(), None)];
    assert!(matches!(s.append_batch(&bad), Err(StoreError::Corrupt(_))));
    assert_eq!(s.tree_size().unwrap(), 3);
}

/// A database written before the `state` family existed opens read-only
/// (fsck) with no state rows, and a writable open adds the family.
#[test]
fn a_database_without_the_state_family_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        s.append_batch(&make_batch(&mut Appender::new(), &entries(0..3))).unwrap();
        for cf in COLUMN_FAMILIES {
            s.db().flush_cf(s.cf(cf)).unwrap();
        }
    }
    {
        let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), COLUMN_FAMILIES).unwrap();
        db.drop_cf(CF_STATE).unwrap();
    }
    let ro = RocksStore::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.tree_size().unwrap(), 3);
    assert!(ro.scan_state(b"").unwrap().is_empty());
    assert_eq!(ro.entry(2).unwrap(), Some(b"entry 2".to_vec()));
    drop(ro);
    let rw = RocksStore::open(dir.path()).unwrap();
    rw.append_batch(&Batch {
        start: 3,
        state_rows: vec![(b"k".to_vec(), Some(b"v".to_vec()))],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(rw.scan_state(b"k").unwrap().len(), 1);
}

/// Bytes of write-ahead log files in the database directory.
fn wal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// A family written once (the state rows) must not keep every later
/// write-ahead log file alive: recovery after `kill -9` reads them all.
/// With the smallest cache the bound is 4 MiB; RocksDB's default would
/// keep the whole 24 MiB written here.
#[test]
fn a_quiet_family_does_not_pin_the_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open_tuned(dir.path(), StoreTuning { cache_bytes: MIN_CACHE_BYTES }).unwrap();
    let mut a = Appender::new();
    let mut first = make_batch(&mut a, &entries(0..1));
    first.state_rows = vec![(b"cursor".to_vec(), Some(b"written once".to_vec()))];
    s.append_batch(&first).unwrap();
    let mut peak = 0;
    for batch in 0..48u32 {
        let big: Vec<Vec<u8>> = (0..32u32).map(|i| vec![(batch * 32 + i) as u8; 16 << 10]).collect();
        s.append_batch(&make_batch(&mut a, &big)).unwrap();
        peak = peak.max(wal_bytes(dir.path()));
    }
    assert!(peak < 12 << 20, "write-ahead log reached {peak} bytes");
    drop(s);
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(s.scan_state(b"cursor").unwrap(), vec![(b"cursor".to_vec(), b"written once".to_vec())]);
    assert_eq!(s.tree_size().unwrap(), 1 + 48 * 32);
}
