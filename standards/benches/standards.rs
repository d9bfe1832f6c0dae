//! Throughput of the core's hot paths, each printed next to the physical
//! limit it is built on (one SHA-256 of a 65-byte node, one Ed25519 sign or
//! verify), so every figure reads as a ratio to what this machine can do.
//! Figures only: nothing here fails on speed. Results are recorded in
//! docs/performance.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use custody_standards::checkpoint::{open_checkpoint, sign_checkpoint, Checkpoint};
use custody_standards::cosignature::{cosign, CosignatureSigner};
use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
use custody_standards::policy::Policy;
use custody_standards::{
    consistency_proof, hash, inclusion_proof, leaf_hash, node_hash, root_from_inclusion_proof,
    verify_consistency, verify_inclusion, Appender, Hash, HashReader, NodeId, ReadError,
};
use ed25519_dalek::{Signer, SigningKey, Verifier};

/// Sizes named by the issues: 2^10 to 2^30 leaves.
const SIZES: [u32; 3] = [10, 20, 30];

/// A reader that invents a deterministic hash for any node, so proof
/// *generation* can be measured at 2^30 leaves without storing 2^31 hashes.
/// (Proofs over it do not verify; generation cost is what is measured.)
struct SyntheticReader;

impl HashReader for SyntheticReader {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        Ok(ids
            .iter()
            .map(|id| {
                let mut b = [0u8; 32];
                b[0] = id.level;
                b[8..16].copy_from_slice(&id.index.to_be_bytes());
                Hash(b)
            })
            .collect())
    }
}

fn quick(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("x");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    g
}

fn limits(c: &mut Criterion) {
    let mut g = quick(c);
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("limit/sha256_node_65B", |bn| bn.iter(|| node_hash(black_box(&a), black_box(&b))));
    let key = SigningKey::from_bytes(&[7; 32]);
    let msg = [0u8; 100];
    let sig = key.sign(&msg);
    let vk = key.verifying_key();
    g.bench_function("limit/ed25519_sign", |bn| bn.iter(|| key.sign(black_box(&msg))));
    g.bench_function("limit/ed25519_verify", |bn| bn.iter(|| vk.verify(black_box(&msg), &sig).unwrap()));
    let n = 64;
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 100]).collect();
    let sigs: Vec<_> = msgs.iter().map(|m| key.sign(m)).collect();
    let vks = vec![vk; n];
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("limit/ed25519_verify_batch64", |bn| {
        bn.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &sigs, &vks).unwrap())
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let mut g = quick(c);
    let leaves: Vec<Hash> = (0..1u32 << 16).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    g.throughput(Throughput::Elements(leaves.len() as u64));
    g.bench_function("append/leaf_hashes_64Ki", |bn| {
        let mut out = Vec::with_capacity(2 * leaves.len());
        bn.iter(|| {
            let mut a = Appender::new();
            out.clear();
            for l in &leaves {
                a.append(*l, &mut out);
            }
            black_box(a.root())
        })
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let mut g = quick(c);
    g.throughput(Throughput::Elements(1));
    for bits in SIZES {
        let size = 1u64 << bits;
        let index = size / 3;
        g.bench_with_input(BenchmarkId::new("inclusion/generate", format!("2^{bits}")), &size, |bn, &s| {
            bn.iter(|| inclusion_proof(black_box(index), s, &SyntheticReader).unwrap())
        });
        // A genuinely valid proof: random siblings, and the root they imply.
        let leaf = leaf_hash(b"entry");
        let proof: Vec<Hash> = (0..bits).map(|i| hash::sha256(&i.to_be_bytes())).collect();
        let root = root_from_inclusion_proof(&leaf, index, size, &proof).unwrap();
        g.bench_with_input(BenchmarkId::new("inclusion/verify", format!("2^{bits}")), &size, |bn, &s| {
            bn.iter(|| verify_inclusion(black_box(&leaf), index, s, &proof, &root).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("consistency/generate", format!("2^{bits}")), &size, |bn, &s| {
            bn.iter(|| consistency_proof(black_box(s / 3 + 1), s, &SyntheticReader).unwrap())
        });
    }
    // Consistency verification needs a real tree; 2^20 leaves in memory.
    let mut store = custody_standards::MemoryHashStore::new();
    for i in 0..(1u32 << 20) {
        store.append(leaf_hash(&i.to_be_bytes()));
    }
    let (old, new) = ((1u64 << 20) / 3 + 1, 1u64 << 20);
    let old_root = custody_standards::tree_hash(old, &store).unwrap();
    let proof = consistency_proof(old, new, &store).unwrap();
    let new_root = store.root();
    g.bench_function("consistency/verify/2^20", |bn| {
        bn.iter(|| verify_consistency(black_box(old), new, &proof, &old_root, &new_root).unwrap())
    });
    g.finish();
}

fn notes(c: &mut Criterion) {
    let mut g = quick(c);
    g.throughput(Throughput::Elements(1));
    let origin = "custody.example/bench";
    let log = SignerKey::from_seed(origin, SIG_TYPE_ED25519, &[1; 32]).unwrap();
    let cp =
        Checkpoint { origin: origin.into(), size: 1 << 30, root: leaf_hash(b"root"), extensions: vec![] };
    let signed = sign_checkpoint(&cp, &log).unwrap();
    let vk = log.verifier();
    g.bench_function("checkpoint/sign", |bn| bn.iter(|| sign_checkpoint(black_box(&cp), &log).unwrap()));
    g.bench_function("checkpoint/parse_verify", |bn| {
        bn.iter(|| open_checkpoint(black_box(&signed), &vk).unwrap())
    });

    let witnesses: Vec<CosignatureSigner> = (0..3u8)
        .map(|i| CosignatureSigner::from_seed(&format!("w{i}.example"), &[10 + i; 32]).unwrap())
        .collect();
    g.bench_function("cosignature/sign", |bn| {
        bn.iter(|| cosign(&witnesses[0], black_box(&cp), 1_790_000_000).unwrap())
    });
    let mut policy = format!("log {vk}\n");
    for (i, w) in witnesses.iter().enumerate() {
        policy.push_str(&format!("witness w{i} {}\n", w.verifier()));
    }
    policy.push_str("group q 2 w0 w1 w2\nquorum q\n");
    let policy = Policy::parse(policy.as_bytes()).unwrap();
    let mut cosigned = signed.clone();
    for w in &witnesses[..2] {
        cosigned.extend_from_slice(cosign(w, &cp, 1_790_000_000).unwrap().as_bytes());
    }
    g.bench_function("policy/verify_checkpoint_2of3", |bn| {
        bn.iter(|| policy.verify_checkpoint(black_box(&cosigned)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, limits, append, proofs, notes);
criterion_main!(benches);
