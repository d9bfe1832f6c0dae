//! Process metrics, rendered in the Prometheus text exposition format.
//!
//! Hand-written instead of pulling a metrics crate: the set is small and
//! fixed, every hot-path update is one relaxed atomic add, and the output
//! format is simple enough to get exactly right by hand. Histograms use fixed
//! bucket bounds so observing never allocates.
//!
//! Gauges that are cheaper to read at scrape time than to maintain (tree
//! size, checkpoint age) are not stored here: the `/metrics` handler renders
//! them and passes them in as `extra`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Upper bounds of the batch-size histogram (entries per committed batch).
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0];
/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// HTTP statuses are counted in a fixed array indexed by `status - 100`.
const HTTP_STATUS_MIN: u16 = 100;
const HTTP_STATUS_MAX: u16 = 599;

/// A histogram with fixed bucket bounds: per-bucket counts (non-cumulative;
/// made cumulative when rendered), a count, and a sum kept as `f64` bits.
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
            buckets: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
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

    /// Appends the `_bucket`, `_sum` and `_count` series; `labels` is either
    /// empty or `key="value",` pairs (with the trailing comma).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
        let trimmed = labels.trim_end_matches(',');
        let braces = if trimmed.is_empty() { String::new() } else { format!("{{{trimmed}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Per-witness counters, created on first observation.
struct WitnessMetrics {
    ok: AtomicU64,
    failed: AtomicU64,
    latency: Histogram,
}

/// All counters and histograms of one server process. Shared as
/// `Arc<Metrics>` by the sequencer, the checkpointer and the HTTP layer.
pub struct Metrics {
    entries: AtomicU64,
    batch_size: Histogram,
    batch_latency: Histogram,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    integrity_violations: AtomicU64,
    witnesses: Mutex<BTreeMap<String, Arc<WitnessMetrics>>>,
    http: Vec<AtomicU64>,
}

/// Escapes a label value per the exposition format (`\\`, `\"`, `\n`), so a
/// witness name from a policy file can never break the output.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl Metrics {
    /// A fresh set of zeroed metrics, shared by every component.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics {
            entries: AtomicU64::new(0),
            batch_size: Histogram::new(BATCH_SIZE_BUCKETS),
            batch_latency: Histogram::new(LATENCY_BUCKETS),
            rejected: Mutex::new(BTreeMap::new()),
            integrity_violations: AtomicU64::new(0),
            witnesses: Mutex::new(BTreeMap::new()),
            http: (HTTP_STATUS_MIN..=HTTP_STATUS_MAX).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Records one durably committed batch: its size and how long the
    /// commit took (from the first entry waiting to the synced write).
    pub fn observe_batch(&self, entries: usize, secs: f64) {
        self.batch_size.observe(entries as f64);
        self.batch_latency.observe(secs);
    }

    /// Counts `n` newly sequenced (non-duplicate) entries.
    pub fn inc_entries(&self, n: u64) {
        self.entries.fetch_add(n, Ordering::Relaxed);
    }

    /// Number of entries counted by [`Metrics::inc_entries`] so far.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Counts a stored artifact whose bytes no longer match its digest.
    pub fn inc_integrity_violation(&self) {
        self.integrity_violations.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one rejected submission; `reason` is a short fixed label such
    /// as `"too_large"` (static so the label set stays bounded).
    pub fn inc_rejected(&self, reason: &'static str) {
        if let Ok(mut map) = self.rejected.lock() {
            *map.entry(reason).or_insert(0) += 1;
        }
    }

    /// Records one add-checkpoint exchange with witness `name`.
    pub fn observe_witness(&self, name: &str, ok: bool, secs: f64) {
        let w = match self.witnesses.lock() {
            Ok(mut map) => Arc::clone(map.entry(name.to_owned()).or_insert_with(|| {
                Arc::new(WitnessMetrics {
                    ok: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                    latency: Histogram::new(LATENCY_BUCKETS),
                })
            })),
            Err(_) => return,
        };
        if ok {
            w.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            w.failed.fetch_add(1, Ordering::Relaxed);
        }
        w.latency.observe(secs);
    }

    /// Counts one HTTP response by status code.
    pub fn inc_http(&self, status: u16) {
        if (HTTP_STATUS_MIN..=HTTP_STATUS_MAX).contains(&status) {
            self.http[usize::from(status - HTTP_STATUS_MIN)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The whole exposition text: every stored metric with HELP and TYPE
    /// lines, followed by `extra` (scrape-time gauges, already formatted).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::with_capacity(4096);
        header(&mut out, "custody_entries_total", "counter", "Entries sequenced (excluding duplicates).");
        let _ = writeln!(out, "custody_entries_total {}", self.entries());

        header(&mut out, "custody_batch_size", "histogram", "Entries per durably committed batch.");
        self.batch_size.render(&mut out, "custody_batch_size", "");
        header(
            &mut out,
            "custody_batch_seconds",
            "histogram",
            "Time to sequence and durably commit a batch.",
        );
        self.batch_latency.render(&mut out, "custody_batch_seconds", "");

        header(
            &mut out,
            "custody_integrity_violations_total",
            "counter",
            "Artifact reads refused because the stored bytes no longer match their digest.",
        );
        let _ = writeln!(
            out,
            "custody_integrity_violations_total {}",
            self.integrity_violations.load(Ordering::Relaxed)
        );
        header(&mut out, "custody_rejected_total", "counter", "Submissions rejected, by reason.");
        if let Ok(map) = self.rejected.lock() {
            for (reason, n) in map.iter() {
                let _ = writeln!(out, "custody_rejected_total{{reason=\"{}\"}} {n}", escape_label(reason));
            }
        }

        let witnesses: Vec<(String, Arc<WitnessMetrics>)> = match self.witnesses.lock() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect(),
            Err(_) => Vec::new(),
        };
        header(&mut out, "custody_witness_requests_total", "counter", "add-checkpoint calls per witness.");
        for (name, w) in &witnesses {
            let name = escape_label(name);
            let ok = w.ok.load(Ordering::Relaxed);
            let failed = w.failed.load(Ordering::Relaxed);
            let _ = writeln!(out, "custody_witness_requests_total{{witness=\"{name}\",result=\"ok\"}} {ok}");
            let _ = writeln!(
                out,
                "custody_witness_requests_total{{witness=\"{name}\",result=\"error\"}} {failed}"
            );
        }
        header(&mut out, "custody_witness_seconds", "histogram", "add-checkpoint latency per witness.");
        for (name, w) in &witnesses {
            w.latency.render(
                &mut out,
                "custody_witness_seconds",
                &format!("witness=\"{}\",", escape_label(name)),
            );
        }

        header(&mut out, "custody_http_requests_total", "counter", "HTTP responses by status code.");
        for (i, n) in self.http.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let status = usize::from(HTTP_STATUS_MIN) + i;
                let _ = writeln!(out, "custody_http_requests_total{{status=\"{status}\"}} {n}");
            }
        }
        out.push_str(extra);
        out
    }
}

/// Formats one gauge with HELP and TYPE lines, for the `extra` argument of
/// [`Metrics::render`].
pub fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// [`gauge`] with one sample per value of the label `label`.
pub fn labelled_gauge(out: &mut String, name: &str, help: &str, label: &str, values: &[(&str, f64)]) {
    header(out, name, "gauge", help);
    for (value_of_label, value) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {value}", escape_label(value_of_label));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut extra = String::new();
        gauge(&mut extra, "custody_tree_size", "Durable tree size.", 5.0);
        labelled_gauge(&mut extra, "custody_sst_bytes", "Bytes.", "cf", &[("entries", 7.0), ("a\"b", 1.0)]);
        let text = m.render(&extra);
        assert!(text.contains("custody_entries_total 5\n"));
        assert!(text.contains("custody_batch_size_bucket{le=\"4\"} 1\n"));
        assert!(text.contains("custody_batch_size_bucket{le=\"256\"} 1\n"));
        assert!(text.contains("custody_batch_size_bucket{le=\"1024\"} 2\n"));
        assert!(text.contains("custody_batch_size_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("custody_batch_size_sum 303\n"));
        assert!(text.contains("custody_rejected_total{reason=\"too_large\"} 2\n"));
        m.inc_integrity_violation();
        assert!(m.render("").contains("custody_integrity_violations_total 1\n"));
        assert!(text.contains("custody_witness_requests_total{witness=\"w\\\"1\",result=\"error\"} 1\n"));
        assert!(text.contains("custody_witness_seconds_bucket{witness=\"w\\\"1\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("custody_witness_seconds_count{witness=\"w\\\"1\"} 2\n"));
        assert!(text.contains("custody_http_requests_total{status=\"413\"} 1\n"));
        assert!(text.contains("# TYPE custody_tree_size gauge\ncustody_tree_size 5\n"));
        assert!(text.contains(
            "# TYPE custody_sst_bytes gauge\ncustody_sst_bytes{cf=\"entries\"} 7\ncustody_sst_bytes{cf=\"a\\\"b\"} 1\n"
        ));
        // Every non-comment line is `name{labels} value` with a numeric value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
