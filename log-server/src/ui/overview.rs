//! `/ui/`: the registry at a glance. The log (origin, tree size, the
//! published checkpoint and its age), every model with its latest
//! version, that version's lifecycle status, the production version, its
//! tags and the holds in force, and the most recent entries.

use actix_web::{web, HttpResponse};
use custody_registry::names::ModelName;
use custody_registry::registry::ModelRecord;

use super::html::Html;
use super::layout::{self, Frame};
use super::leaves::{read_shown, Shown};
use super::rows::{self, Col, Field};
use super::{page_response, published, PageError};
use crate::api::AppState;

/// Most models listed (the rest are named by count).
const MAX_MODELS: usize = 2000;
/// Leaves read from the right edge of the tree for "recent entries"
/// (statements and their batches' commitment leaves alternate).
const RECENT_LEAVES: u64 = 40;

/// What the overview shows of one model, copied out under the lock.
struct ModelSummary {
    name: String,
    versions: usize,
    /// Latest published version: (version, status, publish entry).
    latest: Option<(String, &'static str, u64)>,
    production: Option<String>,
    /// (tag, versions with its target digest, entry of the current move).
    tags: Vec<(String, String, u64)>,
    /// (what is held, entry of the hold).
    holds: Vec<(String, u64)>,
}

fn summary(name: &ModelName, m: &ModelRecord) -> ModelSummary {
    let latest = m
        .versions
        .iter()
        .max_by_key(|(_, v)| v.published_at)
        .map(|(k, v)| (k.as_str().to_owned(), v.state.as_str(), v.published_at));
    let tags = m
        .tags
        .iter()
        .map(|(t, r)| {
            let cur = r.current();
            let versions: Vec<&str> = m.versions_with(&cur.digest).map(|(v, _)| v.as_str()).collect();
            (t.as_str().to_owned(), versions.join(", "), cur.index)
        })
        .collect();
    let holds = m
        .holds()
        .iter()
        .map(|h| {
            let what = match &h.version {
                Some(v) => format!("version {}", v.as_str()),
                None => "the whole name".to_owned(),
            };
            (what, h.index)
        })
        .collect();
    ModelSummary {
        name: name.as_str().to_owned(),
        versions: m.versions.len(),
        latest,
        production: m.production.as_ref().map(|v| v.as_str().to_owned()),
        tags,
        holds,
    }
}

/// `GET /ui/`.
pub async fn page(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let registry = super::registry(&state)?.registry.clone();
    let published = published(&state);
    let durable = state.seq.tree_size();
    // The summaries are copied out under the read lock, on the blocking
    // pool (a batch holds the write lock through its fsync); rendering
    // happens after the lock is released.
    let (models, total) = web::block(move || {
        let r = registry.read();
        let mut list: Vec<(&ModelName, &ModelRecord)> = r.models().collect();
        list.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let models: Vec<ModelSummary> = list.iter().take(MAX_MODELS).map(|(n, m)| summary(n, m)).collect();
        (models, list.len())
    })
    .await
    .map_err(crate::api::ApiError::from)?;
    let size = published.map_or(0, |p| p.0);
    let recent = super::blocking(&state, move |store| {
        let wanted: Vec<u64> = (size.saturating_sub(RECENT_LEAVES)..size).collect();
        Ok(read_shown(store, &wanted)?)
    })
    .await?;

    let trust = &state.trust;
    let frame = Frame { page: "overview", title: "Registry overview", trust, published };
    let mut h = Html::with_capacity(16 * 1024 + models.len() * 512);
    layout::begin(&mut h, &frame);
    h.raw("<section aria-labelledby=\"log-heading\"><h2 id=\"log-heading\">The log</h2><dl class=\"facts\">")
        .raw("<dt>Origin</dt>")
        .el("dd", &[], trust.origin())
        .raw("<dt>Entries in the log</dt>")
        .open("dd", &[])
        .num(durable)
        .close("dd")
        .raw("<dt>Covered by the published checkpoint</dt>")
        .open("dd", &[]);
    match published {
        Some((size, at)) => {
            h.num(size).text(" entries, published ").text(&layout::age(at));
        }
        None => {
            h.text("none yet");
        }
    }
    h.raw("</dd></dl></section>");
    models_table(&mut h, &models, total);
    recent_table(&mut h, &recent);
    layout::end(&mut h, &frame);
    Ok(page_response(h.finish()))
}

fn models_table(h: &mut Html, models: &[ModelSummary], total: usize) {
    h.raw("<section aria-labelledby=\"models-heading\"><h2 id=\"models-heading\">Models</h2>");
    if models.is_empty() {
        h.raw("<p>No model has been published yet.</p></section>");
        return;
    }
    h.raw("<table class=\"models\"><caption>Every model, its latest version and what holds it</caption>")
        .raw("<thead><tr><th scope=\"col\">Model</th><th scope=\"col\">Latest version</th>")
        .raw("<th scope=\"col\">Its status</th><th scope=\"col\">In production</th>")
        .raw("<th scope=\"col\">Tags</th><th scope=\"col\">Holds</th></tr></thead><tbody>");
    for m in models {
        h.raw("<tr>").open("th", &[("scope", "row"), ("data-label", "Model")]);
        h.link("/ui/models/", &m.name, &m.name).close("th");
        match &m.latest {
            Some((v, status, _)) => {
                h.open("td", &[("data-label", "Latest version")])
                    .text(v)
                    .text(&format!(" (of {})", m.versions))
                    .close("td")
                    .el("td", &[("data-label", "Its status"), ("class", "status")], status);
            }
            None => {
                h.el("td", &[("data-label", "Latest version")], "none published").el(
                    "td",
                    &[("data-label", "Its status")],
                    "",
                );
            }
        }
        h.el("td", &[("data-label", "In production")], m.production.as_deref().unwrap_or("none"));
        h.open("td", &[("data-label", "Tags")]);
        if m.tags.is_empty() {
            h.text("none");
        }
        for (i, (tag, versions, _)) in m.tags.iter().enumerate() {
            if i > 0 {
                h.raw(", ");
            }
            h.el("span", &[("class", "tag")], tag).text(" → ").text(if versions.is_empty() {
                "?"
            } else {
                versions
            });
        }
        h.close("td").open("td", &[("data-label", "Holds")]);
        if m.holds.is_empty() {
            h.text("none");
        }
        for (i, (what, index)) in m.holds.iter().enumerate() {
            if i > 0 {
                h.raw(", ");
            }
            h.open("strong", &[("class", "held")]).text("HELD: ").text(what).close("strong");
            h.text(&format!(" (entry {index})"));
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");
    if total > models.len() {
        h.el("p", &[], &format!("{} more models are not listed here.", total - models.len()));
    }
    h.raw("</section>");
}

const RECENT: &[Col] = &[
    Col::Index,
    Col::Field(Field::Time),
    Col::Field(Field::Kind),
    Col::Field(Field::Actor),
    Col::Field(Field::Name),
    Col::Field(Field::Version),
    Col::Detail,
    Col::Field(Field::Reason),
    Col::Verdict,
];

fn recent_table(h: &mut Html, recent: &[(u64, Shown)]) {
    h.raw("<section aria-labelledby=\"recent-heading\"><h2 id=\"recent-heading\">Recent entries</h2>");
    let shown: Vec<&(u64, Shown)> =
        recent.iter().rev().filter(|(_, s)| matches!(s, Shown::Statement(_) | Shown::LogEvent(_))).collect();
    if shown.is_empty() {
        h.raw("<p>The published checkpoint covers no statement yet.</p></section>");
        return;
    }
    rows::begin_table(
        h,
        None,
        "The latest statements the published checkpoint covers, newest first",
        RECENT,
        None,
    );
    for (i, s) in shown {
        rows::entry_row(h, *i, s, RECENT);
    }
    rows::end_table(h);
    h.raw("<p><a href=\"/ui/entries\">All recent entries</a></p></section>");
}
