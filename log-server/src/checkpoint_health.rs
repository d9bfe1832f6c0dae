//! What the checkpointer reports about its rounds and each witness, for
//! `/health` and the metrics; re-exported from [`crate::checkpointer`].

use serde::Serialize;

/// One witness as seen by the last round.
#[derive(Clone, Debug, Serialize)]
pub struct WitnessStatus {
    /// Policy name.
    pub name: String,
    /// Whether the last round got a valid cosignature from it.
    pub ok: bool,
    /// The last size we know it cosigned.
    pub last_size: u64,
    /// Why the last round failed for it, if it did.
    pub last_error: Option<String>,
    /// Duration of its last round.
    pub latency_ms: Option<u64>,
    /// Sticky alarm: the witness claims a bigger tree than ours (split view
    /// or rollback of this log). Needs an operator.
    pub alarm: Option<String>,
}

/// Checkpoint state for `/health` and metrics.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointHealth {
    /// Whether the last publication attempt succeeded (policy satisfied).
    pub quorum_ok: bool,
    /// Why not, when `quorum_ok` is false.
    pub reason: Option<String>,
    /// Size of the checkpoint `/checkpoint` serves.
    pub last_published_size: Option<u64>,
    /// Seconds since it was published (or loaded at startup).
    pub last_published_age_secs: Option<u64>,
    /// Size of the newest checkpoint signed by the log.
    pub last_signed_size: Option<u64>,
    /// Serious witness alarms (a witness has cosigned a bigger tree than
    /// ours: split view or rollback). Publication may continue, but an
    /// operator must look.
    pub alarms: Vec<String>,
    /// Per-witness state, in policy order.
    pub witnesses: Vec<WitnessStatus>,
}
