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
//! crafted key does) keeps one term per signature, as in the library. The
//! weights are derived exactly as ed25519-dalek 2 derives them (a Merlin
//! transcript of every `H(R‖A‖M)` and every `s`, no outside randomness),
//! so for every input, crafted or not, the verdict is ed25519-dalek's
//! `verify_batch` verdict; `tests` checks that against the library itself,
//! on honest, forged and small-order-tampered batches.

use std::cell::RefCell;
use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use merlin::Transcript;
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

/// The source of the weights: ed25519-dalek finalizes its transcript RNG
/// with an RNG that adds nothing, so the weights depend on the batch only.
struct NoExtraEntropy;

impl rand_core::RngCore for NoExtraEntropy {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, _dest: &mut [u8]) {}

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for NoExtraEntropy {}

/// `true` when the batch equation holds for all of `items` (and for the
/// empty batch). `false` when any `s` is not a canonical scalar, any `R`
/// is not a curve point, or the equation fails: then at least one
/// signature is invalid, and checking each alone names it.
pub fn verify_batch(items: &[Signed<'_>]) -> bool {
    if items.is_empty() {
        return true;
    }
    let hrams: Vec<[u8; 64]> = items
        .iter()
        .map(|i| {
            let mut h = Sha512::new();
            h.update(&i.signature[..32]);
            h.update(i.key.as_bytes());
            h.update(i.message);
            h.finalize().into()
        })
        .collect();
    let mut transcript = Transcript::new(b"ed25519 batch verification");
    for hram in &hrams {
        transcript.append_message(b"hram", hram);
    }
    for i in items {
        transcript.append_message(b"sig.s", &i.signature[32..]);
    }
    let mut rng = transcript.build_rng().finalize(&mut NoExtraEntropy);

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
    for (item, hram) in items.iter().zip(&hrams) {
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
        let z = Scalar::from(weight(&mut rng));
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

/// A 128-bit weight, drawn as ed25519-dalek draws it.
fn weight(rng: &mut impl rand_core::RngCore) -> u128 {
    let mut buf = [0u8; 16];
    rng.fill_bytes(&mut buf);
    u128::from_le_bytes(buf)
}

#[cfg(test)]
mod tests;
