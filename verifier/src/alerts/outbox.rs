//! The monitor's durable state: the cursor (next entry to evaluate), what
//! the rules learned, and one queue of undelivered alerts per sink, all in
//! `<state dir>/alerts/<origin>/`:
//!
//! ```text
//! state.json                       cursor, baseline end, learned sets
//! outbox/<sink>/<index>-<rule>.json   an alert waiting for that sink
//! outbox/<sink>/failed/...            alerts the sink refused for good (4xx)
//! ```
//!
//! A page of entries is committed in three steps: (1) its alerts are
//! written as `*.json.new` files, fsynced, invisible to the sinks; (2)
//! `state.json` with the advanced cursor replaces the old one atomically
//! (fsynced temporary file, rename, directory fsync); (3) the `.new`
//! files are renamed into the queues. A crash before (2) leaves the old
//! cursor: the `.new` files are deleted at start-up and the same entries
//! raise the same alerts again. A crash after (2) leaves `.new` files
//! below the cursor: they are renamed at start-up. So the cursor only
//! moves past an entry once its alerts are durably queued, and an alert is
//! queued at most once.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alerts::evaluate::Learned;
use crate::alerts::Alert;
use crate::error::{Error, Result};
use crate::home::{read_capped, write_atomic};

/// Largest state file read back.
const MAX_STATE: u64 = 256 << 20;
/// Largest queued alert read back.
const MAX_ALERT: u64 = 1 << 20;
/// The queue of holds requested by rules (not a valid sink name).
pub const HOLD_QUEUE: &str = "_hold";

/// What is saved in `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The next entry to evaluate.
    pub cursor: u64,
    /// Entries below this were only learned from (the history before the
    /// first start), never alerted on.
    pub baseline_end: u64,
    /// What the rules learned.
    pub learned: Learned,
}

/// The state directory of one log.
pub struct Store {
    dir: PathBuf,
}

fn file_name(a: &Alert) -> String {
    format!("{:020}-{}.json", a.index, a.rule)
}

/// The leaf index a queue file name starts with.
fn index_of(name: &str) -> Option<u64> {
    name.get(..20)?.parse().ok()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Store {
    /// The store in `dir`, created if missing.
    pub fn new(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(dir.join("outbox")).map_err(io(&dir))?;
        Ok(Store { dir })
    }

    /// The saved state, or `None` before the first commit.
    pub fn load(&self) -> Result<Option<State>> {
        let path = self.dir.join("state.json");
        let bytes = match read_capped(&path, MAX_STATE) {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Config(format!(
                "{}: {e} (move it away to start over from the current checkpoint)",
                path.display()
            ))
        })
    }

    /// The queue of `sink`.
    pub fn queue(&self, sink: &str) -> Queue {
        Queue { dir: self.dir.join("outbox").join(sink) }
    }

    /// Finishes an interrupted commit (see the module docs): `.new` files
    /// below the saved cursor are queued, the others deleted.
    pub fn recover(&self, cursor: u64) -> Result<()> {
        let outbox = self.dir.join("outbox");
        for sink in fs::read_dir(&outbox).map_err(io(&outbox))? {
            let sink = sink.map_err(io(&outbox))?.path();
            if !sink.is_dir() {
                continue;
            }
            for f in fs::read_dir(&sink).map_err(io(&sink))? {
                let p = f.map_err(io(&sink))?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
                let Some(done) = name.strip_suffix(".new") else { continue };
                if index_of(&name).is_some_and(|i| i < cursor) {
                    fs::rename(&p, sink.join(done)).map_err(io(&p))?;
                } else {
                    fs::remove_file(&p).map_err(io(&p))?;
                }
            }
        }
        Ok(())
    }

    /// Commits one page: `alerts` (each with the queues it goes to) are
    /// queued and the state, cursor included, saved, in the order the
    /// module docs give.
    pub fn commit(&self, state: &State, alerts: &[(Alert, Vec<String>)]) -> Result<()> {
        let mut staged = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (alert, queues) in alerts {
            let body = serde_json::to_vec(alert).map_err(|e| Error::Config(format!("alert: {e}")))?;
            for q in queues {
                let dir = self.dir.join("outbox").join(q);
                fs::create_dir_all(&dir).map_err(io(&dir))?;
                let done = dir.join(file_name(alert));
                let new = dir.join(format!("{}.new", file_name(alert)));
                write_synced(&new, &body)?;
                dirs.insert(dir);
                staged.push((new, done));
            }
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        let bytes = serde_json::to_vec(state).map_err(|e| Error::Config(format!("monitor state: {e}")))?;
        write_atomic(&self.dir.join("state.json"), &bytes, 0o600)?;
        for (new, done) in &staged {
            fs::rename(new, done).map_err(io(new))?;
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut f = fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(path))
}

/// One sink's queue of alerts, in leaf order.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
}

impl Queue {
    /// The queued alert files, oldest entry first.
    pub fn list(&self) -> Result<Vec<PathBuf>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for f in rd {
            let p = f.map_err(io(&self.dir))?.path();
            if p.extension().is_some_and(|e| e == "json") && p.is_file() {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads a queued alert.
    pub fn read(&self, path: &Path) -> Result<Alert> {
        let bytes = read_capped(path, MAX_ALERT)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Removes a delivered alert.
    pub fn delivered(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(io(path))
    }

    /// Moves an alert the sink refused for good to `failed/`, kept for
    /// people to look at.
    pub fn failed(&self, path: &Path) -> Result<()> {
        let dir = self.dir.join("failed");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        fs::rename(path, dir.join(path.file_name().unwrap_or_default())).map_err(io(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(index: u64, rule: &str) -> Alert {
        Alert {
            id: format!("{rule}:{index}"),
            rule: rule.into(),
            index,
            checkpoint_size: index + 2,
            origin: "o".into(),
            time: "2026-01-01T00:00:00Z".into(),
            received_ms: 0,
            actor: "a".into(),
            key_id: "k".into(),
            name: None,
            version: None,
            summary: "s".into(),
            hold: false,
            context: serde_json::Value::Null,
            event: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_commit_queues_in_leaf_order_and_saves_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_owned()).unwrap();
        assert_eq!(store.load().unwrap(), None);
        let state = State { cursor: 120, ..State::default() };
        let alerts = vec![
            (alert(100, "unknown_client"), vec!["a".to_owned(), "b".to_owned()]),
            (alert(9, "admin_grant"), vec!["a".to_owned()]),
        ];
        store.commit(&state, &alerts).unwrap();
        assert_eq!(store.load().unwrap(), Some(state));
        let q = store.queue("a");
        let listed: Vec<u64> = q.list().unwrap().iter().map(|p| q.read(p).unwrap().index).collect();
        assert_eq!(listed, [9, 100]);
        assert_eq!(store.queue("b").list().unwrap().len(), 1);
        q.delivered(&q.list().unwrap()[0]).unwrap();
        q.failed(&q.list().unwrap()[0]).unwrap();
        assert!(q.list().unwrap().is_empty());
    }

    #[test]
    fn recovery_keeps_staged_alerts_below_the_cursor_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_owned()).unwrap();
        let q = dir.path().join("outbox/a");
        fs::create_dir_all(&q).unwrap();
        // Staged by a commit whose state write happened (below cursor 50)
        // and by one that was cut before it (at 50 and above).
        fs::write(q.join(format!("{}.new", file_name(&alert(40, "r")))), b"{}").unwrap();
        fs::write(q.join(format!("{}.new", file_name(&alert(50, "r")))), b"{}").unwrap();
        store.recover(50).unwrap();
        let names: Vec<String> =
            fs::read_dir(&q).unwrap().map(|f| f.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, [file_name(&alert(40, "r"))]);
    }
}
