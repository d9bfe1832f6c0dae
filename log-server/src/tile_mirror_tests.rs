use std::collections::BTreeSet;

use custody_standards::entries::decode_bundle;
use custody_standards::stored::ReadError;
use custody_standards::{leaf_hash, tree_hash, Appender, Hash, TileFetcher, TileHashReader};

use super::*;
use crate::store::{Batch, RocksStore};

/// Every tile and bundle a client of a checkpoint of `size` may fetch.
fn needed(size: u64) -> BTreeSet<String> {
    let width = u64::from(TILE_WIDTH);
    let mut out = BTreeSet::new();
    for index in 0..size.div_ceil(width) {
        out.extend(EntryBundle::at_size(index, size).map(|b| b.path()));
    }
    let mut level = 0u8;
    loop {
        let count = size >> (8 * u32::from(level));
        if count == 0 {
            break;
        }
        for index in 0..count.div_ceil(width) {
            out.extend(Tile::at_size(level, index, size).map(|t| t.path()));
        }
        level += 1;
    }
    out
}

fn between(old: u64, new: u64) -> BTreeSet<String> {
    objects_between(old, new).iter().map(TilePath::path).collect()
}

/// What a client of `new` needs and a client of `old` did not is written,
/// and nothing a client of `new` would not fetch: for every pair of sizes
/// around the tile boundaries of the first two levels.
#[test]
fn writes_exactly_what_the_new_size_adds() {
    let check = |old: u64, new: u64, cache: &mut std::collections::HashMap<u64, BTreeSet<String>>| {
        let got = between(old, new);
        let o = cache.entry(old).or_insert_with(|| needed(old)).clone();
        let n = cache.entry(new).or_insert_with(|| needed(new));
        assert!(got.is_subset(n), "{old}->{new}: extra {:?}", got.difference(n).next());
        let missing: Vec<_> = n.difference(&o).filter(|p| !got.contains(*p)).collect();
        assert!(missing.is_empty(), "{old}->{new}: missing {missing:?}");
    };
    let mut cache = std::collections::HashMap::new();
    let mut sizes: Vec<u64> = (0..=600).collect();
    for b in [65_536u64, 2 * 65_536] {
        sizes.extend(b - 260..=b + 260);
    }
    for (i, &old) in sizes.iter().enumerate().step_by(7) {
        for &new in sizes[i..].iter().step_by(5) {
            check(old, new, &mut cache);
        }
    }
    // Around the first level-2 boundary, a few steps only (the sets are big).
    let b = 16_777_216u64;
    for (old, new) in [(b - 1, b), (b - 300, b + 1), (b, b + 256), (b - 65_536, b + 65_537), (0, b + 1)] {
        check(old, new, &mut cache);
    }
    assert!(between(5, 5).is_empty() && between(9, 3).is_empty());
    assert_eq!(
        between(0, 1),
        BTreeSet::from(["tile/0/000.p/1".to_owned(), "tile/entries/000.p/1".to_owned()])
    );
}

fn append(store: &RocksStore, entries: impl IntoIterator<Item = Vec<u8>>) {
    let size = store.tree_size().unwrap();
    let mut appender = Appender::from_reader(size, store).unwrap();
    let mut batch = Batch { start: size, ..Batch::default() };
    for e in entries {
        let leaf = leaf_hash(&e);
        appender.append(leaf, &mut batch.nodes);
        batch.leaf_hashes.push(leaf);
        batch.entries.push(e);
    }
    store.append_batch(&batch).unwrap();
}

/// Reads tiles straight from the mirrored directory, as a static server
/// would serve them.
struct DirTiles(std::path::PathBuf);

impl TileFetcher for DirTiles {
    fn fetch_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadError> {
        tiles
            .iter()
            .map(|t| std::fs::read(self.0.join(t.path())).map_err(|e| ReadError::Backend(Box::new(e))))
            .collect()
    }
}

/// A store grown over several checkpoints: after each, the directory alone
/// holds the checkpoint, every entry, and tiles that authenticate every
/// leaf against the checkpoint's root.
#[tokio::test]
async fn the_bucket_alone_rebuilds_every_published_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<RocksStore> = Arc::new(RocksStore::open(&dir.path().join("db")).unwrap());
    let bucket = Bucket::open(&format!("file://{}", dir.path().join("bucket").display())).unwrap();
    let mut mirror = TileMirror::new(bucket.clone(), store.clone()).unwrap();
    let read_path = dir.path().join("bucket").join(READ_PATH);
    let mut next = 0u32;
    for grow in [1u32, 254, 1, 300, 256, 70_000] {
        append(&store, (next..next + grow).map(|i| format!("entry {i}").into_bytes()));
        next += grow;
        let size = u64::from(next);
        let note = format!("checkpoint {size}\n").into_bytes();
        mirror.publish(size, &note).await.unwrap();
        assert_eq!(std::fs::read(read_path.join("checkpoint")).unwrap(), note);
        assert_eq!(mirror.mirrored(), size);
        let root: Hash = tree_hash(size, &*store).unwrap();
        let tiles = TileHashReader::new(size, root, DirTiles(read_path.clone()));
        for index in [0, size / 2, size - 1] {
            let ids = [custody_standards::NodeId::new(0, index)];
            let got = custody_standards::HashReader::read_hashes(&tiles, &ids).unwrap();
            assert_eq!(got[0], leaf_hash(format!("entry {index}").as_bytes()), "leaf {index} at {size}");
        }
        let (bundle, at) = EntryBundle::for_entry(size - 1, size).unwrap();
        let body = std::fs::read(read_path.join(bundle.path())).unwrap();
        let entries = decode_bundle(&body, usize::from(bundle.width())).unwrap();
        assert_eq!(entries[usize::from(at)], format!("entry {}", size - 1).as_bytes());
    }
    // A restart resumes from the recorded size and writes nothing old again.
    drop(mirror);
    std::fs::remove_file(read_path.join("tile/entries/000")).unwrap();
    let mut mirror = TileMirror::new(bucket, store.clone()).unwrap();
    assert_eq!(mirror.mirrored(), u64::from(next));
    append(&store, [b"one more".to_vec()]);
    mirror.publish(u64::from(next) + 1, b"last\n").await.unwrap();
    assert!(!read_path.join("tile/entries/000").exists());
}

/// Write-ahead segments the bundles cover are pruned at the first round
/// (what an earlier run left), then at most once per [`PRUNE_EVERY`]: a
/// listing of the bucket per round would be a quorum read per batch.
#[tokio::test]
async fn segments_are_pruned_first_then_at_most_once_per_interval() {
    use crate::bucket::WAL;
    use crate::wal::{encode_segment, segment_name};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<RocksStore> = Arc::new(RocksStore::open(&dir.path().join("db")).unwrap());
    let bucket = Bucket::open(&format!("file://{}", dir.path().join("bucket").display())).unwrap();
    let put = |start: u64| {
        let b = bucket.clone();
        async move {
            let body = encode_segment(&[format!("entry {start}").into_bytes()]);
            b.put(&segment_name(start), body, "x", Caching::Private).await.unwrap();
        }
    };
    let left = || {
        let b = bucket.clone();
        async move { b.list(WAL).await.unwrap().len() }
    };
    let mut mirror = TileMirror::new(bucket.clone(), store.clone()).unwrap();
    for start in [0, 10, 20] {
        put(start).await;
    }
    append(&store, (0..25u32).map(|i| format!("entry {i}").into_bytes()));
    mirror.publish(25, b"25\n").await.unwrap();
    assert_eq!(left().await, 1, "segments 0 and 10 lie below 25 and are followed by another");
    for start in [30, 40] {
        put(start).await;
    }
    append(&store, (25..45u32).map(|i| format!("entry {i}").into_bytes()));
    mirror.publish(45, b"45\n").await.unwrap();
    assert_eq!(left().await, 3, "no listing again within the interval");
    mirror.pruned = mirror.pruned.map(|at| at - PRUNE_EVERY);
    append(&store, [b"entry 45".to_vec()]);
    mirror.publish(46, b"46\n").await.unwrap();
    assert_eq!(left().await, 1, "pruned once the interval has passed");
}
