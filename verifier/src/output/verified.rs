//! Results of the commands that verify and read the log (`checkpoint`,
//! `pull`, `history`, `report`, `audit`) and of the offline checks
//! (`verify checkpoint|inclusion|consistency|evidence|bundle`).

use serde::Serialize;

use custody_standards::policy::PolicyVerified;
use custody_standards::Checkpoint;
use custody_verifier::audit::AuditReport;
use custody_verifier::directory::pull::DirPulled;
use custody_verifier::history::{table, Row};
use custody_verifier::pull::Verified;
use custody_verifier::report::{markdown, Report};
use custody_verifier::trust::Trusted;

use super::{CheckpointOutput, Render};

impl CheckpointOutput {
    /// A checkpoint verified offline against the policy.
    pub fn verified(v: &PolicyVerified) -> Self {
        let c = &v.checkpoint;
        CheckpointOutput {
            origin: c.origin.clone(),
            size: c.size,
            root: c.root.to_base64(),
            cosigners: v.cosigners.iter().map(|(n, _)| n.clone()).collect(),
        }
    }
}

/// `custody checkpoint`: the trusted checkpoint and its signed note.
#[derive(Debug, Clone, Serialize)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    #[serde(flatten)]
    pub checkpoint: CheckpointOutput,
    /// The signed note verbatim, with every cosignature (what `verify
    /// checkpoint` takes).
    pub note: String,
}

impl SignedCheckpoint {
    /// The trusted checkpoint `t`.
    pub fn of(t: &Trusted) -> Self {
        SignedCheckpoint {
            checkpoint: CheckpointOutput::of(t),
            note: String::from_utf8_lossy(&t.note).into_owned(),
        }
    }
}

impl Render for SignedCheckpoint {
    fn text(&self) -> String {
        self.checkpoint.text()
    }
}

/// One version's status, proven current at the checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct VersionStatus {
    /// Version.
    pub version: String,
    /// Lifecycle state.
    pub status: String,
}

/// What `pull` (or `pull --verify-only`) verified about an artifact.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedArtifact {
    /// Model name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Who signed the publish.
    pub publisher: String,
    /// Leaf index of the publish entry.
    pub publish_index: u64,
    /// Leaf index of the tag move, for a `name:tag` reference (else null).
    pub tag_index: Option<u64>,
    /// Every version checked, with its status proven current.
    pub statuses: Vec<VersionStatus>,
    /// The checkpoint everything was proven against.
    pub checkpoint: CheckpointOutput,
}

impl VerifiedArtifact {
    /// `v`.
    pub fn of(v: &Verified) -> Self {
        VerifiedArtifact {
            name: v.name.as_str().to_owned(),
            version: v.version.as_str().to_owned(),
            digest: v.digest.to_string(),
            size: v.size,
            publisher: v.publisher.as_str().to_owned(),
            publish_index: v.publish_index,
            tag_index: v.tag_index,
            statuses: v
                .statuses
                .iter()
                .map(|(ver, s)| VersionStatus {
                    version: ver.as_str().to_owned(),
                    status: s.as_str().to_owned(),
                })
                .collect(),
            checkpoint: CheckpointOutput::of(&v.checkpoint),
        }
    }
}

impl Render for VerifiedArtifact {
    fn text(&self) -> String {
        let tag = self.tag_index.map(|i| format!(", tag move at entry {i}")).unwrap_or_default();
        format!(
            "verified {}@{} {} ({} bytes) published by {} at entry {}{tag}\n",
            self.name, self.version, self.digest, self.size, self.publisher, self.publish_index
        ) + &self.checkpoint.text()
    }
}

/// `custody pull`. The optional members are what only some pulls
/// produce; a variant of pull adds its own the same way.
#[derive(Debug, Clone, Serialize)]
pub struct PullOutput {
    /// The reference as given.
    pub reference: String,
    /// The artifact verified.
    #[serde(flatten)]
    pub artifact: VerifiedArtifact,
    /// The destination (with `--verify-only`: the file checked).
    pub path: String,
    /// Whether the file was written (false with `--verify-only`).
    pub written: bool,
    /// For a model directory: what was fetched or checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<PulledDirectory>,
}

/// What a model directory pull (or `--verify-only` check) covered.
#[derive(Debug, Clone, Serialize)]
pub struct PulledDirectory {
    /// Files, the signature file included.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The access entry logged for the manifest, under which every file
    /// was fetched.
    pub access_index: u64,
}

impl PulledDirectory {
    /// What `d` covered.
    pub fn of(d: &DirPulled) -> Self {
        PulledDirectory { files: d.files, bytes: d.bytes, access_index: d.access_index }
    }
}

impl Render for PullOutput {
    fn text(&self) -> String {
        let mut s = self.artifact.text();
        if self.written {
            s += &format!("wrote {}\n", self.path);
        }
        s
    }
}

/// `custody history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryOutput {
    /// The model name.
    pub name: String,
    /// The checkpoint every row was proven against.
    pub checkpoint: CheckpointOutput,
    /// One row per entry about the name, in log order.
    pub rows: Vec<Row>,
}

impl Render for HistoryOutput {
    fn text(&self) -> String {
        table(&self.rows) + &self.checkpoint.text()
    }
}

impl Render for Report {
    fn text(&self) -> String {
        markdown(self)
    }
}

impl Render for AuditReport {
    fn text(&self) -> String {
        let r = self;
        let resumed = r.resumed_from.map(|s| format!(", resumed from size {s}")).unwrap_or_default();
        let mut s = format!("log {} size {} root {}{resumed}\n", r.origin, r.size, r.root);
        s += &format!("tiles and bundles: {} fetched, {} from cache\n", r.fetched, r.cached);
        s += &match &r.full_replay {
            None => format!(
                "replay: from entry {}, after the checked state saved by the audit of size {}\n",
                r.replay_from, r.replay_from
            ),
            Some(why) => format!("replay: from entry 0 ({why})\n"),
        };
        s += &match &r.violation {
            // Every entry replayed clean, by this audit and (before
            // `replay_from`) by the earlier ones whose state it resumed.
            None => format!(
                "audit OK: {} entries replayed ({} by this audit), no violation\n",
                r.entries_replayed,
                r.entries_replayed.saturating_sub(r.replay_from)
            ),
            Some(v) => format!("audit FAILED at entry {}: {}\n", v.index, v.problem),
        };
        s
    }
}

/// `custody verify checkpoint`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedCheckpointOutput {
    /// The checkpoint (cosigners: the policy witnesses that verified).
    pub checkpoint: CheckpointOutput,
    /// Witnesses and groups of the policy that are satisfied.
    pub satisfied: Vec<String>,
}

impl Render for VerifiedCheckpointOutput {
    fn text(&self) -> String {
        let c = &self.checkpoint;
        format!("checkpoint OK: {} size {} root {}\n", c.origin, c.size, c.root)
            + &format!("satisfied: {}\n", self.satisfied.join(", "))
    }
}

/// `custody verify inclusion`.
#[derive(Debug, Clone, Serialize)]
pub struct InclusionOutput {
    /// The entry's index.
    pub index: u64,
    /// Its RFC 6962 leaf hash (base64).
    pub leaf_hash: String,
    /// The checkpoint it is included in.
    pub checkpoint: CheckpointOutput,
}

impl Render for InclusionOutput {
    fn text(&self) -> String {
        let c = &self.checkpoint;
        format!("inclusion OK: entry {} in {} size {}\n", self.index, c.origin, c.size)
    }
}

/// `custody verify consistency`.
#[derive(Debug, Clone, Serialize)]
pub struct ConsistencyOutput {
    /// The older checkpoint.
    pub old: CheckpointOutput,
    /// The newer checkpoint, proven to extend it.
    pub new: CheckpointOutput,
}

impl Render for ConsistencyOutput {
    fn text(&self) -> String {
        format!("consistency OK: {} size {} -> {}\n", self.old.origin, self.old.size, self.new.size)
    }
}

/// A tree head named in split-view evidence.
#[derive(Debug, Clone, Serialize)]
pub struct TreeHead {
    /// Tree size.
    pub size: u64,
    /// Root hash (base64).
    pub root: String,
}

impl TreeHead {
    /// `c`'s size and root.
    pub fn of(c: &Checkpoint) -> Self {
        TreeHead { size: c.size, root: c.root.to_base64() }
    }
}

/// `custody verify evidence`: a proven split view.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceOutput {
    /// The log that signed both checkpoints.
    pub origin: String,
    /// The checkpoint with the smaller (or equal) size.
    pub smaller: TreeHead,
    /// The checkpoint with the larger (or equal) size.
    pub larger: TreeHead,
    /// For different sizes: the root the larger tree has at the smaller
    /// size (differs from `smaller.root`); null for equal sizes.
    pub implied_root: Option<String>,
    /// Who recorded the evidence.
    pub reporter: String,
    /// When, POSIX seconds.
    pub detected: u64,
}

impl Render for EvidenceOutput {
    fn text(&self) -> String {
        let (a, b) = (&self.smaller, &self.larger);
        let mut s = format!("split view proven: {} signed two inconsistent checkpoints\n", self.origin);
        s += &format!("size {} root {}\n", a.size, a.root);
        s += &match &self.implied_root {
            Some(r) => {
                format!("size {} root {} (whose tree has root {r} at size {})\n", b.size, b.root, a.size)
            }
            None => format!("size {} root {}\n", b.size, b.root),
        };
        s + &format!("reported by {} at {}\n", self.reporter, self.detected)
    }
}

/// The statement in a verified bundle (its signature not yet checked
/// unless `signer` is set).
#[derive(Debug, Clone, Serialize)]
pub struct BundleStatement {
    /// The registry action.
    pub action: String,
    /// The actor it names.
    pub actor: String,
    /// The key ID it names.
    pub key_id: String,
    /// Statement time.
    pub time: String,
}

/// The signer a bundle's statement was checked against (`--signer`).
#[derive(Debug, Clone, Serialize)]
pub struct BundleSigner {
    /// Actor.
    pub actor: String,
    /// Key ID.
    pub key_id: String,
}

/// `custody verify bundle`.
#[derive(Debug, Clone, Serialize)]
pub struct BundleOutput {
    /// The entry's index.
    pub index: u64,
    /// Its RFC 6962 leaf hash (base64).
    pub leaf_hash: String,
    /// The checkpoint it is proven included in.
    pub checkpoint: CheckpointOutput,
    /// The registry statement in the entry (null if it holds none).
    pub statement: Option<BundleStatement>,
    /// With `--signer`: the key whose signature verified.
    pub signer: Option<BundleSigner>,
    /// With `--artifact`: the file proven to be the published artifact,
    /// with its name, version, digest and size.
    pub artifact: Option<VerifiedFile>,
    /// With `--signer`: what an offline check does not establish.
    pub not_established: Option<String>,
}

/// A file proven to be a published artifact.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedFile {
    /// The file.
    pub path: String,
    /// Model name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `sha256:<hex>` of the file.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl Render for BundleOutput {
    fn text(&self) -> String {
        let c = &self.checkpoint;
        let mut s = format!("bundle OK: entry {} in {} size {}\n", self.index, c.origin, c.size);
        if let Some(st) = &self.statement {
            s += &format!("statement: {} by {} at {}\n", st.action, st.actor, st.time);
        }
        if let Some(k) = &self.signer {
            s += &format!("signature OK: by {} with key {}\n", k.actor, k.key_id);
        }
        if let Some(a) = &self.artifact {
            s += &format!("artifact OK: {} is {}@{}\n", a.path, a.name, a.version);
        }
        if let Some(n) = &self.not_established {
            s += &format!("{n}\n");
        }
        s
    }
}
