//! Restores of a generic log (raw entries); the registry's replay is
//! exercised on the real binaries in tests/tests/bucket_restore.rs.

use std::sync::Arc;

use custody_standards::checkpoint::sign_checkpoint;
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::SignerKey;

use super::*;
use crate::bucket::Caching;
use crate::tile_mirror::TileMirror;
use crate::wal::{encode_segment, segment_name};

struct Fixture {
    dir: tempfile::TempDir,
    bucket: Bucket,
    key_file: PathBuf,
    key: SignerKey,
}

fn entry(i: u64) -> Vec<u8> {
    format!("raw entry {i}").into_bytes()
}

/// A generic log of `size` entries mirrored at `size` to a file bucket.
async fn published(size: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::from_seed("example.com/log", SIG_TYPE_ED25519, &[9; 32]).unwrap();
    let key_file = dir.path().join("backup.key");
    std::fs::write(&key_file, format!("{}\n", key.to_private_string())).unwrap();
    let store: Arc<RocksStore> = Arc::new(RocksStore::open(&dir.path().join("old")).unwrap());
    let mut appender = Appender::default();
    let mut batch = Batch::default();
    for i in 0..size {
        let e = entry(i);
        appender.append(leaf_hash(&e), &mut batch.nodes);
        batch.leaf_hashes.push(leaf_hash(&e));
        batch.entries.push(e);
    }
    store.append_batch(&batch).unwrap();
    let root = tree_hash(size, &*store).unwrap();
    let cp = Checkpoint { origin: key.name().to_owned(), size, root, extensions: Vec::new() };
    let note = sign_checkpoint(&cp, &key).unwrap();
    let bucket = Bucket::open(&format!("file://{}", dir.path().join("bucket").display())).unwrap();
    TileMirror::new(bucket.clone(), store).unwrap().publish(size, &note).await.unwrap();
    Fixture { dir, bucket, key_file, key }
}

async fn run(f: &Fixture, to: &str) -> Result<Restored, RestoreError> {
    restore(&f.bucket, &f.dir.path().join(to), &f.key_file, false, Config::default()).await
}

#[tokio::test]
async fn rebuilds_every_entry_and_the_published_checkpoint() {
    let f = published(700).await;
    let got = run(&f, "new").await.unwrap();
    assert_eq!(got, Restored { checkpoint_size: 700, size: 700 });
    let data = f.dir.path().join("new");
    assert_eq!(init::load_key(&data).unwrap().verifier(), f.key.verifier());
    let store = RocksStore::open(&data.join(DB_DIR)).unwrap();
    assert_eq!(store.tree_size().unwrap(), 700);
    for i in [0, 255, 256, 699] {
        assert_eq!(store.entry(i).unwrap(), Some(entry(i)));
    }
    assert_eq!(store.latest_published_checkpoint().unwrap().map(|(s, _)| s), Some(700));
    init::check_origin(&store, &f.key).unwrap();
    assert!(!init::is_registry(&store).unwrap());
    // Restoring over a log is refused.
    drop(store);
    assert!(matches!(run(&f, "new").await, Err(RestoreError::Init(InitError::Exists(_)))));
}

#[tokio::test]
async fn continues_with_the_write_ahead_segments_that_chain() {
    let f = published(300).await;
    let put = |start: u64, entries: Vec<Vec<u8>>| {
        let b = f.bucket.clone();
        async move {
            b.put(&segment_name(start), encode_segment(&entries), "x", Caching::Private).await.unwrap();
        }
    };
    // One overlapping the checkpoint, one continuing it, one after a gap.
    put(298, (298..305).map(entry).collect()).await;
    put(305, (305..310).map(entry).collect()).await;
    put(400, vec![entry(400)]).await;
    let got = run(&f, "a").await.unwrap();
    assert_eq!(got, Restored { checkpoint_size: 300, size: 310 });
    let store = RocksStore::open(&f.dir.path().join("a").join(DB_DIR)).unwrap();
    assert_eq!(store.entry(309).unwrap(), Some(entry(309)));
    // A segment that rewrites a checkpointed entry is refused.
    put(298, vec![entry(298), b"forged".to_vec()]).await;
    assert!(matches!(run(&f, "b").await, Err(RestoreError::SegmentConflict { start: 298, index: 299 })));
    assert!(!f.dir.path().join("b").join(DB_DIR).exists());
}

#[tokio::test]
async fn a_bucket_that_lies_is_refused_and_leaves_no_database() {
    let f = published(513).await;
    let read_path = f.dir.path().join("bucket").join(READ_PATH);
    // An entry swapped in a full bundle: the tree no longer has the root.
    let bundle = read_path.join("tile/entries/001");
    let mut body = std::fs::read(&bundle).unwrap();
    let at = body.windows(13).position(|w| w == b"raw entry 300").unwrap();
    body[at + 12] = b'X';
    std::fs::write(&bundle, &body).unwrap();
    let err = run(&f, "x").await.unwrap_err();
    assert!(matches!(err, RestoreError::RootMismatch { size: 513, .. }), "{err}");
    assert!(!f.dir.path().join("x").join(DB_DIR).exists());
    assert!(!f.dir.path().join("x").join(KEY_FILE).exists());
    // A missing bundle, and a checkpoint signed by another key.
    std::fs::remove_file(&bundle).unwrap();
    assert!(matches!(run(&f, "y").await, Err(RestoreError::Object { .. })));
    let other = SignerKey::from_seed("example.com/log", SIG_TYPE_ED25519, &[8; 32]).unwrap();
    std::fs::write(&f.key_file, format!("{}\n", other.to_private_string())).unwrap();
    assert!(matches!(run(&f, "z").await, Err(RestoreError::Checkpoint(_))));
    std::fs::remove_file(read_path.join("checkpoint")).unwrap();
    assert!(matches!(run(&f, "z").await, Err(RestoreError::NoCheckpoint)));
}
