//! Batched Ed25519 verification that pays once per distinct key.
//!
//! A batch checks the single equation (RFC 8032 section 5.1.7 with random
//! weights `z_i`, as in ed25519-dalek's `verify_batch`):
//!
//! ```text
//! [-Σ z_i·s_i] B  +  Σ [z_i] R_i  +  Σ [z_i·h_i] A_i  =  0
//! ```
//!
//! A registry log is signed by few keys (pipelines and loaders sign most
//! accesses), so most `A_i` repeat. Gathering the terms of one key into
//! `[Σ_{i∈k} z_i·h_i] A_k` shrinks the multiscalar multiplication from
//! `2n + 1` points to `n + keys + 1`: the `A` half of the work disappears.
//! Scalars are reduced modulo the group order `ℓ`, so the gathered term is
//! the same group element only when `[ℓ] A_k` is the identity, that is
//! when the key has no small-order component; a key that has one (only a
//! crafted key does) keeps one term per signature, as in the library.
//!
//! The weights are 128-bit, as in the library, and derived from the whole
//! batch (Fiat-Shamir, no outside randomness): a SHA-512 seed over every
//! `H(R‖A‖M)` and every `s`, expanded by SHA-512 in counter mode
//! (`weights`). The library draws its weights from a Merlin transcript of
//! the same values; that costs a Keccak permutation per signature to absorb
//! and another per weight to squeeze, a tenth of an audit's CPU, where the
//! expansion here costs one SHA-512 block per four weights. Either way a
//! weight is fixed by the batch, so the soundness is the same: an honest
//! batch always holds, a batch with a signature that is wrong in its
//! prime-order part fails except with probability about 2^-128, and a
//! signature with a crafted small-order component (which single
//! verification refuses) passes when its weight happens to cancel the
//! component, which a signer can grind for. That last case is why the
//! server verifies one signature at a time and `custody audit --exact`
//! exists. `tests` checks the grouped equation against a plain ungrouped
//! one with the same weights on honest, forged, non-canonical and
//! small-order batches, and against ed25519-dalek's `verify_batch` where
//! the verdict does not depend on the weights.

use std::cell::RefCell;
use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

/// Bytes of an Ed25519 signature (`R ‖ s`).
const SIGNATURE_BYTES: usize = 64;

/// One signature of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The signed message.
    pub message: &'a [u8],
    /// The signature, `R ‖ s`.
    pub signature: &'a [u8; SIGNATURE_BYTES],
    /// The key it must verify with.
    pub key: &'a VerifyingKey,
}

/// `true` when the batch equation holds for all of `items` (and for the
/// empty batch). `false` when any `s` is not a canonical scalar, any `R`
/// is not a curve point, or the equation fails: then at least one
/// signature is invalid, and checking each alone names it.
pub fn verify_batch(items: &[Signed<'_>]) -> bool {
    if items.is_empty() {
        return true;
    }
    let hrams: Vec<[u8; 64]> = items.iter().map(hram).collect();
    let weights = weights(items, &hrams);

    let mut scalars = Vec::with_capacity(items.len() + 1);
    let mut points = Vec::with_capacity(items.len() + 1);
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    let mut b_coefficient = Scalar::ZERO;
    // Per distinct torsion-free key (by its encoding, which fixes the
    // point): its position in `keys`, where its `z_i·h_i` are summed; a
    // key with a small-order component gets a term per signature.
    let mut slot: HashMap<[u8; 32], Option<usize>> = HashMap::new();
    let mut keys: Vec<(EdwardsPoint, Scalar)> = Vec::new();
    for ((item, hram), &weight) in items.iter().zip(&hrams).zip(&weights) {
        let mut s = [0u8; 32];
        s.copy_from_slice(&item.signature[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
            return false;
        };
        let mut r = [0u8; 32];
        r.copy_from_slice(&item.signature[..32]);
        let Some(r) = CompressedEdwardsY(r).decompress() else {
            return false;
        };
        let z = Scalar::from(weight);
        b_coefficient += z * s;
        scalars.push(z);
        points.push(r);
        let zh = Scalar::from_bytes_mod_order_wide(hram) * z;
        let k = *slot.entry(item.key.to_bytes()).or_insert_with(|| {
            torsion_free(item.key).then(|| {
                keys.push((item.key.to_edwards(), Scalar::ZERO));
                keys.len() - 1
            })
        });
        match k {
            Some(k) => keys[k].1 += zh,
            None => keys.push((item.key.to_edwards(), zh)),
        }
    }
    scalars[0] = -b_coefficient;
    for (point, coefficient) in keys {
        points.push(point);
        scalars.push(coefficient);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// Keys whose torsion check a thread remembers; beyond this it starts over
/// (a log has far fewer keys, so only a flood of crafted keys pays again).
const REMEMBERED_KEYS: usize = 1 << 16;

/// Whether `key` has no small-order component (`[ℓ] A` is the identity):
/// one scalar multiplication per key, remembered per thread, since an
/// audit meets the same few keys in every batch.
fn torsion_free(key: &VerifyingKey) -> bool {
    thread_local! {
        static SEEN: RefCell<HashMap<[u8; 32], bool>> = RefCell::new(HashMap::new());
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(free) = seen.get(key.as_bytes()) {
            return *free;
        }
        if seen.len() >= REMEMBERED_KEYS {
            seen.clear();
        }
        let free = key.to_edwards().is_torsion_free();
        seen.insert(key.to_bytes(), free);
        free
    })
}

/// `H(R‖A‖M)`, SHA-512 of the signature's `R`, the key and the message
/// (RFC 8032 section 5.1.7, step 2), before reduction modulo ℓ.
pub(crate) fn hram(item: &Signed<'_>) -> [u8; 64] {
    Sha512::new()
        .chain_update(&item.signature[..32])
        .chain_update(item.key.as_bytes())
        .chain_update(item.message)
        .finalize()
        .into()
}

/// Domain separation of the weight seed.
const WEIGHTS_DOMAIN: &[u8] = b"custody ed25519 batch weights v1";

/// The batch's weights, one 128-bit integer per item: with `seed =
/// SHA-512(domain ‖ n ‖ H(R_1‖A_1‖M_1) ‖ s_1 ‖ … ‖ H(R_n‖A_n‖M_n) ‖ s_n)`
/// (`n` as 8 bytes big-endian), block `j` of `SHA-512(seed ‖ j)` gives
/// weights `4j` to `4j + 3`, 16 bytes each, little-endian. `hrams` are the
/// items' `H(R‖A‖M)`, which bind `R`, `A` and the message.
pub(crate) fn weights(items: &[Signed<'_>], hrams: &[[u8; 64]]) -> Vec<u128> {
    let mut seed = Sha512::new();
    seed.update(WEIGHTS_DOMAIN);
    seed.update((items.len() as u64).to_be_bytes());
    for (item, hram) in items.iter().zip(hrams) {
        seed.update(hram);
        seed.update(&item.signature[32..]);
    }
    let seed: [u8; 64] = seed.finalize().into();
    let mut out = Vec::with_capacity(items.len());
    for block in 0..items.len().div_ceil(4) as u64 {
        let bytes = Sha512::new().chain_update(seed).chain_update(block.to_be_bytes()).finalize();
        for w in bytes.chunks_exact(16) {
            let mut le = [0u8; 16];
            le.copy_from_slice(w);
            out.push(u128::from_le_bytes(le));
        }
    }
    out.truncate(items.len());
    out
}

#[cfg(test)]
mod tests;
