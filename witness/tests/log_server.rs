//! Interop with Custody's own log: the log server's checkpointer (run
//! in-process through the `custody-log` library, RocksDB and all) publishes
//! checkpoints cosigned by two real `custody-witness` binaries under a
//! 2-of-2 tlog-policy, through growth and a witness restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use custody_core::keys::SIG_TYPE_ED25519;
use custody_core::{tree_hash, Policy, SignerKey};
use custody_log::checkpointer::{start_checkpointer, CheckpointerConfig};
use custody_log::metrics::Metrics;
use custody_log::sequencer::{start_sequencer, SequencerConfig};
use custody_log::store::{RocksStore, Store};

const ORIGIN: &str = "log.custody.example/interop";

fn policy(key: &SignerKey, w: [(&custody_core::VerifierKey, &str); 2]) -> Policy {
    let text = format!(
        "log {}\nwitness {} {} {}\nwitness {} {} {}\ngroup both 2 {} {}\nquorum both\n",
        key.verifier(),
        w[0].0.name(),
        w[0].0,
        w[0].1,
        w[1].0.name(),
        w[1].0,
        w[1].1,
        w[0].0.name(),
        w[1].0.name(),
    );
    Policy::parse(text.as_bytes()).unwrap()
}

fn checkpointer_config() -> CheckpointerConfig {
    CheckpointerConfig {
        interval: Duration::from_millis(50),
        witness_timeout: Duration::from_secs(2),
        witness_retries: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_server_publishes_checkpoints_cosigned_by_real_witnesses() {
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[81; 32]).unwrap();
    let list = dir.path().join("logs");
    write_log_list(&list, &[format!("vkey {}\norigin none\nqpd 86400\n", key.verifier())]);
    let (d1, d2) = (dir.path().join("w1"), dir.path().join("w2"));
    let k1 = init(&d1, "w1.witness.example");
    let k2 = init(&d2, "w2.witness.example");
    let w1 = serve(&d1, &list, None, &[]);
    let w2 = serve(&d2, &list, None, &[]);

    let store: Arc<dyn Store> = Arc::new(RocksStore::open(&dir.path().join("log-db")).unwrap());
    let seq_cfg = SequencerConfig { batch_wait: Duration::from_millis(5), ..Default::default() };
    let (seq, seq_task) = start_sequencer(store.clone(), seq_cfg).unwrap();
    let p1 = policy(&key, [(&k1, &w1.url), (&k2, &w2.url)]);
    let (publisher, cp_task) = start_checkpointer(
        store.clone(),
        seq.clone(),
        key.clone(),
        Some(p1.clone()),
        checkpointer_config(),
        Metrics::new(),
    )
    .unwrap();
    let mut expected = 0u64;
    for (round, n) in [5u64, 40].into_iter().enumerate() {
        for i in 0..n {
            seq.submit(format!("round {round} entry {i}").into_bytes()).await.unwrap();
        }
        expected += n;
        let published = publisher.wait_for(expected, WAIT).await.expect("a cosigned checkpoint is published");
        let verified = p1.verify_checkpoint(&published.note).expect("published note satisfies the policy");
        assert_eq!(verified.cosigners.len(), 2, "both real witnesses cosigned");
        assert_eq!(published.root, tree_hash(published.size, &*store).unwrap());
    }

    // w2 restarts (new port, so a new policy and checkpointer over the same
    // log store); it kept its state, and the log carries on through 300
    // more entries, crossing a full tile.
    cp_task.abort();
    let _ = cp_task.await;
    assert!(w2.stop());
    let w2 = serve(&d2, &list, None, &[]);
    let p2 = policy(&key, [(&k1, &w1.url), (&k2, &w2.url)]);
    let (publisher, cp_task) = start_checkpointer(
        store.clone(),
        seq.clone(),
        key.clone(),
        Some(p2.clone()),
        checkpointer_config(),
        Metrics::new(),
    )
    .unwrap();
    for i in 0..300 {
        seq.submit(format!("round 2 entry {i}").into_bytes()).await.unwrap();
    }
    expected += 300;
    let published = publisher.wait_for(expected, WAIT).await.expect("published after the restart");
    assert_eq!(p2.verify_checkpoint(&published.note).expect("policy satisfied").cosigners.len(), 2);
    for w in [&w1, &w2] {
        let (status, note) = get(&format!("{}/{}/checkpoint", w.url, origin_hex(ORIGIN))).await;
        assert_eq!(status, 200);
        let size = custody_core::checkpoint::open_checkpoint(&note, &key.verifier()).unwrap().checkpoint.size;
        assert_eq!(size, expected, "each witness holds the latest published size");
    }
    cp_task.abort();
    seq_task.abort();
}
