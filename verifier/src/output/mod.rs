//! What `custody` prints on stdout. Every command builds one result value
//! (a `Serialize` struct) and [`Printer`] renders it either as the prose
//! people read (`--output text`, the default) or as exactly one JSON object
//! (`--output json`) that scripts parse instead of scraping prose. Progress
//! bars and notes stay on stderr in both formats.
//!
//! A failure is one JSON object too, `{"error": {"exit", "kind",
//! "message"}}`, with the exit code the process exits with: a script reads
//! the verdict from stdout without parsing the `custody: ...` line on
//! stderr. When a command fails after part of its work is done and
//! reported (a publish logged before the `--tag` move failed, an audit that
//! found a violation), the error object also carries the fields of that
//! result, as the text output prints its lines before the error.
//!
//! The objects are documented in docs/verifier.md, "Machine-readable
//! output".

mod local;
mod logged;
mod verified;

use std::ffi::OsString;
use std::io::Write as _;

use clap::ValueEnum;
use serde::Serialize;

use custody_verifier::error::{Error, EXIT_FAILURE, EXIT_USAGE};
use custody_verifier::trust::Trusted;

pub use local::{InitOutput, KeygenOutput, WhoamiOutput};
pub use logged::{
    write_bundle, PublishOutput, PublishedDirectory, ReceiptOutput, RotateOutput, StatementOutput,
};
pub use verified::{
    BundleOutput, BundleSigner, BundleStatement, ConsistencyOutput, EvidenceOutput, HistoryOutput,
    InclusionOutput, PullOutput, PulledDirectory, SignedCheckpoint, TreeHead, VerifiedArtifact,
    VerifiedCheckpointOutput, VerifiedFile,
};

/// The global `--output` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Prose for people (what every command printed before JSON existed).
    Text,
    /// Exactly one JSON object on stdout per command (one per line for
    /// `monitor`), errors included.
    Json,
}

/// A command's result: JSON by its `Serialize`, prose by [`Render::text`].
pub trait Render: Serialize {
    /// The prose, every line ending in a newline.
    fn text(&self) -> String;
}

/// A checkpoint the client trusted (policy and consistency), as every
/// command reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointOutput {
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash, standard base64 as in the signed note.
    pub root: String,
    /// Policy witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
}

impl CheckpointOutput {
    /// The checkpoint `t`.
    pub fn of(t: &Trusted) -> Self {
        let c = &t.checkpoint;
        CheckpointOutput {
            origin: c.origin.clone(),
            size: c.size,
            root: c.root.to_base64(),
            cosigners: t.cosigners.clone(),
        }
    }
}

impl Render for CheckpointOutput {
    fn text(&self) -> String {
        let mut s = format!("checkpoint: {} size {} root {}\n", self.origin, self.size, self.root);
        if !self.cosigners.is_empty() {
            s += &format!("cosigned by: {}\n", self.cosigners.join(", "));
        }
        s
    }
}

/// Writes results to stdout in the chosen format, and the error object
/// when a command fails.
pub struct Printer {
    format: Format,
    /// What a failed command had achieved, carried by the error object.
    done: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Printer {
    /// A printer for `format`.
    pub fn new(format: Format) -> Self {
        Printer { format, done: None }
    }

    /// The command's result: its prose, or one JSON object.
    pub fn result<T: Render>(&self, r: &T) -> anyhow::Result<()> {
        let text = match self.format {
            Format::Text => r.text(),
            Format::Json => serde_json::to_string_pretty(r)? + "\n",
        };
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| Error::io("stdout", e))?;
        Ok(())
    }

    /// `e` happened after the command achieved `r`: as text, `r` is
    /// printed now (as it always was, before the error line on stderr); as
    /// JSON its fields go into the error object. Returns `e`.
    pub fn failed_after<T: Render>(&mut self, r: &T, e: anyhow::Error) -> anyhow::Error {
        match self.format {
            Format::Text => print!("{}", r.text()),
            Format::Json => {
                if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(r) {
                    self.done = Some(m);
                }
            }
        }
        e
    }

    /// Reports a failed command: the `custody: ...` line on stderr, and
    /// with JSON the error object on stdout. Returns the exit code.
    pub fn error(&mut self, e: &anyhow::Error) -> i32 {
        let lib = e.downcast_ref::<Error>();
        let code = lib.map_or(EXIT_FAILURE, Error::exit_code);
        eprintln!("custody: {e:#}");
        if self.format == Format::Json {
            let mut body = ErrorBody::new(code, kind(e), format!("{e:#}"));
            match lib {
                Some(Error::Refused { status, code, .. }) => {
                    body.status = Some(*status);
                    body.code = Some(code.clone());
                }
                Some(Error::Inconsistent { report, .. }) => {
                    body.evidence = Some(report.display().to_string());
                }
                _ => {}
            }
            print_error(body, self.done.take());
        }
        code
    }
}

/// The `error` member of a failure object.
#[derive(Debug, Serialize)]
struct ErrorBody {
    /// The process exit code.
    exit: i32,
    /// The class of failure (see [`kind`]).
    kind: &'static str,
    /// What `custody: ...` on stderr says.
    message: String,
    /// For `refused`: the log's HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// For `refused`: the log's stable error code (`forbidden`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    /// For `inconsistent`: the evidence report written.
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<String>,
}

impl ErrorBody {
    fn new(exit: i32, kind: &'static str, message: String) -> Self {
        ErrorBody { exit, kind, message, status: None, code: None, evidence: None }
    }
}

/// The class of a failure: the library error's variant, else `io` for a
/// file the binary itself wrote, else `failure`.
fn kind(e: &anyhow::Error) -> &'static str {
    match e.downcast_ref::<Error>() {
        Some(Error::Io { .. }) => "io",
        Some(Error::Network(_)) => "network",
        Some(Error::Refused { .. }) => "refused",
        Some(Error::Config(_)) => "config",
        Some(Error::Usage(_)) => "usage",
        Some(Error::Verification(_)) => "verification",
        Some(Error::Inconsistent { .. }) => "inconsistent",
        None if e.chain().any(|c| c.is::<std::io::Error>()) => "io",
        None => "failure",
    }
}

/// A failure as printed: `error` first, then what was done before it.
#[derive(Debug, Serialize)]
struct ErrorObject {
    error: ErrorBody,
    #[serde(flatten)]
    done: serde_json::Map<String, serde_json::Value>,
}

/// Prints the error object on one line (so that it also fits `monitor`'s
/// one-object-per-line stream), with the fields of `done` beside it.
fn print_error(error: ErrorBody, done: Option<serde_json::Map<String, serde_json::Value>>) {
    let obj = ErrorObject { error, done: done.unwrap_or_default() };
    println!("{}", serde_json::to_string(&obj).unwrap_or_default());
}

/// A command line clap refused (exit 64): with JSON asked for anywhere on
/// it (or in `CUSTODY_OUTPUT_FORMAT`), the error object too. clap's own
/// message stays on stderr.
pub fn usage_error(args: &[OsString], err: &clap::Error) {
    if !json_requested(args, std::env::var_os("CUSTODY_OUTPUT_FORMAT")) {
        return;
    }
    print_error(ErrorBody::new(EXIT_USAGE, "usage", clap_message(&err.to_string())), None);
}

/// clap's error text without its `error: ` prefix and the usage and help
/// hints after it, on one line.
fn clap_message(text: &str) -> String {
    let what = text.split("\n\n").next().unwrap_or_default();
    let what = what.strip_prefix("error: ").unwrap_or(what);
    what.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a command line that did not parse asked for JSON: `--json`, or
/// `--output json` / `--output=json` (the last `--output` wins, as in
/// clap), else the environment's format.
fn json_requested(args: &[OsString], env: Option<OsString>) -> bool {
    let mut given = None;
    let mut words = args.iter().skip(1).map(|a| a.to_str().unwrap_or_default());
    while let Some(w) = words.next() {
        match w {
            "--" => break,
            "--json" => return true,
            "--output" => given = words.next().map(|v| v == "json"),
            _ => {
                if let Some(v) = w.strip_prefix("--output=") {
                    given = Some(v == "json");
                }
            }
        }
    }
    given.unwrap_or_else(|| env.is_some_and(|v| v == "json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn json_is_found_on_a_command_line_that_did_not_parse() {
        assert!(json_requested(&args("custody --output json pull"), None));
        assert!(json_requested(&args("custody pull x --output=json"), None));
        assert!(json_requested(&args("custody history --json --bad"), None));
        assert!(json_requested(&args("custody pull"), Some("json".into())));
        assert!(!json_requested(&args("custody --output text pull"), Some("json".into())));
        assert!(!json_requested(&args("custody pull -- --json"), None));
        assert!(!json_requested(&args("custody --output yaml"), None));
        assert!(!json_requested(&args("custody pull"), Some("text".into())));
    }

    #[test]
    fn a_clap_error_is_one_line_without_hints() {
        let text = "error: the following required arguments were not provided:\n  --out <OUT>\n\n\
                    Usage: custody pull --out <OUT> <REFERENCE>\n\nFor more information, try '--help'.\n";
        assert_eq!(clap_message(text), "the following required arguments were not provided: --out <OUT>");
    }

    #[test]
    fn the_error_kind_names_the_library_error() {
        let e: anyhow::Error = Error::verify("no").into();
        assert_eq!(kind(&e), "verification");
        let e: anyhow::Error = Error::Network("down".into()).into();
        assert_eq!(kind(&e), "network");
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(io).context("writing x");
        assert_eq!(kind(&e), "io");
        assert_eq!(kind(&anyhow::anyhow!("other")), "failure");
    }
}
