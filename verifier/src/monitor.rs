//! `custody monitor`: follow a log and report matching events as JSON
//! lines.
//!
//! Every new checkpoint goes through [`crate::trust`] (policy, consistency
//! proof against the remembered one; an inconsistency ends the monitor with
//! exit code 3). Rules on exact names only run on state proofs
//! ([`crate::monitor_state`]); otherwise new entries are fetched with
//! `/entries` and each one is
//! checked against its leaf hash read through core's [`TileHashReader`],
//! which authenticates every tile against the checkpoint root, so an event
//! is only reported if it is really in the log. The position is saved in
//! the state directory, so a restarted monitor continues where it stopped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use custody_registry::leaf::Leaf;
use custody_registry::names::{ModelName, Pattern};
use custody_registry::statement::{Event, SignedStatement};
use custody_standards::encoding::decode_base64_strict;
use custody_standards::{leaf_hash, HashReader, NodeId, TileHashReader};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fetch::HttpTiles;
use crate::home::{read_capped, write_atomic, Home};
use crate::statements::{is_state_expired, wait_checkpoint};
use crate::trust::{Trust, Trusted};

/// What to watch (`--watch FILE`, JSON).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Names (patterns: `*`, `org/*`, `org/model`) whose tag moves,
    /// promotions, approvals and rollbacks are reported.
    #[serde(default)]
    pub names: Vec<String>,
    /// If present: publishes by an actor or key ID not on this list are
    /// reported.
    #[serde(default)]
    pub publishers: Option<Vec<String>>,
    /// Report every grant, revoke, revoke_key and rotate.
    #[serde(default)]
    pub grants: bool,
    /// If present: accesses whose statement time falls outside these UTC
    /// hours are reported.
    #[serde(default)]
    pub access_hours: Option<Hours>,
}

/// A daily window of UTC hours, `from <= hour < to` (wrapping past midnight
/// when `from > to`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    /// First allowed hour (0..=23).
    pub from: u8,
    /// First hour no longer allowed (0..=24).
    pub to: u8,
}

impl Hours {
    fn allows(&self, hour: u8) -> bool {
        if self.from <= self.to {
            hour >= self.from && hour < self.to
        } else {
            hour >= self.from || hour < self.to
        }
    }
}

/// One reported event (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Why it was reported: `tag_move`, `promotion`, `approval`, `rollback`,
    /// `unlisted_publisher`, `grant_change`, `access_outside_hours`.
    pub rule: &'static str,
    /// Leaf index.
    pub index: u64,
    /// Checkpoint size it was proven under.
    pub checkpoint_size: u64,
    /// Statement time.
    pub time: String,
    /// Signer.
    pub actor: String,
    /// Key ID of the signer.
    pub key_id: String,
    /// The statement's event, as signed.
    pub event: serde_json::Value,
}

impl Rules {
    /// Parses and checks a rules file.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let r: Rules =
            serde_json::from_slice(bytes).map_err(|e| Error::Usage(format!("watch rules: {e}")))?;
        for n in &r.names {
            Pattern::new(n).map_err(|e| Error::Usage(format!("watch rules: name {n:?}: {e}")))?;
        }
        if let Some(h) = r.access_hours {
            if h.from > 23 || h.to > 24 {
                return Err(Error::Usage("watch rules: access_hours must be within 0..24".into()));
            }
        }
        Ok(r)
    }

    /// The watched names when the rules watch only exact model names (no
    /// pattern, no publishers, grants or access hours rule): then every
    /// event that can match is an entry about one of them, listed by the
    /// name's committed entries chain, and the monitor needs only those.
    pub fn exact_names(&self) -> Option<Vec<ModelName>> {
        if self.names.is_empty() || self.publishers.is_some() || self.grants || self.access_hours.is_some() {
            return None;
        }
        let mut names: Vec<ModelName> = self
            .names
            .iter()
            .map(|n| if n.contains('*') { None } else { ModelName::new(n).ok() })
            .collect::<Option<_>>()?;
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        Some(names)
    }

    /// The rule a statement matches, if any.
    pub fn matches(&self, s: &SignedStatement) -> Option<&'static str> {
        let st = &s.statement;
        let watched = |n: &custody_registry::names::ModelName| {
            self.names.iter().filter_map(|p| Pattern::new(p).ok()).any(|p| p.matches(n))
        };
        match &st.event {
            Event::Tag(t) if watched(&t.name) => Some("tag_move"),
            Event::Promote(p) if watched(&p.name) => Some("promotion"),
            Event::Approve(a) if watched(&a.name) => Some("approval"),
            Event::Rollback(r) if watched(&r.name) => Some("rollback"),
            Event::Protect(p) if watched(&p.name) => Some("protection"),
            Event::Publish(_) => {
                let allowed = self.publishers.as_ref()?;
                let listed = allowed.iter().any(|a| a == st.actor.as_str() || *a == st.key_id.to_string());
                (!listed).then_some("unlisted_publisher")
            }
            Event::Grant(_) | Event::Revoke(_) | Event::RevokeKey(_) | Event::Rotate(_) if self.grants => {
                Some("grant_change")
            }
            Event::Access(_) => {
                let hours = self.access_hours?;
                let hour = ((st.time.unix_secs() % 86_400) / 3_600) as u8;
                (!hours.allows(hour)).then_some("access_outside_hours")
            }
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct EntriesJson {
    entries: Vec<String>,
}

/// Entries asked for per request (the log's maximum; it may return
/// fewer, see `GET /entries` in docs/api.md).
const PAGE: u64 = 1000;

/// How long a pass whose checkpoint's state the log no longer serves waits
/// for the next checkpoint (a restarted log publishes one within its
/// checkpoint interval).
const STATE_EXPIRED_WAIT: Duration = Duration::from_secs(30);

/// Follows the log: one pass with `once`, else forever every `interval`.
/// Alerts are written to `out` as JSON lines. `from_start` starts at entry
/// 0 the first time instead of at the current size.
///
/// Rules that watch only exact model names run on state proofs
/// ([`crate::monitor_state`]): per checkpoint, only the new entries about
/// those names are fetched, and their list is proven complete. Any other
/// rule needs every entry, so the whole log is scanned.
pub fn monitor(
    trust: &Trust,
    home: &Home,
    rules: &Rules,
    interval: Duration,
    once: bool,
    from_start: bool,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let names = rules.exact_names();
    loop {
        let t = trust.refresh()?;
        let pos_file: PathBuf = home
            .state_dir
            .join("monitor")
            .join(home.checkpoint_file(&t.checkpoint.origin).file_name().unwrap_or_default());
        let saved = read_capped(&pos_file, 64).ok();
        let next = match &saved {
            Some(b) => String::from_utf8_lossy(b).trim().parse::<u64>().unwrap_or(0),
            None if from_start => 0,
            None => t.checkpoint.size,
        };
        let done = match &names {
            Some(names) => {
                crate::monitor_state::pass(trust, &t, &pos_file, rules, names, next, saved.is_none(), out)
            }
            None => scan(trust, &t, &pos_file, rules, next, out),
        };
        match done {
            // The log no longer serves this checkpoint's state (right after
            // its restart): nothing was saved, so the pass runs again
            // under the next checkpoint.
            Err(e) if is_state_expired(&e) => {
                wait_checkpoint(trust, t.checkpoint.size, STATE_EXPIRED_WAIT)?;
                continue;
            }
            other => other?,
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// Writes the alert for `s` (entry `index`, proven under a checkpoint of
/// `size`) if a rule matches it.
pub(crate) fn alert(
    rules: &Rules,
    s: &SignedStatement,
    index: u64,
    size: u64,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let Some(rule) = rules.matches(s) else { return Ok(()) };
    let st = &s.statement;
    let alert = Alert {
        rule,
        index,
        checkpoint_size: size,
        time: st.time.to_string(),
        actor: st.actor.as_str().to_owned(),
        key_id: st.key_id.to_string(),
        event: serde_json::to_value(&st.event).unwrap_or_default(),
    };
    let line = serde_json::to_string(&alert).unwrap_or_default();
    writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| Error::io("stdout", e))
}

/// Reads every entry in `[next, size)` of the checkpoint `t`, each checked
/// against its leaf hash in the authenticated tiles, reporting matches and
/// saving the position after each page.
pub(crate) fn scan(
    trust: &Trust,
    t: &Trusted,
    pos_file: &Path,
    rules: &Rules,
    next: u64,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let size = t.checkpoint.size;
    let end = verified_pages(trust, t, next, &mut |first, entries| {
        for (i, entry) in (first..).zip(entries) {
            let Some(s) = Leaf::decode(entry).ok().and_then(|l| SignedStatement::parse(l.envelope).ok())
            else {
                continue;
            };
            alert(rules, &s, i, size, out)?;
        }
        write_atomic(pos_file, (first + entries.len() as u64).to_string().as_bytes(), 0o644)
    })?;
    write_atomic(pos_file, end.to_string().as_bytes(), 0o644)
}

/// What [`verified_pages`] hands each page to: its first index and its
/// verified entries.
pub type Page<'a> = dyn FnMut(u64, &[Vec<u8>]) -> Result<()> + 'a;

/// Reads the entries `[next, size)` of the checkpoint `t` a page at a
/// time. Every entry of a page is checked against its leaf hash in tiles
/// authenticated against the checkpoint root before `page(first, entries)`
/// sees any of them, so callers only ever see entries really in the log;
/// a page that does not match ends the read with a verification error
/// (exit 2). Returns `size`.
pub fn verified_pages(trust: &Trust, t: &Trusted, mut next: u64, page: &mut Page<'_>) -> Result<u64> {
    let (size, root) = (t.checkpoint.size, t.checkpoint.root);
    let reader = TileHashReader::new(size, root, HttpTiles::new(trust.client()));
    while next < size {
        let asked = (next + PAGE).min(size);
        let got: EntriesJson = trust.client().get_json(&format!("entries?start={next}&end={asked}"))?;
        // The log may stop a page early (it caps pages in bytes too);
        // the rest comes with the next request.
        let n = got.entries.len() as u64;
        if n == 0 || n > asked - next {
            return Err(Error::verify(format!("the log returned {n} entries for [{next}, {asked})")));
        }
        let end = next + n;
        let ids: Vec<NodeId> = (next..end).map(|i| NodeId::new(0, i)).collect();
        let hashes =
            reader.read_hashes(&ids).map_err(|e| Error::verify(format!("tiles at size {size}: {e}")))?;
        let mut entries = Vec::with_capacity(got.entries.len());
        for ((i, b64), h) in (next..end).zip(&got.entries).zip(&hashes) {
            let entry =
                decode_base64_strict(b64).ok_or_else(|| Error::verify(format!("entry {i}: bad base64")))?;
            if leaf_hash(&entry) != *h {
                return Err(Error::verify(format!(
                    "entry {i} does not match its leaf hash under checkpoint {size}"
                )));
            }
            entries.push(entry);
        }
        page(next, &entries)?;
        next = end;
    }
    Ok(size.max(next))
}
