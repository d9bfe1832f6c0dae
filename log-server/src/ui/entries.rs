//! `/ui/entries`: the most recent entries the published checkpoint
//! covers, newest first, in the table the live view extends
//! (`<table id="live" data-size="N">`, N the checkpoint's size): the
//! JavaScript polls `/checkpoint` and inserts, verified, each entry of
//! every newer checkpoint.

use actix_web::{web, HttpResponse};

use super::html::Html;
use super::layout::{self, Frame};
use super::leaves::read_shown;
use super::rows::{self, HISTORY};
use super::{page_response, published, PageError};
use crate::api::AppState;

/// Leaves read from the right edge (commitment leaves, about half of
/// them, are not listed).
pub const RECENT_LEAVES: u64 = 200;

/// `GET /ui/entries`.
pub async fn page(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    super::registry(&state)?;
    let published = published(&state);
    let size = published.map_or(0, |p| p.0);
    let recent = super::blocking(&state, move |store| {
        let wanted: Vec<u64> = (size.saturating_sub(RECENT_LEAVES)..size).collect();
        Ok(read_shown(store, &wanted)?)
    })
    .await?;
    let frame = Frame { page: "entries", title: "Recent entries", trust: &state.trust, published };
    let mut h = Html::with_capacity(64 * 1024);
    layout::begin(&mut h, &frame);
    h.raw("<p>The newest statements of the log, newest first. With JavaScript on, entries logged ")
        .raw("after this page was served appear at the top once a checkpoint covers them, each ")
        .raw("verified before it is shown. State commitment leaves are not listed.</p>");
    rows::begin_table(&mut h, Some("live"), "Recent entries, newest first", HISTORY, Some(size));
    for (i, s) in recent.iter().rev() {
        rows::entry_row(&mut h, *i, s, HISTORY);
    }
    rows::end_table(&mut h);
    layout::end(&mut h, &frame);
    Ok(page_response(h.finish()))
}
