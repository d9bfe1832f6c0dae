//! Replay protection with bounded memory.
//!
//! A statement is accepted only if its time is within `window` of the
//! (effective) receive time, and the effective receive time never goes
//! back. So once `now > time + window`, no statement with that time can be
//! accepted again and its nonce can be forgotten. Memory is therefore
//! bounded by the statements of one window, whatever the log's length.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::actor_key::KeyId;
use crate::statement::text::Nonce;

/// Nonces seen within the window, keyed by signing key.
#[derive(Clone, Debug, Default)]
pub struct NonceWindow {
    seen: HashMap<(KeyId, Nonce), u64>,
    by_expiry: BinaryHeap<Reverse<(u64, KeyId, Nonce)>>,
}

impl NonceWindow {
    /// Whether `(key, nonce)` is remembered and not yet expired at `now_ms`.
    pub fn contains(&self, key: &KeyId, nonce: &Nonce, now_ms: u64) -> bool {
        self.seen.get(&(*key, *nonce)).is_some_and(|&exp| exp >= now_ms)
    }

    /// Remembers `(key, nonce)` until `expiry_ms` (statement time plus the
    /// window).
    pub fn insert(&mut self, key: KeyId, nonce: Nonce, expiry_ms: u64) {
        // A pair re-used after expiry but before pruning gets a second heap
        // entry; `prune` only removes the map entry whose expiry matches.
        self.seen.insert((key, nonce), expiry_ms);
        self.by_expiry.push(Reverse((expiry_ms, key, nonce)));
    }

    /// Forgets every nonce that expired before `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        while let Some(Reverse((exp, key, nonce))) = self.by_expiry.peek().copied() {
            if exp >= now_ms {
                break;
            }
            self.by_expiry.pop();
            // Only remove if the map still holds this expiry (a newer
            // insert of the same pair has its own heap entry).
            if self.seen.get(&(key, nonce)) == Some(&exp) {
                self.seen.remove(&(key, nonce));
            }
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
    use crate::hash::Hash;

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
        w.prune(1001);
        assert!(w.is_empty());
        // Re-insert after expiry, with an old heap entry still around.
        w.insert(k, n, 5);
        w.insert(k, n, 50);
        w.prune(10);
        assert!(w.contains(&k, &n, 10));
        w.prune(51);
        assert!(w.is_empty());
        assert!(w.by_expiry.is_empty());
    }
}
