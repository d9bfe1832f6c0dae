//! `custody report`: a compliance report over a period, for a model name,
//! an artifact or an actor, from a history proven complete and entry by
//! entry ([`crate::history`]). Markdown for people, JSON for machines.

use std::collections::{BTreeMap, BTreeSet};

use custody_registry::timestamp::Timestamp;
use serde::Serialize;

use crate::history::{History, Row, Subject};

/// A compliance report over a time range.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The model name, for a report on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The artifact digest, for a report on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The actor, for a report on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What the report is about, as the Markdown title names it.
    #[serde(skip)]
    pub subject: String,
    /// Range start (inclusive), statement time.
    pub from: String,
    /// Range end (inclusive), statement time.
    pub to: String,
    /// Log origin, size and root every entry was proven against.
    pub log: LogState,
    /// Count per event type.
    pub events_by_type: BTreeMap<String, usize>,
    /// Count per actor.
    pub actors: BTreeMap<String, usize>,
    /// Versions touched in the range (`name@version` unless the report
    /// is on one name).
    pub versions_affected: BTreeSet<String>,
    /// The rows in the range.
    pub events: Vec<Row>,
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

/// Builds the report for rows whose statement time is in `[from, to]`.
pub fn report(h: &History, from: Timestamp, to: Timestamp) -> Report {
    let rows: Vec<Row> = h
        .rows
        .iter()
        .filter(|r| Timestamp::parse(&r.time).is_ok_and(|t| t >= from && t <= to))
        .cloned()
        .collect();
    let mut events_by_type = BTreeMap::new();
    let mut actors = BTreeMap::new();
    let mut versions_affected = BTreeSet::new();
    for r in &rows {
        *events_by_type.entry(r.event.clone()).or_insert(0) += 1;
        *actors.entry(r.actor.clone()).or_insert(0) += 1;
        for v in r.version.iter().flat_map(|v| v.split(',')) {
            match (&h.subject, &r.name) {
                (Subject::Name(_), _) | (_, None) => versions_affected.insert(v.to_owned()),
                (_, Some(name)) => versions_affected.insert(format!("{name}@{v}")),
            };
        }
    }
    let c = &h.checkpoint;
    let (mut name, mut digest, mut actor) = (None, None, None);
    match &h.subject {
        Subject::Name(n) => name = Some(n.as_str().to_owned()),
        Subject::Digest(d) => digest = Some(d.to_string()),
        Subject::Actor(a) => actor = Some(a.as_str().to_owned()),
    }
    Report {
        name,
        digest,
        actor,
        subject: h.subject.label(),
        from: from.to_string(),
        to: to.to_string(),
        log: LogState {
            origin: c.checkpoint.origin.clone(),
            size: c.checkpoint.size,
            root: c.checkpoint.root.to_base64(),
            cosigners: c.cosigners.clone(),
            consistency_verified: true,
        },
        events_by_type,
        actors,
        versions_affected,
        events: rows,
    }
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut m = format!(
        "# Compliance report: {}\n\nPeriod: {} to {} (statement times, UTC)\n\n",
        r.subject, r.from, r.to
    );
    m.push_str(&format!(
        "Log: `{}` at size {}, root `{}`; checkpoint satisfied the trust policy{} and was verified consistent with the previously seen one. Every event below is an entry whose inclusion under this checkpoint was verified.\n\n",
        r.log.origin,
        r.log.size,
        r.log.root,
        if r.log.cosigners.is_empty() { String::new() } else { format!(" (cosigned by {})", r.log.cosigners.join(", ")) }
    ));
    m.push_str("## Events by type\n\n| event | count |\n|---|---|\n");
    for (k, v) in &r.events_by_type {
        m.push_str(&format!("| {k} | {v} |\n"));
    }
    m.push_str("\n## Actors\n\n| actor | events |\n|---|---|\n");
    for (k, v) in &r.actors {
        m.push_str(&format!("| {k} | {v} |\n"));
    }
    let versions: Vec<&str> = r.versions_affected.iter().map(String::as_str).collect();
    m.push_str(&format!(
        "\n## Versions affected\n\n{}\n",
        if versions.is_empty() { "none".to_owned() } else { versions.join(", ") }
    ));
    m.push_str("\n## Events\n\n| index | time | actor | event | name | version | detail | reason |\n|---|---|---|---|---|---|---|---|\n");
    for e in &r.events {
        let esc = |s: &str| s.replace('|', "\\|");
        m.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            e.index,
            e.time,
            esc(&e.actor),
            e.event,
            esc(e.name.as_deref().unwrap_or("-")),
            esc(e.version.as_deref().unwrap_or("-")),
            esc(&e.detail),
            esc(&e.reason)
        ));
    }
    m
}
