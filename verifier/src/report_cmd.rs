//! `custody report`: parses the subject and period, collects the proven
//! entries ([`custody_verifier::report::collect`]), and writes the report
//! in the chosen format to stdout or, atomically, to a file. Nothing is
//! written unless the whole report was proven.

use std::io::Write as _;
use std::time::Duration;

use custody_registry::names::{ActorName, Digest, ModelName};
use custody_registry::timestamp::Timestamp;
use custody_verifier::error::Error;
use custody_verifier::history::Subject;
use custody_verifier::home::{write_atomic, Home};
use custody_verifier::report::{
    build, collect_registry, collect_subject, html, markdown, Method, Range, Report, TimeBasis,
};
use custody_verifier::trust::Trust;
use serde::Serialize;

use crate::audit_args::{ReportArgs, ReportFormat, TimeBasisChoice};
use crate::output::{Format, Printer, Render};
use crate::parse;

/// What `report -o FILE` prints: where the report went and what it holds.
#[derive(Debug, Serialize)]
pub struct ReportWritten {
    /// The file written.
    pub path: String,
    /// `markdown`, `json` or `html`.
    pub format: &'static str,
    /// Rows in the report.
    pub events: usize,
    /// Leaf indexes of break-glass actions in the range.
    pub break_glass: Vec<u64>,
    /// `audit` or `entries_chain`.
    pub completeness: Method,
    /// The checkpoint size everything was proven against.
    pub size: u64,
}

impl Render for ReportWritten {
    fn text(&self) -> String {
        let mut s = format!(
            "report written to {} ({}): {} events, proven complete by {} at size {}\n",
            self.path,
            self.format,
            self.events,
            match self.completeness {
                Method::Audit => "a full audit",
                Method::EntriesChain => "the committed entries chain",
            },
            self.size
        );
        if !self.break_glass.is_empty() {
            s += &format!(
                "BREAK-GLASS actions in the period: {} (entries {:?})\n",
                self.break_glass.len(),
                self.break_glass
            );
        }
        s
    }
}

fn subject(a: &ReportArgs) -> Result<Option<Subject>, Error> {
    Ok(match (&a.model, &a.name, &a.actor, &a.digest) {
        (Some(n), ..) | (None, Some(n), ..) => Some(Subject::Name(parse("name", ModelName::new(n))?)),
        (None, None, Some(actor), _) => Some(Subject::Actor(parse("--actor", ActorName::new(actor))?)),
        (None, None, None, Some(d)) => Some(Subject::Digest(parse("--digest", Digest::new(d))?)),
        (None, None, None, None) => None,
    })
}

/// Runs `custody report`.
pub fn report(
    trust: &Trust,
    home: &Home,
    a: &ReportArgs,
    output: Format,
    wait: Duration,
    p: &mut Printer,
) -> anyhow::Result<()> {
    let subject = subject(a)?;
    let from = parse("--from", Timestamp::parse(&a.from))?;
    let to = parse("--to", Timestamp::parse(&a.to))?;
    if from > to {
        return Err(Error::Usage(format!("--from {from} is after --to {to}")).into());
    }
    let format =
        a.format.unwrap_or(if output == Format::Json { ReportFormat::Json } else { ReportFormat::Markdown });
    if output == Format::Json && format != ReportFormat::Json && a.out.is_none() {
        return Err(Error::Usage(
            "--output json prints the JSON report: write markdown or html to a file with -o".into(),
        )
        .into());
    }
    let range = Range {
        from,
        to,
        basis: match a.time_basis {
            TimeBasisChoice::Statement => TimeBasis::Statement,
            TimeBasisChoice::Received => TimeBasis::Received,
        },
        max_accesses: a.max_accesses,
    };
    let opts = a.tuning.options();
    let collected = match &subject {
        None => collect_registry(trust, home, &opts, &range)?,
        Some(s) => collect_subject(trust, home, s, wait, a.audit.then_some(&opts))?,
    };
    let r = build(collected, &range);
    write(a, format, output, &r, p)
}

fn json(r: &Report) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

/// Writes the proven report where it was asked.
fn write(
    a: &ReportArgs,
    format: ReportFormat,
    output: Format,
    r: &Report,
    p: &mut Printer,
) -> anyhow::Result<()> {
    if let Some(path) = &a.markdown {
        write_atomic(path, markdown(r).as_bytes(), 0o644)?;
    }
    if let Some(path) = &a.json_file {
        write_atomic(path, json(r)?.as_bytes(), 0o644)?;
    }
    let (body, name) = match format {
        ReportFormat::Markdown => (markdown(r), "markdown"),
        ReportFormat::Json => (json(r)?, "json"),
        ReportFormat::Html => (html(r), "html"),
    };
    match &a.out {
        Some(path) => {
            write_atomic(path, body.as_bytes(), 0o644)?;
            p.result(&ReportWritten {
                path: path.display().to_string(),
                format: name,
                events: r.events.len(),
                break_glass: r.break_glass.clone(),
                completeness: r.completeness.method,
                size: r.log.size,
            })
        }
        // One JSON object, as every command prints with --output json.
        None if output == Format::Json => p.result(r),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(body.as_bytes()).and_then(|()| out.flush()).map_err(|e| Error::io("stdout", e))?;
            Ok(())
        }
    }
}
