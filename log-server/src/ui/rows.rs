//! Table rows showing log entries, in the markup the browser verifies
//! (docs/dashboard.md, "Row markup"): `<tr data-entry-index="I">`, one
//! `data-field` cell per value taken from the entry, written exactly as
//! the statement has it (no truncation, empty when the statement has
//! none), and a verdict cell the JavaScript fills in.
//!
//! The sentence saying what the action did ([`describe`]) is made only of
//! the entry's own values, so it is a `data-field` cell too (`detail`) that
//! the browser recomputes. Values that are not the entry's own (a
//! version's current status) are in cells without `data-field`.

use custody_registry::describe;
use custody_registry::log_event::LogEvent;
use custody_registry::statement::events::BreakGlass;
use custody_registry::statement::{Event, Statement};

use super::html::Html;
use super::leaves::Shown;

/// A column of an entry table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// The leaf index (a link target, not a data field: it is the row's
    /// `data-entry-index`).
    Index,
    /// A `data-field` value of the entry.
    Field(Field),
    /// What the action did, in words ([`describe`]): the `detail` field.
    Detail,
    /// The browser's verdict.
    Verdict,
}

/// A value read from the entry, named as in `data-field`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The action as written in the statement's JSON (`publish`, `access`,
    /// `tag`, `break_glass`, ...; a log event's own action).
    Kind,
    /// The signing actor.
    Actor,
    /// The model name.
    Name,
    /// The version.
    Version,
    /// `sha256:<hex>`.
    Digest,
    /// The tag.
    Tag,
    /// `context.environment`.
    Environment,
    /// `context.pipeline`.
    Pipeline,
    /// `context.reason`.
    Reason,
    /// The statement's time, RFC 3339 UTC.
    Time,
}

impl Field {
    /// The `data-field` attribute value.
    pub fn attr(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::Actor => "actor",
            Field::Name => "name",
            Field::Version => "version",
            Field::Digest => "digest",
            Field::Tag => "tag",
            Field::Environment => "environment",
            Field::Pipeline => "pipeline",
            Field::Reason => "reason",
            Field::Time => "time",
        }
    }

    /// The column heading.
    fn heading(self) -> &'static str {
        match self {
            Field::Kind => "Action",
            Field::Actor => "Actor",
            Field::Name => "Model",
            Field::Version => "Version",
            Field::Digest => "Digest",
            Field::Tag => "Tag",
            Field::Environment => "Environment",
            Field::Pipeline => "Pipeline",
            Field::Reason => "Reason",
            Field::Time => "Time (UTC)",
        }
    }
}

impl Col {
    fn heading(self) -> &'static str {
        match self {
            Col::Index => "Entry",
            Col::Field(f) => f.heading(),
            Col::Detail => "What happened",
            Col::Verdict => "Verified in your browser",
        }
    }
}

/// Columns of a full history table.
pub const HISTORY: &[Col] = &[
    Col::Index,
    Col::Field(Field::Time),
    Col::Field(Field::Kind),
    Col::Field(Field::Actor),
    Col::Field(Field::Name),
    Col::Field(Field::Version),
    Col::Field(Field::Digest),
    Col::Field(Field::Tag),
    Col::Detail,
    Col::Field(Field::Reason),
    Col::Field(Field::Environment),
    Col::Field(Field::Pipeline),
    Col::Verdict,
];

/// `<table>` with a caption and the header row of `cols`; the caller
/// writes the rows and calls [`end_table`].
pub fn begin_table(h: &mut Html, id: Option<&str>, caption: &str, cols: &[Col], size: Option<u64>) {
    let size_text = size.map(|s| s.to_string());
    let mut attrs: Vec<(&'static str, &str)> = vec![("class", "entries")];
    if let Some(id) = id {
        attrs.push(("id", id));
    }
    if let Some(s) = &size_text {
        attrs.push(("data-size", s));
    }
    h.open("table", &attrs).el("caption", &[], caption).raw("<thead><tr>");
    for c in cols {
        h.el("th", &[("scope", "col")], c.heading());
    }
    h.raw("</tr></thead><tbody>");
}

/// Closes a table opened by [`begin_table`].
pub fn end_table(h: &mut Html) {
    h.raw("</tbody></table>");
}

/// The value of `field` in `st`; `None` when the statement has none.
pub fn statement_field(st: &Statement, field: Field) -> Option<String> {
    let e = &st.event;
    Some(match field {
        Field::Kind => e.action().to_owned(),
        Field::Actor => st.actor.as_str().to_owned(),
        Field::Name => e.name()?.as_str().to_owned(),
        Field::Version => version_of(e)?,
        Field::Digest => digest_of(e)?,
        Field::Tag => tag_of(e)?,
        Field::Environment => st.context.environment.as_ref()?.as_str().to_owned(),
        Field::Pipeline => st.context.pipeline.as_ref()?.as_str().to_owned(),
        Field::Reason => st.context.reason.as_str().to_owned(),
        Field::Time => st.time.to_string(),
    })
}

fn version_of(e: &Event) -> Option<String> {
    let v = match e {
        Event::Publish(x) => &x.version,
        Event::Access(x) => &x.version,
        Event::Promote(x) => &x.version,
        Event::Approve(x) => &x.version,
        Event::Rollback(x) => &x.version,
        Event::Hold(x) | Event::Release(x) => x.version.as_ref()?,
        Event::Deploy(x) => &x.version,
        Event::Transfer(x) => &x.version,
        Event::BreakGlass(BreakGlass::Promote(x)) => &x.version,
        Event::BreakGlass(BreakGlass::Rollback(x)) => &x.version,
        _ => return None,
    };
    Some(v.as_str().to_owned())
}

fn digest_of(e: &Event) -> Option<String> {
    let d = match e {
        Event::Publish(x) => &x.digest,
        Event::Access(x) => &x.digest,
        Event::Tag(x) => &x.digest,
        Event::Deploy(x) => &x.digest,
        Event::Transfer(x) => &x.digest,
        Event::BreakGlass(BreakGlass::Tag(x)) => &x.digest,
        _ => return None,
    };
    Some(d.to_string())
}

fn tag_of(e: &Event) -> Option<String> {
    let t = match e {
        Event::Tag(x) => &x.tag,
        Event::Protect(x) => &x.tag,
        Event::BreakGlass(BreakGlass::Tag(x)) => &x.tag,
        _ => return None,
    };
    Some(t.as_str().to_owned())
}

/// Writes the row of entry `index` under `cols`, or nothing for a
/// commitment or undecodable leaf (they carry no event to show).
pub fn entry_row(h: &mut Html, index: u64, shown: &Shown, cols: &[Col]) {
    match shown {
        Shown::Statement(st) => statement_row(h, index, st, cols),
        Shown::LogEvent(ev) => log_event_row(h, index, ev, cols),
        Shown::Commitment | Shown::Raw => {}
    }
}

fn statement_row(h: &mut Html, index: u64, st: &Statement, cols: &[Col]) {
    let flagged = matches!(st.event, Event::BreakGlass(_) | Event::Hold(_));
    row_open(h, index, if flagged { "flagged" } else { "" });
    for &c in cols {
        match c {
            Col::Field(f) => field_cell(h, f, statement_field(st, f).as_deref().unwrap_or("")),
            Col::Detail => {
                h.el("td", &[("class", "detail"), ("data-field", "detail")], &describe::statement(st));
            }
            other => fixed_cell(h, index, other),
        }
    }
    h.raw("</tr>");
}

fn log_event_row(h: &mut Html, index: u64, ev: &LogEvent, cols: &[Col]) {
    row_open(h, index, "flagged");
    for &c in cols {
        match c {
            Col::Field(f @ Field::Kind) => field_cell(h, f, ev.event.action()),
            Col::Field(f @ Field::Digest) => field_cell(h, f, &ev.event.digest().to_string()),
            Col::Field(f @ Field::Time) => field_cell(h, f, &ev.time.to_string()),
            Col::Field(_) => {
                h.el("td", &[("class", "none")], "");
            }
            Col::Detail => {
                h.el("td", &[("class", "detail"), ("data-field", "detail")], &describe::log_event(ev));
            }
            other => fixed_cell(h, index, other),
        }
    }
    h.raw("</tr>");
}

fn row_open(h: &mut Html, index: u64, class: &str) {
    let i = index.to_string();
    let id = format!("entry-{index}");
    if class.is_empty() {
        h.open("tr", &[("data-entry-index", &i), ("id", &id)]);
    } else {
        h.open("tr", &[("data-entry-index", &i), ("id", &id), ("class", class)]);
    }
}

fn field_cell(h: &mut Html, f: Field, value: &str) {
    h.el("td", &[("data-field", f.attr())], value);
}

/// The index and verdict cells, the same for every row.
fn fixed_cell(h: &mut Html, index: u64, c: Col) {
    match c {
        Col::Index => {
            h.open("td", &[("class", "index")]).num(index).close("td");
        }
        Col::Verdict => {
            h.el("td", &[("class", "verdict"), ("data-verdict", "pending")], "not verified");
        }
        Col::Field(_) | Col::Detail => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_registry::actor_key::ActorSigner;
    use custody_registry::names::{ActorName, ModelName, Version};
    use custody_registry::statement::events::Deploy;
    use custody_registry::statement::{Context, Nonce, Text};
    use custody_registry::timestamp::Timestamp;

    fn deploy(reason: &str, target: &str) -> Statement {
        let who = ActorSigner::from_seed(&ActorName::new("dave").unwrap(), &[1; 32]);
        let mut ctx = Context::reason(Text::new(reason).unwrap());
        ctx.environment = Some(Text::new("prod \"eu\"").unwrap());
        let event = Event::Deploy(Deploy {
            name: ModelName::new("demo/model").unwrap(),
            version: Version::new("1").unwrap(),
            digest: custody_registry::names::Digest(custody_standards::hash::sha256(b"x")),
            target: Text::new(target).unwrap(),
        });
        Statement::new(&who, Timestamp::from_unix_secs(1_800_000_000).unwrap(), Nonce([3; 16]), ctx, event)
    }

    #[test]
    fn a_row_carries_every_field_exactly_and_escaped() {
        let st = deploy("<script>alert('x')</script>", "<img src=x onerror=alert(1)>");
        let mut h = Html::default();
        entry_row(&mut h, 42, &Shown::Statement(Box::new(st)), HISTORY);
        let out = h.finish();
        assert!(out.starts_with("<tr data-entry-index=\"42\" id=\"entry-42\">"), "{out}");
        assert!(out.contains("<td data-field=\"kind\">deploy</td>"), "{out}");
        assert!(out.contains("<td data-field=\"time\">2027-01-15T08:00:00Z</td>"), "{out}");
        assert!(out.contains(">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</td>"), "{out}");
        assert!(out.contains(">deployed to &lt;img src=x onerror=alert(1)&gt;</td>"), "{out}");
        assert!(out.contains("<td data-field=\"environment\">prod &quot;eu&quot;</td>"), "{out}");
        // No pipeline in the statement: an empty cell, still checked.
        assert!(out.contains("<td data-field=\"pipeline\"></td>"), "{out}");
        assert!(out.contains("<td data-field=\"tag\"></td>"), "{out}");
        assert!(out.contains("class=\"verdict\" data-verdict=\"pending\""));
        assert!(!out.contains("<script") && !out.contains("<img"), "{out}");
    }
}
