//! One witness's part of a checkpointing round: the C2SP tlog-witness
//! `add-checkpoint` exchange for one checkpoint, with the consistency proof
//! from the size the witness last cosigned, one retry after a 409 that
//! teaches its real size, and the split-view alarm when it claims a tree
//! bigger than ours. The checkpointer runs one job per policy witness
//! concurrently and assembles the cosignatures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_standards::{consistency_proof, Hash, VerifierKey};

use crate::store::Store;
use crate::witness_client::{verify_cosignature_lines, WitnessCallError, WitnessClient};

/// Why the consistency proof for a witness could not be built.
#[derive(Debug, thiserror::Error)]
enum ProofFailure {
    /// The stored hashes do not give the proof.
    #[error(transparent)]
    Proof(#[from] custody_standards::ProofError),
    /// The blocking task building it died.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Result of one witness's round.
pub(crate) struct Outcome {
    /// The witness's place in the policy (and the checkpointer's list).
    pub(crate) index: usize,
    /// Size the witness is now known to have cosigned (or claimed in a 409).
    pub(crate) known_size: u64,
    /// Verified cosignature lines for the current checkpoint.
    pub(crate) lines: Vec<String>,
    /// Why no cosignature came back, for `/health`.
    pub(crate) error: Option<String>,
    /// Set when the witness claims a tree bigger than ours.
    pub(crate) alarm: Option<String>,
    /// How long the exchange took.
    pub(crate) elapsed: Duration,
}

/// Everything one witness's round needs, owned so it can run in a JoinSet.
pub(crate) struct WitnessJob {
    pub(crate) index: usize,
    pub(crate) url: String,
    pub(crate) key: VerifierKey,
    pub(crate) known_size: u64,
    pub(crate) size: u64,
    pub(crate) note: Vec<u8>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: WitnessClient,
}

impl WitnessJob {
    pub(crate) async fn run(self) -> Outcome {
        let start = Instant::now();
        let mut out = Outcome {
            index: self.index,
            known_size: self.known_size,
            lines: Vec::new(),
            error: None,
            alarm: None,
            elapsed: Duration::ZERO,
        };
        let mut old = self.known_size;
        let mut conflict_retried = false;
        loop {
            if old > self.size {
                // Ahead of this checkpoint is normal when the tree grew
                // since it was signed: the witness cosigns the next one
                // (a fork at that size fails the next consistency proof).
                // Ahead of the durable tree itself is not: the witness saw
                // a tree this log does not have.
                let durable = self.store.tree_size().unwrap_or(self.size);
                if old <= durable {
                    out.error = Some(format!(
                        "witness is at size {old}, ahead of this checkpoint of size {}; it cosigns the next one",
                        self.size
                    ));
                    break;
                }
                let a = format!(
                    "witness has cosigned size {old}, bigger than our tree of {durable}: possible split view or rollback"
                );
                out.error = Some(a.clone());
                out.alarm = Some(a);
                break;
            }
            let proof = match self.proof(old).await {
                Ok(p) => p,
                Err(e) => {
                    out.error = Some(format!("consistency proof {old}->{}: {e}", self.size));
                    break;
                }
            };
            match self.client.add_checkpoint(&self.url, old, &proof, &self.note).await {
                Ok(lines) => {
                    match verify_cosignature_lines(&self.note, &self.key, &lines) {
                        Ok(good) => {
                            out.known_size = self.size;
                            out.lines = good;
                        }
                        Err(e) => out.error = Some(e.to_string()),
                    }
                    break;
                }
                Err(WitnessCallError::Conflict { latest_size }) => {
                    out.known_size = latest_size;
                    if latest_size > self.size || conflict_retried {
                        old = latest_size;
                        if latest_size > self.size {
                            continue; // raises the alarm above
                        }
                        out.error = Some(format!("witness still reports a different size ({latest_size})"));
                        break;
                    }
                    tracing::info!(witness = %self.url, from = old, to = latest_size, "witness size learned from 409");
                    conflict_retried = true;
                    old = latest_size;
                }
                Err(e) => {
                    out.error = Some(e.to_string());
                    break;
                }
            }
        }
        out.elapsed = start.elapsed();
        out
    }

    async fn proof(&self, old: u64) -> Result<Vec<Hash>, ProofFailure> {
        if old == 0 {
            return Ok(Vec::new());
        }
        let (store, size) = (self.store.clone(), self.size);
        Ok(tokio::task::spawn_blocking(move || consistency_proof(old, size, &*store)).await??)
    }
}
