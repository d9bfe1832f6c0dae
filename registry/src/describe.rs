//! One sentence per logged action, made only of the entry's own values:
//! what the dashboard shows in its "What happened" column. The browser
//! recomputes the same sentence from the proven leaf (log-server/ui/js/
//! leaf.js) and marks a row verified only when the two agree, so the
//! wording here is part of that contract: the shared vectors
//! (registry/tests/vectors/leaves.json) carry it for every action.

use crate::log_event::{LogEvent, LogEventBody};
use crate::statement::events::BreakGlass;
use crate::statement::{Event, Statement};

/// What `st` did, in words; break-glass says so first.
pub fn statement(st: &Statement) -> String {
    match &st.event {
        Event::Publish(p) => format!("published {} bytes ({})", p.size, p.media_type.as_str()),
        Event::Access(_) => "read the artifact".to_owned(),
        Event::Tag(t) => match t.previous {
            Some(p) => format!("moved the tag (previous move: entry {p})"),
            None => "set the tag".to_owned(),
        },
        Event::Promote(p) => format!("promoted to {}", p.to.as_str()),
        Event::Approve(_) => "approved for production".to_owned(),
        Event::Rollback(_) => "rolled production back to this version".to_owned(),
        Event::Protect(p) => {
            let s: Vec<&str> = p.statuses.iter().map(|s| s.as_str()).collect();
            format!("protected the tag: its target must be {}", s.join(", "))
        }
        Event::Grant(g) => format!("granted {} on {} to {}", g.role.as_str(), g.pattern, g.actor.as_str()),
        Event::Revoke(r) => format!("revoked {} on {} from {}", r.role.as_str(), r.pattern, r.actor.as_str()),
        Event::RevokeKey(r) => format!("revoked key {} of {}", r.key_id, r.actor.as_str()),
        Event::Rotate(r) => format!("rotated to key {}", r.new_key),
        Event::Hold(h) if h.version.is_some() => "HOLD on this version".to_owned(),
        Event::Hold(_) => "HOLD on the whole name".to_owned(),
        Event::Release(h) if h.version.is_some() => "released the hold on this version".to_owned(),
        Event::Release(_) => "released the hold on the whole name".to_owned(),
        Event::Deploy(d) => format!("deployed to {}", d.target),
        Event::Transfer(t) => format!("copied to {}", t.destination),
        Event::BreakGlass(BreakGlass::Promote(p)) => {
            format!("BREAK-GLASS: promoted to {} without the two-person approval", p.to.as_str())
        }
        Event::BreakGlass(BreakGlass::Rollback(_)) => {
            "BREAK-GLASS: rolled back without a fresh two-person approval".to_owned()
        }
        Event::BreakGlass(BreakGlass::Tag(_)) => {
            "BREAK-GLASS: moved a protected tag past its protection".to_owned()
        }
    }
}

/// What the log's own event `ev` reports, in words.
pub fn log_event(ev: &LogEvent) -> String {
    let LogEventBody::IntegrityViolation(v) = &ev.event;
    format!(
        "INTEGRITY VIOLATION detected by the log {}: stored bytes read as {} (access at entry {})",
        ev.origin, v.observed, v.access_index
    )
}
