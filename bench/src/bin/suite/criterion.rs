//! Reads what `cargo bench -p custody-standards --bench standards` left in criterion's
//! output directory: for every benchmark, its throughput in elements per
//! second (median, and the 95% confidence interval of the median as the
//! spread).

use std::collections::BTreeMap;
use std::path::Path;

use custody_bench::stats::Spread;
use serde_json::Value;

/// Elements per second of each benchmark, by criterion's `full_id`
/// (`x/limit/sha256_node_65B`, ...).
pub fn read(dir: &Path) -> BTreeMap<String, Spread> {
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn walk(dir: &Path, out: &mut BTreeMap<String, Spread>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.filter_map(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            // `new/` holds the latest run; `base/` and `change/` are older.
            if path.file_name().is_some_and(|n| n == "base" || n == "change" || n == "report") {
                continue;
            }
            walk(&path, out);
        } else if path.file_name().is_some_and(|n| n == "benchmark.json") {
            if let Some((id, s)) = one(path.parent().unwrap_or(dir)) {
                out.insert(id, s);
            }
        }
    }
}

fn json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn one(dir: &Path) -> Option<(String, Spread)> {
    let b = json(&dir.join("benchmark.json"))?;
    let est = json(&dir.join("estimates.json"))?;
    let id = b["full_id"].as_str()?.to_owned();
    let elements = b["throughput"]["Elements"].as_f64().unwrap_or(1.0);
    let m = &est["median"];
    let ns = m["point_estimate"].as_f64()?;
    let lo = m["confidence_interval"]["lower_bound"].as_f64()?;
    let hi = m["confidence_interval"]["upper_bound"].as_f64()?;
    let rate = |ns: f64| elements / (ns * 1e-9);
    // Faster time = higher rate: the bounds swap.
    Some((id, Spread { median: rate(ns), low: rate(hi), high: rate(lo), runs: 1 }))
}
