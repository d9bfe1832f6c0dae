//! # custody-verifier
//!
//! The client side of Custody: the `custody` command line and a library a
//! model loader can call ([`pull::verify_artifact`]) to refuse any artifact
//! that is not provably logged, witnessed and consistent. Everything the
//! log says is checked with `custody-standards`; the server's query answers are
//! used only to find the entries to check.
//!
//! - [`home`]: configuration and state directories (XDG, `CUSTODY_HOME`).
//! - [`session`]: a log opened with the CLI's configuration precedence
//!   (shared by the `custody` binary and the Python package).
//! - [`trust`]: checkpoints must satisfy the policy and be consistent with
//!   the remembered one; inconsistencies produce evidence reports.
//! - [`client`]: HTTP with response caps.
//! - [`statements`], [`publish`]: sign, submit, prove inclusion, receipts.
//! - [`authz`], [`pull`], [`directory`]: verify before load (`directory::pull_any`
//!   pulls a file or a whole model directory).
//! - [`entries`]: entry listings proven complete by the committed chains.
//! - [`history`], [`report`]: the history of a name, artifact or actor and
//!   compliance reports, from proven entries.
//! - [`monitor`], [`monitor_state`]: follow a log, report matching events
//!   as JSON lines (on state proofs when only exact names are watched).
//! - [`alerts`]: `monitor --rules`: alert rules, webhook, Slack and stdout
//!   sinks behind a persistent outbox, automatic holds.
//! - [`offline`]: `custody verify ...` without a network.
//! - [`audit`], [`fetch`]: whole-log audit (tiles, bundles, replay), resumable.
//!
//! See docs/verifier.md for commands, exit codes and the trust model.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alerts;
pub mod audit;
pub mod authz;
pub mod client;
pub mod current;
pub mod directory;
pub mod entries;
pub mod error;
pub mod fetch;
pub mod history;
pub mod home;
pub mod keyfile;
pub mod monitor;
pub mod monitor_state;
pub mod offline;
pub mod progress;
pub mod publish;
pub mod pull;
pub mod report;
pub mod session;
pub mod state;
pub mod statements;
pub mod trust;

pub use error::{Error, Result};
pub use pull::{verify_artifact, Ref, Verified};
