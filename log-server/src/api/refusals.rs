//! Refusals of statements nobody could be held to: requests with no
//! usable statement, a malformed envelope, an unknown key or a bad
//! signature. Anyone can send those as fast as the network allows, so each
//! one is logged at debug level only, and counted; an info line every
//! `--refusal-summary-interval` says how many there were, by reason. The
//! audit log then stays readable (and the disk unfilled) under a flood,
//! while refusals of authenticated actors are still logged one by one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counts of unauthenticated refusals since the last summary.
#[derive(Debug, Default)]
pub struct RefusalSummary {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl RefusalSummary {
    /// An empty summary.
    pub fn new() -> Arc<Self> {
        Arc::new(RefusalSummary::default())
    }

    /// Counts one refusal.
    pub fn add(&self, reason: &'static str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(reason).or_insert(0) += 1;
    }

    /// The counts since the last call, emptied; `None` if there were none.
    pub fn take(&self) -> Option<(u64, String)> {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()));
        let total: u64 = counts.values().sum();
        if total == 0 {
            return None;
        }
        let by_reason: Vec<String> = counts.iter().map(|(r, n)| format!("{r}={n}")).collect();
        Some((total, by_reason.join(" ")))
    }

    /// Writes one info line per `interval` in which something was refused,
    /// until the runtime stops.
    pub fn spawn_reporter(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let summary = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Some((total, by_reason)) = summary.take() {
                    tracing::info!(
                        target: "custody::audit",
                        total,
                        by_reason = by_reason.as_str(),
                        interval_ms = interval.as_millis() as u64,
                        "unauthenticated statements refused"
                    );
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_starts_over() {
        let s = RefusalSummary::new();
        assert_eq!(s.take(), None);
        for _ in 0..3 {
            s.add("bad_signature");
        }
        s.add("no_statement");
        assert_eq!(s.take(), Some((4, "bad_signature=3 no_statement=1".to_owned())));
        assert_eq!(s.take(), None);
    }
}
