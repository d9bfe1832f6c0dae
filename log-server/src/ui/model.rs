//! `/ui/models/{org}/{model}`: one model's custody. Its versions (digest,
//! size, lifecycle status and its history, approvals, holds), its tags
//! (current target, protection), then every entry about the name, split
//! into the lifecycle, the tag history, the access log (actor,
//! environment, pipeline, reason, time), holds, deploys and transfers, and
//! integrity events. Break-glass entries and holds are flagged in words.
//!
//! The versions and tags come from the registry's record of the name
//! (copied out under the read lock); the entries from the name's
//! `registry_index` rows (the list the committed name chain proves
//! complete), read with coalesced range reads and rendered in one pass.
//! Only entries the published checkpoint covers are listed, so that the
//! browser can verify every row it is shown.

use actix_web::{web, HttpResponse};
use custody_registry::names::ModelName;
use custody_registry::registry::ModelRecord;
use custody_registry::statement::events::BreakGlass;
use custody_registry::statement::Event;
use serde::Deserialize;

use super::html::Html;
use super::layout::{self, Frame};
use super::leaves::{read_shown, Shown};
use super::rows::{self, Col, Field};
use super::{page_response, published, PageError};
use crate::api::{parse_u64, ApiError, AppState};
use crate::registry::{name_prefix, row_index};

/// Entries listed per page; `?after=` continues.
pub const MAX_HISTORY: usize = 20_000;

/// Query of the model page.
#[derive(Deserialize)]
pub struct ModelQuery {
    after: Option<String>,
}

/// Which table an entry belongs in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Lifecycle,
    Tags,
    Access,
    Custody,
    Integrity,
}

fn section(s: &Shown) -> Option<Section> {
    Some(match s {
        Shown::Statement(st) => match &st.event {
            Event::Access(_) => Section::Access,
            Event::Tag(_) | Event::Protect(_) | Event::BreakGlass(BreakGlass::Tag(_)) => Section::Tags,
            Event::Hold(_) | Event::Release(_) | Event::Deploy(_) | Event::Transfer(_) => Section::Custody,
            _ => Section::Lifecycle,
        },
        Shown::LogEvent(_) => Section::Integrity,
        Shown::Commitment | Shown::Raw => return None,
    })
}

const SECTIONS: &[(Section, &str, &str, &[Col])] = &[
    (
        Section::Lifecycle,
        "lifecycle",
        "Publishes, approvals, promotions, rollbacks and break-glass",
        &[
            Col::Index,
            Col::Field(Field::Time),
            Col::Field(Field::Kind),
            Col::Field(Field::Actor),
            Col::Field(Field::Version),
            Col::Field(Field::Digest),
            Col::Detail,
            Col::Field(Field::Reason),
            Col::Verdict,
        ],
    ),
    (
        Section::Tags,
        "tag-history",
        "Tag history: every move and protection, oldest first",
        &[
            Col::Index,
            Col::Field(Field::Time),
            Col::Field(Field::Kind),
            Col::Field(Field::Actor),
            Col::Field(Field::Tag),
            Col::Field(Field::Digest),
            Col::Detail,
            Col::Field(Field::Reason),
            Col::Verdict,
        ],
    ),
    (
        Section::Access,
        "access-log",
        "Access log: who read which version, where, from which pipeline and why",
        &[
            Col::Index,
            Col::Field(Field::Time),
            Col::Field(Field::Actor),
            Col::Field(Field::Version),
            Col::Field(Field::Digest),
            Col::Field(Field::Environment),
            Col::Field(Field::Pipeline),
            Col::Field(Field::Reason),
            Col::Verdict,
        ],
    ),
    (
        Section::Custody,
        "custody",
        "Holds, releases, deploys and transfers",
        &[
            Col::Index,
            Col::Field(Field::Time),
            Col::Field(Field::Kind),
            Col::Field(Field::Actor),
            Col::Field(Field::Version),
            Col::Field(Field::Digest),
            Col::Detail,
            Col::Field(Field::Environment),
            Col::Field(Field::Reason),
            Col::Verdict,
        ],
    ),
    (
        Section::Integrity,
        "integrity",
        "Integrity events the log detected and signed",
        &[
            Col::Index,
            Col::Field(Field::Time),
            Col::Field(Field::Kind),
            Col::Field(Field::Digest),
            Col::Detail,
            Col::Verdict,
        ],
    ),
];

/// `GET /ui/models/{org}/{model}[?after=N]`.
pub async fn page(
    path: web::Path<(String, String)>,
    query: web::Query<ModelQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (org, model) = path.into_inner();
    let name = ModelName::new(&format!("{org}/{model}"))
        .map_err(|e| ApiError::NotFound(format!("no model named {org}/{model}: {e}")))?;
    let after = query.after.as_deref().map(|a| parse_u64("after", a)).transpose()?;
    let registry = super::registry(&state)?.registry.clone();
    let published = published(&state);
    let size = published.map_or(0, |p| p.0);
    let wanted = name.clone();
    let record = web::block(move || registry.read().model(&wanted).cloned()).await.map_err(ApiError::from)?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("no model {}", name.as_str())))?;
    let prefix = name_prefix(&name);
    let (history, next) = super::blocking(&state, move |store| {
        let after_key = after.map(|a| {
            let mut k = prefix.clone();
            k.extend_from_slice(&a.to_be_bytes());
            k
        });
        let rows = store.scan_index(&prefix, after_key.as_deref(), MAX_HISTORY)?;
        let indexes: Vec<u64> = rows.iter().filter_map(|r| row_index(r)).collect();
        let next = (indexes.len() == MAX_HISTORY).then(|| indexes.last().copied()).flatten();
        let covered: Vec<u64> = indexes.into_iter().filter(|&i| i < size).collect();
        Ok((read_shown(store, &covered)?, next))
    })
    .await?;

    let title = format!("Model {}", name.as_str());
    let frame = Frame { page: "model", title: &title, trust: &state.trust, published };
    let mut h = Html::with_capacity(32 * 1024 + history.len() * 700);
    layout::begin(&mut h, &frame);
    facts(&mut h, &record, history.len(), after);
    versions(&mut h, &record, size);
    tags(&mut h, &record, size);
    for (which, id, caption, cols) in SECTIONS {
        h.open("section", &[("aria-label", *caption)]);
        let mut any = false;
        for (i, s) in history.iter().filter(|(_, s)| section(s) == Some(*which)) {
            if !any {
                rows::begin_table(&mut h, Some(id), caption, cols, None);
                any = true;
            }
            rows::entry_row(&mut h, *i, s, cols);
        }
        if any {
            rows::end_table(&mut h);
        } else {
            h.open("p", &[("class", "empty")]).text(caption).text(": none.").close("p");
        }
        h.raw("</section>");
    }
    if let Some(n) = next {
        let href = format!("/ui/models/{}?after={n}", name.as_str());
        h.raw("<p>").el("a", &[("href", &href), ("rel", "next")], "Later entries").raw("</p>");
    }
    layout::end(&mut h, &frame);
    Ok(page_response(h.finish()))
}

fn facts(h: &mut Html, m: &ModelRecord, listed: usize, after: Option<u64>) {
    h.raw("<dl class=\"facts\"><dt>Versions</dt>")
        .open("dd", &[])
        .num(m.versions.len() as u64)
        .close("dd")
        .raw("<dt>In production</dt>")
        .el("dd", &[], m.production.as_ref().map_or("none", |v| v.as_str()))
        .raw("<dt>Holds in force</dt><dd>");
    if m.holds().is_empty() {
        h.text("none");
    }
    for hold in m.holds() {
        let what = match &hold.version {
            Some(v) => format!("version {}", v.as_str()),
            None => "the whole name".to_owned(),
        };
        h.open("strong", &[("class", "held")]).text("HELD: ").text(&what).close("strong");
        h.text(" (").entry_link(hold.index).raw(") ");
    }
    h.raw("</dd><dt>Entries listed</dt>").open("dd", &[]).num(listed as u64);
    if let Some(a) = after {
        h.text(&format!(" (after entry {a})"));
    }
    h.raw("</dd></dl>");
}

fn versions(h: &mut Html, m: &ModelRecord, size: u64) {
    h.raw("<section aria-labelledby=\"versions-heading\"><h2 id=\"versions-heading\">Versions</h2>");
    if m.versions.is_empty() {
        h.raw("<p>No version has been published.</p></section>");
        return;
    }
    h.raw("<table class=\"entries versions\"><caption>Every version, its lifecycle and approvals</caption><thead><tr>")
        .raw("<th scope=\"col\">Entry</th><th scope=\"col\">Version</th><th scope=\"col\">Digest</th>")
        .raw("<th scope=\"col\">Size (bytes)</th><th scope=\"col\">Status</th><th scope=\"col\">Approvals</th>")
        .raw("<th scope=\"col\">Published by</th><th scope=\"col\">Verified in your browser</th></tr></thead><tbody>");
    for (v, rec) in &m.versions {
        entry_tr(h, rec.published_at, size, m.hold_covering(v).is_some());
        h.open("td", &[("class", "index")]).num(rec.published_at).close("td");
        h.el("td", &[("data-field", "version")], v.as_str())
            .el("td", &[("data-field", "digest")], &rec.digest.to_string())
            .open("td", &[("data-label", "Size (bytes)")])
            .num(rec.size)
            .close("td")
            .open("td", &[("class", "status"), ("data-label", "Status")]);
        h.el("strong", &[], rec.state.as_str());
        let steps: Vec<String> =
            rec.history.iter().map(|c| format!("{} at entry {}", c.state.as_str(), c.index)).collect();
        h.el("span", &[("class", "steps")], &format!(" ({})", steps.join(" → ")));
        if m.hold_covering(v).is_some() {
            h.el("strong", &[("class", "held")], " HELD");
        }
        h.close("td").open("td", &[("data-label", "Approvals")]);
        if rec.approvals.is_empty() {
            h.text("none");
        }
        let fresh: Vec<u64> = rec.fresh_approvals().map(|a| a.index).collect();
        for (i, a) in rec.approvals.iter().enumerate() {
            if i > 0 {
                h.text(", ");
            }
            let spent = if fresh.contains(&a.index) { "" } else { ", spent" };
            h.text(a.actor.as_str()).text(" (").entry_link(a.index).text(spent).text(")");
        }
        h.close("td").el("td", &[("data-field", "actor")], rec.publisher.as_str());
        verdict(h, rec.published_at, size);
        h.raw("</tr>");
    }
    h.raw("</tbody></table></section>");
}

fn tags(h: &mut Html, m: &ModelRecord, size: u64) {
    h.raw("<section aria-labelledby=\"tags-heading\"><h2 id=\"tags-heading\">Tags</h2>");
    if m.tags.is_empty() {
        h.raw("<p>No tag has been set.</p></section>");
        return;
    }
    h.raw("<table class=\"entries tags\"><caption>Where each tag points now</caption><thead><tr>")
        .raw("<th scope=\"col\">Entry</th><th scope=\"col\">Tag</th><th scope=\"col\">Digest</th>")
        .raw("<th scope=\"col\">Versions</th><th scope=\"col\">Moves</th><th scope=\"col\">Requirement</th>")
        .raw("<th scope=\"col\">Verified in your browser</th></tr></thead><tbody>");
    for (t, rec) in &m.tags {
        let cur = rec.current();
        entry_tr(h, cur.index, size, false);
        h.open("td", &[("class", "index")]).num(cur.index).close("td");
        let versions: Vec<&str> = m.versions_with(&cur.digest).map(|(v, _)| v.as_str()).collect();
        h.el("td", &[("data-field", "tag")], t.as_str())
            .el("td", &[("data-field", "digest")], &cur.digest.to_string())
            .el("td", &[("data-label", "Versions")], &versions.join(", "));
        let moves: Vec<String> = rec.moves.iter().map(|mv| mv.index.to_string()).collect();
        h.el("td", &[("data-label", "Moves (entries)")], &moves.join(", "));
        let req = m
            .tag_requirement(t)
            .map(|r| {
                let s: Vec<&str> = r.statuses.iter().map(|s| s.as_str()).collect();
                format!("target must be {}", s.join(" or "))
            })
            .unwrap_or_else(|| "none".to_owned());
        h.el("td", &[("data-label", "Requirement")], &req);
        verdict(h, cur.index, size);
        h.raw("</tr>");
    }
    h.raw("</tbody></table></section>");
}

/// Opens the row of entry `index`: verifiable (with `data-entry-index`)
/// only when the published checkpoint covers it.
fn entry_tr(h: &mut Html, index: u64, size: u64, flagged: bool) {
    let i = index.to_string();
    let mut attrs: Vec<(&'static str, &str)> = Vec::with_capacity(2);
    if index < size {
        attrs.push(("data-entry-index", &i));
    }
    if flagged {
        attrs.push(("class", "flagged"));
    }
    h.open("tr", &attrs);
}

fn verdict(h: &mut Html, index: u64, size: u64) {
    if index < size {
        h.el("td", &[("class", "verdict"), ("data-verdict", "pending")], "not verified");
    } else {
        h.el("td", &[("class", "verdict")], "newer than the published checkpoint");
    }
}
