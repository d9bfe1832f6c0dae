//! Per-actor rate limiting (HTTP 429) for signed statements.
//!
//! A token bucket per actor: `rate` tokens a second, holding at most two
//! seconds' worth, so short bursts pass and sustained floods do not. It is
//! checked after authentication (an attacker cannot spend someone else's
//! budget with unsigned requests) and before sequencing (a flood appends
//! nothing). Buckets that have refilled completely carry no information and
//! are dropped, so memory is bounded by the actors active in the last
//! couple of seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before full ones are swept.
const SWEEP_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The per-actor limiter; `rate` 0 disables it.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `rate` statements a second per actor (0: unlimited).
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        RateLimiter { rate, burst: (2.0 * rate).max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `actor` at time `now`; `Err(seconds)` says how
    /// long until one is available.
    pub fn take_at(&self, actor: &str, now: Instant) -> Result<(), f64> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = map.entry(actor.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - b.tokens) / self.rate)
        }
    }

    /// [`RateLimiter::take_at`] now.
    pub fn take(&self, actor: &str) -> Result<(), f64> {
        self.take_at(actor, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_limits_then_refills_per_actor() {
        let l = RateLimiter::new(5);
        let t0 = Instant::now();
        for _ in 0..10 {
            l.take_at("alice", t0).unwrap();
        }
        let wait = l.take_at("alice", t0).unwrap_err();
        assert!((wait - 0.2).abs() < 1e-9, "{wait}");
        // Another actor has its own budget.
        l.take_at("bob", t0).unwrap();
        // After 0.2 s one more token is there, and only one.
        let t1 = t0 + Duration::from_millis(200);
        l.take_at("alice", t1).unwrap();
        assert!(l.take_at("alice", t1).is_err());
    }

    #[test]
    fn zero_rate_is_unlimited_and_idle_buckets_are_swept() {
        let l = RateLimiter::new(0);
        for _ in 0..10_000 {
            l.take("alice").unwrap();
        }
        let l = RateLimiter::new(1000);
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            l.take_at(&format!("actor{i}"), t0).unwrap();
        }
        l.take_at("late", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }
}
