//! `custody history` and `custody report`: a model's story, built from
//! entries proven in the log.
//!
//! The server's model and artifact queries only say *which* entries to
//! read. Each entry is fetched and its inclusion verified under one trusted
//! checkpoint; every row is then derived from the signed statement in the
//! entry, never from the query answer, and rows about other names are
//! dropped. The list is proven complete by the name's entries chain in the
//! registry state the checkpoint commits to ([`crate::state`]): a log that
//! omits, adds or reorders an entry is refused (exit 2). What is not
//! established here: that each statement was authorized; `custody audit`
//! replays the whole log for that.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use custody_registry::commitment::{EntriesValue, StateKey, StateValue};
use custody_registry::leaf::Leaf;
use custody_registry::names::{Digest, ModelName};
use custody_registry::statement::{Event, SignedStatement};
use custody_registry::timestamp::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::statements::{fetch_proven, wait_checkpoint};
use crate::trust::{Trust, Trusted};

/// One proven entry about the model.
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
    /// The action (`publish`, `tag`, `promote`, `approve`, `rollback`, `access`).
    pub event: String,
    /// Version concerned, if any.
    pub version: Option<String>,
    /// Human summary.
    pub detail: String,
    /// The statement's reason.
    pub reason: String,
}

/// A model's proven history.
#[derive(Debug, Clone)]
pub struct History {
    /// The model.
    pub name: ModelName,
    /// Checkpoint every row was proven against.
    pub checkpoint: Trusted,
    /// Rows in log order.
    pub rows: Vec<Row>,
}

/// Every entry index the log lists about `name` below `below`, in order.
fn listed_entries(trust: &Trust, name: &ModelName, below: u64) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let q = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let page: Value =
            trust.client().get_json(&format!("registry/models/{}/entries?limit=1000{q}", name.as_str()))?;
        let indexes: Vec<u64> =
            page["indexes"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
        let done = indexes.iter().any(|&i| i >= below);
        out.extend(indexes.iter().copied().filter(|&i| i < below));
        match page["next_after"].as_u64() {
            // Indexes must grow page after page: a log looping us is cut.
            Some(n) if !done && !indexes.is_empty() && after.map_or(true, |a| n > a) && n < below => {
                after = Some(n)
            }
            _ => break,
        }
    }
    Ok(out)
}

/// Collects, proves and decodes the history of `name`: every entry about
/// it, proven complete by the entries chain committed in the registry
/// state (an entry the log leaves out, adds or reorders changes the chain:
/// refused), each entry proven included. At most `max_accesses` access
/// rows are shown (all are proven).
pub fn history(trust: &Trust, name: &ModelName, max_accesses: usize, timeout: Duration) -> Result<History> {
    // Every entry the log lists now, then a checkpoint covering the last
    // one and the commitment after it: the history is as of that
    // checkpoint, whose state covers every leaf before its last.
    let all = match listed_entries(trust, name, u64::MAX) {
        Err(Error::Refused { status: 404, .. }) => Vec::new(),
        other => other?,
    };
    let checkpoint = wait_checkpoint(trust, all.last().map_or(0, |l| l + 1), timeout)?;
    let covered = checkpoint.checkpoint.size.saturating_sub(1);
    // Listed again, below the checkpoint's commitment: entries logged since
    // the first listing are now in both the list and the committed chain.
    let listed = match listed_entries(trust, name, covered) {
        Err(Error::Refused { status: 404, .. }) => Vec::new(),
        other => other?,
    };
    let key = StateKey::NameEntries { name: name.clone() };
    let proven_state = crate::state::prove(trust, &checkpoint, std::slice::from_ref(&key))?;
    let committed = match proven_state.get(&key) {
        Some(StateValue::Entries(e)) => *e,
        _ => EntriesValue::default(),
    };
    if committed.count == 0 {
        return Err(Error::verify(format!("{} is not in the log", name.as_str())));
    }
    if EntriesValue::of(listed.iter().copied()) != committed {
        return Err(Error::verify(format!(
            "the log's list of entries about {} is not complete: it lists {}, the committed state counts {} (last at entry {})",
            name.as_str(),
            listed.len(),
            committed.count,
            committed.last
        )));
    }
    let mut proven: Vec<(u64, u64, SignedStatement)> = Vec::with_capacity(listed.len());
    for &i in &listed {
        let (entry, _) = fetch_proven(trust, i, &checkpoint)?;
        let leaf = Leaf::decode(&entry).map_err(|e| Error::verify(format!("entry {i}: {e}")))?;
        let s =
            SignedStatement::parse(leaf.envelope).map_err(|e| Error::verify(format!("entry {i}: {e}")))?;
        if s.statement.event.name() != Some(name) {
            return Err(Error::verify(format!(
                "entry {i} is listed for {} but is not about it",
                name.as_str()
            )));
        }
        proven.push((i, leaf.receive_time_ms, s));
    }
    // Digests of this name, from proven publishes only.
    let mut versions_of: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (_, _, s) in &proven {
        if let Event::Publish(p) = &s.statement.event {
            if &p.name == name {
                versions_of.entry(p.digest).or_default().push(p.version.as_str().to_owned());
            }
        }
    }
    let mut rows = Vec::new();
    let mut accesses = 0usize;
    for (index, received_ms, s) in proven {
        let st = &s.statement;
        let (version, detail) = match &st.event {
            Event::Publish(p) if &p.name == name => {
                (Some(p.version.as_str().to_owned()), format!("{} ({} bytes)", p.digest, p.size))
            }
            Event::Tag(t) if &t.name == name => {
                let prev = t.previous.map(|p| format!(", previous move at {p}")).unwrap_or_default();
                let v = versions_of.get(&t.digest).map(|v| v.join(","));
                (v, format!("{} -> {}{prev}", t.tag.as_str(), t.digest))
            }
            Event::Promote(p) if &p.name == name => {
                (Some(p.version.as_str().to_owned()), format!("to {}", p.to.as_str()))
            }
            Event::Approve(a) if &a.name == name => {
                (Some(a.version.as_str().to_owned()), "approved".to_owned())
            }
            Event::Rollback(r) if &r.name == name => {
                (Some(r.version.as_str().to_owned()), "back to production".to_owned())
            }
            Event::Access(a) => {
                accesses += 1;
                if accesses > max_accesses {
                    continue;
                }
                (Some(a.version.as_str().to_owned()), format!("read {}", a.digest))
            }
            _ => continue,
        };
        rows.push(Row {
            index,
            time: st.time.to_string(),
            received_ms,
            actor: st.actor.as_str().to_owned(),
            event: st.event.action().to_owned(),
            version,
            detail,
            reason: st.context.reason.as_str().to_owned(),
        });
    }
    Ok(History { name: name.clone(), checkpoint, rows })
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

/// A compliance report over a time range.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The model.
    pub name: String,
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
    /// Versions touched in the range.
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
            versions_affected.insert(v.to_owned());
        }
    }
    let c = &h.checkpoint;
    Report {
        name: h.name.as_str().to_owned(),
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
        r.name, r.from, r.to
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
    m.push_str("\n## Events\n\n| index | time | actor | event | version | detail | reason |\n|---|---|---|---|---|---|---|\n");
    for e in &r.events {
        let esc = |s: &str| s.replace('|', "\\|");
        m.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            e.index,
            e.time,
            esc(&e.actor),
            e.event,
            esc(e.version.as_deref().unwrap_or("-")),
            esc(&e.detail),
            esc(&e.reason)
        ));
    }
    m
}
