//! Replay protection with bounded memory.
//!
//! A statement is accepted only if its time is within `window` of the
//! (effective) receive time, and the effective receive time never goes
//! back. So once `now > time + window`, no statement with that time can be
//! accepted again and its nonce can be forgotten. Memory is therefore
//! bounded by the statements of one window, whatever the log's length.
//!
//! That bound is still large under load (10,000 statements/s over a
//! 300 s window is 3 million nonces), so each remembered pair costs as
//! little as it can: a 16-byte fingerprint of `(key, nonce)` with its
//! expiry in one map, plus the fingerprint again in a bucket per expiry
//! second, so pruning drops whole seconds without a heap. That is about
//! 45 bytes a nonce where a map of full pairs plus an expiry heap took
//! about 130 (measured: issue 8, docs/performance.md).
//!
//! The fingerprint is the first 16 bytes of SHA-256 over the key id and
//! the nonce. A collision would only make a fresh statement look like a
//! replay (never the reverse: a remembered pair always matches itself),
//! and finding one needs about 2^64 hashes.

use std::collections::{BTreeMap, HashMap};

use custody_standards::sha256_once::sha256_concat;

use crate::actor_key::KeyId;
use crate::statement::text::Nonce;

/// Nonces seen within the window, keyed by signing key.
#[derive(Clone, Debug, Default)]
pub struct NonceWindow {
    /// Fingerprint -> expiry (ms) of its latest insert.
    seen: HashMap<u128, u64>,
    /// Expiry second -> fingerprints inserted with an expiry in it.
    buckets: BTreeMap<u64, Vec<u128>>,
}

/// The 16-byte fingerprint of a `(key, nonce)` pair: computed once per
/// statement when it is checked, and carried to where it is remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonceId(u128);

impl NonceId {
    /// The fingerprint's 16 bytes, as a server persists it.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// Inverse of [`NonceId::to_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        NonceId(u128::from_le_bytes(bytes))
    }

    /// The fingerprint of `nonce` used with `key`.
    pub fn of(key: &KeyId, nonce: &Nonce) -> Self {
        let d = sha256_concat(&[&key.0 .0, &nonce.0]);
        let mut first = [0u8; 16];
        first.copy_from_slice(&d.0[..16]);
        NonceId(u128::from_le_bytes(first))
    }
}

impl NonceWindow {
    /// Whether `(key, nonce)` is remembered and not yet expired at `now_ms`.
    pub fn contains(&self, key: &KeyId, nonce: &Nonce, now_ms: u64) -> bool {
        self.contains_id(NonceId::of(key, nonce), now_ms)
    }

    /// [`NonceWindow::contains`] by fingerprint.
    pub fn contains_id(&self, id: NonceId, now_ms: u64) -> bool {
        self.seen.get(&id.0).is_some_and(|&exp| exp >= now_ms)
    }

    /// Remembers `(key, nonce)` until `expiry_ms` (statement time plus the
    /// window).
    pub fn insert(&mut self, key: KeyId, nonce: Nonce, expiry_ms: u64) {
        self.insert_id(NonceId::of(&key, &nonce), expiry_ms);
    }

    /// [`NonceWindow::insert`] by fingerprint.
    pub fn insert_id(&mut self, id: NonceId, expiry_ms: u64) {
        let fp = id.0;
        // A pair re-used after expiry but before pruning is in two buckets;
        // `prune` keeps it while its latest expiry is still ahead.
        self.seen.insert(fp, expiry_ms);
        self.buckets.entry(expiry_ms / 1000).or_default().push(fp);
    }

    /// Puts back pairs a server persisted (see
    /// [`crate::registry::snapshot`]). The pairs of one fingerprint may come
    /// in any order: the latest expiry wins, as it does for live inserts
    /// (a fingerprint is re-inserted only once its earlier expiry has
    /// passed, so its latest insert has the latest expiry). Start-up time
    /// follows the window (millions of pairs under load), so the map is
    /// sized once and pairs of one second, which a server stores together,
    /// go into their bucket with one lookup.
    pub fn restore(&mut self, pairs: &[(NonceId, u64)]) {
        self.seen.reserve(pairs.len());
        for run in pairs.chunk_by(|a, b| a.1 / 1000 == b.1 / 1000) {
            let bucket = self.buckets.entry(run[0].1 / 1000).or_default();
            bucket.reserve(run.len());
            for &(NonceId(fp), expiry_ms) in run {
                let latest = self.seen.entry(fp).or_insert(expiry_ms);
                *latest = (*latest).max(expiry_ms);
                bucket.push(fp);
            }
        }
    }

    /// Every remembered pair, fingerprint and expiry (ms) of its latest
    /// insert, in no particular order.
    pub fn pairs(&self) -> impl Iterator<Item = (NonceId, u64)> + '_ {
        self.seen.iter().map(|(&fp, &exp)| (NonceId(fp), exp))
    }

    /// Whether [`NonceWindow::prune`] at `now_ms` forgets expiry second
    /// `second` (every expiry in it is before `now_ms`): the one rule for
    /// the window in memory and for a server's persisted copy of it.
    pub fn second_expired(second: u64, now_ms: u64) -> bool {
        second.saturating_mul(1000).saturating_add(999) < now_ms
    }

    /// Forgets the nonces of every expiry second wholly before `now_ms`
    /// (one that expired earlier within the current second is kept a little
    /// longer, which [`NonceWindow::contains`] ignores: it compares exact
    /// expiries).
    pub fn prune(&mut self, now_ms: u64) {
        // Bucket `s` holds expiries in [s*1000, s*1000 + 999]; all of them
        // are before `now_ms` once s*1000 + 999 < now_ms.
        while let Some(entry) = self.buckets.first_entry() {
            if !Self::second_expired(*entry.key(), now_ms) {
                break;
            }
            for fp in entry.remove() {
                if self.seen.get(&fp).is_some_and(|&exp| exp < now_ms) {
                    self.seen.remove(&fp);
                }
            }
        }
        // A quiet period after a burst leaves the map's table at the
        // burst's size; give the memory back once it is mostly empty.
        if self.seen.capacity() > 4096 && self.seen.len() < self.seen.capacity() / 4 {
            self.seen.shrink_to(self.seen.len() * 2);
        }
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_standards::hash::Hash;

    #[test]
    fn remembers_within_window_and_forgets_after() {
        let k = KeyId(Hash([1; 32]));
        let n = Nonce([2; 16]);
        let mut w = NonceWindow::default();
        w.insert(k, n, 1000);
        assert!(w.contains(&k, &n, 1000));
        assert!(!w.contains(&k, &Nonce([3; 16]), 1000));
        assert!(!w.contains(&KeyId(Hash([9; 32])), &n, 1000));
        assert!(!w.contains(&k, &n, 1001), "expired entries do not count even before pruning");
        w.prune(1000);
        assert_eq!(w.len(), 1);
        w.prune(1999); // forgotten a whole expiry second at a time
        assert_eq!(w.len(), 1);
        w.prune(2000);
        assert!(w.is_empty());
        // Re-insert after expiry, with an old bucket entry still around.
        w.insert(k, n, 5);
        w.insert(k, n, 50);
        w.prune(10);
        assert!(w.contains(&k, &n, 10));
        assert!(!w.contains(&k, &n, 51));
        w.prune(1000);
        assert!(w.is_empty());
        assert!(w.buckets.is_empty());
    }

    #[test]
    fn same_nonce_under_two_keys_and_two_nonces_under_one_key_are_distinct() {
        let (k1, k2) = (KeyId(Hash([1; 32])), KeyId(Hash([2; 32])));
        let (n1, n2) = (Nonce([7; 16]), Nonce([8; 16]));
        let mut w = NonceWindow::default();
        w.insert(k1, n1, 10_000);
        assert!(w.contains(&k1, &n1, 0));
        assert!(!w.contains(&k2, &n1, 0));
        assert!(!w.contains(&k1, &n2, 0));
        w.insert(k2, n1, 10_000);
        assert_eq!(w.len(), 2);
    }

    /// A window restored from its pairs, in any order and with a
    /// fingerprint stored twice (re-used after its first expiry), is the
    /// live one: same expiries, same buckets to prune.
    #[test]
    fn a_restored_window_is_the_live_one() {
        let k = KeyId(Hash([1; 32]));
        let mut live = NonceWindow::default();
        live.insert(k, Nonce([1; 16]), 1_500);
        live.insert(k, Nonce([2; 16]), 2_100);
        live.insert(k, Nonce([1; 16]), 2_900);
        let (one, two) = (NonceId::of(&k, &Nonce([1; 16])), NonceId::of(&k, &Nonce([2; 16])));
        let pairs = [(one, 2_900), (two, 2_100), (one, 1_500)];
        let mut restored = NonceWindow::default();
        restored.restore(&pairs);
        assert_eq!(restored.seen, live.seen);
        assert!(restored.contains(&k, &Nonce([1; 16]), 2_000), "the latest expiry wins");
        for now in [1_999, 2_000, 3_000, 3_001] {
            live.prune(now);
            restored.prune(now);
            assert_eq!(restored.seen, live.seen, "at {now}");
        }
    }

    /// Pruning drops whole expired seconds only, `contains` stays exact to
    /// the millisecond, and memory is handed back after a burst.
    #[test]
    fn prunes_exactly_by_millisecond_and_shrinks() {
        let k = KeyId(Hash([1; 32]));
        let mut w = NonceWindow::default();
        for i in 0..20_000u64 {
            let mut n = [0u8; 16];
            n[..8].copy_from_slice(&i.to_le_bytes());
            w.insert(k, Nonce(n), 1_000 + i);
        }
        let cap = w.seen.capacity();
        w.prune(1_999); // second 1 (1000..1999) still holds a live nonce
        assert_eq!(w.len(), 20_000);
        w.prune(2_000); // expiries 1000..1999 are gone, 2000.. stay
        assert_eq!(w.len(), 19_000);
        let nonce = |i: u64| {
            let mut n = [0u8; 16];
            n[..8].copy_from_slice(&i.to_le_bytes());
            Nonce(n)
        };
        assert!(!w.contains(&k, &nonce(999), 2_000));
        assert!(w.contains(&k, &nonce(1_000), 2_000));
        w.prune(20_500);
        assert_eq!(w.len(), 1_000);
        assert!(w.seen.capacity() < cap, "capacity {} not below {cap}", w.seen.capacity());
        w.prune(u64::MAX);
        assert!(w.is_empty() && w.buckets.is_empty());
    }
}
