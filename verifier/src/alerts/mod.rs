//! `custody monitor --rules FILE`: rules over what the log proves, alerts
//! delivered to webhooks, Slack and stdout, and holds requested by a rule.
//!
//! - [`config`]: the TOML rules file, parsed strictly (unknown keys and bad
//!   values are errors with their line, exit 64).
//! - [`evaluate`]: the rules, applied to each verified entry, with what
//!   they learn from earlier entries ([`volume`]: access volume per actor).
//! - [`outbox`]: the persistent cursor, learned state and per-sink queues,
//!   committed so that no alert is lost or raised twice across a restart
//!   or a `kill -9`.
//! - [`deliver`]: the sinks, each draining its own queue with jittered
//!   exponential backoff, so a sink that is down delays only itself.
//! - [`hold`]: the hold queue's sink, which signs and logs holds.
//! - [`mod@run`]: the monitor loop tying them together.
//!
//! Only entries the monitor has verified are evaluated: each is checked
//! against its leaf hash in tiles authenticated against a checkpoint that
//! satisfied the policy and is consistent with the remembered one
//! ([`crate::monitor::verified_pages`]). A log that lies about an entry
//! ends the monitor (exit 2) before any rule sees it.

pub mod config;
pub mod deliver;
pub mod evaluate;
pub mod hold;
pub mod outbox;
pub mod run;
pub mod volume;

use custody_registry::log_event::LogEvent;
use custody_registry::statement::{Event, SignedStatement};
use serde::{Deserialize, Serialize};

pub use config::{Config, ConfigError};
pub use run::{run, RunOptions};

/// One alert: the body a webhook receives, the line stdout prints.
///
/// `id` is `<rule>:<leaf index>`: stable across restarts and across
/// monitors of the same log, so a receiver can drop a repeat (a delivery
/// whose acknowledgement was lost is sent again with the same id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `<rule>:<index>`.
    pub id: String,
    /// The rule that fired.
    pub rule: String,
    /// Leaf index of the entry.
    pub index: u64,
    /// Size of the checkpoint the entry was verified under.
    pub checkpoint_size: u64,
    /// The log's origin line.
    pub origin: String,
    /// Statement time (signed by the actor).
    pub time: String,
    /// When the log received it (ms since the Unix epoch, from the leaf).
    pub received_ms: u64,
    /// Signer.
    pub actor: String,
    /// Signer's key ID.
    pub key_id: String,
    /// The model name the entry is about, if any.
    pub name: Option<String>,
    /// The version it is about, if it names one.
    pub version: Option<String>,
    /// One line for people.
    pub summary: String,
    /// Whether the rule asked for a hold.
    pub hold: bool,
    /// The statement's `context`, as signed.
    pub context: serde_json::Value,
    /// The statement's event, as signed.
    pub event: serde_json::Value,
}

/// Where an entry sits: its index, the checkpoint it was verified under
/// and the log's receive time.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// Leaf index.
    pub index: u64,
    /// Checkpoint size.
    pub checkpoint_size: u64,
    /// Receive time from the leaf.
    pub received_ms: u64,
    /// The log's origin.
    pub origin: &'a str,
}

fn version_of(e: &Event) -> Option<String> {
    match e {
        Event::Publish(p) => Some(p.version.to_string()),
        Event::Access(a) => Some(a.version.to_string()),
        Event::Promote(p) => Some(p.version.to_string()),
        Event::Approve(a) => Some(a.version.to_string()),
        Event::Rollback(r) => Some(r.version.to_string()),
        Event::Deploy(d) => Some(d.version.to_string()),
        Event::Transfer(t) => Some(t.version.to_string()),
        Event::Hold(h) | Event::Release(h) => h.version.as_ref().map(|v| v.to_string()),
        _ => None,
    }
}

impl Alert {
    /// The alert for a rule's hit on the statement at `at`.
    pub fn new(hit: &evaluate::Hit, s: &SignedStatement, at: Position<'_>) -> Self {
        let st = &s.statement;
        Alert {
            id: format!("{}:{}", hit.rule, at.index),
            rule: hit.rule.to_owned(),
            index: at.index,
            checkpoint_size: at.checkpoint_size,
            origin: at.origin.to_owned(),
            time: st.time.to_string(),
            received_ms: at.received_ms,
            actor: st.actor.as_str().to_owned(),
            key_id: st.key_id.to_string(),
            name: st.event.name().map(|n| n.as_str().to_owned()),
            version: version_of(&st.event),
            summary: hit.summary.clone(),
            hold: hit.hold,
            context: serde_json::to_value(&st.context).unwrap_or_default(),
            event: serde_json::to_value(&st.event).unwrap_or_default(),
        }
    }

    /// The alert for a rule's hit on a log event: the signer is the log
    /// (`actor` is `log <origin>`, `key_id` the log key's ID, as `history`
    /// shows it), and there is no `context`.
    pub fn of_log_event(hit: &evaluate::Hit, ev: &LogEvent, key_id: &str, at: Position<'_>) -> Self {
        Alert {
            id: format!("{}:{}", hit.rule, at.index),
            rule: hit.rule.to_owned(),
            index: at.index,
            checkpoint_size: at.checkpoint_size,
            origin: at.origin.to_owned(),
            time: ev.time.to_string(),
            received_ms: at.received_ms,
            actor: format!("log {}", ev.origin),
            key_id: key_id.to_owned(),
            name: None,
            version: None,
            summary: hit.summary.clone(),
            hold: false,
            context: serde_json::Value::Null,
            event: serde_json::to_value(&ev.event).unwrap_or_default(),
        }
    }
}
