//! Tracing set-up shared by the servers: logs go to stderr (stdout carries
//! keys and the listening line), as human-readable text or as one JSON
//! object per line for log collectors (`--log-format`,
//! `CUSTODY_LOG_FORMAT`). The filter comes from `CUSTODY_LOG`, else
//! `RUST_LOG`, else `info`.

use clap::{Args, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the request span's fields.
    Json,
}

/// The logging flags, flattened into each server's command line.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log line format on stderr: `text` or `json` (one object per line,
    /// including the request id of the request being served).
    #[arg(long = "log-format", env = "CUSTODY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text,
          global = true)]
    pub log_format: LogFormat,
}

/// The filter from `CUSTODY_LOG`, else `RUST_LOG`, else `info` (an invalid
/// filter falls back to `info` rather than silencing the server).
fn filter() -> tracing_subscriber::EnvFilter {
    let text =
        std::env::var("CUSTODY_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".into());
    tracing_subscriber::EnvFilter::try_new(&text)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Installs the global subscriber (a second call does nothing).
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}
