//! The `custody monitor --rules FILE` file (TOML): which rules run, where
//! their alerts go, and which key signs automatic holds.
//!
//! Parsing is strict so that a typo never silently disables a rule: every
//! table refuses unknown keys, every value is checked while it is parsed
//! (patterns, hours, factors, sink names), and every error names its line
//! and column. The reference is docs/verifier.md, "Alert rules".

use std::collections::BTreeSet;
use std::path::PathBuf;

use custody_registry::names::{ModelName, Pattern};
use custody_registry::registry::Role;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// Largest rules file read.
pub const MAX_RULES_FILE: u64 = 1 << 20;

/// Why a rules file was refused (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// TOML syntax, an unknown key, a wrong type or a bad value; the
    /// message carries the line and column.
    #[error("rules file: {0}")]
    Toml(String),
    /// A value that is valid alone but not with the rest of the file.
    #[error("rules file: line {line}: {detail}")]
    Invalid {
        /// 1-based line of the offending value.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where alerts go, in order.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<SinkConfig>,
    /// The rules that run.
    #[serde(default)]
    pub rules: RulesConfig,
    /// The key automatic holds are signed with.
    #[serde(default)]
    pub hold: Option<HoldConfig>,
}

/// A sink's name: `[a-z0-9-]`, 1 to 32 bytes (it names a directory of the
/// outbox).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SinkName(pub String);

impl<'de> Deserialize<'de> for SinkName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(D::Error::custom(format!("sink name {s:?}: use 1 to 32 of [a-z0-9-]")));
        }
        Ok(SinkName(s))
    }
}

/// What a sink is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// POST of the alert object as JSON.
    Webhook,
    /// POST of `{"text": ...}` (Slack incoming webhooks and compatibles).
    Slack,
    /// One JSON line per alert on stdout.
    Stdout,
}

/// `[[sink]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name; alerts queued for it live in `outbox/<name>/`.
    pub name: SinkName,
    /// `webhook`, `slack` or `stdout`.
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// The URL to POST to (webhook and slack; or `url_env`).
    #[serde(default)]
    pub url: Option<String>,
    /// An environment variable holding the URL (a Slack URL is a secret).
    #[serde(default)]
    pub url_env: Option<String>,
    /// PEM file of an extra CA to trust for an https:// URL.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Limit on one delivery attempt.
    #[serde(default = "default_timeout_secs", deserialize_with = "positive")]
    pub timeout_secs: u64,
    /// Ceiling of the first retry's random delay; doubles per failure.
    #[serde(default = "default_backoff_initial_ms", deserialize_with = "positive")]
    pub backoff_initial_ms: u64,
    /// Longest delay between two attempts.
    #[serde(default = "default_backoff_max_secs", deserialize_with = "positive")]
    pub backoff_max_secs: u64,
}

fn default_timeout_secs() -> u64 {
    10
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_secs() -> u64 {
    300
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 0 || v > 86_400_000 {
        return Err(D::Error::custom(format!("{v} is not within 1..=86400000")));
    }
    Ok(v)
}

/// `[rules]`: each rule runs when its table is present.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// `[[rules.outside_hours]]`.
    #[serde(default)]
    pub outside_hours: Vec<OutsideHours>,
    /// `[rules.new_environment]`.
    #[serde(default)]
    pub new_environment: Option<NamesRule>,
    /// `[rules.new_pipeline]`.
    #[serde(default)]
    pub new_pipeline: Option<NamesRule>,
    /// `[rules.access_volume]`.
    #[serde(default)]
    pub access_volume: Option<AccessVolume>,
    /// `[rules.unknown_client]`.
    #[serde(default)]
    pub unknown_client: Option<UnknownClient>,
    /// `[rules.admin_grant]`.
    #[serde(default)]
    pub admin_grant: Option<AdminGrant>,
    /// `[rules.protected_tag_move]`.
    #[serde(default)]
    pub protected_tag_move: Option<ProtectedTagMove>,
    /// `[rules.key_revocation]`.
    #[serde(default)]
    pub key_revocation: Option<Plain>,
    /// `[rules.break_glass]`.
    #[serde(default)]
    pub break_glass: Option<NamesRule>,
}

fn all_names() -> Vec<Pattern> {
    vec![Pattern::All]
}

/// An hour of the day, 0..=23 (`from`) or 0..=24 (`to`).
fn hour<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let h = u8::deserialize(d)?;
    if h > 24 {
        return Err(D::Error::custom(format!("hour {h} is not within 0..=24")));
    }
    Ok(h)
}

/// `[[rules.outside_hours]]`: accesses of matching names are expected in
/// `[from, to)` UTC (wrapping past midnight when `from > to`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutsideHours {
    /// Names this window applies to.
    #[serde(default = "all_names")]
    pub names: Vec<Pattern>,
    /// First allowed hour.
    #[serde(deserialize_with = "hour")]
    pub from: u8,
    /// First hour no longer allowed.
    #[serde(deserialize_with = "hour")]
    pub to: u8,
    /// Hold and sinks.
    #[serde(default)]
    pub hold: bool,
    /// Sinks (default: all).
    #[serde(default)]
    pub sinks: Option<Vec<toml::Spanned<String>>>,
}

impl OutsideHours {
    /// Whether `hour` (0..=23) is inside the window.
    pub fn allows(&self, hour: u8) -> bool {
        if self.from <= self.to {
            hour >= self.from && hour < self.to
        } else {
            hour >= self.from || hour < self.to
        }
    }
}

/// A rule on names only (`new_environment`, `new_pipeline`,
/// `break_glass`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamesRule {
    /// Names watched.
    #[serde(default = "all_names")]
    pub names: Vec<Pattern>,
    /// Hold.
    #[serde(default)]
    pub hold: bool,
    /// Sinks (default: all).
    #[serde(default)]
    pub sinks: Option<Vec<toml::Spanned<String>>>,
}

fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let f = f64::deserialize(d)?;
    if !(f.is_finite() && (1.0..=1000.0).contains(&f)) {
        return Err(D::Error::custom(format!("factor {f} is not within 1..=1000")));
    }
    Ok(f)
}

fn hours_span<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let h = u64::deserialize(d)?;
    if h > 24 * 366 {
        return Err(D::Error::custom(format!("{h} hours is more than a year")));
    }
    Ok(h)
}

/// `[rules.access_volume]` (the formula is in [`crate::alerts::volume`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessVolume {
    /// Alert when an hour's count exceeds `factor` times the average.
    #[serde(default = "default_factor", deserialize_with = "factor")]
    pub factor: f64,
    /// Smoothing of the moving average, in hours (alpha = 2 / (N + 1)).
    #[serde(default = "default_window", deserialize_with = "hours_span")]
    pub window_hours: u64,
    /// Hours an actor must have been seen before it can alert.
    #[serde(default = "default_warmup", deserialize_with = "hours_span")]
    pub warmup_hours: u64,
    /// Never alert at or below this many accesses in an hour.
    #[serde(default = "default_min_count")]
    pub min_count: u64,
    /// Hold.
    #[serde(default)]
    pub hold: bool,
    /// Sinks (default: all).
    #[serde(default)]
    pub sinks: Option<Vec<toml::Spanned<String>>>,
}

impl Default for AccessVolume {
    /// The defaults of an empty `[rules.access_volume]` table.
    fn default() -> Self {
        AccessVolume {
            factor: default_factor(),
            window_hours: default_window(),
            warmup_hours: default_warmup(),
            min_count: default_min_count(),
            hold: false,
            sinks: None,
        }
    }
}

fn default_factor() -> f64 {
    3.0
}
fn default_window() -> u64 {
    24
}
fn default_warmup() -> u64 {
    24
}
fn default_min_count() -> u64 {
    10
}

/// `[rules.unknown_client]`: statements whose `context.source` matches
/// none of `allow`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnknownClient {
    /// Allowed client identities; `*` matches any run of characters.
    pub allow: Vec<String>,
    /// Whether a statement without `source` is allowed.
    #[serde(default)]
    pub allow_missing: bool,
    /// Hold.
    #[serde(default)]
    pub hold: bool,
    /// Sinks (default: all).
    #[serde(default)]
    pub sinks: Option<Vec<toml::Spanned<String>>>,
}

fn admin_only() -> Vec<Role> {
    vec![Role::Admin]
}

/// `[rules.admin_grant]`: grants of these roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminGrant {
    /// Roles whose grants alert.
    #[serde(default = "admin_only")]
    pub roles: Vec<Role>,
    /// Sinks (default: all).
    #[serde(default)]
    pub sinks: Option<Vec<toml::Spanned<String>>>,
}

fn builtin_tags() -> Vec<String> {
    vec!["production".into(), "staging".into()]
}

/// `[rules.protected_tag_move]`: tag moves of `tags` and of every tag a
/// logged `protect` constrains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedTagMove {
    /// Names watched.
    #[serde(default = "all_names")]
    pub names: Vec<Pattern>,
    /// Tags always treated as protected.
    #[serde(default = "builtin_tags")]
    pub tags: Vec<String>,
    /// Hold.
    #[serde(default)]
    pub hold: bool,
    /// Sinks (default: all).
    #[serde(default)]
    pub sinks: Option<Vec<toml::Spanned<String>>>,
}

/// A rule with no settings of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plain {
    /// Sinks (default: all).
    #[serde(default)]
    pub sinks: Option<Vec<toml::Spanned<String>>>,
}

/// `[hold]`: who signs automatic holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldConfig {
    /// Actor key file (0600) of an approver or admin on the held names.
    pub key: PathBuf,
    /// The hold statement's reason (the alert id is appended).
    #[serde(default = "default_hold_reason")]
    pub reason: String,
}

fn default_hold_reason() -> String {
    "automatic hold by custody monitor".into()
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

impl Config {
    /// Parses and checks a rules file.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let invalid =
            |offset: usize, detail: String| ConfigError::Invalid { line: line_of(text, offset), detail };
        let mut names = BTreeSet::new();
        for s in &cfg.sinks {
            if !names.insert(s.name.0.clone()) {
                let at = text.find(&format!("\"{}\"", s.name.0)).unwrap_or(0);
                return Err(invalid(at, format!("two sinks are named {:?}", s.name.0)));
            }
            let needs_url = s.kind != SinkKind::Stdout;
            match (needs_url, &s.url, &s.url_env) {
                (true, Some(_), None) | (true, None, Some(_)) | (false, None, None) => {}
                (true, _, _) => {
                    let at = text.find(&format!("\"{}\"", s.name.0)).unwrap_or(0);
                    return Err(invalid(
                        at,
                        format!("sink {:?} needs exactly one of url, url_env", s.name.0),
                    ));
                }
                (false, _, _) => {
                    let at = text.find(&format!("\"{}\"", s.name.0)).unwrap_or(0);
                    return Err(invalid(at, format!("sink {:?}: a stdout sink takes no url", s.name.0)));
                }
            }
            if let Some(u) = &s.url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    let at = text.find(u.as_str()).unwrap_or(0);
                    return Err(invalid(at, format!("sink {:?}: url must be http:// or https://", s.name.0)));
                }
            }
        }
        for routing in cfg.rules.routings() {
            for s in routing.1.iter().flatten() {
                if !names.contains(s.get_ref()) {
                    return Err(invalid(s.span().start, format!("no sink is named {:?}", s.get_ref())));
                }
            }
            if routing.0 && cfg.hold.is_none() {
                let at = text.find("hold").unwrap_or(0);
                return Err(invalid(at, "a rule asks for holds but there is no [hold] table".into()));
            }
        }
        for w in &cfg.rules.outside_hours {
            if w.from > 23 {
                let at = text.find("from").unwrap_or(0);
                return Err(invalid(at, "outside_hours from must be within 0..=23".into()));
            }
        }
        if let Some(p) = &cfg.rules.protected_tag_move {
            for t in &p.tags {
                if custody_registry::names::TagName::new(t).is_err() {
                    let at = text.find(t.as_str()).unwrap_or(0);
                    return Err(invalid(at, format!("{t:?} is not a tag name")));
                }
            }
        }
        if cfg.sinks.is_empty() && cfg.hold.is_none() {
            return Err(ConfigError::Invalid {
                line: 1,
                detail: "no [[sink]]: alerts would go nowhere".into(),
            });
        }
        Ok(cfg)
    }
}

impl RulesConfig {
    /// Every rule's (hold, sinks), for the cross-checks.
    fn routings(&self) -> Vec<(bool, &Option<Vec<toml::Spanned<String>>>)> {
        let mut out: Vec<(bool, &Option<Vec<toml::Spanned<String>>>)> =
            self.outside_hours.iter().map(|w| (w.hold, &w.sinks)).collect();
        out.extend(self.new_environment.iter().map(|r| (r.hold, &r.sinks)));
        out.extend(self.new_pipeline.iter().map(|r| (r.hold, &r.sinks)));
        out.extend(self.access_volume.iter().map(|r| (r.hold, &r.sinks)));
        out.extend(self.unknown_client.iter().map(|r| (r.hold, &r.sinks)));
        out.extend(self.admin_grant.iter().map(|r| (false, &r.sinks)));
        out.extend(self.protected_tag_move.iter().map(|r| (r.hold, &r.sinks)));
        out.extend(self.key_revocation.iter().map(|r| (false, &r.sinks)));
        out.extend(self.break_glass.iter().map(|r| (r.hold, &r.sinks)));
        out
    }
}

/// Whether any pattern covers `name`.
pub fn any_matches(patterns: &[Pattern], name: &ModelName) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

/// A glob with `*` (any run of characters, possibly empty) and nothing
/// else special: client identities are free text, not paths.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[sink]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[sink]]
name = "out"
type = "stdout"

[[rules.outside_hours]]
names = ["acme/*"]
from = 8
to = 18

[rules.unknown_client]
allow = ["ci-*"]
sinks = ["ops"]
"#;

    #[test]
    fn a_good_file_parses() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.sinks.len(), 2);
        assert_eq!(c.rules.outside_hours[0].from, 8);
        assert!(c.rules.new_environment.is_none());
    }

    #[track_caller]
    fn refused(text: &str, line: usize, needle: &str) {
        let e = Config::parse(text).unwrap_err().to_string();
        assert!(e.contains(&format!("line {line}")), "{e}");
        assert!(e.contains(needle), "{e}");
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        refused(&GOOD.replace("to = 18", "to = 18\nuntil = 3"), 15, "unknown field `until`");
        refused(&GOOD.replace("[rules.unknown_client]", "[rules.unknown_clients]"), 16, "unknown field");
        refused(&GOOD.replace("to = 18", "to = 25"), 14, "not within 0..=24");
        refused(&GOOD.replace("\"acme/*\"", "\"acme/**\""), 12, "pattern");
        refused(&GOOD.replace("sinks = [\"ops\"]", "sinks = [\"opz\"]"), 18, "no sink is named \"opz\"");
        refused(&GOOD.replace("type = \"stdout\"", "type = \"pager\""), 9, "unknown variant");
        refused(&GOOD.replace("name = \"out\"", "name = \"ops\""), 3, "two sinks");
        refused(&GOOD.replace("allow = [\"ci-*\"]", "allow = [\"ci-*\"]\nhold = true"), 18, "no [hold]");
        refused(&GOOD.replace("from = 8", "from = 24"), 13, "from must be");
        refused("[[sink]]\nname = \"a\"\ntype = \"slack\"\n", 2, "exactly one of url");
        refused("", 1, "no [[sink]]");
        refused("[[sink]\n", 1, "");
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../docs/verifier.md");
        let after =
            doc.split("<!-- alert-rules-example -->").nth(1).expect("example marker in docs/verifier.md");
        let block = after.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("toml block");
        let c = Config::parse(block).unwrap();
        assert_eq!(c.sinks.len(), 3);
        let r = &c.rules;
        assert!(r.new_environment.is_some() && r.new_pipeline.is_some() && r.access_volume.is_some());
        assert!(r.unknown_client.as_ref().is_some_and(|u| u.hold));
        assert!(r.admin_grant.is_some() && r.protected_tag_move.is_some() && r.key_revocation.is_some());
        assert!(r.break_glass.is_some() && c.hold.is_some());
        assert_eq!(r.outside_hours.len(), 1);
    }

    #[test]
    fn globs() {
        assert!(glob("ci-*", "ci-runner-4"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exact2"));
        assert!(!glob("ci-*", "laptop"));
        assert!(!glob("a*a", "a"));
    }
}
