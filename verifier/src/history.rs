//! `custody history` and the rows of `custody report`: the story of a
//! model name, an artifact or an actor, built from entries proven in the
//! log.
//!
//! The log's listing only says *which* entries to read, and it is proven
//! complete by the subject's entries chain in the registry state the
//! checkpoint commits to ([`crate::entries`]): a log that omits, adds or
//! reorders an entry is refused (exit 2). Each entry is then fetched and
//! its inclusion verified under that checkpoint, and every row is derived
//! from the signed statement in it; an entry that is not about the subject
//! is refused too. What is not established here: that each statement was
//! authorized; `custody audit` replays the whole log for that.

use std::collections::BTreeMap;
use std::time::Duration;

use custody_registry::commitment::StateKey;
use custody_registry::names::{ActorName, Digest, ModelName};
use custody_registry::statement::{Event, SignedStatement};
use serde::Serialize;

use crate::entries::{
    listing_path, proven_complete, proven_entry, ProvenEntry, ProvenLogEvent, ProvenStatement,
};
use crate::error::{Error, Result};
use crate::trust::{Trust, Trusted};

/// What a history is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Every entry about a model name.
    Name(ModelName),
    /// Every publish and access of an artifact.
    Digest(Digest),
    /// Every entry an actor signed.
    Actor(ActorName),
}

impl Subject {
    /// The state key whose entries chain proves the subject's list.
    pub fn key(&self) -> StateKey {
        match self {
            Subject::Name(name) => StateKey::NameEntries { name: name.clone() },
            Subject::Digest(digest) => StateKey::DigestEntries { digest: *digest },
            Subject::Actor(actor) => StateKey::ActorEntries { actor: actor.clone() },
        }
    }

    /// The subject as people write it: `acme/model`, `artifact sha256:..`,
    /// `actor alice`.
    pub fn label(&self) -> String {
        match self {
            Subject::Name(name) => name.as_str().to_owned(),
            Subject::Digest(digest) => format!("artifact {digest}"),
            Subject::Actor(actor) => format!("actor {}", actor.as_str()),
        }
    }

    /// Whether a statement belongs in the subject's list: the chain
    /// proves the list's indexes, this that each entry is what the list
    /// says it is.
    fn covers(&self, s: &SignedStatement) -> bool {
        let st = &s.statement;
        match self {
            Subject::Name(name) => st.event.name() == Some(name),
            Subject::Actor(actor) => &st.actor == actor,
            Subject::Digest(digest) => match &st.event {
                Event::Publish(p) => &p.digest == digest,
                Event::Access(a) => &a.digest == digest,
                _ => false,
            },
        }
    }
}

/// One proven entry about the subject.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Leaf index.
    pub index: u64,
    /// The statement's time (UTC).
    pub time: String,
    /// The log's receive time, ms since the epoch.
    pub received_ms: u64,
    /// Who signed it.
    pub actor: String,
    /// The action (`publish`, `tag`, `promote`, `approve`, `rollback`,
    /// `access`, `protect`, `grant`, `revoke`, `revoke_key`, `rotate`).
    pub event: String,
    /// The model name concerned, if any.
    pub name: Option<String>,
    /// Version concerned, if any.
    pub version: Option<String>,
    /// Human summary.
    pub detail: String,
    /// The statement's reason.
    pub reason: String,
}

/// A subject's proven history.
#[derive(Debug, Clone)]
pub struct History {
    /// What it is about.
    pub subject: Subject,
    /// Checkpoint every row was proven against.
    pub checkpoint: Trusted,
    /// Rows in log order.
    pub rows: Vec<Row>,
}

/// Collects, proves and decodes the history of a model name (see
/// [`subject_history`]).
pub fn history(trust: &Trust, name: &ModelName, max_accesses: usize, timeout: Duration) -> Result<History> {
    subject_history(trust, &Subject::Name(name.clone()), max_accesses, timeout)
}

/// Collects, proves and decodes the history of `subject`: every entry of
/// it, proven complete by its committed entries chain, each proven
/// included and about the subject. At most `max_accesses` access rows are
/// shown (all are proven).
pub fn subject_history(
    trust: &Trust,
    subject: &Subject,
    max_accesses: usize,
    timeout: Duration,
) -> Result<History> {
    let entries = proven_entries(trust, subject, timeout)?;
    let mut rows = rows(&entries.statements, max_accesses);
    for e in &entries.log_events {
        rows.extend(log_event_row(subject, &entries.statements, e));
    }
    rows.sort_by_key(|r| r.index);
    Ok(History { subject: subject.clone(), checkpoint: entries.checkpoint, rows })
}

/// A subject's entries, proven complete under one checkpoint.
#[derive(Debug, Clone)]
pub struct ProvenEntries {
    /// The checkpoint every entry was proven under.
    pub checkpoint: Trusted,
    /// The signed statements about the subject, in log order.
    pub statements: Vec<ProvenStatement>,
    /// The log's own events about the subject (integrity violations), in
    /// log order, each verified with the log's key.
    pub log_events: Vec<ProvenLogEvent>,
}

/// Every entry of `subject`, proven complete by its committed entries
/// chain and each proven included and about the subject, with the
/// checkpoint they were proven under.
pub fn proven_entries(trust: &Trust, subject: &Subject, timeout: Duration) -> Result<ProvenEntries> {
    let key = subject.key();
    let path = listing_path(&key).ok_or_else(|| Error::verify("no listing for this key".to_string()))?;
    let complete = proven_complete(trust, &key, &path, timeout)?;
    if complete.committed.count == 0 {
        return Err(Error::verify(format!("{} is not in the log", subject.label())));
    }
    let mut proven = Vec::with_capacity(complete.indexes.len());
    let mut events = Vec::new();
    let not_about =
        |i: u64| Error::verify(format!("entry {i} is listed for {} but is not about it", subject.label()));
    for &i in &complete.indexes {
        match proven_entry(trust, i, &complete.checkpoint)? {
            ProvenEntry::Statement(p) if subject.covers(&p.signed) => proven.push(p),
            ProvenEntry::LogEvent(e) => events.push(e),
            ProvenEntry::Statement(_) => return Err(not_about(i)),
        }
    }
    for e in &events {
        if log_event_row(subject, &proven, e).is_none() {
            return Err(not_about(e.index));
        }
    }
    Ok(ProvenEntries { checkpoint: complete.checkpoint, statements: proven, log_events: events })
}

/// The rows of proven statements, in the order given; at most
/// `max_accesses` access rows.
pub fn rows(proven: &[ProvenStatement], max_accesses: usize) -> Vec<Row> {
    // Versions by name and digest, from proven publishes only (what a tag
    // move's digest was published as).
    let mut versions_of: BTreeMap<(&ModelName, Digest), Vec<&str>> = BTreeMap::new();
    for p in proven {
        if let Event::Publish(e) = &p.signed.statement.event {
            versions_of.entry((&e.name, e.digest)).or_default().push(e.version.as_str());
        }
    }
    let mut out = Vec::new();
    let mut accesses = 0usize;
    for p in proven {
        let st = &p.signed.statement;
        let (version, detail) = match &st.event {
            Event::Publish(e) => {
                (Some(e.version.as_str().to_owned()), format!("{} ({} bytes)", e.digest, e.size))
            }
            Event::Tag(t) => {
                let prev = t.previous.map(|p| format!(", previous move at {p}")).unwrap_or_default();
                let v = versions_of.get(&(&t.name, t.digest)).map(|v| v.join(","));
                (v, format!("{} -> {}{prev}", t.tag.as_str(), t.digest))
            }
            Event::Promote(e) => (Some(e.version.as_str().to_owned()), format!("to {}", e.to.as_str())),
            Event::Approve(e) => (Some(e.version.as_str().to_owned()), "approved".to_owned()),
            Event::Rollback(e) => (Some(e.version.as_str().to_owned()), "back to production".to_owned()),
            Event::Access(e) => {
                accesses += 1;
                if accesses > max_accesses {
                    continue;
                }
                (Some(e.version.as_str().to_owned()), format!("read {}", e.digest))
            }
            Event::Protect(e) => {
                let statuses: Vec<&str> = e.statuses.iter().map(|s| s.as_str()).collect();
                (None, format!("{} requires {}", e.tag.as_str(), statuses.join(",")))
            }
            Event::Grant(g) => (
                None,
                format!("{} on {} to {} (key {})", g.role.as_str(), g.pattern, g.actor.as_str(), g.key.id()),
            ),
            Event::Revoke(r) => {
                (None, format!("{} on {} from {}", r.role.as_str(), r.pattern, r.actor.as_str()))
            }
            Event::RevokeKey(r) => (None, format!("key {} of {}", r.key_id, r.actor.as_str())),
            Event::Rotate(r) => (None, format!("to key {}", r.new_key.id())),
            Event::Hold(h) => (h.version.as_ref().map(|v| v.as_str().to_owned()), held_detail("held", h)),
            Event::Release(h) => {
                (h.version.as_ref().map(|v| v.as_str().to_owned()), held_detail("released", h))
            }
            Event::Deploy(d) => {
                (Some(d.version.as_str().to_owned()), format!("deployed {} to {}", d.digest, d.target))
            }
            Event::Transfer(t) => {
                (Some(t.version.as_str().to_owned()), format!("copied {} to {}", t.digest, t.destination))
            }
            Event::BreakGlass(b) => break_glass_row(b, &versions_of),
        };
        out.push(Row {
            index: p.index,
            time: st.time.to_string(),
            received_ms: p.received_ms,
            actor: st.actor.as_str().to_owned(),
            event: st.event.action().to_owned(),
            name: st.event.name().map(|n| n.as_str().to_owned()),
            version,
            detail,
            reason: st.context.reason.as_str().to_owned(),
        });
    }
    out
}

/// The row of a log event about the subject (`None`: it is not about
/// it). An event about a digest belongs to the digest and to every name
/// whose publish of it is in the list.
fn log_event_row(subject: &Subject, proven: &[ProvenStatement], e: &ProvenLogEvent) -> Option<Row> {
    use custody_registry::log_event::LogEventBody;
    let LogEventBody::IntegrityViolation(v) = &e.event.event;
    let versions: Vec<&str> = proven
        .iter()
        .filter(|p| p.index < e.index)
        .filter_map(|p| match &p.signed.statement.event {
            Event::Publish(x) if x.digest == v.digest => Some(x.version.as_str()),
            _ => None,
        })
        .collect();
    let name = match subject {
        Subject::Name(n) if !versions.is_empty() => Some(n.as_str().to_owned()),
        Subject::Digest(d) if *d == v.digest => None,
        _ => return None,
    };
    Some(log_event_row_of(e, name, &versions))
}

/// The row of log event `e`, shown under `name` with the `versions` that
/// published its digest: one wording for history and reports.
pub fn log_event_row_of(e: &ProvenLogEvent, name: Option<String>, versions: &[&str]) -> Row {
    use custody_registry::log_event::LogEventBody;
    let LogEventBody::IntegrityViolation(v) = &e.event.event;
    Row {
        index: e.index,
        time: e.event.time.to_string(),
        received_ms: e.received_ms,
        actor: format!("log {}", e.event.origin),
        event: e.event.event.action().to_owned(),
        name,
        version: (!versions.is_empty()).then(|| versions.join(",")),
        detail: format!(
            "stored {} read as {} under the access at entry {} (signed by the log's key)",
            v.digest, v.observed, v.access_index
        ),
        reason: "detected by the log".to_owned(),
    }
}

/// The detail of a hold or release: the whole name or one version.
fn held_detail(what: &str, h: &custody_registry::statement::events::HoldTarget) -> String {
    match &h.version {
        Some(_) => format!("{what} (this version)"),
        None => format!("{what} (the whole name)"),
    }
}

/// The row of a break-glass: the wrapped action and the rule it bypassed.
fn break_glass_row(
    b: &custody_registry::statement::events::BreakGlass,
    versions_of: &BTreeMap<(&ModelName, Digest), Vec<&str>>,
) -> (Option<String>, String) {
    use custody_registry::statement::events::BreakGlass;
    match b {
        BreakGlass::Promote(e) => (
            Some(e.version.as_str().to_owned()),
            format!("BREAK-GLASS promote to {} without the two-person approval", e.to.as_str()),
        ),
        BreakGlass::Rollback(e) => (
            Some(e.version.as_str().to_owned()),
            "BREAK-GLASS back to production without the two-person approval".to_owned(),
        ),
        BreakGlass::Tag(t) => (
            versions_of.get(&(&t.name, t.digest)).map(|v| v.join(",")),
            format!("BREAK-GLASS {} -> {} past its protection", t.tag.as_str(), t.digest),
        ),
    }
}

/// Renders rows as an aligned text table.
pub fn table(rows: &[Row]) -> String {
    let head = ["INDEX", "TIME", "ACTOR", "EVENT", "VERSION", "DETAIL"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.index.to_string(),
                r.time.clone(),
                r.actor.clone(),
                r.event.clone(),
                r.version.clone().unwrap_or_else(|| "-".into()),
                r.detail.clone(),
            ]
        })
        .collect();
    let mut w = head.map(str::len);
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.len());
        }
    }
    let line = |c: [&str; 6]| {
        let mut l = String::new();
        for (i, s) in c.iter().enumerate() {
            if i == 5 {
                l.push_str(s);
            } else {
                l.push_str(&format!("{s:<width$}  ", width = w[i]));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(head);
    for c in &cells {
        out.push_str(&line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]]));
    }
    out
}
