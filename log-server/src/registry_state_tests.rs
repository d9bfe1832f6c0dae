//! The persisted registry state against a real RocksDB: start-up reads it
//! instead of replaying, it equals the replay after restarts, replays stay
//! refused, and a database without it still starts.

use std::sync::Arc;
use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::leaf::Leaf;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, Version};
use custody_registry::registry::{Config, Rejection, Role};
use custody_registry::statement::events::{Access, GrantRole, Kind, Publish};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::{Context, Event, Nonce, SignedStatement, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::{leaf_hash, Appender};

use crate::registry::{now_ms, replay, RegistryService};
use crate::sequencer::{start_sequencer_with, Admission, Refusal, SequenceError, SequencerConfig};
use crate::store::{Batch, RocksStore, Store};

fn root() -> ActorSigner {
    ActorSigner::from_seed(&ActorName::new("root").unwrap(), &[1; 32])
}

/// A leaf of `event` by `who` with nonce `n`, received now.
fn leaf(who: &ActorSigner, n: u64, event: Event) -> Vec<u8> {
    let now = now_ms();
    let mut nonce = [0u8; 16];
    nonce[8..].copy_from_slice(&n.to_be_bytes());
    let time = Timestamp::from_unix_secs(now / 1000).unwrap();
    let stmt = Statement::new(who, time, Nonce(nonce), Context::reason(Text::new("t").unwrap()), event);
    Leaf::new(now, &stmt.sign(who).unwrap()).unwrap().encode()
}

fn digest() -> Digest {
    Digest(custody_standards::hash::sha256(b"weights"))
}

/// The genesis grant, a publish, then `accesses` access statements: what
/// a registry under read load logs.
fn leaves(accesses: u64) -> Vec<Vec<u8>> {
    let root = root();
    let name = ModelName::new("acme/m").unwrap();
    let version = Version::new("1").unwrap();
    let mut out = vec![
        leaf(
            &root,
            0,
            Event::Grant(GrantRole {
                actor: root.actor().clone(),
                key: root.public().clone(),
                role: Role::Admin,
                pattern: Pattern::new("*").unwrap(),
            }),
        ),
        leaf(
            &root,
            1,
            Event::Publish(Publish {
                name: name.clone(),
                version: version.clone(),
                kind: Kind::Model,
                digest: digest(),
                size: 7,
                media_type: MediaType::new("application/octet-stream").unwrap(),
                metadata: Metadata::default(),
                lineage: Lineage::default(),
            }),
        ),
    ];
    let access = Event::Access(Access { name, version, digest: digest() });
    out.extend((0..accesses).map(|i| leaf(&root, 2 + i, access.clone())));
    out
}

fn cfg() -> SequencerConfig {
    SequencerConfig { batch_max: 4096, batch_wait: Duration::from_millis(5), ..SequencerConfig::default() }
}

/// Loads the registry from `store`, sequences `leaves` through it (parsed
/// and authenticated, as the HTTP handler hands them over), and stops.
async fn sequence(store: &Arc<RocksStore>, leaves: Vec<Vec<u8>>) -> Vec<Result<u64, SequenceError>> {
    let registry = Arc::new(RegistryService::load(store.as_ref(), Config::default()).unwrap());
    let admission: Arc<dyn Admission<Parsed = SignedStatement>> = registry.clone();
    let (h, task) = start_sequencer_with(store.clone(), cfg(), Some(admission)).unwrap();
    let mut pending = Vec::new();
    for chunk in leaves.chunks(2048) {
        let tasks: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|l| {
                let h = h.clone();
                tokio::spawn(async move {
                    let signed = SignedStatement::parse(Leaf::decode(&l).unwrap().envelope).unwrap();
                    h.submit_authenticated(l, signed).await.map(|a| a.index)
                })
            })
            .collect();
        // In log order: the genesis must be durable before the rest.
        for t in tasks {
            pending.push(t.await.unwrap());
        }
    }
    drop(h);
    task.await.unwrap();
    pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_at_100k_entries_replays_nothing_and_equals_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    // Genesis and publish first (the accesses need them durable).
    let all = leaves(100_000);
    let (head, tail) = all.split_at(2);
    for l in head {
        assert!(sequence(&store, vec![l.clone()]).await[0].is_ok());
    }
    let acks = sequence(&store, tail.to_vec()).await;
    assert!(acks.iter().all(Result::is_ok));
    // Every batch ends with a commitment leaf: more leaves than statements.
    let size = store.tree_size().unwrap();
    let statements = (0..size)
        .filter(|i| {
            custody_registry::leaf::CommitmentLeaf::decode(&store.entry(*i).unwrap().unwrap()).is_err()
        })
        .count();
    assert_eq!(statements, 100_002);
    assert!(size > 100_002);
    let loaded = RegistryService::load(store.as_ref(), Config::default()).unwrap();
    assert_eq!(loaded.replayed_at_start(), 0);
    let replayed = replay(store.as_ref(), Config::default()).unwrap();
    assert_eq!(loaded.read().first_difference(&replayed), None);
    assert_eq!(loaded.read().fingerprint(), replayed.fingerprint());
    assert_eq!(loaded.read().nonces_remembered(), 100_002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_replayed_after_restart_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let all = leaves(3);
    for l in &all {
        assert!(sequence(&store, vec![l.clone()]).await[0].is_ok());
    }
    // The same statement, received again later: another leaf (another
    // receive time), so only its nonce can tell it is a replay.
    let again = {
        let l = Leaf::decode(&all[3]).unwrap();
        Leaf::new(l.receive_time_ms + 1, l.envelope).unwrap().encode()
    };
    assert_ne!(leaf_hash(&again), leaf_hash(&all[3]));
    let refused = sequence(&store, vec![again]).await;
    assert!(
        matches!(refused[0], Err(SequenceError::Refused(Refusal::Registry(Rejection::Replay)))),
        "{refused:?}"
    );
    // Five statements, each its own batch ending with a commitment leaf;
    // the replay added nothing.
    assert_eq!(store.tree_size().unwrap(), 10);
}

/// Appends `leaves` without any admission: a database written before the
/// registry state was persisted.
fn write_without_state(store: &RocksStore, leaves: &[Vec<u8>]) {
    let mut appender = Appender::from_reader(store.tree_size().unwrap(), store).unwrap();
    let mut batch = Batch { start: appender.size(), ..Batch::default() };
    for l in leaves {
        appender.append(leaf_hash(l), &mut batch.nodes);
        batch.leaf_hashes.push(leaf_hash(l));
        batch.entries.push(l.clone());
    }
    store.append_batch(&batch).unwrap();
}

#[test]
fn a_database_without_persisted_state_replays_once_then_starts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    write_without_state(&store, &leaves(500));
    assert!(store.scan_state(b"").unwrap().is_empty());
    let first = RegistryService::load(&store, Config::default()).unwrap();
    assert_eq!(first.replayed_at_start(), 502);
    let second = RegistryService::load(&store, Config::default()).unwrap();
    assert_eq!(second.replayed_at_start(), 0);
    assert_eq!(second.read().fingerprint(), first.read().fingerprint());
    // A tail the state does not cover is replayed alone, then persisted.
    let more: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            let access = Access {
                name: ModelName::new("acme/m").unwrap(),
                version: Version::new("1").unwrap(),
                digest: digest(),
            };
            leaf(&root(), 10_000 + i, Event::Access(access))
        })
        .collect();
    write_without_state(&store, &more);
    let third = RegistryService::load(&store, Config::default()).unwrap();
    assert_eq!(third.replayed_at_start(), 20);
    let replayed = replay(&store, Config::default()).unwrap();
    assert_eq!(third.read().fingerprint(), replayed.fingerprint());
    assert_eq!(RegistryService::load(&store, Config::default()).unwrap().replayed_at_start(), 0);
    // Another replay window: the state is not trusted, but rebuilt.
    let other = Config { window_ms: 60_000 };
    assert_eq!(RegistryService::load(&store, other).unwrap().replayed_at_start(), 522);
}
