//! A generic log (no registry, no HTTP) running inside the caller's
//! process: the store, the sequencer and the checkpointer wired the way
//! `custody-log serve` wires them. It lets the checkpointer be tested
//! against real witnesses without a log process, from this crate's tests
//! and from the witness's, with one definition of that wiring.

use std::sync::Arc;
use std::time::Duration;

use custody_standards::{Policy, SignerKey};
use tokio::task::JoinHandle;

use crate::checkpointer::{start_checkpointer, CheckpointerConfig, Publisher};
use crate::metrics::Metrics;
use crate::sequencer::{start_sequencer, SequencerConfig, SequencerHandle};
use crate::store::{Store, StoreError};

/// A running in-process log; see the module docs.
pub struct EmbeddedLog {
    /// Its storage.
    pub store: Arc<dyn Store>,
    /// Submission side of its sequencer.
    pub seq: SequencerHandle,
    /// Its published (policy-satisfying) checkpoints.
    pub publisher: Publisher,
    /// The sequencer and checkpointer tasks.
    pub tasks: Vec<JoinHandle<()>>,
}

impl EmbeddedLog {
    /// Starts a sequencer (5 ms batches) and a checkpointer on `store`,
    /// signing with `key` and gathering cosignatures for `policy`.
    pub fn start(
        store: Arc<dyn Store>,
        key: &SignerKey,
        policy: Option<Policy>,
        cfg: CheckpointerConfig,
    ) -> Result<EmbeddedLog, StoreError> {
        let seq_cfg = SequencerConfig { batch_wait: Duration::from_millis(5), ..Default::default() };
        let (seq, seq_task) = start_sequencer(store.clone(), seq_cfg)?;
        let (publisher, cp_task) =
            start_checkpointer(store.clone(), seq.durable_size(), key.clone(), policy, cfg, Metrics::new())?;
        Ok(EmbeddedLog { store, seq, publisher, tasks: vec![seq_task, cp_task] })
    }
}
