//! `/ui/witnesses`: the witnesses of the log's policy and what the log
//! knows of each. Its key fingerprint; the cosignature it put on the
//! published checkpoint (size and the cosignature's own timestamp, read
//! from the served note), or else the last size the log's witness client
//! learned it cosigned; how its last round went; whether the policy's
//! quorum is met; and the split-view alarms.
//!
//! What this page can know is limited to the log's own witness client
//! (docs/dashboard.md, "Witness panel"): a witness that answers `409` with
//! a size bigger than the log's tree has seen a tree this log does not
//! have (a split view or a rollback), and the alarm stays until an
//! operator restarts the log. A witness shown another tree of the *same*
//! size by a forking log cannot be detected here; the witnesses' own
//! evidence and gossip (docs/witness.md) and the clients' consistency
//! checks catch that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpResponse};
use custody_standards::policy::PolicyVerified;

use super::html::Html;
use super::layout::{self, Frame};
use super::trust::fingerprint;
use super::{page_response, published, PageError};
use crate::api::AppState;

/// `GET /ui/witnesses`.
pub async fn page(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    super::registry(&state)?;
    let published = published(&state);
    let latest = state.publisher.latest();
    let health = state.publisher.health();
    let trust = &state.trust;
    let frame = Frame { page: "witnesses", title: "Witnesses", trust, published };
    let mut h = Html::with_capacity(16 * 1024);
    layout::begin(&mut h, &frame);
    let Some(policy) = trust.policy() else {
        h.raw("<p>This log runs without a witness policy: its checkpoints carry only its own signature, ")
            .raw("and nothing here can show that others saw the same tree.</p>");
        layout::end(&mut h, &frame);
        return Ok(page_response(h.finish()));
    };
    // The served note's cosignatures, verified with the policy's keys.
    let cosigned: Option<PolicyVerified> =
        latest.as_ref().and_then(|p| policy.verify_checkpoint(&p.note).ok());
    h.raw("<section aria-labelledby=\"quorum-heading\"><h2 id=\"quorum-heading\">Quorum</h2>");
    let quorum_text = match (&cosigned, health.quorum_ok) {
        (Some(v), true) => format!(
            "Met: the published checkpoint of size {} carries enough cosignatures ({} of {} witnesses).",
            v.checkpoint.size,
            v.cosigners.len(),
            policy.witnesses().len()
        ),
        (Some(v), false) => format!(
            "Not met for the newest tree: the published checkpoint (size {}) met it, but the last round did not{}.",
            v.checkpoint.size,
            health.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        ),
        (None, _) => format!(
            "Not met: no checkpoint satisfying the policy has been published{}.",
            health.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ),
    };
    let met = cosigned.is_some() && health.quorum_ok;
    h.el("p", &[("id", "quorum"), ("data-quorum", if met { "met" } else { "not-met" })], &quorum_text);
    h.raw("</section><section aria-labelledby=\"alarms-heading\"><h2 id=\"alarms-heading\">Split-view alarms</h2>");
    if health.alarms.is_empty() {
        h.el(
            "p",
            &[("id", "alarms"), ("data-alarms", "0")],
            "None: no witness has reported a tree this log does not have.",
        );
    } else {
        let n = health.alarms.len().to_string();
        h.open("ul", &[("id", "alarms"), ("data-alarms", &n), ("class", "alarms")]);
        for a in &health.alarms {
            h.open("li", &[]).el("strong", &[], "ALARM: ").text(a).close("li");
        }
        h.close("ul");
    }
    h.raw("</section><section aria-labelledby=\"list-heading\"><h2 id=\"list-heading\">Witnesses of the policy</h2>")
        .raw("<table class=\"witnesses\"><caption>Each witness, its key and its last cosignature</caption><thead><tr>")
        .raw("<th scope=\"col\">Witness</th><th scope=\"col\">Key fingerprint</th>")
        .raw("<th scope=\"col\">Last cosigned size</th><th scope=\"col\">Cosigned</th>")
        .raw("<th scope=\"col\">Last round</th><th scope=\"col\">Alarm</th></tr></thead><tbody>");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    for w in policy.witnesses() {
        let status = health.witnesses.iter().find(|s| s.name == w.name);
        let in_note = cosigned.as_ref().and_then(|v| v.cosigners.iter().find(|(n, _)| *n == w.name));
        h.open("tr", &[("data-witness", &w.name)])
            .open("th", &[("scope", "row"), ("data-label", "Witness")])
            .text(&w.name)
            .close("th")
            .open("td", &[("data-label", "Key fingerprint")])
            .el("code", &[("class", "fingerprint")], &fingerprint(&w.key))
            .close("td");
        let size_cell = match (in_note, status) {
            (Some(_), _) => cosigned.as_ref().map(|v| v.checkpoint.size.to_string()).unwrap_or_default(),
            (None, Some(s)) if s.last_size > 0 => {
                format!("{} (not on the published checkpoint)", s.last_size)
            }
            _ => "none known".to_owned(),
        };
        h.el("td", &[("data-label", "Last cosigned size"), ("class", "size")], &size_cell);
        let when = match in_note {
            Some((_, ts)) => {
                format!("{} ago", layout::duration(Duration::from_secs(now.saturating_sub(*ts))))
            }
            None => "unknown".to_owned(),
        };
        h.el("td", &[("data-label", "Cosigned")], &when);
        let round = match status {
            Some(s) if s.ok => "OK: cosigned the last checkpoint".to_owned(),
            Some(s) => format!("FAILING: {}", s.last_error.as_deref().unwrap_or("no answer yet")),
            None => "not contacted yet".to_owned(),
        };
        h.el("td", &[("data-label", "Last round"), ("class", "round")], &round);
        match status.and_then(|s| s.alarm.as_deref()) {
            Some(a) => {
                h.open("td", &[("data-label", "Alarm"), ("class", "alarm"), ("data-alarm", "yes")])
                    .el("strong", &[], "ALARM: ")
                    .text(a)
                    .close("td");
            }
            None => {
                h.el("td", &[("data-label", "Alarm"), ("data-alarm", "no")], "none");
            }
        }
        h.raw("</tr>");
    }
    h.raw("</tbody></table></section>");
    layout::end(&mut h, &frame);
    Ok(page_response(h.finish()))
}
