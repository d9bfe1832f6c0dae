//! Command-line definitions (clap). Every flag can also come from the
//! `CUSTODY_*` environment variable shown in `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::audit_args::{AuditArgs, ReportArgs};
use crate::choices::{KindChoice, RoleChoice, StatusChoice};
use crate::output::Format;

/// custody: publish, pull and audit ML artifacts in a Custody transparency
/// log. Nothing is loaded unless it is provably logged, witnessed and
/// consistent with what this client saw before.
///
/// Exit codes: 0 ok, 1 failure (I/O, network, refused), 2 verification
/// failed, 3 log inconsistent with remembered state (evidence written),
/// 64 bad command line.
#[derive(Debug, Parser)]
#[command(name = "custody", version)]
pub struct Cli {
    /// Directory for config and state (default: XDG dirs, see docs/verifier.md).
    #[arg(long, env = "CUSTODY_HOME", global = true)]
    pub home: Option<PathBuf>,
    /// Log base URL (default: the one saved by `custody init`).
    #[arg(long = "log", env = "CUSTODY_LOG_URL", global = true)]
    pub log_url: Option<String>,
    /// Base URL of the log's static read path (tlog-tiles: `checkpoint`
    /// and `tile/...`, e.g. a CDN or static server in front of the bucket
    /// of `custody-log serve --store`). Checkpoints, tiles and entry
    /// bundles are then read there, and everything else from `--log`.
    #[arg(long, env = "CUSTODY_TILES_URL", global = true)]
    pub tiles_url: Option<String>,
    /// PEM file of extra CA certificates to trust for an https:// log,
    /// besides the system roots (default: the one saved by `custody init`).
    #[arg(long, env = "CUSTODY_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Policy file (default: the copy saved by `custody init`).
    #[arg(long, env = "CUSTODY_POLICY", global = true)]
    pub policy: Option<PathBuf>,
    /// Actor key file (default: `key` in the config directory).
    #[arg(long, env = "CUSTODY_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// Seconds to wait for a checkpoint covering a new entry.
    #[arg(long, env = "CUSTODY_WAIT_SECS", default_value_t = 30, global = true)]
    pub wait: u64,
    /// Reason recorded in signed statements (default `custody cli`;
    /// required by `hold`, `release` and `--break-glass`).
    #[arg(long, env = "CUSTODY_REASON", global = true)]
    pub reason: Option<String>,
    /// Environment recorded in signed statements.
    #[arg(long, env = "CUSTODY_ENVIRONMENT", global = true)]
    pub environment: Option<String>,
    /// Pipeline recorded in signed statements.
    #[arg(long, env = "CUSTODY_PIPELINE", global = true)]
    pub pipeline: Option<String>,
    /// Client identity recorded in signed statements (`context.source`),
    /// e.g. a host or service name; `monitor --rules` can alert on
    /// unknown ones.
    #[arg(long, env = "CUSTODY_SOURCE", global = true)]
    pub source: Option<String>,
    /// Log filter for diagnostics on stderr (e.g. `info`, `debug`).
    #[arg(long, env = "CUSTODY_LOG_LEVEL", default_value = "warn", global = true)]
    pub log_level: String,
    /// What goes to stdout: `text` for people, or `json`: exactly one JSON
    /// object per command (one per line for `monitor`), and on failure
    /// `{"error": {"exit", "kind", "message"}}` (docs/verifier.md).
    #[arg(long = "output", env = "CUSTODY_OUTPUT_FORMAT", value_enum, default_value_t = Format::Text, global = true)]
    pub output: Format,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The output format: `--output`, or JSON when the command's own
    /// `--json` (kept from before `--output` existed) is given.
    pub fn format(&self) -> Format {
        let json = match &self.command {
            Command::Audit(a) => a.json,
            Command::History(a) => a.json,
            Command::Report(a) => a.json,
            _ => false,
        };
        if json {
            Format::Json
        } else {
            self.output
        }
    }
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save the trusted policy and the log URL (needs --policy and --log),
    /// and the --ca-cert file if given.
    Init,
    /// Create an actor key file (mode 0600) and print its public key.
    Keygen(Keygen),
    /// Show the actor, key ID and public key of the key file.
    Whoami,
    /// Fetch the log's checkpoint, verify it against the policy and the
    /// remembered one (consistency proof), remember it and print it.
    Checkpoint,
    /// Upload and publish an artifact, then prove it is logged.
    Publish(PublishArgs),
    /// Move a tag to a published version.
    Tag(TagArgs),
    /// Promote a version to a lifecycle state.
    Promote(PromoteArgs),
    /// Approve a version (two-person rule for production).
    Approve(VersionArg),
    /// Roll production back to an earlier production version.
    Rollback(RollbackArgs),
    /// Put a hold on a name or version (approver or admin): tag moves,
    /// promotions, deploys, transfers and pulls of it are refused until a
    /// release. Needs --reason.
    Hold(HoldArgs),
    /// Lift a hold on exactly this name or version. Needs --reason.
    Release(HoldArgs),
    /// Record that a version was deployed to an environment or target.
    Deploy(DeployArgs),
    /// Record that a version's artifact was copied to another registry or
    /// environment.
    Transfer(TransferArgs),
    /// Protect a tag of a name (admin): from now on it may only point at a
    /// version in one of --statuses. Run again to replace the set.
    Protect(ProtectArgs),
    /// Grant a role on a pattern to an actor (admin).
    Grant(GrantArgs),
    /// Revoke a role (exactly as granted) from an actor (admin).
    Revoke(RevokeArgs),
    /// Kill an actor's key, e.g. a stolen one (the actor itself, or an
    /// admin on `*`); the actor needs a new grant to act again.
    RevokeKey(RevokeKeyArgs),
    /// Replace your key: a new key is created, the rotation is signed with
    /// the old one, and the key file is replaced once the log includes it.
    RotateKey(Receipt),
    /// Verify an artifact before load, then download it into place.
    Pull(PullArgs),
    /// Audit a whole log: rebuild the tree from its tiles, check every
    /// entry against it, and replay every statement. Exit 2 names the first
    /// violating entry.
    Audit(AuditArgs),
    /// Follow a log: verify every new checkpoint's consistency and print one
    /// JSON line per entry matching the watch rules. Exit 3 on inconsistency.
    Monitor(MonitorArgs),
    /// A model's versions, tag moves, promotions, approvals and accesses,
    /// one row per entry proven in the log, with its leaf index.
    History(HistoryArgs),
    /// A compliance report over a period, on the whole registry or a name,
    /// actor or artifact, proven complete (Markdown, JSON or HTML).
    Report(ReportArgs),
    /// Offline checks: no network.
    #[command(subcommand)]
    Verify(Verify),
}

/// `keygen`.
#[derive(Debug, Args)]
pub struct Keygen {
    /// Actor name (`[a-z0-9._@-]`, at most 64 bytes).
    pub actor: String,
    /// Output file (default: the --key file).
    #[arg(long, short = 'o', env = "CUSTODY_KEYGEN_OUT")]
    pub out: Option<PathBuf>,
    /// Replace an existing key file.
    #[arg(long, env = "CUSTODY_KEYGEN_FORCE")]
    pub force: bool,
}

/// Where to write a receipt.
#[derive(Debug, Args)]
pub struct Receipt {
    /// Write the receipt (tlog-proof bundle with the entry) to this file.
    #[arg(long, env = "CUSTODY_BUNDLE")]
    pub bundle: Option<PathBuf>,
}

/// `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The artifact file, or a model directory (published as a manifest
    /// of its files, each uploaded once).
    pub file: PathBuf,
    /// Parallel uploads and hashing threads for a directory (default: one
    /// per core, at least 2).
    #[arg(long, env = "CUSTODY_JOBS", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
    /// An OpenSSF model signature of the directory (`model_signing sign
    /// key` output), stored and logged with it; written to its path inside
    /// the directory on pull (`model.sig` when it lies outside). Needs
    /// --oms-key.
    #[arg(long, env = "CUSTODY_OMS_SIGNATURE")]
    pub oms_signature: Option<PathBuf>,
    /// The P-256 public key (PEM) the signature verifies with.
    #[arg(long, env = "CUSTODY_OMS_KEY")]
    pub oms_key: Option<PathBuf>,
    /// Model name `org/model`.
    #[arg(long, env = "CUSTODY_NAME")]
    pub name: String,
    /// Version (immutable once published).
    #[arg(long, env = "CUSTODY_VERSION")]
    pub version: String,
    /// What the artifact is.
    #[arg(long, env = "CUSTODY_KIND", value_enum, default_value_t = KindChoice::Model)]
    pub kind: KindChoice,
    /// Media type of the bytes.
    #[arg(long, env = "CUSTODY_MEDIA_TYPE", default_value = "application/octet-stream")]
    pub media_type: String,
    /// Metadata JSON: {"framework", "description", "metrics", "labels"}.
    #[arg(long, env = "CUSTODY_METADATA")]
    pub metadata: Option<String>,
    /// Lineage JSON: {"parents": [{"digest"}], "datasets": [...], "pipeline", "source_commit"}.
    #[arg(long, env = "CUSTODY_LINEAGE")]
    pub lineage: Option<String>,
    /// Also move this tag to the new version.
    #[arg(long, env = "CUSTODY_TAG")]
    pub tag: Option<String>,
    /// The receipt file (default: FILE.tlog-proof).
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// `org/model@version` to point the tag at.
    pub target: String,
    /// Tag name.
    pub tag: String,
    /// Admin only: move a protected tag to a version without a required
    /// status, as a logged `break_glass` (needs --reason).
    #[arg(long, env = "CUSTODY_BREAK_GLASS")]
    pub break_glass: bool,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// `org/model@version`.
    pub target: String,
    /// New state.
    #[arg(long, env = "CUSTODY_PROMOTE_TO", value_enum)]
    pub to: StatusChoice,
    /// Admin only: promote to production without the two-person approval,
    /// as a logged `break_glass` (needs --reason).
    #[arg(long, env = "CUSTODY_BREAK_GLASS")]
    pub break_glass: bool,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// `org/model@version`.
    pub target: String,
    /// Admin only: roll back without a fresh two-person approval, as a
    /// logged `break_glass` (needs --reason).
    #[arg(long, env = "CUSTODY_BREAK_GLASS")]
    pub break_glass: bool,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `hold` and `release`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// `org/model` (the whole name) or `org/model@version`.
    pub target: String,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// `org/model@version` deployed.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Where it was deployed: an environment or serving target.
    #[arg(long, env = "CUSTODY_DEPLOY_TARGET")]
    pub target: String,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// `org/model@version` whose artifact was copied.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Where it was copied to: another registry or environment.
    #[arg(long, env = "CUSTODY_TRANSFER_DESTINATION")]
    pub destination: String,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `protect`.
#[derive(Debug, Args)]
pub struct ProtectArgs {
    /// Model name `org/model`.
    pub name: String,
    /// Tag to protect (not `production` or `staging`: built in).
    pub tag: String,
    /// Comma-separated lifecycle states the tag's target may be in, e.g.
    /// `staging,production` (all five lift the constraint).
    #[arg(long, env = "CUSTODY_PROTECT_STATUSES", value_enum, value_delimiter = ',', required = true)]
    pub statuses: Vec<StatusChoice>,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// A command on one version.
#[derive(Debug, Args)]
pub struct VersionArg {
    /// `org/model@version`.
    pub target: String,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The actor's public key (`actor+hex8+base64`, as `custody keygen` prints).
    #[arg(value_name = "ACTOR_KEY")]
    pub actor_key: String,
    /// Role to grant.
    #[arg(long, env = "CUSTODY_ROLE", value_enum)]
    pub role: RoleChoice,
    /// Pattern: `*`, `org/*` or `org/model`.
    #[arg(long, env = "CUSTODY_PATTERN")]
    pub pattern: String,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Actor name.
    pub actor: String,
    /// Role, exactly as granted.
    #[arg(long, env = "CUSTODY_ROLE", value_enum)]
    pub role: RoleChoice,
    /// Pattern, exactly as granted.
    #[arg(long, env = "CUSTODY_PATTERN")]
    pub pattern: String,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `revoke-key`.
#[derive(Debug, Args)]
pub struct RevokeKeyArgs {
    /// The key to kill (`actor+hex8+base64`, as `custody keygen` and
    /// `custody whoami` print it).
    pub actor_key: String,
    #[command(flatten)]
    pub receipt: Receipt,
}

/// `pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// `org/model:tag`, `org/model@version` or `sha256:<hex>`.
    pub reference: String,
    /// Destination file or directory (with --verify-only: the file or
    /// directory to check).
    #[arg(long = "out", short = 'o', env = "CUSTODY_PULL_OUT")]
    pub out: PathBuf,
    /// Verify a file or directory already on disk instead of downloading.
    #[arg(long, env = "CUSTODY_VERIFY_ONLY")]
    pub verify_only: bool,
    /// Parallel downloads and hashing threads for a directory (default:
    /// one per core, at least 2).
    #[arg(long, env = "CUSTODY_JOBS", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
    /// Also verify the directory's OpenSSF model signature with this P-256
    /// public key (PEM): the manifest must name this key, and the signature
    /// must sign exactly its files (exit 2 otherwise).
    #[arg(long, env = "CUSTODY_OMS_KEY")]
    pub oms_key: Option<PathBuf>,
    /// Comma-separated statuses to accept besides the usable ones:
    /// `deprecated`, `archived` (refused by default, exit 2).
    #[arg(long, env = "CUSTODY_ALLOW_STATUS", value_enum, value_delimiter = ',')]
    pub allow_status: Vec<StatusChoice>,
}

/// `verify` subcommands.
#[derive(Debug, Subcommand)]
pub enum Verify {
    /// Verify a signed checkpoint note against the policy.
    Checkpoint {
        /// The checkpoint file.
        file: PathBuf,
    },
    /// Verify that an entry is included in a checkpoint.
    Inclusion {
        /// The checkpoint file.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The entry bytes.
        #[arg(long)]
        entry: PathBuf,
        /// The entry's index.
        #[arg(long)]
        index: u64,
        /// Proof file: base64 hashes one per line, or the log's JSON.
        #[arg(long)]
        proof: PathBuf,
    },
    /// Verify that a newer checkpoint extends an older one.
    Consistency {
        /// The older checkpoint file.
        #[arg(long)]
        old: PathBuf,
        /// The newer checkpoint file.
        #[arg(long)]
        new: PathBuf,
        /// Proof file: base64 hashes one per line, or the log's JSON.
        #[arg(long)]
        proof: PathBuf,
    },
    /// Verify split-view evidence (from a witness or from this client):
    /// exit 0 if it proves the log signed two inconsistent checkpoints.
    Evidence {
        /// The evidence file (`custody.dev/split-view-evidence/v1`).
        file: PathBuf,
    },
    /// Verify a C2SP tlog-proof bundle (a `custody` receipt).
    Bundle {
        /// The bundle file.
        file: PathBuf,
        /// The entry bytes, if the bundle has no `extra` line.
        #[arg(long)]
        entry: Option<PathBuf>,
        /// Also check that this file is the artifact the entry publishes
        /// (needs --signer).
        #[arg(long, env = "CUSTODY_ARTIFACT")]
        artifact: Option<PathBuf>,
        /// The actor key (`actor+hex8+base64`, as `custody keygen` and
        /// `whoami` print it), or a file holding it, of whoever you expect
        /// signed the entry: its actor, key ID and DSSE signature must match.
        #[arg(long, env = "CUSTODY_SIGNER")]
        signer: Option<String>,
    },
}

/// `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Model name `org/model`.
    pub name: String,
    /// Print JSON instead of a table (the same as the global `--output json`).
    #[arg(long, env = "CUSTODY_JSON")]
    pub json: bool,
    /// Most access entries shown per artifact.
    #[arg(long, env = "CUSTODY_MAX_ACCESSES", default_value_t = 1000)]
    pub max_accesses: usize,
}

/// `monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Log URL (default: --log or the configured one).
    pub url: Option<String>,
    /// Watch file (JSON): {"names": ["acme/*"], "publishers": ["alice"],
    /// "grants": true, "access_hours": {"from": 8, "to": 18}}.
    #[arg(long, env = "CUSTODY_WATCH", required_unless_present = "rules", conflicts_with = "rules")]
    pub watch: Option<PathBuf>,
    /// Alert rules and sinks (TOML, docs/verifier.md "Alert rules"):
    /// alerts go to webhooks, Slack or stdout through a persistent outbox.
    #[arg(long, env = "CUSTODY_MONITOR_RULES")]
    pub rules: Option<PathBuf>,
    /// With --rules --once: seconds the sinks may keep retrying before
    /// the monitor exits (what is left stays queued for the next run).
    #[arg(long, env = "CUSTODY_MONITOR_DELIVER_TIMEOUT_SECS", default_value_t = 30)]
    pub deliver_timeout: u64,
    /// Seconds between checkpoint polls.
    #[arg(long, env = "CUSTODY_MONITOR_INTERVAL_SECS", default_value_t = 5)]
    pub interval: u64,
    /// One pass over the new entries, then exit.
    #[arg(long, env = "CUSTODY_MONITOR_ONCE")]
    pub once: bool,
    /// The first time, start at entry 0 instead of the current size.
    #[arg(long, env = "CUSTODY_MONITOR_FROM_START")]
    pub from_start: bool,
}
