//! The rules, applied to one verified entry at a time.
//!
//! Everything a rule looks at is in the entry itself (the signed statement
//! and the log's receive time) or was learned from earlier verified
//! entries ([`Learned`]: environments and pipelines per name, protected
//! tags, access volume per actor), so two monitors that read the same log
//! raise the same alerts with the same ids, and a restarted monitor raises
//! exactly those it had not yet queued.

use std::collections::{BTreeMap, BTreeSet};

use custody_registry::statement::{Event, SignedStatement};
use serde::{Deserialize, Serialize};

use crate::alerts::config::{any_matches, glob, Config, RulesConfig};
use crate::alerts::volume::ActorVolume;

/// The rules' names, as they appear in alerts and in the rules file.
pub mod rule {
    /// An access outside the UTC hours configured for its name.
    pub const OUTSIDE_HOURS: &str = "outside_hours";
    /// A statement about a name from an environment never seen for it.
    pub const NEW_ENVIRONMENT: &str = "new_environment";
    /// A statement about a name from a pipeline never seen for it.
    pub const NEW_PIPELINE: &str = "new_pipeline";
    /// An actor's accesses in an hour above its own baseline.
    pub const ACCESS_VOLUME: &str = "access_volume";
    /// A statement from a client identity not on the allowlist.
    pub const UNKNOWN_CLIENT: &str = "unknown_client";
    /// A grant of a watched role.
    pub const ADMIN_GRANT: &str = "admin_grant";
    /// A move of a protected tag.
    pub const PROTECTED_TAG_MOVE: &str = "protected_tag_move";
    /// A key revocation.
    pub const KEY_REVOCATION: &str = "key_revocation";
    /// An admin action that bypassed a rule, on the record.
    pub const BREAK_GLASS: &str = "break_glass";
}

/// What earlier entries taught the rules; saved with the cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// Environments seen per name.
    pub environments: BTreeMap<String, BTreeSet<String>>,
    /// Pipelines (the part before `#`) seen per name.
    pub pipelines: BTreeMap<String, BTreeSet<String>>,
    /// `name:tag` pairs a logged `protect` constrains.
    pub protected: BTreeSet<String>,
    /// Access counters per actor.
    pub volume: BTreeMap<String, ActorVolume>,
}

/// One rule that matched an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The rule ([`rule`]).
    pub rule: &'static str,
    /// One line for people.
    pub summary: String,
    /// Whether the rule asks for a hold.
    pub hold: bool,
    /// The sinks it goes to (`None`: all).
    pub sinks: Option<Vec<String>>,
}

fn sinks(s: &Option<Vec<toml::Spanned<String>>>) -> Option<Vec<String>> {
    s.as_ref().map(|v| v.iter().map(|s| s.get_ref().clone()).collect())
}

/// The identity of a pipeline: what comes before the first `#` (the run
/// number after it changes with every run).
pub fn pipeline_identity(p: &str) -> &str {
    p.split('#').next().unwrap_or(p)
}

/// Learns `value` for `name` in `sets`; returns whether it is new for a
/// name that already had values (a name's first value is its baseline).
fn learn(sets: &mut BTreeMap<String, BTreeSet<String>>, name: &str, value: &str) -> bool {
    let set = sets.entry(name.to_owned()).or_default();
    let had = !set.is_empty();
    set.insert(value.to_owned()) && had
}

/// Applies the rules of `cfg` to the statement of one verified entry,
/// updating `learned`. With `alerting` false (the baseline pass over the
/// history) it only learns.
pub fn evaluate(cfg: &Config, learned: &mut Learned, s: &SignedStatement, alerting: bool) -> Vec<Hit> {
    let r: &RulesConfig = &cfg.rules;
    let st = &s.statement;
    let mut hits = Vec::new();
    let mut hit = |rule: &'static str, summary: String, hold: bool, to: Option<Vec<String>>| {
        if alerting {
            hits.push(Hit { rule, summary, hold, sinks: to });
        }
    };
    let actor = st.actor.as_str();
    let name = st.event.name();

    if let Event::Access(a) = &st.event {
        let secs = st.time.unix_secs();
        let hour = ((secs % 86_400) / 3_600) as u8;
        let windows: Vec<_> = r.outside_hours.iter().filter(|w| any_matches(&w.names, &a.name)).collect();
        if !windows.is_empty() && !windows.iter().any(|w| w.allows(hour)) {
            hit(
                rule::OUTSIDE_HOURS,
                format!(
                    "{actor} accessed {}@{} at {} (hour {hour} UTC is outside its window)",
                    a.name, a.version, st.time
                ),
                windows.iter().any(|w| w.hold),
                windows.iter().find_map(|w| sinks(&w.sinks)),
            );
        }
        let v = learned.volume.entry(actor.to_owned()).or_insert_with(|| ActorVolume::new(secs / 3600));
        if let Some(rule) = &r.access_volume {
            if let Some((count, threshold)) = v.count(secs, rule) {
                hit(
                    rule::ACCESS_VOLUME,
                    format!("{actor} made {count} accesses in the hour of {}, above {threshold:.1}", st.time),
                    rule.hold,
                    sinks(&rule.sinks),
                );
            }
        } else {
            // Counted anyway, so enabling the rule later starts from a baseline.
            v.count(secs, &crate::alerts::config::AccessVolume::default());
        }
    }

    if let Some(n) = name {
        if let Some(env) = &st.context.environment {
            let new = learn(&mut learned.environments, n.as_str(), env.as_str());
            if let Some(rule) = r.new_environment.as_ref().filter(|r| new && any_matches(&r.names, n)) {
                hit(
                    rule::NEW_ENVIRONMENT,
                    format!(
                        "{actor} made a {} of {n} from environment {:?}, new for it",
                        st.event.action(),
                        env.as_str()
                    ),
                    rule.hold,
                    sinks(&rule.sinks),
                );
            }
        }
        if let Some(p) = &st.context.pipeline {
            let id = pipeline_identity(p.as_str());
            let new = learn(&mut learned.pipelines, n.as_str(), id);
            if let Some(rule) = r.new_pipeline.as_ref().filter(|r| new && any_matches(&r.names, n)) {
                hit(
                    rule::NEW_PIPELINE,
                    format!("{actor}: {} of {n} from pipeline {:?}, new for it", st.event.action(), id),
                    rule.hold,
                    sinks(&rule.sinks),
                );
            }
        }
    }

    if let Some(rule) = &r.unknown_client {
        let allowed = match &st.context.source {
            Some(src) => rule.allow.iter().any(|p| glob(p, src.as_str())),
            None => rule.allow_missing,
        };
        if !allowed {
            let src =
                st.context.source.as_ref().map_or("no source".to_owned(), |s| format!("{:?}", s.as_str()));
            hit(
                rule::UNKNOWN_CLIENT,
                format!("{actor}: {} from an unknown client ({src})", st.event.action()),
                rule.hold && name.is_some(),
                sinks(&rule.sinks),
            );
        }
    }

    match &st.event {
        Event::Grant(g) => {
            if let Some(rule) = r.admin_grant.as_ref().filter(|r| r.roles.contains(&g.role)) {
                hit(
                    rule::ADMIN_GRANT,
                    format!("{actor} granted {} the {} role on {}", g.actor, g.role.as_str(), g.pattern),
                    false,
                    sinks(&rule.sinks),
                );
            }
        }
        Event::Protect(p) => {
            let key = format!("{}:{}", p.name, p.tag);
            if p.statuses.len() >= 5 {
                learned.protected.remove(&key);
            } else {
                learned.protected.insert(key);
            }
        }
        Event::Tag(t) => {
            if let Some(rule) = &r.protected_tag_move {
                let protected = rule.tags.iter().any(|x| x == t.tag.as_str())
                    || learned.protected.contains(&format!("{}:{}", t.name, t.tag));
                if protected && any_matches(&rule.names, &t.name) {
                    hit(
                        rule::PROTECTED_TAG_MOVE,
                        format!("{actor} moved the protected tag {}:{} to {}", t.name, t.tag, t.digest),
                        rule.hold,
                        sinks(&rule.sinks),
                    );
                }
            }
        }
        Event::RevokeKey(k) => {
            if let Some(rule) = &r.key_revocation {
                hit(
                    rule::KEY_REVOCATION,
                    format!("{actor} revoked key {} of {}", k.key_id, k.actor),
                    false,
                    sinks(&rule.sinks),
                );
            }
        }
        Event::BreakGlass(b) => {
            if let Some(rule) = r.break_glass.as_ref().filter(|r| any_matches(&r.names, b.name())) {
                hit(
                    rule::BREAK_GLASS,
                    format!(
                        "{actor} broke glass: {} on {} ({})",
                        b.action(),
                        b.name(),
                        st.context.reason.as_str()
                    ),
                    rule.hold,
                    sinks(&rule.sinks),
                );
            }
        }
        _ => {}
    }
    hits
}
