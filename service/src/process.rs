//! Process metrics read from `/proc` at scrape time (Linux): CPU seconds,
//! resident and virtual memory, open and maximum file descriptors, start
//! time. Named as the Prometheus client libraries of other languages name
//! them, so existing dashboards work unchanged. On a system without `/proc`
//! the collector emits nothing.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, fixed at
/// 100 by the kernel's user ABI on every architecture Linux supports).
const USER_HZ: f64 = 100.0;

/// One reading of the process's resources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: f64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// Soft open-file limit (absent when unlimited).
    pub max_fds: Option<f64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessSample {
    /// Reads `/proc/self`; `None` where it is not available.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name may contain spaces and parentheses: fields are
        // counted from the last `)`.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // After `)`: field 3 (state) is index 0, so field n is index n - 3.
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        let cpu_seconds = (field(14)? + field(15)?) / USER_HZ;
        let start_ticks = field(22)?;
        let virtual_bytes = field(23)?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let resident_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let btime = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse::<f64>().ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        Some(ProcessSample {
            cpu_seconds,
            resident_bytes: resident_kib * 1024.0,
            virtual_bytes,
            open_fds,
            max_fds: max_fds(),
            start_time_seconds: btime + start_ticks / USER_HZ,
        })
    }
}

/// The soft `Max open files` limit from `/proc/self/limits`.
fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// The registry collector of [`ProcessSample`].
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessSample::read() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            MetricType::Counter,
        )?)?;
        let mut gauges = vec![
            ("process_resident_memory_bytes", "Resident memory size in bytes.", s.resident_bytes),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", s.virtual_bytes),
            ("process_open_fds", "Number of open file descriptors.", s.open_fds),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
        ];
        if let Some(max) = s.max_fds {
            gauges.push(("process_max_fds", "Maximum number of open file descriptors.", max));
        }
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = ProcessSample::read().expect("/proc is mounted on Linux");
        assert!(s.resident_bytes > 1024.0 * 1024.0, "{s:?}");
        assert!(s.open_fds >= 3.0, "{s:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0, "{s:?}");
        let mut r = prometheus_client::registry::Registry::default();
        r.register_collector(Box::new(ProcessCollector));
        let text = crate::metrics::encode(&r, crate::metrics::Format::Prometheus).unwrap();
        for name in ["process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds "] {
            assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing in\n{text}");
        }
    }
}
