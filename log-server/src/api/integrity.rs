//! Integrity violations the log detects on read become entries signed by
//! the log's own key ([`custody_registry::log_event`]), not only a counter
//! and a log line: clients and auditors see them in the log, verified
//! with the key they already trust for checkpoints.
//!
//! One entry per digest per detection episode: an episode opens with the
//! first violation logged and ends when the digest's bytes verify again
//! on a whole read (or when logging failed), so a client retrying a
//! corrupted download cannot make the log flood itself. Open episodes are
//! durable ([`crate::integrity_episodes`]): a restart, even a crash, does
//! not log a still-corrupted artifact again.

use actix_web::web;
use custody_registry::log_event::{IntegrityViolation, LogEvent, LogEventBody};
use custody_registry::names::Digest;
use custody_registry::statement::text::{is_refused_char, Schema, Text};
use custody_registry::timestamp::Timestamp;

use super::AppState;

/// Longest `observed` text kept.
const MAX_OBSERVED: usize = 200;

/// Logs, in the background, that `digest` read under the access entry
/// `access_index` was found to be `observed`, unless its episode is open.
pub(super) fn report(state: &web::Data<AppState>, digest: Digest, observed: &str, access_index: u64) {
    let Some(reg) = state.registry.as_ref() else { return };
    let service = reg.registry.clone();
    let Some(origin) = service.origin().map(str::to_owned) else { return };
    let text: String = observed.chars().filter(|c| !is_refused_char(*c)).take(MAX_OBSERVED).collect();
    let observed = Text::new(&text).unwrap_or_else(|_| Text::new("unreadable").expect("valid text"));
    let secs = crate::registry::now_ms() / 1000;
    let Some(time) = Timestamp::from_unix_secs(secs) else { return };
    let event = LogEvent {
        schema: Schema::V1,
        origin,
        time,
        event: LogEventBody::IntegrityViolation(IntegrityViolation { digest, observed, access_index }),
    };
    if !service.integrity_episodes().begin(digest) {
        return;
    }
    let Some(leaf) = service.sign_log_event(&event) else {
        service.integrity_episodes().failed(&digest);
        return;
    };
    let (seq, store) = (state.seq.clone(), state.store.clone());
    tokio::spawn(async move {
        match seq.submit(leaf).await {
            Ok(ack) => {
                service.integrity_episodes().logged(&digest, &*store);
                tracing::error!(
                target: "custody::audit",
                event = "integrity_violation_logged",
                %digest,
                index = ack.index,
                access_index,
                    "integrity violation logged as an entry signed by the log's key"
                )
            }
            Err(e) => {
                service.integrity_episodes().failed(&digest);
                tracing::error!(%digest, error = %e, "cannot log the integrity violation");
            }
        }
    });
}

/// `digest`'s bytes verified on a whole read: its episode (if any) ends.
pub(super) fn intact(state: &AppState, digest: &Digest) {
    if let Some(reg) = state.registry.as_ref() {
        reg.registry.integrity_episodes().end(digest, &*state.store);
    }
}
