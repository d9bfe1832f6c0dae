//! Metrics through `prometheus-client`, served in the format the scraper
//! asks for.
//!
//! Each server keeps its own typed metrics (counters, gauges, histograms)
//! registered in one [`Registry`]; this module adds the process metrics,
//! escapes label values that come from configuration (a witness name in a
//! policy file must not be able to break the exposition), and renders the
//! registry either as OpenMetrics 1.0 (when the `Accept` header names
//! `application/openmetrics-text`) or as Prometheus text 0.0.4, which every
//! scraper understands.

use std::fmt::Write as _;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

/// Content type of the OpenMetrics 1.0 text format.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of request and write latency histograms.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A gauge holding an `f64` (ages, sizes that may exceed `i64` comfort).
pub type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A registry holding the process metrics ([`crate::process`]); each
/// server registers its own metrics in it.
pub fn registry_with_process_metrics() -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(crate::process::ProcessCollector));
    registry
}

/// A duration in seconds as a histogram observation: a non-finite value
/// (a clock glitch) counts as 0 rather than poisoning the histogram's sum.
pub fn finite_seconds(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Mirrors a monotonic count kept elsewhere (an atomic in a limiter or a
/// connection tracker) into the series of `family` with `labels`.
pub fn mirror_count(family: &Family<Labels, Counter>, labels: &Labels, n: u64) {
    family.get_or_create(labels).inner().store(n, std::sync::atomic::Ordering::Relaxed);
}

/// A histogram with fixed bucket bounds.
pub fn histogram(bounds: &[f64]) -> Histogram {
    Histogram::new(bounds.iter().copied())
}

/// A label set: fixed keys, escaped values.
pub type Labels = Vec<(&'static str, LabelText)>;

/// A label value escaped per the exposition formats (`\\`, `\"`, `\n`).
/// `prometheus-client` writes label values verbatim, so any value that is
/// not a compile-time constant goes through this type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelText(String);

impl LabelText {
    /// The escaped form of `value`.
    pub fn new(value: &str) -> Self {
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        LabelText(out)
    }
}

impl From<&str> for LabelText {
    fn from(value: &str) -> Self {
        LabelText::new(value)
    }
}

impl EncodeLabelValue for LabelText {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

/// Which exposition format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (ends with `# EOF`).
    OpenMetrics,
    /// Prometheus text 0.0.4.
    Prometheus,
}

impl Format {
    /// OpenMetrics when the `Accept` header lists
    /// `application/openmetrics-text` with a non-zero quality, else
    /// Prometheus text (what a plain `curl` or an old scraper expects).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else { return Format::Prometheus };
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            if !media.eq_ignore_ascii_case("application/openmetrics-text") {
                continue;
            }
            let zero = parts
                .any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0));
            if !zero {
                return Format::OpenMetrics;
            }
        }
        Format::Prometheus
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
        }
    }
}

/// Renders `registry` in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(8192);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(match format {
        Format::OpenMetrics => text,
        Format::Prometheus => openmetrics_to_prometheus(&text),
    })
}

/// The `/metrics` response for `req`: the registry in the negotiated format.
pub fn respond(req: &HttpRequest, registry: &Registry) -> HttpResponse {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match encode(registry, format) {
        Ok(body) => HttpResponse::Ok().content_type(format.content_type()).body(body),
        Err(_) => crate::internal_error::response("internal", &"metrics encoding failed"),
    }
}

/// Rewrites `prometheus-client`'s OpenMetrics output as Prometheus text
/// 0.0.4. The sample lines are the same; what differs is the metadata: a
/// counter family `x` is typed as `x_total` (its sample's name), `info`
/// becomes a gauge named `x_info`, `unknown` becomes `untyped`, and the
/// `# UNIT` and `# EOF` lines and exemplars do not exist.
pub fn openmetrics_to_prometheus(text: &str) -> String {
    let mut counters: Vec<&str> = Vec::new();
    let mut infos: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            match rest.rsplit_once(' ') {
                Some((name, "counter")) => counters.push(name),
                Some((name, "info")) => infos.push(name),
                _ => {}
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let _ = writeln!(out, "# HELP {} {help}", renamed(name, &counters, &infos));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            let kind = match kind {
                "info" => "gauge",
                "unknown" => "untyped",
                k => k,
            };
            let _ = writeln!(out, "# TYPE {} {kind}", renamed(name, &counters, &infos));
        } else {
            // An exemplar follows ` # ` after the value.
            let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

fn renamed(name: &str, counters: &[&str], infos: &[&str]) -> String {
    if counters.contains(&name) {
        format!("{name}_total")
    } else if infos.contains(&name) {
        format!("{name}_info")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let mut r = Registry::default();
        let c: Family<Labels, Counter> = Family::default();
        r.register("custody_demo_requests", "Requests.", c.clone());
        c.get_or_create(&vec![("witness", LabelText::new("w\"1\n\\"))]).inc_by(3);
        let h = Histogram::new([0.1, 1.0]);
        h.observe(0.5);
        r.register("custody_demo_seconds", "Latency.", h);
        let g: FloatGauge = FloatGauge::default();
        g.set(2.5);
        r.register("custody_demo_age_seconds", "Age.", g);
        r
    }

    #[test]
    fn negotiates_openmetrics_only_when_asked() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("text/plain;version=0.0.4")), Format::Prometheus);
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                    version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("application/openmetrics-text; q=0")), Format::Prometheus);
    }

    #[test]
    fn both_formats_carry_the_same_samples() {
        let r = registry();
        let om = encode(&r, Format::OpenMetrics).unwrap();
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE custody_demo_requests counter\n"), "{om}");
        assert!(om.contains("custody_demo_requests_total{witness=\"w\\\"1\\n\\\\\"} 3\n"), "{om}");
        let prom = encode(&r, Format::Prometheus).unwrap();
        assert!(!prom.contains("# EOF"), "{prom}");
        assert!(prom.contains("# TYPE custody_demo_requests_total counter\n"), "{prom}");
        assert!(prom.contains("custody_demo_seconds_bucket{le=\"1.0\"} 1\n"), "{prom}");
        assert!(prom.contains("custody_demo_age_seconds 2.5\n"), "{prom}");
        for line in prom.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
