//! `custody report`: a compliance report over a time range, on the whole
//! registry or on one model name, artifact or actor, built only from
//! entries proven in the log and proven complete.
//!
//! Completeness is never assumed ([`collect`]):
//! - the whole registry: a full audit ([`crate::audit`], resumed from its
//!   saved replay state when it checks out) authenticates every entry up
//!   to the trusted, cosigned checkpoint against its tree and replays
//!   every signature and registry rule; the report is made of exactly the
//!   entries that audit authenticated, so nothing can be left out;
//! - one subject: the log's listing of its entries must reproduce the
//!   entries chain the checkpoint's registry state commits to
//!   ([`crate::history::proven_entries`]), and each entry is proven
//!   included.
//!
//! A log that lies is refused (exit 2, or 3 for a checkpoint inconsistent
//! with the remembered one) before anything is written. The same
//! [`Report`] value is rendered as Markdown ([`markdown()`]), JSON (its
//! `Serialize`, schema [`SCHEMA`], field names stable) or a self-contained
//! HTML page ([`html()`]).

pub mod collect;
mod html;
mod markdown;

use std::collections::{BTreeMap, BTreeSet};

use custody_registry::log_event::LogEventBody;
use custody_registry::names::{Digest, ModelName};
use custody_registry::statement::events::BreakGlass;
use custody_registry::statement::{Context, Event, Text};
use custody_registry::timestamp::Timestamp;
use serde::Serialize;

use crate::entries::{ProvenLogEvent, ProvenStatement};
use crate::history::{rows, Row, Subject};

pub use collect::{collect_registry, collect_subject, Collected};
pub use html::html;
pub use markdown::markdown;

/// The `schema` of the JSON report; a change that removes or renames a
/// field gets a new one.
pub const SCHEMA: &str = "custody.dev/compliance-report/v1";

/// The action name of a break-glass statement, flagged in every format.
pub const BREAK_GLASS: &str = "break_glass";
/// The action name of an integrity violation the log recorded.
pub const INTEGRITY_VIOLATION: &str = "integrity_violation";

/// Which time of an entry the range applies to (both are in every row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    /// The time the signer wrote in the statement.
    Statement,
    /// The time the log received it (in the leaf, set by the log).
    Received,
}

/// How a row is known to be legitimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A full audit of this client authenticated the entry and replayed it
    /// without a finding (signature, signer's key and role at that point,
    /// registry rules).
    Audited,
    /// Proven included under the checkpoint and in the committed entries
    /// chain; the rules it passed were enforced by the log, not replayed
    /// here (run the report with `--audit`, or on the whole registry).
    Included,
}

impl Verdict {
    /// The word the text formats show.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Audited => "audited",
            Verdict::Included => "included",
        }
    }
}

/// How the report's list was proven complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A full audit of the log up to the checkpoint.
    Audit,
    /// The subject's entries chain in the committed registry state.
    EntriesChain,
}

/// What proves the report lists every event.
#[derive(Debug, Clone, Serialize)]
pub struct Completeness {
    /// How.
    pub method: Method,
    /// Entries covered: the tree size (audit), or the subject's entries
    /// (entries chain).
    pub entries: u64,
    /// The last entry of the subject's chain (entries chain only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<u64>,
    /// The proof in words.
    pub explanation: String,
}

/// The audit this report rests on, if any.
#[derive(Debug, Clone, Serialize)]
pub struct AuditState {
    /// Size of the checkpoint the last clean audit of this client covered
    /// (every entry below it is `audited`); `None`: no audit.
    pub audited_size: Option<u64>,
    /// The state root the audit recomputed at that size (base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_root: Option<String>,
    /// Where this run's replay started (an audit run by the report only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_from: Option<u64>,
}

/// The verified log state a report rests on.
#[derive(Debug, Clone, Serialize)]
pub struct LogState {
    /// Origin.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root (base64).
    pub root: String,
    /// Witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
    /// Always true in a produced report: the checkpoint satisfied the policy
    /// and was proven consistent with the previously remembered one.
    pub consistency_verified: bool,
}

/// One event in the report: the proven row `history` shows, plus what a
/// compliance reader needs.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    /// `index`, `time` (statement time), `received_ms`, `actor`, `event`,
    /// `name`, `version`, `detail`, `reason`.
    #[serde(flatten)]
    pub row: Row,
    /// The log's receive time, UTC, to the second.
    pub received: String,
    /// The statement's environment.
    pub environment: Option<String>,
    /// The statement's pipeline.
    pub pipeline: Option<String>,
    /// The statement's source (host, address or service).
    pub source: Option<String>,
    /// How the entry is known to be legitimate.
    pub verdict: Verdict,
    /// A break-glass action: a rule bypassed, with its reason.
    pub break_glass: bool,
}

/// A compliance report over a time range.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// `registry`, `name`, `actor` or `digest`.
    pub scope: &'static str,
    /// The model name, for a report on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The artifact digest, for a report on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The actor, for a report on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What the report is about, as the titles name it.
    #[serde(skip)]
    pub subject: String,
    /// Range start (inclusive).
    pub from: String,
    /// Range end (inclusive).
    pub to: String,
    /// Which time the range applies to.
    pub time_basis: TimeBasis,
    /// Log origin, size, root and cosigners every entry was proven against.
    pub log: LogState,
    /// How the list was proven complete.
    pub completeness: Completeness,
    /// The audit the verdicts rest on.
    pub audit: AuditState,
    /// Count per event type.
    pub events_by_type: BTreeMap<String, usize>,
    /// Count per actor.
    pub actors: BTreeMap<String, usize>,
    /// Versions touched in the range (`name@version` unless the report
    /// is on one name).
    pub versions_affected: BTreeSet<String>,
    /// Leaf indexes of the break-glass actions in the range.
    pub break_glass: Vec<u64>,
    /// Leaf indexes of the integrity violations in the range.
    pub integrity_violations: Vec<u64>,
    /// Access rows left out by `--max-accesses` (each was still proven
    /// and is counted in `events_by_type`).
    pub accesses_omitted: usize,
    /// The rows in the range, in log order.
    pub events: Vec<ReportRow>,
}

/// What to put in a report.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (inclusive).
    pub to: Timestamp,
    /// Which time the range applies to.
    pub basis: TimeBasis,
    /// Most access rows listed.
    pub max_accesses: usize,
}

impl Range {
    /// Whether a proven statement is in the range.
    pub fn contains(&self, p: &ProvenStatement) -> bool {
        self.contains_times(p.signed.statement.time.unix_secs(), p.received_ms)
    }

    /// Whether an entry with this own time (seconds) and receive time (ms)
    /// is in the range.
    pub fn contains_times(&self, own_secs: u64, received_ms: u64) -> bool {
        let secs = match self.basis {
            TimeBasis::Statement => own_secs,
            TimeBasis::Received => received_ms / 1000,
        };
        secs >= self.from.unix_secs() && secs <= self.to.unix_secs()
    }
}

/// The receive time, ms since the epoch, as people read it.
fn received(ms: u64) -> String {
    Timestamp::from_unix_secs(ms / 1000).map_or_else(|| format!("{ms} ms"), |t| t.to_string())
}

/// Builds the report from collected entries: the rows of those in the
/// range, summarised.
pub fn build(mut c: Collected, range: &Range) -> Report {
    let owned: Vec<ProvenStatement> =
        std::mem::take(&mut c.proven).into_iter().filter(|p| range.contains(p)).collect();
    let mut all_rows = rows(&owned, usize::MAX);
    // A tag move's version comes from the publishes of the whole log (or
    // subject), not only from those in the range.
    for (row, p) in all_rows.iter_mut().zip(&owned) {
        let tag = match &p.signed.statement.event {
            Event::Tag(t) | Event::BreakGlass(BreakGlass::Tag(t)) => Some(t),
            _ => None,
        };
        if let Some(v) = tag.and_then(|t| c.versions.get(&(t.name.clone(), t.digest))) {
            row.version = Some(v.join(","));
        }
    }
    // Rows with the statement each came from (none for a log event), in
    // log order.
    let mut all: Vec<(Row, Option<&ProvenStatement>)> =
        all_rows.into_iter().zip(&owned).map(|(r, p)| (r, Some(p))).collect();
    for e in c.log_events.iter().filter(|e| range.contains_times(e.event.time.unix_secs(), e.received_ms)) {
        all.push((log_event_row(e, &c), None));
    }
    all.sort_by_key(|(r, _)| r.index);
    let mut events_by_type = BTreeMap::new();
    let mut actors = BTreeMap::new();
    let mut versions_affected = BTreeSet::new();
    let (mut break_glass, mut integrity_violations) = (Vec::new(), Vec::new());
    let mut events = Vec::with_capacity(all.len());
    let mut accesses = 0usize;
    let mut accesses_omitted = 0usize;
    for (row, p) in all {
        *events_by_type.entry(row.event.clone()).or_insert(0) += 1;
        *actors.entry(row.actor.clone()).or_insert(0) += 1;
        for v in row.version.iter().flat_map(|v| v.split(',')) {
            match (&c.subject, &row.name) {
                (Some(Subject::Name(_)), _) | (_, None) => versions_affected.insert(v.to_owned()),
                (_, Some(name)) => versions_affected.insert(format!("{name}@{v}")),
            };
        }
        let flagged = row.event == BREAK_GLASS;
        if flagged {
            break_glass.push(row.index);
        }
        if row.event == INTEGRITY_VIOLATION {
            integrity_violations.push(row.index);
        }
        if row.event == "access" {
            accesses += 1;
            if accesses > range.max_accesses {
                accesses_omitted += 1;
                continue;
            }
        }
        let ctx = p.map(|p| &p.signed.statement.context);
        let text =
            |f: fn(&Context) -> &Option<Text>| ctx.and_then(|c| f(c).as_ref()).map(|t| t.as_str().to_owned());
        events.push(ReportRow {
            received: received(row.received_ms),
            environment: text(|c| &c.environment),
            pipeline: text(|c| &c.pipeline),
            source: text(|c| &c.source),
            verdict: if c.audit.audited_size.is_some_and(|s| row.index < s) {
                Verdict::Audited
            } else {
                Verdict::Included
            },
            break_glass: flagged,
            row,
        });
    }
    let (mut name, mut digest, mut actor) = (None, None, None);
    let scope = match &c.subject {
        None => "registry",
        Some(Subject::Name(n)) => {
            name = Some(n.as_str().to_owned());
            "name"
        }
        Some(Subject::Digest(d)) => {
            digest = Some(d.to_string());
            "digest"
        }
        Some(Subject::Actor(a)) => {
            actor = Some(a.as_str().to_owned());
            "actor"
        }
    };
    Report {
        schema: SCHEMA,
        scope,
        name,
        digest,
        actor,
        subject: c.subject.as_ref().map_or_else(|| "whole registry".to_owned(), Subject::label),
        from: range.from.to_string(),
        to: range.to.to_string(),
        time_basis: range.basis,
        log: c.log,
        completeness: c.completeness,
        audit: c.audit,
        events_by_type,
        actors,
        versions_affected,
        break_glass,
        integrity_violations,
        accesses_omitted,
        events,
    }
}

/// Versions by (name, digest), from publishes: what a tag move's digest
/// was published as.
pub type Versions = BTreeMap<(ModelName, Digest), Vec<String>>;

/// Adds a proven statement's publish, if it is one, to `versions`.
pub fn note_version(versions: &mut Versions, p: &ProvenStatement) {
    if let Event::Publish(e) = &p.signed.statement.event {
        versions.entry((e.name.clone(), e.digest)).or_default().push(e.version.as_str().to_owned());
    }
}

/// The time basis in words, for the text formats.
pub fn basis_words(b: TimeBasis) -> &'static str {
    match b {
        TimeBasis::Statement => "statement time (what the signer wrote)",
        TimeBasis::Received => "log receive time (what the log recorded)",
    }
}

/// The row of an event the log signed (an integrity violation): the names
/// and versions that published the digest, and what the log observed.
fn log_event_row(e: &ProvenLogEvent, c: &Collected) -> Row {
    let LogEventBody::IntegrityViolation(v) = &e.event.event;
    let mut names = Vec::new();
    let mut versions = Vec::new();
    for ((name, digest), vs) in &c.versions {
        if *digest == v.digest {
            names.push(name.as_str());
            versions.extend(vs.iter().map(String::as_str));
        }
    }
    let name = match &c.subject {
        Some(Subject::Name(n)) => Some(n.as_str().to_owned()),
        _ => (!names.is_empty()).then(|| names.join(",")),
    };
    crate::history::log_event_row_of(e, name, &versions)
}
