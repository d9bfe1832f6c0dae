//! The state map at 10^6 entries: proof verification, a 1,000-key batch
//! update, building from scratch, and (printed, not timed) the median
//! encoded proof size and the tree's memory. Figures only: nothing here
//! fails on speed. The ids sit in criterion's `x/` group like the standards
//! bench, so custody-benchsuite reads them from the same directory.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use custody_registry::state_map::{verify, Hash, Tree};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ENTRIES: usize = 1_000_000;
const BATCH: usize = 1_000;

fn random_hash(rng: &mut StdRng) -> Hash {
    Hash(rng.gen())
}

fn entries(rng: &mut StdRng) -> Vec<(Hash, Hash)> {
    (0..ENTRIES).map(|_| (random_hash(rng), random_hash(rng))).collect()
}

/// Resident set size in MiB (Linux), to show what 10^6 entries cost.
fn rss_mib() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}

fn state_map(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let all = entries(&mut rng);
    let before = rss_mib();
    let tree = Tree::from_entries(all.iter().copied());
    if let (Some(a), Some(b)) = (before, rss_mib()) {
        eprintln!("state_map: tree of {} entries holds about {:.0} MiB", tree.len(), b - a);
    }

    // Proof sizes: present keys and absent ones.
    let mut sizes: Vec<usize> = all.iter().step_by(100).map(|(k, _)| tree.prove(k).encode().len()).collect();
    sizes.extend((0..10_000).map(|_| tree.prove(&random_hash(&mut rng)).encode().len()));
    sizes.sort_unstable();
    eprintln!(
        "state_map: encoded proof size at {} entries: median {} B, max {} B over {} proofs",
        ENTRIES,
        sizes[sizes.len() / 2],
        sizes[sizes.len() - 1],
        sizes.len()
    );

    let mut g = c.benchmark_group("x");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));

    let root = tree.root();
    let (key, value) = all[ENTRIES / 2];
    let proof = tree.prove(&key);
    g.throughput(Throughput::Elements(1));
    g.bench_function("state_map/verify_inclusion/10^6", |b| {
        b.iter(|| verify(black_box(&root), black_box(&key), Some(&value), black_box(&proof)).unwrap())
    });

    // Half replacements of existing keys, half new keys.
    let mut batch: Vec<(Hash, Option<Hash>)> =
        all.iter().step_by(ENTRIES / (BATCH / 2)).map(|(k, _)| (*k, Some(random_hash(&mut rng)))).collect();
    batch.extend((0..BATCH / 2).map(|_| (random_hash(&mut rng), Some(random_hash(&mut rng)))));
    assert_eq!(batch.len(), BATCH);
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("state_map/apply_1000/10^6", |b| {
        b.iter_batched(
            || (tree.clone(), batch.clone()),
            |(mut t, batch)| {
                t.apply(batch);
                t
            },
            BatchSize::SmallInput,
        )
    });

    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(ENTRIES as u64));
    g.bench_function("state_map/from_entries/10^6", |b| {
        b.iter_batched(|| all.clone(), Tree::from_entries, BatchSize::LargeInput)
    });
    g.finish();
}

criterion_group!(benches, state_map);
criterion_main!(benches);
