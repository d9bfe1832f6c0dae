//! Results of the commands that sign a statement and prove it is logged
//! (`publish`, `tag`, `promote`, `approve`, `rollback`, `protect`,
//! `grant`, `revoke`, `revoke-key`, `rotate-key`). Their JSON carries the
//! event body read back from the proven entry, so a script sees exactly
//! what the log holds, and the receipt that proves it.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::{Map, Value};

use custody_standards::leaf_hash;
use custody_verifier::directory::publish::DirPublished;
use custody_verifier::statements::Receipt;

use super::{CheckpointOutput, Render};

/// Where a statement landed and the proof of it.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptOutput {
    /// Leaf index of the entry.
    pub index: u64,
    /// RFC 6962 leaf hash of the entry, standard base64 as the log's API
    /// (`/proof/inclusion?leaf_hash=`) takes it.
    pub leaf_hash: String,
    /// The log already held this statement (an idempotent re-publish).
    pub duplicate: bool,
    /// The checkpoint the inclusion was proven in (its `size` covers
    /// `index`).
    pub checkpoint: CheckpointOutput,
    /// The tlog-proof bundle written, if any.
    pub bundle: Option<String>,
}

impl ReceiptOutput {
    /// The receipt `r` (no bundle written yet).
    pub fn of(r: &Receipt) -> Self {
        ReceiptOutput {
            index: r.index,
            leaf_hash: leaf_hash(&r.entry).to_base64(),
            duplicate: r.duplicate,
            checkpoint: CheckpointOutput::of(&r.checkpoint),
            bundle: None,
        }
    }

    /// The lines every statement command prints, `label` naming what was
    /// logged.
    fn text(&self, label: &str) -> String {
        let dup = if self.duplicate { " (already logged)" } else { "" };
        let mut s = format!("logged {label} at entry {}{dup}\n", self.index);
        s += &self.checkpoint.text();
        if let Some(path) = &self.bundle {
            s += &format!("proof bundle: {path}\n");
        }
        s
    }
}

/// Writes `r` as a C2SP tlog-proof bundle (the entry in its `extra` line).
pub fn write_bundle(r: &Receipt, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, r.bundle().to_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The registry action of the entry in `r` and the fields of its event
/// body as signed (docs/protocol.md), e.g. `("promote", {name, version,
/// to})`.
fn event_of(r: &Receipt) -> anyhow::Result<(&'static str, Map<String, Value>)> {
    let s = r.statement()?;
    let action = s.statement.event.action();
    let body = match serde_json::to_value(&s.statement.event)? {
        // An event is `{"<action>": {body}}`.
        Value::Object(m) => m.into_iter().next().map(|(_, v)| v),
        _ => None,
    };
    match body {
        Some(Value::Object(fields)) => Ok((action, fields)),
        _ => Ok((action, Map::new())),
    }
}

/// `tag`, `promote`, `approve`, `rollback`, `protect`, `grant`, `revoke`,
/// `revoke-key`, and the `--tag` move of `publish`.
#[derive(Debug, Clone, Serialize)]
pub struct StatementOutput {
    /// The registry action (`tag`, `promote`, `approve`, `rollback`,
    /// `protect`, `grant`, `revoke`, `revoke_key`).
    pub action: &'static str,
    /// The event body's fields as logged (e.g. `name`, `version`, `to`).
    #[serde(flatten)]
    pub event: Map<String, Value>,
    /// For `tag`: the version the tag now names (the event holds its
    /// digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where it landed.
    pub receipt: ReceiptOutput,
    /// What the prose calls it (`promote acme/m@1 to staging`).
    #[serde(skip)]
    pub label: String,
}

impl StatementOutput {
    /// The statement proven by `r`, called `label` in prose.
    pub fn of(label: String, r: &Receipt) -> anyhow::Result<Self> {
        let (action, event) = event_of(r)?;
        Ok(StatementOutput { action, event, version: None, receipt: ReceiptOutput::of(r), label })
    }
}

impl Render for StatementOutput {
    fn text(&self) -> String {
        self.receipt.text(&self.label)
    }
}

/// `custody publish`. The optional members are what only some publishes
/// produce; a variant of publish adds its own the same way.
#[derive(Debug, Clone, Serialize)]
pub struct PublishOutput {
    /// Always `publish`.
    pub action: &'static str,
    /// The publish body as logged: `name`, `version`, `kind`, `digest`
    /// (`sha256:<hex>` of the file), `size`, `media_type`, `metadata`,
    /// `lineage`.
    #[serde(flatten)]
    pub event: Map<String, Value>,
    /// Where it landed; `bundle` is always written for a publish.
    pub receipt: ReceiptOutput,
    /// The `--tag` move, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<StatementOutput>,
    /// For a model directory: its manifest and what was uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<PublishedDirectory>,
    /// What the prose calls it (`publish acme/m@1`).
    #[serde(skip)]
    pub label: String,
}

impl PublishOutput {
    /// The publish proven by `r`.
    pub fn of(label: String, r: &Receipt) -> anyhow::Result<Self> {
        let (action, event) = event_of(r)?;
        Ok(PublishOutput { action, event, receipt: ReceiptOutput::of(r), tag: None, directory: None, label })
    }
}

impl Render for PublishOutput {
    fn text(&self) -> String {
        let mut s = self.receipt.text(&self.label);
        if let Some(t) = &self.tag {
            s += &t.text();
        }
        s
    }
}

/// What a model directory publish covered (`digest` and `size` of the
/// publish are the manifest's).
#[derive(Debug, Clone, Serialize)]
pub struct PublishedDirectory {
    /// Files the manifest lists.
    pub files: usize,
    /// Bytes of all of them.
    pub total_bytes: u64,
    /// Files this run uploaded (the others were already in the log).
    pub uploaded_files: usize,
    /// Bytes this run uploaded, the manifest excluded.
    pub uploaded_bytes: u64,
}

impl PublishedDirectory {
    /// What `d` covered.
    pub fn of(d: &DirPublished) -> Self {
        PublishedDirectory {
            files: d.files,
            total_bytes: d.total_bytes,
            uploaded_files: d.uploaded_files,
            uploaded_bytes: d.uploaded_bytes,
        }
    }
}

/// `custody rotate-key`.
#[derive(Debug, Clone, Serialize)]
pub struct RotateOutput {
    /// Always `rotate`.
    pub action: &'static str,
    /// The new public key `actor+hex8+base64`, as logged.
    pub new_key: String,
    /// The new key's ID.
    pub key_id: String,
    /// The key file, now holding the new key.
    pub key_file: String,
    /// Where the old key was kept.
    pub retired_key_file: String,
    /// Where the rotation landed.
    pub receipt: ReceiptOutput,
}

impl Render for RotateOutput {
    fn text(&self) -> String {
        self.receipt.text("rotate") + &format!("new public key: {}\n", self.new_key)
    }
}
