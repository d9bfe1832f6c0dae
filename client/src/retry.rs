//! When to try a request again, and how long to wait first.
//!
//! Exponential backoff with "full jitter": before retry `n` (0-based) the
//! client sleeps a uniformly random time in `[0, min(max_delay, base * 2^n)]`.
//! Randomising the whole interval spreads clients that failed together (a
//! log restarting, a witness shedding load) instead of making them return
//! in lockstep. A server's `Retry-After` (RFC 9110 section 10.2.3: either
//! delta-seconds or an HTTP-date) on 429 or 503 replaces the random delay,
//! because the server knows when it will have room; if it asks for longer
//! than `max_delay`, the client gives up rather than hang a caller that has
//! its own deadline. Attempts are capped, so a dead server costs a bounded
//! time.

use std::time::{Duration, SystemTime};

/// How a client retries a retry-safe request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 means never retry).
    pub max_attempts: u32,
    /// Ceiling of the first random delay; doubles on each retry.
    pub base_delay: Duration,
    /// Longest wait before any retry, jittered or asked for by the server.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, 100 ms doubling up to 5 s: a dead server costs at
    /// most about 1.5 s of sleeping, a server asking to come back within
    /// 5 s is obeyed.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// A policy with `retries` retries after the first attempt and default delays.
    pub fn with_retries(retries: u32) -> Self {
        RetryPolicy { max_attempts: retries.saturating_add(1), ..RetryPolicy::default() }
    }

    /// The upper bound of the jittered delay before retry `retry` (0-based):
    /// `min(max_delay, base_delay * 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// How long to wait before the next attempt, after `attempts` attempts
    /// have failed, or `None` to give up. `retry_after` is what the server
    /// asked for; `unit` is a uniform random number in `[0, 1)` (the
    /// jitter; [`random_unit`] in production, fixed values in tests).
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>, unit: f64) -> Option<Duration> {
        if attempts == 0 || attempts >= self.max_attempts {
            return None;
        }
        match retry_after {
            Some(asked) if asked > self.max_delay => None,
            Some(asked) => Some(asked),
            None => Some(self.ceiling(attempts - 1).mul_f64(unit.clamp(0.0, 1.0))),
        }
    }
}

/// A uniform random number in `[0, 1)` from the operating system (jitter
/// needs no cryptographic quality, but this is what the workspace has; a
/// failing source degrades to no jitter rather than failing the request).
pub fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        return 0.5;
    }
    // 53 random bits make every double in [0, 1) equally spaced.
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` value: delta-seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, relative to `now`; a date in the
/// past means "now"). Anything else is ignored (`None`), as the RFC asks
/// of a field a recipient cannot parse.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // An absurd number of seconds saturates; the policy then gives up.
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether an answer with this status is worth trying again: the server is
/// overloaded, rate limiting, failed internally, or a proxy in front of it
/// lost it. Other statuses are about the request and would repeat verbatim.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let ceilings: Vec<u128> = (0..6).map(|r| p.ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        // No overflow for huge retry numbers.
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spans_zero_to_the_ceiling() {
        let p = policy();
        assert_eq!(p.delay(1, None, 0.0), Some(Duration::ZERO));
        assert_eq!(p.delay(1, None, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(p.delay(3, None, 0.999_999).map(|d| d.as_millis()), Some(399));
        // Out-of-range randomness cannot exceed the ceiling.
        assert_eq!(p.delay(5, None, 7.0), Some(Duration::from_secs(1)));
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
            let d = p.delay(4, None, u).unwrap();
            assert!(d <= p.ceiling(3), "{d:?}");
        }
    }

    #[test]
    fn random_unit_is_not_constant() {
        let xs: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(xs.iter().any(|x| *x < 0.5) && xs.iter().any(|x| *x >= 0.5), "{xs:?}");
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = policy();
        assert!(p.delay(5, None, 0.3).is_some());
        assert_eq!(p.delay(6, None, 0.3), None);
        assert_eq!(p.delay(60, Some(Duration::ZERO), 0.3), None);
        assert_eq!(RetryPolicy::never().delay(1, None, 0.3), None);
        assert_eq!(RetryPolicy::with_retries(2).max_attempts, 3);
    }

    #[test]
    fn retry_after_is_obeyed_within_the_cap() {
        let p = policy();
        assert_eq!(p.delay(1, Some(Duration::from_millis(700)), 0.0), Some(Duration::from_millis(700)));
        assert_eq!(p.delay(1, Some(Duration::from_secs(1)), 0.0), Some(Duration::from_secs(1)));
        // Asking for longer than we are willing to wait: give up now.
        assert_eq!(p.delay(1, Some(Duration::from_secs(2)), 0.0), None);
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        // The other two date formats RFC 9110 requires recipients to accept.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("Wed Oct 21 07:28:05 2015", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        for bad in ["", "-1", "1.5", "soon", "120s", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 404, 409, 413, 422, 501] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}
