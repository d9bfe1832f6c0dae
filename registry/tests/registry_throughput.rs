//! Rough throughput of the server path (parse, authenticate, check, leaf,
//! apply) and of the auditor path (leaf decode, parse, batch-verify,
//! replay). Ignored by default: it prints figures, it asserts nothing about
//! speed. Run with
//! `cargo test -p custody-registry --test registry_throughput -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use custody_registry::actor_key::{ActorKey, KeyId};
use custody_registry::dsse::{verify_batch, BatchItem};
use custody_registry::leaf::Leaf;
use custody_registry::registry::{Config, Outcome, Registry, Role, Verdict};
use custody_registry::statement::SignedStatement;

const N: usize = 20_000;

#[test]
#[ignore]
fn server_and_auditor_throughput() {
    let mut w = World::new();
    w.grant("alice", Role::Publisher, "acme/*");
    let d = digest("x");
    w.ok("alice", publish_event("acme/m", "1", d));
    // Client side, not timed: N signed access statements.
    let envelopes: Vec<Vec<u8>> = (0..N)
        .map(|_| {
            let s = w.statement("alice", access_event("acme/m", "1", d));
            s.sign(&w.signers["alice"]).unwrap()
        })
        .collect();

    let start = Instant::now();
    for env in &envelopes {
        let signed = SignedStatement::parse(env).unwrap();
        w.reg.authenticate(&signed).unwrap();
        let Verdict::Append(acc) = w.reg.check(&signed.statement, w.next_index, w.now_ms).unwrap() else {
            panic!()
        };
        w.leaves.push(Leaf::new(w.now_ms, env).unwrap().encode());
        w.next_index += 1;
        w.reg.apply(acc).unwrap();
    }
    let server = start.elapsed();
    println!(
        "server path: {N} statements in {server:?} = {:.0}/s ({:.1} us each)",
        N as f64 / server.as_secs_f64(),
        server.as_micros() as f64 / N as f64
    );

    let start = Instant::now();
    let decoded: Vec<(u64, SignedStatement)> = w
        .leaves
        .iter()
        .map(|l| {
            let leaf = Leaf::decode(l).unwrap();
            (leaf.receive_time_ms, SignedStatement::parse(leaf.envelope).unwrap())
        })
        .collect();
    let parsed = start.elapsed();
    let mut keys: std::collections::HashMap<KeyId, ActorKey> = Default::default();
    for (_, s) in &decoded {
        if let Some(k) = s.statement.event.introduced_key() {
            keys.insert(k.id(), k.clone());
        }
    }
    let paes: Vec<Vec<u8>> = decoded.iter().map(|(_, s)| s.pae()).collect();
    for chunk in decoded.iter().zip(&paes).collect::<Vec<_>>().chunks(256) {
        let items: Vec<BatchItem> = chunk
            .iter()
            .map(|((_, s), m)| BatchItem { message: m, sig: s.signature(), key: &keys[&s.key_id()] })
            .collect();
        assert!(verify_batch(&items));
    }
    let verified = start.elapsed();
    let mut replay = Registry::new(Config::default());
    for (i, (t, s)) in decoded.iter().enumerate() {
        assert!(matches!(replay.process(&s.statement, i as u64, *t).unwrap(), Outcome::Applied(_)));
    }
    let total = start.elapsed();
    let n = decoded.len() as f64;
    println!(
        "auditor: {} leaves: decode+parse {:.1} us, batch verify {:.1} us, replay {:.1} us per leaf; {:.0} leaves/s",
        decoded.len(),
        parsed.as_micros() as f64 / n,
        (verified - parsed).as_micros() as f64 / n,
        (total - verified).as_micros() as f64 / n,
        n / total.as_secs_f64()
    );
}
