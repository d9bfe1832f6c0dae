use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha512};

use super::{hram, verify_batch, weights, Signed};

/// A deterministic scalar for `(what, n)`.
fn scalar(what: &str, n: u64) -> Scalar {
    let mut h = Sha512::new();
    h.update(what.as_bytes());
    h.update(n.to_be_bytes());
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// A signer whose public point is `a·B + key_torsion` (honest when the
/// torsion is the identity).
struct Key {
    a: Scalar,
    vk: VerifyingKey,
}

fn key(n: u64, key_torsion: EdwardsPoint) -> Key {
    let a = scalar("key", n);
    Key { a, vk: VerifyingKey::from(a * B + key_torsion) }
}

/// Signs `msg` with nonce point `r·B + r_torsion`: an honest signature
/// when the torsion is the identity.
fn sign(k: &Key, msg: &[u8], nonce: u64, r_torsion: EdwardsPoint) -> [u8; 64] {
    let r = scalar("nonce", nonce);
    let big_r = (r * B + r_torsion).compress();
    let mut h = Sha512::new();
    h.update(big_r.as_bytes());
    h.update(k.vk.as_bytes());
    h.update(msg);
    let h = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + h * k.a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

struct Batch {
    messages: Vec<Vec<u8>>,
    sigs: Vec<[u8; 64]>,
    keys: Vec<VerifyingKey>,
}

impl Batch {
    /// `n` honest signatures by `key_count` keys, round robin.
    fn honest(n: usize, key_count: usize, seed: u64) -> Batch {
        let keys: Vec<Key> =
            (0..key_count as u64).map(|k| key(seed * 1000 + k, EdwardsPoint::default())).collect();
        let mut b = Batch { messages: Vec::new(), sigs: Vec::new(), keys: Vec::new() };
        for i in 0..n {
            let k = &keys[i % key_count];
            let msg = format!("statement {seed}/{i}").into_bytes();
            b.sigs.push(sign(k, &msg, seed * 100_000 + i as u64, EdwardsPoint::default()));
            b.messages.push(msg);
            b.keys.push(k.vk);
        }
        b
    }

    fn push(&mut self, msg: &[u8], sig: [u8; 64], vk: VerifyingKey) {
        self.messages.push(msg.to_vec());
        self.sigs.push(sig);
        self.keys.push(vk);
    }

    fn items(&self) -> Vec<Signed<'_>> {
        (0..self.sigs.len())
            .map(|i| Signed { message: &self.messages[i], signature: &self.sigs[i], key: &self.keys[i] })
            .collect()
    }

    /// The batch equation written out term by term, one `R` and one `A`
    /// term per signature, with the same weights: the model the grouped
    /// multiscalar multiplication must agree with.
    fn ungrouped(&self) -> bool {
        let items = self.items();
        let hrams: Vec<[u8; 64]> = items.iter().map(hram).collect();
        let z = weights(&items, &hrams);
        let mut sum = EdwardsPoint::default();
        for (i, item) in items.iter().enumerate() {
            let s = Scalar::from_canonical_bytes(item.signature[32..].try_into().unwrap());
            let Some(s) = Option::<Scalar>::from(s) else { return false };
            let r = CompressedEdwardsY(item.signature[..32].try_into().unwrap()).decompress();
            let Some(r) = r else { return false };
            let (z, h) = (Scalar::from(z[i]), Scalar::from_bytes_mod_order_wide(&hrams[i]));
            sum += z * r + (z * h) * item.key.to_edwards() - (z * s) * B;
        }
        sum.is_identity()
    }

    fn dalek(&self) -> bool {
        let messages: Vec<&[u8]> = self.messages.iter().map(Vec::as_slice).collect();
        let sigs: Vec<Signature> = self.sigs.iter().map(Signature::from_bytes).collect();
        ed25519_dalek::verify_batch(&messages, &sigs, &self.keys).is_ok()
    }

    /// Our verdict, after checking it is the ungrouped equation's.
    fn verdict(&self) -> bool {
        let ours = verify_batch(&self.items());
        assert_eq!(ours, self.ungrouped(), "grouped and ungrouped equations disagree");
        ours
    }

    /// [`Batch::verdict`], also checked against ed25519-dalek's batch, for
    /// batches whose verdict does not depend on the weights (every
    /// signature valid, or one wrong in its prime-order part).
    fn verdict_and_dalek(&self) -> bool {
        let ours = self.verdict();
        assert_eq!(ours, self.dalek(), "our batch and ed25519-dalek's disagree");
        ours
    }
}

#[test]
fn the_empty_batch_holds() {
    assert!(verify_batch(&[]));
}

#[test]
fn honest_batches_hold_with_one_few_or_all_distinct_keys() {
    for n in [1, 2, 3, 17, 64, 200] {
        for key_count in [1, 3, n] {
            let b = Batch::honest(n, key_count, (n * 10 + key_count) as u64);
            for i in 0..n {
                assert!(b.keys[i].verify(&b.messages[i], &Signature::from_bytes(&b.sigs[i])).is_ok());
            }
            assert!(b.verdict_and_dalek(), "n {n}, keys {key_count}");
        }
    }
}

#[test]
fn one_altered_message_signature_or_key_fails_the_batch() {
    for at in [0, 7, 62] {
        let mut b = Batch::honest(64, 3, 1);
        b.messages[at][0] ^= 1;
        assert!(!b.verdict_and_dalek(), "message {at}");
        let mut b = Batch::honest(64, 3, 2);
        b.sigs[at][40] ^= 1;
        assert!(!b.verdict_and_dalek(), "s of {at}");
        let mut b = Batch::honest(64, 3, 3);
        b.keys[at] = b.keys[(at + 1) % 64];
        assert!(!b.verdict_and_dalek(), "key of {at}");
        // Two signatures swapped between messages of the same key.
        let mut b = Batch::honest(64, 1, 4);
        b.sigs.swap(at, (at + 1) % 64);
        assert!(!b.verdict_and_dalek(), "swap at {at}");
    }
}

#[test]
fn a_non_canonical_s_or_an_r_off_the_curve_fails_the_batch() {
    let mut b = Batch::honest(8, 2, 5);
    // s + ℓ: the same residue, not the canonical encoding.
    let s = Scalar::from_canonical_bytes(b.sigs[3][32..].try_into().unwrap()).unwrap();
    let mut plus_l = [0u8; 32];
    let l = (Scalar::ZERO - Scalar::ONE).to_bytes(); // ℓ - 1
    let mut carry = 1u16; // ℓ = (ℓ - 1) + 1
    let mut lb = [0u8; 32];
    for i in 0..32 {
        let v = u16::from(l[i]) + carry;
        lb[i] = v as u8;
        carry = v >> 8;
    }
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s.to_bytes()[i]) + u16::from(lb[i]) + carry;
        plus_l[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0, "s + ℓ fits 256 bits");
    b.sigs[3][32..].copy_from_slice(&plus_l);
    assert!(!b.verdict_and_dalek());

    let mut b = Batch::honest(8, 2, 6);
    let off_curve = (0u8..=255)
        .map(|y| {
            let mut r = [0u8; 32];
            r[0] = y;
            r[1] = 0x55;
            r
        })
        .find(|r| CompressedEdwardsY(*r).decompress().is_none())
        .expect("some y is not on the curve");
    b.sigs[5][..32].copy_from_slice(&off_curve);
    assert!(!b.verdict_and_dalek());
}

/// Signatures whose nonce point carries a small-order component: single
/// verification refuses them, a random-weight batch accepts one when its
/// weight is a multiple of the component's order. The verdicts must be
/// the ungrouped equation's, both ways.
#[test]
fn small_order_nonces_get_the_verdicts_of_the_ungrouped_equation() {
    let (mut accepted, mut refused) = (0, 0);
    for trial in 0..96u64 {
        let mut b = Batch::honest(12, 2, 100 + trial);
        let k = key(9_000 + trial, EdwardsPoint::default());
        let torsion = EIGHT_TORSION[1 + (trial % 7) as usize];
        let msg = format!("crafted {trial}").into_bytes();
        let sig = sign(&k, &msg, 7_000 + trial, torsion);
        assert!(k.vk.verify(&msg, &Signature::from_bytes(&sig)).is_err(), "single verification refuses it");
        b.push(&msg, sig, k.vk);
        // The crafted key also signs honestly elsewhere in the batch, so
        // its terms are grouped with others.
        let honest = b"honest by the crafted key".to_vec();
        b.push(&honest, sign(&k, &honest, 8_000 + trial, EdwardsPoint::default()), k.vk);
        if b.verdict() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(accepted > 0 && refused > 0, "both outcomes exercised: {accepted} accepted, {refused} refused");
}

/// The same with a public key carrying a small-order component, whose
/// terms must not be gathered (scalars are reduced modulo ℓ).
#[test]
fn small_order_keys_get_the_verdicts_of_the_ungrouped_equation() {
    let (mut accepted, mut refused) = (0, 0);
    for trial in 0..96u64 {
        let mut b = Batch::honest(12, 2, 300 + trial);
        let torsion = EIGHT_TORSION[1 + (trial % 7) as usize];
        let k = key(5_000 + trial, torsion);
        for j in 0..3 {
            let msg = format!("weak key {trial}/{j}").into_bytes();
            let sig = sign(&k, &msg, 6_000 + trial * 3 + j, EdwardsPoint::default());
            b.push(&msg, sig, k.vk);
        }
        if b.verdict() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(accepted > 0 && refused > 0, "both outcomes exercised: {accepted} accepted, {refused} refused");
}

/// Every weight depends on every signature, key and message of the batch
/// (so none can be chosen before the batch is fixed), and on nothing else.
#[test]
fn weights_are_bound_to_the_whole_batch() {
    let of = |b: &Batch| {
        let items = b.items();
        let hrams: Vec<[u8; 64]> = items.iter().map(hram).collect();
        weights(&items, &hrams)
    };
    let base = Batch::honest(9, 2, 40);
    let w = of(&base);
    assert_eq!(w.len(), 9);
    assert_eq!(w, of(&Batch::honest(9, 2, 40)), "deterministic");
    let distinct: std::collections::HashSet<u128> = w.iter().copied().collect();
    assert_eq!(distinct.len(), 9);
    let changed: [fn(&mut Batch); 5] = [
        |b| b.messages[8][0] ^= 1,
        |b| b.sigs[8][0] ^= 1,
        |b| b.sigs[8][63] ^= 1,
        |b| b.keys[8] = b.keys[1],
        |b| b.sigs.truncate(8),
    ];
    for (k, change) in changed.iter().enumerate() {
        let mut b = Batch::honest(9, 2, 40);
        change(&mut b);
        b.messages.truncate(b.sigs.len());
        b.keys.truncate(b.sigs.len());
        let other = of(&b);
        assert!(w.iter().zip(&other).all(|(a, b)| a != b), "change {k} left a weight unchanged");
    }
}
