//! The witness's metrics, kept in a `prometheus-client` registry
//! ([`custody_service::metrics`]) next to the process metrics.
//!
//! One relaxed atomic add per update, fixed histogram buckets. Gauges that
//! are cheaper to read at scrape time (evidence count, frozen origins,
//! logs, peers) are set from [`Gauges`] by the `/metrics` handler just
//! before the registry is encoded.

use std::sync::Arc;

use custody_service::metrics::{
    finite_seconds, histogram, registry_with_process_metrics, Counter, Family, Gauge, Histogram, LabelText,
    Labels, Registry,
};

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Upper bounds of the commit batch-size histogram (requests per fsync).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];
/// add-checkpoint statuses counted, each with its own series (others are
/// counted under `status="other"`, so the label set stays bounded).
pub const STATUSES: [u16; 10] = [200, 400, 403, 404, 408, 409, 413, 422, 500, 503];

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

/// The registered gauge series of [`Gauges`].
struct GaugeSeries {
    evidence: Gauge,
    frozen_origins: Gauge,
    logs: Gauge,
    peers: Gauge,
    store_failed: Gauge,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    statuses: Family<Labels, Counter>,
    cosign_latency: Histogram,
    commit_latency: Histogram,
    commit_batch: Histogram,
    gossip: Family<Labels, Counter>,
    pulls: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
    gauges: GaugeSeries,
    /// The per-address limits' state and refusals, set at scrape time.
    pub limits: custody_service::guard::LimitGauges,
}

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, LabelText::new(value))]
}

fn result(ok: bool) -> Labels {
    label("result", if ok { "ok" } else { "error" })
}

fn usize_gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Arc<Self> {
        let mut r = registry_with_process_metrics();
        let statuses = Family::<Labels, Counter>::default();
        for s in STATUSES {
            drop(statuses.get_or_create(&label("status", &s.to_string())));
        }
        drop(statuses.get_or_create(&label("status", "other")));
        r.register(
            "custody_witness_add_checkpoint_requests",
            "add-checkpoint answers by HTTP status.",
            statuses.clone(),
        );
        let cosign_latency = histogram(LATENCY_BUCKETS);
        r.register(
            "custody_witness_cosign_seconds",
            "Time from add-checkpoint request to durable cosignature.",
            cosign_latency.clone(),
        );
        let commit_latency = histogram(LATENCY_BUCKETS);
        r.register("custody_witness_commit_seconds", "Duration of one synced write.", commit_latency.clone());
        let commit_batch = histogram(BATCH_BUCKETS);
        r.register("custody_witness_commit_batch_jobs", "Requests per synced write.", commit_batch.clone());
        let with_results = |f: Family<Labels, Counter>| {
            drop(f.get_or_create(&result(true)));
            drop(f.get_or_create(&result(false)));
            f
        };
        let gossip = with_results(Family::default());
        r.register("custody_witness_gossip_fetches", "Peer fetches.", gossip.clone());
        let pulls = with_results(Family::default());
        r.register("custody_witness_pulls", "Pull-mode polls of logs.", pulls.clone());
        let reloads = with_results(Family::default());
        r.register("custody_witness_reloads", "SIGHUP reloads of the log list and peers.", reloads.clone());
        let gauges = GaugeSeries {
            evidence: Gauge::default(),
            frozen_origins: Gauge::default(),
            logs: Gauge::default(),
            peers: Gauge::default(),
            store_failed: Gauge::default(),
        };
        r.register(
            "custody_witness_evidence",
            "Split-view evidence records stored.",
            gauges.evidence.clone(),
        );
        r.register(
            "custody_witness_frozen_origins",
            "Origins refusing cosignatures because of evidence.",
            gauges.frozen_origins.clone(),
        );
        r.register("custody_witness_logs", "Logs in the log list.", gauges.logs.clone());
        r.register("custody_witness_peers", "Configured peer witnesses.", gauges.peers.clone());
        r.register(
            "custody_witness_store_failed",
            "1 if a synced write failed (restart needed).",
            gauges.store_failed.clone(),
        );
        let limits = custody_service::guard::LimitGauges::register(&mut r);
        Arc::new(Metrics {
            limits,
            registry: r,
            statuses,
            cosign_latency,
            commit_latency,
            commit_batch,
            gossip,
            pulls,
            reloads,
            gauges,
        })
    }

    fn status_labels(status: u16) -> Labels {
        if STATUSES.contains(&status) {
            label("status", &status.to_string())
        } else {
            label("status", "other")
        }
    }

    /// Counts one add-checkpoint answer.
    pub fn count_status(&self, status: u16) {
        self.statuses.get_or_create(&Self::status_labels(status)).inc();
    }

    /// Answers counted with `status` so far.
    pub fn status_count(&self, status: u16) -> u64 {
        if !STATUSES.contains(&status) {
            return 0;
        }
        self.statuses.get_or_create(&Self::status_labels(status)).get()
    }

    /// Time from request to durable cosignature.
    pub fn observe_cosign(&self, secs: f64) {
        self.cosign_latency.observe(finite_seconds(secs));
    }

    /// One synced batch of `jobs` requests that took `secs`.
    pub fn observe_commit(&self, jobs: usize, secs: f64) {
        self.commit_batch.observe(jobs as f64);
        self.commit_latency.observe(finite_seconds(secs));
    }

    /// One peer fetch (checkpoint or evidence).
    pub fn count_gossip(&self, ok: bool) {
        self.gossip.get_or_create(&result(ok)).inc();
    }

    /// One pull-mode poll of a log.
    pub fn count_pull(&self, ok: bool) {
        self.pulls.get_or_create(&result(ok)).inc();
    }

    /// One SIGHUP reload.
    pub fn count_reload(&self, ok: bool) {
        self.reloads.get_or_create(&result(ok)).inc();
    }

    /// Sets the scrape-time gauges.
    pub fn set_gauges(&self, g: Gauges) {
        self.gauges.evidence.set(usize_gauge(g.evidence));
        self.gauges.frozen_origins.set(usize_gauge(g.frozen_origins));
        self.gauges.logs.set(usize_gauge(g.logs));
        self.gauges.peers.set(usize_gauge(g.peers));
        self.gauges.store_failed.set(i64::from(g.store_failed));
    }

    /// The registry to encode for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_service::metrics::{encode, Format};

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
        m.set_gauges(Gauges { evidence: 2, frozen_origins: 1, logs: 3, peers: 1, store_failed: false });
        let text = encode(m.registry(), Format::Prometheus).unwrap();
        for line in [
            "custody_witness_add_checkpoint_requests_total{status=\"200\"} 2",
            "custody_witness_add_checkpoint_requests_total{status=\"409\"} 1",
            "custody_witness_add_checkpoint_requests_total{status=\"503\"} 0",
            "custody_witness_add_checkpoint_requests_total{status=\"other\"} 1",
            "custody_witness_cosign_seconds_bucket{le=\"0.001\"} 0",
            "custody_witness_cosign_seconds_bucket{le=\"0.0025\"} 1",
            "custody_witness_cosign_seconds_count 1",
            "custody_witness_commit_batch_jobs_bucket{le=\"8.0\"} 1",
            "custody_witness_gossip_fetches_total{result=\"error\"} 1",
            "custody_witness_pulls_total{result=\"ok\"} 0",
            "custody_witness_evidence 2",
            "custody_witness_frozen_origins 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(m.status_count(200), 2);
        assert_eq!(m.status_count(418), 0);
    }
}
