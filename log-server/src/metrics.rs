//! The log server's metrics, kept in a `prometheus-client` registry
//! ([`custody_service::metrics`]) next to the process metrics.
//!
//! Every hot-path update is one relaxed atomic add (label families take a
//! read lock to find their series); histograms have fixed bucket bounds.
//! Gauges that are cheaper to read at scrape time than to maintain (tree
//! size, checkpoint age, RocksDB memory, open connections) live in
//! [`ScrapeGauges`] and are set by the `/metrics` handler just before the
//! registry is encoded.

use std::sync::Arc;

use custody_service::metrics::{
    finite_seconds, histogram, mirror_count, registry_with_process_metrics, Counter, Family, FloatGauge,
    Gauge, Histogram, LabelText, Labels, Registry, LATENCY_BUCKETS,
};

/// Upper bounds of the batch-size histogram (entries per committed batch).
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0];

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    histogram(LATENCY_BUCKETS)
}

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, LabelText::new(value))]
}

/// Gauges set at scrape time by the `/metrics` handler.
pub struct ScrapeGauges {
    /// Durable tree size.
    pub tree_size: Gauge,
    /// Size of the latest published checkpoint.
    pub published_tree_size: Gauge,
    /// Seconds since the latest checkpoint was published (-1: none yet).
    pub checkpoint_age_seconds: FloatGauge,
    /// 1 if the latest signed checkpoint met the witness quorum.
    pub quorum_ok: Gauge,
    /// RocksDB block cache bytes.
    pub store_cache_bytes: Gauge,
    /// RocksDB memtable bytes.
    pub store_memtable_bytes: Gauge,
    /// RocksDB table reader bytes outside the cache.
    pub store_table_reader_bytes: Gauge,
    /// RocksDB table file bytes per column family.
    pub store_sst_bytes: Family<Labels, Gauge>,
    /// Nonces remembered for replay protection.
    pub registry_nonces: Gauge,
    /// HTTP connections open now.
    pub connections_open: Gauge,
    /// Connections shut down on accept, by limit (mirrors the tracker).
    pub connections_refused: Family<Labels, Counter>,
    /// The per-address limits' state and refusals.
    pub limits: custody_service::guard::LimitGauges,
}

impl ScrapeGauges {
    /// Mirrors a monotonic count kept elsewhere into a counter series.
    pub fn set_refused(&self, limit: &str, n: u64) {
        mirror_count(&self.connections_refused, &label("limit", limit), n);
    }

    /// Sets the per-column-family table bytes.
    pub fn set_sst_bytes(&self, cf: &str, bytes: u64) {
        self.store_sst_bytes.get_or_create(&label("cf", cf)).set(gauge_value(bytes));
    }
}

/// A `u64` as a gauge value (saturating).
pub fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// All metrics of one server process. Shared as `Arc<Metrics>` by the
/// sequencer, the checkpointer and the HTTP layer.
pub struct Metrics {
    registry: Registry,
    entries: Counter,
    batch_size: Histogram,
    batch_latency: Histogram,
    rejected: Family<Labels, Counter>,
    integrity_violations: Counter,
    registry_replayed: Counter,
    witness_requests: Family<Labels, Counter>,
    witness_seconds: HistogramFamily,
    http: Family<Labels, Counter>,
    bucket_size: Gauge,
    bucket_failures: Counter,
    /// Scrape-time gauges.
    pub scrape: ScrapeGauges,
}

impl Metrics {
    /// A fresh set of zeroed metrics, shared by every component.
    pub fn new() -> Arc<Self> {
        let mut r = registry_with_process_metrics();
        let entries = Counter::default();
        r.register("custody_entries", "Entries sequenced (excluding duplicates).", entries.clone());
        let batch_size = histogram(BATCH_SIZE_BUCKETS);
        r.register("custody_batch_size", "Entries per durably committed batch.", batch_size.clone());
        let batch_latency = latency_histogram();
        r.register(
            "custody_batch_seconds",
            "Time to sequence and durably commit a batch.",
            batch_latency.clone(),
        );
        let integrity_violations = Counter::default();
        r.register(
            "custody_integrity_violations",
            "Artifact reads refused because the stored bytes no longer match their digest.",
            integrity_violations.clone(),
        );
        let registry_replayed = Counter::default();
        r.register(
            "custody_registry_replayed_entries",
            "Entries replayed into the registry at start-up because its persisted state did not cover them.",
            registry_replayed.clone(),
        );
        let bucket_size = Gauge::default();
        r.register(
            "custody_bucket_checkpoint_size",
            "Size of the newest checkpoint whose read path is complete in the --store bucket.",
            bucket_size.clone(),
        );
        let bucket_failures = Counter::default();
        r.register(
            "custody_bucket_write_failures",
            "Rounds in which writing a checkpoint's read path to the bucket failed (it is retried).",
            bucket_failures.clone(),
        );
        let rejected = Family::<Labels, Counter>::default();
        r.register("custody_rejected", "Submissions rejected, by reason.", rejected.clone());
        let witness_requests = Family::<Labels, Counter>::default();
        r.register("custody_witness_requests", "add-checkpoint calls per witness.", witness_requests.clone());
        let witness_seconds: HistogramFamily = Family::new_with_constructor(latency_histogram);
        r.register("custody_witness_seconds", "add-checkpoint latency per witness.", witness_seconds.clone());
        let http = Family::<Labels, Counter>::default();
        r.register("custody_http_requests", "HTTP responses by status code.", http.clone());
        let scrape = ScrapeGauges {
            tree_size: Gauge::default(),
            published_tree_size: Gauge::default(),
            checkpoint_age_seconds: FloatGauge::default(),
            quorum_ok: Gauge::default(),
            store_cache_bytes: Gauge::default(),
            store_memtable_bytes: Gauge::default(),
            store_table_reader_bytes: Gauge::default(),
            store_sst_bytes: Family::default(),
            registry_nonces: Gauge::default(),
            connections_open: Gauge::default(),
            connections_refused: Family::default(),
            limits: custody_service::guard::LimitGauges::register(&mut r),
        };
        r.register("custody_tree_size", "Durable tree size.", scrape.tree_size.clone());
        r.register(
            "custody_published_tree_size",
            "Size of the latest published checkpoint.",
            scrape.published_tree_size.clone(),
        );
        r.register(
            "custody_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was published (-1: none yet).",
            scrape.checkpoint_age_seconds.clone(),
        );
        r.register(
            "custody_quorum_ok",
            "1 if the latest signed checkpoint met the witness quorum.",
            scrape.quorum_ok.clone(),
        );
        r.register(
            "custody_store_cache_bytes",
            "Bytes in RocksDB's block cache, memtables charged to it included.",
            scrape.store_cache_bytes.clone(),
        );
        r.register(
            "custody_store_memtable_bytes",
            "Bytes of RocksDB memtables.",
            scrape.store_memtable_bytes.clone(),
        );
        r.register(
            "custody_store_table_reader_bytes",
            "Bytes of RocksDB table readers outside the cache.",
            scrape.store_table_reader_bytes.clone(),
        );
        r.register(
            "custody_store_sst_bytes",
            "Bytes of RocksDB table files per column family (write-ahead log excluded).",
            scrape.store_sst_bytes.clone(),
        );
        r.register(
            "custody_registry_nonces",
            "Nonces remembered for replay protection (the statements of one window; 0 on a generic log).",
            scrape.registry_nonces.clone(),
        );
        r.register("custody_connections_open", "HTTP connections open now.", scrape.connections_open.clone());
        r.register(
            "custody_connections_refused",
            "Connections shut down on accept, by limit.",
            scrape.connections_refused.clone(),
        );
        Arc::new(Metrics {
            registry: r,
            entries,
            batch_size,
            batch_latency,
            rejected,
            integrity_violations,
            registry_replayed,
            witness_requests,
            witness_seconds,
            http,
            bucket_size,
            bucket_failures,
            scrape,
        })
    }

    /// The registry to encode for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one durably committed batch: its size and how long the
    /// commit took (from the first entry waiting to the synced write).
    pub fn observe_batch(&self, entries: usize, secs: f64) {
        self.batch_size.observe(entries as f64);
        self.batch_latency.observe(finite_seconds(secs));
    }

    /// Counts `n` newly sequenced (non-duplicate) entries.
    pub fn inc_entries(&self, n: u64) {
        self.entries.inc_by(n);
    }

    /// Number of entries counted by [`Metrics::inc_entries`] so far.
    pub fn entries(&self) -> u64 {
        self.entries.get()
    }

    /// Counts a stored artifact whose bytes no longer match its digest.
    pub fn inc_integrity_violation(&self) {
        self.integrity_violations.inc();
    }

    /// Counts entries replayed into the registry at start-up.
    pub fn inc_registry_replayed(&self, n: u64) {
        self.registry_replayed.inc_by(n);
    }

    /// Counts one rejected submission; `reason` is a short fixed label such
    /// as `"too_large"` (static so the label set stays bounded).
    pub fn inc_rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&label("reason", reason)).inc();
    }

    /// Records one add-checkpoint exchange with witness `name` (names come
    /// from the policy file, so the label set is bounded by it).
    pub fn observe_witness(&self, name: &str, ok: bool, secs: f64) {
        let result = if ok { "ok" } else { "error" };
        let labels = vec![("witness", LabelText::new(name)), ("result", LabelText::new(result))];
        self.witness_requests.get_or_create(&labels).inc();
        self.witness_seconds.get_or_create(&label("witness", name)).observe(finite_seconds(secs));
    }

    /// Records that the bucket's read path is complete up to `size`.
    pub fn set_bucket_size(&self, size: u64) {
        self.bucket_size.set(gauge_value(size));
    }

    /// Counts one failed write of a read path to the bucket.
    pub fn inc_bucket_failure(&self) {
        self.bucket_failures.inc();
    }

    /// Counts one HTTP response by status code.
    pub fn inc_http(&self, status: u16) {
        if (100..=599).contains(&status) {
            self.http.get_or_create(&label("status", &status.to_string())).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_service::metrics::{encode, Format};

    #[test]
    fn renders_counters_histograms_and_labels() {
        let m = Metrics::new();
        m.inc_entries(5);
        m.observe_batch(3, 0.003);
        m.observe_batch(300, 0.2);
        m.inc_rejected("too_large");
        m.inc_rejected("too_large");
        m.observe_witness("w\"1", true, 0.01);
        m.observe_witness("w\"1", false, 7.0);
        m.inc_http(200);
        m.inc_http(413);
        m.inc_http(42); // ignored, not a status
        m.scrape.tree_size.set(5);
        m.scrape.set_sst_bytes("a\"b", 1);
        m.scrape.set_refused("per_ip", 3);
        m.inc_integrity_violation();
        m.inc_registry_replayed(7);
        let text = encode(m.registry(), Format::Prometheus).unwrap();
        for want in [
            "custody_entries_total 5\n",
            "custody_batch_size_bucket{le=\"4.0\"} 1\n",
            "custody_batch_size_bucket{le=\"256.0\"} 1\n",
            "custody_batch_size_bucket{le=\"1024.0\"} 2\n",
            "custody_batch_size_bucket{le=\"+Inf\"} 2\n",
            "custody_batch_size_sum 303.0\n",
            "custody_rejected_total{reason=\"too_large\"} 2\n",
            "custody_integrity_violations_total 1\n",
            "custody_registry_replayed_entries_total 7\n",
            "custody_witness_requests_total{witness=\"w\\\"1\",result=\"error\"} 1\n",
            "custody_witness_seconds_bucket{le=\"+Inf\",witness=\"w\\\"1\"} 2\n",
            "custody_witness_seconds_count{witness=\"w\\\"1\"} 2\n",
            "custody_http_requests_total{status=\"413\"} 1\n",
            "# TYPE custody_tree_size gauge\ncustody_tree_size 5\n",
            "custody_store_sst_bytes{cf=\"a\\\"b\"} 1\n",
            "custody_connections_refused_total{limit=\"per_ip\"} 3\n",
            "# TYPE process_cpu_seconds_total counter\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("status=\"42\""));
        // Every non-comment line is `name{labels} value` with a numeric value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
