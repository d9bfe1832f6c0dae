//! Process metrics in the Prometheus text exposition format.
//!
//! Hand-written like the log server's: a small fixed set, one relaxed atomic
//! add per update, fixed histogram buckets so observing never allocates.
//! Gauges that are cheaper to read at scrape time (evidence count, frozen
//! origins, logs, peers) are passed to [`Metrics::render`] by the handler.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Upper bounds of the commit batch-size histogram (requests per fsync).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];
/// add-checkpoint statuses counted, in this order.
pub const STATUSES: [u16; 9] = [200, 400, 403, 404, 409, 413, 422, 500, 503];

struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn observe(&self, value: f64) {
        let value = if value.is_finite() { value } else { 0.0 };
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self.sum_bits.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some((f64::from_bits(bits) + value).to_bits())
        });
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", f64::from_bits(self.sum_bits.load(Ordering::Relaxed)));
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Scrape-time gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Evidence records stored.
    pub evidence: usize,
    /// Origins refusing cosignatures because of evidence.
    pub frozen_origins: usize,
    /// Logs in the log list.
    pub logs: usize,
    /// Configured peers.
    pub peers: usize,
    /// Whether a synced write has failed.
    pub store_failed: bool,
}

/// Every counter and histogram of the process.
pub struct Metrics {
    statuses: [AtomicU64; STATUSES.len()],
    other_status: AtomicU64,
    cosign_latency: Histogram,
    commit_latency: Histogram,
    commit_batch: Histogram,
    gossip_ok: AtomicU64,
    gossip_failed: AtomicU64,
    pull_ok: AtomicU64,
    pull_failed: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics {
            statuses: Default::default(),
            other_status: AtomicU64::new(0),
            cosign_latency: Histogram::new(LATENCY_BUCKETS),
            commit_latency: Histogram::new(LATENCY_BUCKETS),
            commit_batch: Histogram::new(BATCH_BUCKETS),
            gossip_ok: AtomicU64::new(0),
            gossip_failed: AtomicU64::new(0),
            pull_ok: AtomicU64::new(0),
            pull_failed: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        })
    }

    /// Counts one add-checkpoint answer.
    pub fn count_status(&self, status: u16) {
        match STATUSES.iter().position(|&s| s == status) {
            Some(i) => self.statuses[i].fetch_add(1, Ordering::Relaxed),
            None => self.other_status.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Answers counted with `status` so far.
    pub fn status_count(&self, status: u16) -> u64 {
        STATUSES.iter().position(|&s| s == status).map_or(0, |i| self.statuses[i].load(Ordering::Relaxed))
    }

    /// Time from request to durable cosignature.
    pub fn observe_cosign(&self, secs: f64) {
        self.cosign_latency.observe(secs);
    }

    /// One synced batch of `jobs` requests that took `secs`.
    pub fn observe_commit(&self, jobs: usize, secs: f64) {
        self.commit_batch.observe(jobs as f64);
        self.commit_latency.observe(secs);
    }

    /// One peer fetch (checkpoint or evidence).
    pub fn count_gossip(&self, ok: bool) {
        (if ok { &self.gossip_ok } else { &self.gossip_failed }).fetch_add(1, Ordering::Relaxed);
    }

    /// One pull-mode poll of a log.
    pub fn count_pull(&self, ok: bool) {
        (if ok { &self.pull_ok } else { &self.pull_failed }).fetch_add(1, Ordering::Relaxed);
    }

    /// One SIGHUP reload.
    pub fn count_reload(&self, ok: bool) {
        (if ok { &self.reloads_ok } else { &self.reloads_failed }).fetch_add(1, Ordering::Relaxed);
    }

    /// The whole exposition.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let name = "custody_witness_add_checkpoint_requests_total";
        let _ = writeln!(out, "# HELP {name} add-checkpoint answers by HTTP status.\n# TYPE {name} counter");
        for (s, c) in STATUSES.iter().zip(&self.statuses) {
            let _ = writeln!(out, "{name}{{status=\"{s}\"}} {}", c.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "{name}{{status=\"other\"}} {}", self.other_status.load(Ordering::Relaxed));
        self.cosign_latency.render(
            &mut out,
            "custody_witness_cosign_seconds",
            "Time from add-checkpoint request to durable cosignature.",
        );
        self.commit_latency.render(
            &mut out,
            "custody_witness_commit_seconds",
            "Duration of one synced write.",
        );
        self.commit_batch.render(&mut out, "custody_witness_commit_batch_jobs", "Requests per synced write.");
        let pairs = [
            ("custody_witness_gossip_fetches_total", "Peer fetches.", &self.gossip_ok, &self.gossip_failed),
            ("custody_witness_pulls_total", "Pull-mode polls of logs.", &self.pull_ok, &self.pull_failed),
            (
                "custody_witness_reloads_total",
                "SIGHUP reloads of the log list and peers.",
                &self.reloads_ok,
                &self.reloads_failed,
            ),
        ];
        for (name, help, ok, failed) in pairs {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name}{{result=\"ok\"}} {}", ok.load(Ordering::Relaxed));
            let _ = writeln!(out, "{name}{{result=\"error\"}} {}", failed.load(Ordering::Relaxed));
        }
        let gauges = [
            ("custody_witness_evidence", "Split-view evidence records stored.", g.evidence),
            (
                "custody_witness_frozen_origins",
                "Origins refusing cosignatures because of evidence.",
                g.frozen_origins,
            ),
            ("custody_witness_logs", "Logs in the log list.", g.logs),
            ("custody_witness_peers", "Configured peer witnesses.", g.peers),
            (
                "custody_witness_store_failed",
                "1 if a synced write failed (restart needed).",
                usize::from(g.store_failed),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histograms_and_gauges() {
        let m = Metrics::new();
        m.count_status(200);
        m.count_status(200);
        m.count_status(409);
        m.count_status(418);
        m.observe_cosign(0.002);
        m.observe_commit(7, 0.001);
        m.count_gossip(false);
        let text =
            m.render(Gauges { evidence: 2, frozen_origins: 1, logs: 3, peers: 1, store_failed: false });
        for line in [
            "custody_witness_add_checkpoint_requests_total{status=\"200\"} 2",
            "custody_witness_add_checkpoint_requests_total{status=\"409\"} 1",
            "custody_witness_add_checkpoint_requests_total{status=\"other\"} 1",
            "custody_witness_cosign_seconds_bucket{le=\"0.001\"} 0",
            "custody_witness_cosign_seconds_bucket{le=\"0.0025\"} 1",
            "custody_witness_cosign_seconds_count 1",
            "custody_witness_commit_batch_jobs_bucket{le=\"8\"} 1",
            "custody_witness_gossip_fetches_total{result=\"error\"} 1",
            "custody_witness_evidence 2",
            "custody_witness_frozen_origins 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(m.status_count(200), 2);
    }
}
