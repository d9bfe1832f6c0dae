//! The audit's physical limit: Ed25519 batch verification as the auditor
//! runs it (core's `ed25519_batch`, one term per distinct key) on the
//! shape of a registry log, many signatures by few keys, next to
//! ed25519-dalek's own `verify_batch` on the same batch. Figures only.
//! The ids sit in criterion's `x/` group, where custody-benchsuite reads
//! them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use custody_registry::ed25519_batch::{verify_batch, Signed};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Signatures per batch: what one audit worker verifies at once.
const BATCH: usize = 4096;
/// Distinct keys among them (one per client of the load generator).
const KEYS: usize = 64;

fn signatures(c: &mut Criterion) {
    let keys: Vec<SigningKey> = (0..KEYS).map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32])).collect();
    // Statement-sized messages (the PAE of an access statement).
    let messages: Vec<Vec<u8>> = (0..BATCH).map(|i| format!("{i:0>700}").into_bytes()).collect();
    let sigs: Vec<[u8; 64]> =
        messages.iter().enumerate().map(|(i, m)| keys[i % KEYS].sign(m).to_bytes()).collect();
    let vks: Vec<VerifyingKey> = (0..BATCH).map(|i| keys[i % KEYS].verifying_key()).collect();
    let items: Vec<Signed<'_>> =
        (0..BATCH).map(|i| Signed { message: &messages[i], signature: &sigs[i], key: &vks[i] }).collect();
    assert!(verify_batch(&items));

    let mut g = c.benchmark_group("x");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("limit/ed25519_verify_grouped_4096x64", |b| b.iter(|| verify_batch(black_box(&items))));
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let dalek_sigs: Vec<Signature> = sigs.iter().map(Signature::from_bytes).collect();
    g.bench_function("limit/ed25519_verify_batch_4096x64", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &dalek_sigs, &vks).unwrap())
    });
    g.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
