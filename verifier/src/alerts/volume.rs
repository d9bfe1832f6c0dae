//! Access volume per actor against the actor's own baseline.
//!
//! Accesses are counted per actor in UTC hours of the statement time
//! (`h = floor(time / 3600)`). The baseline `m` is an exponentially
//! weighted moving average of the actor's completed hourly counts, hours
//! without accesses included as zeros, with `alpha = 2 / (window_hours + 1)`:
//!
//! ```text
//! when the first access of hour h arrives and the current hour is c < h:
//!     m = (1 - alpha) * m + alpha * count(c)        # close hour c
//!     m = m * (1 - alpha)^(h - c - 1)               # the empty hours between
//!     count = 0
//! count = count + 1
//! alert when  h - first_hour >= warmup_hours
//!        and  count > max(factor * m, min_count)
//!        and  no alert for this actor in hour h yet
//! ```
//!
//! An access whose time is before the current hour (statement times may
//! be a little out of order within the log's window) counts in the current
//! hour. So the alert fires once, on the access that crosses the threshold,
//! and the same hour cannot alert twice.

use serde::{Deserialize, Serialize};

use crate::alerts::config::AccessVolume;

/// One actor's counters, persisted with the monitor's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActorVolume {
    /// The hour being counted.
    pub hour: u64,
    /// Accesses in it.
    pub count: u64,
    /// The moving average of completed hours.
    pub average: f64,
    /// Hour of the actor's first access.
    pub first_hour: u64,
    /// The last hour that alerted.
    #[serde(default)]
    pub alerted_hour: Option<u64>,
}

/// The empty hours folded in at most (after that the average is 0 for any
/// window this file accepts).
const MAX_GAP: u64 = 1 << 20;

impl ActorVolume {
    /// A new actor first seen at `hour`.
    pub fn new(hour: u64) -> Self {
        ActorVolume { hour, count: 0, average: 0.0, first_hour: hour, alerted_hour: None }
    }

    /// Counts an access at Unix time `secs`; returns `Some((count,
    /// threshold))` when it should alert (see the module docs).
    pub fn count(&mut self, secs: u64, rule: &AccessVolume) -> Option<(u64, f64)> {
        let h = secs / 3600;
        let alpha = 2.0 / (rule.window_hours as f64 + 1.0);
        if h > self.hour {
            let gap = (h - self.hour).min(MAX_GAP);
            self.average = (1.0 - alpha) * self.average + alpha * self.count as f64;
            self.average *= (1.0 - alpha).powf((gap - 1) as f64);
            self.hour = h;
            self.count = 0;
        }
        self.count += 1;
        let threshold = (rule.factor * self.average).max(rule.min_count as f64);
        let warm = self.hour.saturating_sub(self.first_hour) >= rule.warmup_hours;
        if warm && self.count as f64 > threshold && self.alerted_hour != Some(self.hour) {
            self.alerted_hour = Some(self.hour);
            return Some((self.count, threshold));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(factor: f64, window: u64, warmup: u64, min: u64) -> AccessVolume {
        AccessVolume {
            factor,
            window_hours: window,
            warmup_hours: warmup,
            min_count: min,
            hold: false,
            sinks: None,
        }
    }

    #[test]
    fn a_steady_actor_never_alerts_and_a_burst_alerts_once() {
        let r = rule(3.0, 24, 24, 5);
        let mut v = ActorVolume::new(0);
        // Ten accesses an hour for three days: the average settles at 10.
        for h in 0..72u64 {
            for i in 0..10 {
                assert_eq!(v.count(h * 3600 + i, &r), None, "hour {h}");
            }
        }
        assert!((v.average - 10.0).abs() < 0.5, "{}", v.average);
        // Hour 72: thirty are fine (not more than 3 x ~10), the 31st or so alerts, once.
        let mut alerts = Vec::new();
        for i in 0..100 {
            if let Some(a) = v.count(72 * 3600 + i, &r) {
                alerts.push((i, a));
            }
        }
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let (i, (count, threshold)) = alerts[0];
        assert_eq!(count, i + 1);
        assert!(threshold > 29.0 && threshold < 31.0, "{threshold}");
        assert_eq!(count, threshold.floor() as u64 + 1);
    }

    #[test]
    fn warm_up_and_the_floor_hold_alerts_back() {
        let r = rule(3.0, 24, 2, 4);
        let mut v = ActorVolume::new(100);
        // During the warm-up even a burst is silent.
        assert!((0..50).all(|i| v.count(100 * 3600 + i, &r).is_none()));
        assert!((0..50).all(|i| v.count(101 * 3600 + i, &r).is_none()));
        // After a long quiet spell the average decays towards zero, so the
        // floor decides: four accesses are fine, the fifth alerts.
        let got: Vec<bool> = (0..6).map(|i| v.count(1000 * 3600 + i, &r).is_some()).collect();
        assert_eq!(got, [false, false, false, false, true, false]);
    }

    #[test]
    fn late_statements_count_in_the_current_hour() {
        let r = rule(2.0, 1, 0, 1);
        let mut v = ActorVolume::new(10);
        assert!(v.count(10 * 3600, &r).is_none());
        assert!(v.count(9 * 3600, &r).is_some(), "second access in hour 10 exceeds the floor of 1");
        assert_eq!(v.hour, 10);
    }
}
