//! Signing registry statements, submitting them, and proving they are in
//! the log: after every submission the client waits for a checkpoint that
//! satisfies the policy and covers the new leaf, fetches the leaf, checks it
//! holds exactly the envelope it signed, and verifies its inclusion proof.
//! The result is a [`Receipt`] that can be saved as a C2SP tlog-proof bundle
//! carrying the leaf in its `extra` line, verifiable offline later.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custody_registry::actor_key::ActorSigner;
use custody_registry::leaf::Leaf;
use custody_registry::statement::{Context, Event, SignedStatement, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::bundle::ProofBundle;
use custody_standards::{leaf_hash, verify_inclusion, Hash};

use crate::error::{Error, Result};
use crate::keyfile::random_nonce;
use crate::trust::{Trust, Trusted};

/// Why and from where a statement is made (`context` in the statement).
#[derive(Debug, Clone, Default)]
pub struct Why {
    /// Required free text.
    pub reason: String,
    /// Optional environment.
    pub environment: Option<String>,
    /// Optional pipeline.
    pub pipeline: Option<String>,
    /// Optional client identity (`context.source`).
    pub source: Option<String>,
}

impl Why {
    fn context(&self) -> Result<Context> {
        let text = |s: &str, what: &str| Text::new(s).map_err(|e| Error::Usage(format!("{what}: {e}")));
        let mut c = Context::reason(text(&self.reason, "--reason")?);
        c.environment = self.environment.as_deref().map(|s| text(s, "--environment")).transpose()?;
        c.pipeline = self.pipeline.as_deref().map(|s| text(s, "--pipeline")).transpose()?;
        c.source = self.source.as_deref().map(|s| text(s, "--source")).transpose()?;
        Ok(c)
    }
}

/// Signs `event` as `signer`, now, with a fresh random nonce; returns the
/// envelope bytes exactly as they will be logged.
pub fn sign(signer: &ActorSigner, why: &Why, event: Event) -> Result<Vec<u8>> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let time =
        Timestamp::from_unix_secs(secs).ok_or_else(|| Error::Config("system clock out of range".into()))?;
    let stmt = Statement::new(signer, time, random_nonce()?, why.context()?, event);
    stmt.sign(signer).map_err(|e| Error::Usage(format!("statement: {e}")))
}

/// Proof that a leaf is in the log under a trusted checkpoint.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Leaf index.
    pub index: u64,
    /// The leaf bytes.
    pub entry: Vec<u8>,
    /// Inclusion proof of the leaf in `checkpoint`.
    pub proof: Vec<Hash>,
    /// The checkpoint it was verified against.
    pub checkpoint: Trusted,
    /// The log already held this statement (idempotent publish).
    pub duplicate: bool,
}

impl Receipt {
    /// A C2SP tlog-proof bundle with the leaf in `extra`.
    pub fn bundle(&self) -> ProofBundle {
        ProofBundle {
            extra: Some(self.entry.clone()),
            index: self.index,
            proof: self.proof.clone(),
            checkpoint: self.checkpoint.note.clone(),
        }
    }

    /// The statement in the leaf.
    pub fn statement(&self) -> Result<SignedStatement> {
        decode_statement(&self.entry, self.index)
    }
}

/// Decodes a registry leaf into its signed statement (signature not yet
/// checked).
pub fn decode_statement(entry: &[u8], index: u64) -> Result<SignedStatement> {
    let leaf = Leaf::decode(entry).map_err(|e| Error::verify(format!("entry {index}: {e}")))?;
    SignedStatement::parse(leaf.envelope).map_err(|e| Error::verify(format!("entry {index}: {e}")))
}

/// Fetches entry `index` and verifies its inclusion under `checkpoint`.
pub fn fetch_proven(trust: &Trust, index: u64, checkpoint: &Trusted) -> Result<(Vec<u8>, Vec<Hash>)> {
    let cp = &checkpoint.checkpoint;
    if index >= cp.size {
        return Err(Error::verify(format!(
            "entry {index} is not covered by the checkpoint of size {}",
            cp.size
        )));
    }
    let entry = trust.client().entry(index)?;
    let proof = trust.client().inclusion_proof(index, cp.size)?;
    verify_inclusion(&leaf_hash(&entry), index, cp.size, &proof, &cp.root)
        .map_err(|e| Error::verify(format!("inclusion of entry {index} in checkpoint {}: {e}", cp.size)))?;
    Ok((entry, proof))
}

/// Waits (up to `timeout`) for a trusted checkpoint covering `index`.
pub fn wait_checkpoint(trust: &Trust, index: u64, timeout: Duration) -> Result<Trusted> {
    let deadline = Instant::now() + timeout;
    loop {
        match trust.refresh() {
            Ok(t) if t.checkpoint.size > index => return Ok(t),
            // A log without a checkpoint yet answers 503; keep waiting.
            Ok(_) | Err(Error::Refused { status: 503, .. }) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::verify(format!(
                "no checkpoint satisfying the policy covers entry {index} after {}s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `e` is a log's 410 `state_expired`: it no longer serves the
/// registry state of the checkpoint asked about (it keeps recent batches
/// only, and after a restart only from the size it restarted at). Not a
/// verdict: the caller asks again under a later checkpoint.
pub fn is_state_expired(e: &Error) -> bool {
    matches!(e, Error::Refused { status: 410, code, .. } if code == "state_expired")
}

/// Waits for a trusted checkpoint covering `index`, then fetches the entry
/// and verifies its inclusion.
pub fn wait_included(trust: &Trust, index: u64, timeout: Duration) -> Result<Receipt> {
    let checkpoint = wait_checkpoint(trust, index, timeout)?;
    let (entry, proof) = fetch_proven(trust, index, &checkpoint)?;
    Ok(Receipt { index, entry, proof, checkpoint, duplicate: false })
}

/// Submits a signed statement, then proves it is logged: the leaf at the
/// returned index must hold exactly `envelope` (or, for an idempotent
/// publish answered with an earlier index, a publish of the same name,
/// version, digest and size).
pub fn submit(trust: &Trust, envelope: &[u8], timeout: Duration) -> Result<Receipt> {
    let answer = trust.client().post_statement(envelope)?;
    prove_submitted(trust, envelope, answer.index, answer.duplicate, timeout)
}

/// The checks of [`submit`] after the log answered with `index`.
pub fn prove_submitted(
    trust: &Trust,
    envelope: &[u8],
    index: u64,
    duplicate: bool,
    timeout: Duration,
) -> Result<Receipt> {
    let mut r = wait_included(trust, index, timeout)?;
    r.duplicate = duplicate;
    let leaf = Leaf::decode(&r.entry).map_err(|e| Error::verify(format!("entry {index}: {e}")))?;
    if leaf.envelope == envelope {
        return Ok(r);
    }
    let mine = SignedStatement::parse(envelope).map_err(|e| Error::Usage(e.to_string()))?;
    let logged = r.statement()?;
    match (&mine.statement.event, &logged.statement.event) {
        (Event::Publish(a), Event::Publish(b))
            if duplicate
                && a.name == b.name
                && a.version == b.version
                && a.digest == b.digest
                && a.size == b.size =>
        {
            Ok(r)
        }
        _ => Err(Error::verify(format!("entry {index} does not hold the submitted statement"))),
    }
}
