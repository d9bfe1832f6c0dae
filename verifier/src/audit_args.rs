//! The flags of `audit` and `report`, which share how an audit runs.

use std::path::PathBuf;

use clap::Args;
use custody_verifier::audit::AuditOptions;

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Log URL (default: --log or the configured one).
    pub url: Option<String>,
    /// Print the report as JSON (the same as the global `--output json`).
    #[arg(long, env = "CUSTODY_JSON")]
    pub json: bool,
    #[command(flatten)]
    pub tuning: AuditTuning,
    /// Also read every published model directory's manifest not checked
    /// before (one logged access each, signed with your key: needs `reader`
    /// on the names) and check its digest, its path rules and its OpenSSF
    /// model signature.
    #[arg(long, env = "CUSTODY_AUDIT_DIRECTORIES")]
    pub directories: bool,
}

/// `report`: on the whole registry, or on at most one model name, actor
/// or artifact.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").args(["model", "name", "actor", "digest"])))]
pub struct ReportArgs {
    /// Model name `org/model` (the same as --name). Without NAME, --name,
    /// --actor or --digest: the whole registry, proven by a full audit.
    #[arg(value_name = "NAME")]
    pub model: Option<String>,
    /// Model name `org/model`: every entry about it.
    #[arg(long, env = "CUSTODY_NAME")]
    pub name: Option<String>,
    /// Actor name: every statement the actor signed.
    #[arg(long, env = "CUSTODY_ACTOR")]
    pub actor: Option<String>,
    /// Artifact digest `sha256:HEX`: every publish and access of it.
    #[arg(long, env = "CUSTODY_DIGEST")]
    pub digest: Option<String>,
    /// Period start, `YYYY-MM-DDTHH:MM:SSZ` (inclusive).
    #[arg(long, env = "CUSTODY_FROM")]
    pub from: String,
    /// Period end, `YYYY-MM-DDTHH:MM:SSZ` (inclusive).
    #[arg(long, env = "CUSTODY_TO")]
    pub to: String,
    /// Which time of an entry the period applies to: the statement's own
    /// time, or the time the log received it (both are in every row).
    #[arg(long, env = "CUSTODY_REPORT_TIME_BASIS", value_enum, default_value_t = TimeBasisChoice::Statement)]
    pub time_basis: TimeBasisChoice,
    /// Report format (default: markdown, or json with --json / --output json).
    #[arg(long, env = "CUSTODY_REPORT_FORMAT", value_enum)]
    pub format: Option<ReportFormat>,
    /// Write the report to this file (atomically) instead of stdout.
    #[arg(long = "out", short = 'o', env = "CUSTODY_REPORT_OUT")]
    pub out: Option<PathBuf>,
    /// On a name, actor or artifact: run a full audit first, so that every
    /// row's verdict is `audited` (the whole registry is always audited).
    #[arg(long, env = "CUSTODY_REPORT_AUDIT")]
    pub audit: bool,
    /// Print JSON instead of Markdown (the same as the global `--output json`).
    #[arg(long, env = "CUSTODY_JSON")]
    pub json: bool,
    /// Also write the Markdown report to this file.
    #[arg(long, env = "CUSTODY_REPORT_MARKDOWN")]
    pub markdown: Option<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long = "json-file", env = "CUSTODY_REPORT_JSON")]
    pub json_file: Option<PathBuf>,
    /// Most access entries listed (all are proven and counted).
    #[arg(long, env = "CUSTODY_MAX_ACCESSES", default_value_t = 100000)]
    pub max_accesses: usize,
    #[command(flatten)]
    pub tuning: AuditTuning,
}

/// How an audit runs, shared by `audit` and `report` (which audits the
/// whole registry, or a subject with `--audit`).
#[derive(Debug, Args)]
pub struct AuditTuning {
    /// Parallel fetches.
    #[arg(long, env = "CUSTODY_JOBS", default_value_t = 8)]
    pub jobs: usize,
    /// The log's statement window in seconds (its --statement-window).
    #[arg(long, env = "CUSTODY_STATEMENT_WINDOW_SECS", default_value_t = 300)]
    pub statement_window: u64,
    /// Verify each signature on its own instead of in batches.
    #[arg(long, env = "CUSTODY_AUDIT_EXACT")]
    pub exact: bool,
    /// Ignore the cache of already audited tiles and bundles; fetch all.
    #[arg(long, env = "CUSTODY_AUDIT_REFETCH")]
    pub refetch: bool,
    /// Threads verifying signatures (default: every core).
    #[arg(long, env = "CUSTODY_AUDIT_THREADS")]
    pub threads: Option<usize>,
}

impl AuditTuning {
    /// The audit options these flags ask for.
    pub fn options(&self) -> AuditOptions {
        AuditOptions {
            window: std::time::Duration::from_secs(self.statement_window),
            jobs: self.jobs,
            exact: self.exact,
            refetch: self.refetch,
            threads: self.threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
        }
    }
}

/// `report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Markdown,
    /// JSON (schema `custody.dev/compliance-report/v1`).
    Json,
    /// One self-contained HTML page.
    Html,
}

/// `report --time-basis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeBasisChoice {
    /// The statement's time.
    Statement,
    /// The log's receive time.
    Received,
}
