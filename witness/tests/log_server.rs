//! Interop with Custody's own log: the log server's checkpointer (run
//! in-process through the `custody-log` library, RocksDB and all) publishes
//! checkpoints cosigned by real `custody-witness` binaries: under a 2-of-2
//! tlog-policy through growth and a witness restart, and under a 2-of-3
//! policy through witness outages (injected by a proxy in front of each
//! witness) that freeze publication while sequencing goes on, and recovery.

use std::sync::Arc;
use std::time::Duration;

use custody_log::checkpointer::{start_checkpointer, CheckpointerConfig};
use custody_log::embedded::EmbeddedLog;
use custody_log::metrics::Metrics;
use custody_log::sequencer::{start_sequencer, SequencerConfig};
use custody_log::store::{RocksStore, Store};
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::{tree_hash, Policy, SignerKey};
use custody_testkit::raw::SwitchProxy;
use custody_testkit::witness::*;
use custody_testkit::WAIT;

const ORIGIN: &str = "log.custody.example/interop";

fn policy(key: &SignerKey, w: [(&custody_standards::VerifierKey, &str); 2]) -> Policy {
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
        ca_cert: None,
        bucket: None,
        ..CheckpointerConfig::default()
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
    let mut w2 = serve(&d2, &list, None, &[]);

    let store: Arc<dyn Store> = Arc::new(RocksStore::open(&dir.path().join("log-db")).unwrap());
    let seq_cfg = SequencerConfig { batch_wait: Duration::from_millis(5), ..Default::default() };
    let (seq, seq_task) = start_sequencer(store.clone(), seq_cfg).unwrap();
    let p1 = policy(&key, [(&k1, &w1.url), (&k2, &w2.url)]);
    let (publisher, cp_task) = start_checkpointer(
        store.clone(),
        seq.durable_size(),
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
    assert!(w2.stop_gracefully());
    let w2 = serve(&d2, &list, None, &[]);
    let p2 = policy(&key, [(&k1, &w1.url), (&k2, &w2.url)]);
    let (publisher, cp_task) = start_checkpointer(
        store.clone(),
        seq.durable_size(),
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
        let size =
            custody_standards::checkpoint::open_checkpoint(&note, &key.verifier()).unwrap().checkpoint.size;
        assert_eq!(size, expected, "each witness holds the latest published size");
    }
    cp_task.abort();
    seq_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quorum_lost_freezes_publication_and_recovery_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[82; 32]).unwrap();
    let list = dir.path().join("logs");
    write_log_list(&list, &[format!("vkey {}\norigin none\nqpd 86400\n", key.verifier())]);
    let mut witnesses = Vec::new();
    let mut proxies = Vec::new();
    let mut keys = Vec::new();
    for i in 1..=3 {
        let d = dir.path().join(format!("w{i}"));
        keys.push(init(&d, &format!("w{i}.witness.example")));
        let w = serve(&d, &list, None, &[]);
        proxies.push(SwitchProxy::start(&w.url));
        witnesses.push(w);
    }
    let mut text = format!("log {}\n", key.verifier());
    for (k, p) in keys.iter().zip(&proxies) {
        text += &format!("witness {} {} {}\n", k.name(), k, p.url);
    }
    text += &format!("group q 2 {} {} {}\nquorum q\n", keys[0].name(), keys[1].name(), keys[2].name());
    let policy = Policy::parse(text.as_bytes()).unwrap();

    let store: Arc<dyn Store> = Arc::new(RocksStore::open(&dir.path().join("log-db")).unwrap());
    let cfg = CheckpointerConfig {
        interval: Duration::from_millis(50),
        witness_timeout: Duration::from_millis(500),
        witness_retries: 0,
        ca_cert: None,
        bucket: None,
        ..CheckpointerConfig::default()
    };
    let EmbeddedLog { store, seq, publisher, tasks } =
        EmbeddedLog::start(store, &key, Some(policy.clone()), cfg).unwrap();
    let append = |round: &'static str, n: u64| {
        let seq = seq.clone();
        async move {
            for i in 0..n {
                seq.submit(format!("{round} entry {i}").into_bytes()).await.unwrap();
            }
        }
    };

    append("all up", 10).await;
    let p = publisher.wait_for(10, WAIT).await.expect("published with all witnesses up");
    assert!(policy.verify_checkpoint(&p.note).unwrap().cosigners.len() >= 2);

    // One of three down: 2-of-3 still met.
    proxies[0].set_up(false);
    append("one down", 10).await;
    let p = publisher.wait_for(20, WAIT).await.expect("2-of-3 still publishes with one witness down");
    assert_eq!(policy.verify_checkpoint(&p.note).unwrap().cosigners.len(), 2);

    // Two of three down: publication freezes at 20, sequencing goes on.
    proxies[1].set_up(false);
    append("two down", 10).await;
    assert_eq!(seq.tree_size(), 30, "sequencing continues without a quorum");
    assert!(
        publisher.wait_for(30, Duration::from_millis(1500)).await.is_none(),
        "published without a quorum"
    );
    assert_eq!(publisher.latest().unwrap().size, 20, "the last satisfied checkpoint keeps being served");
    let health = publisher.health();
    assert!(!health.quorum_ok, "health must say the quorum is lost");
    let reason = health.reason.expect("a reason");
    assert!(reason.contains("not published"), "{reason}");

    // Recovery: the same checkpointer publishes again.
    proxies[0].set_up(true);
    proxies[1].set_up(true);
    append("recovered", 5).await;
    let p = publisher.wait_for(35, WAIT).await.expect("publication resumes after recovery");
    assert!(policy.verify_checkpoint(&p.note).unwrap().cosigners.len() >= 2);
    assert_eq!(p.root, tree_hash(p.size, &*store).unwrap());
    assert!(publisher.health().quorum_ok);
    for t in tasks {
        t.abort();
    }
    drop(witnesses);
}
