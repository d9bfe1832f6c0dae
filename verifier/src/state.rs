//! Proving what is *current*: values of the registry's state map under a
//! trusted checkpoint (docs/protocol.md sections 8 and 9).
//!
//! Every checkpoint a registry log publishes ends with a commitment leaf
//! holding the root of the state after every statement before it. Given a
//! trusted checkpoint of size `n`, [`prove`]:
//! 1. fetches leaf `n-1`, verifies its inclusion under the checkpoint, and
//!    decodes it as a commitment whose index field is `n-1`: its root `M`;
//! 2. asks the log for the keys' values and proofs at size `n`;
//! 3. for each key, checks the answer names that key, decodes the value,
//!    checks its kind fits the key, and verifies the proof against `M`
//!    (inclusion with the value's hash, or non-inclusion for an absent
//!    key).
//!
//! Nothing the log says is used before its proof verifies: a log that
//! serves an old tag move as current, hides a revocation or omits an
//! entry would need a proof against a root its own signed, witnessed
//! checkpoint commits to.

use std::collections::HashMap;

use base64::Engine as _;
use custody_registry::commitment::{StateKey, StateValue};
use custody_registry::leaf::{CommitmentLeaf, LogLeaf};
use custody_registry::state_map::{verify, Proof};
use custody_standards::hash::Hash;

use crate::error::{Error, Result};
use crate::statements::fetch_proven;
use crate::trust::{Trust, Trusted};

/// Values proven under one checkpoint.
#[derive(Debug, Clone)]
pub struct ProvenState {
    /// The checkpoint's tree size.
    pub size: u64,
    /// The committed root.
    pub root: Hash,
    values: HashMap<StateKey, Option<StateValue>>,
}

impl ProvenState {
    /// The proven value of `key` (`None`: proven absent). Panics if `key`
    /// was not asked: a caller bug, not input.
    pub fn get(&self, key: &StateKey) -> Option<&StateValue> {
        self.values.get(key).expect("only keys that were proven are looked up").as_ref()
    }
}

/// Fetches and verifies the commitment leaf ending `checkpoint`.
pub fn commitment(trust: &Trust, checkpoint: &Trusted) -> Result<CommitmentLeaf> {
    let size = checkpoint.checkpoint.size;
    let Some(last) = size.checked_sub(1) else {
        return Err(Error::verify("the checkpoint is empty: it commits to no registry state".to_string()));
    };
    let (entry, _) = fetch_proven(trust, last, checkpoint)?;
    match LogLeaf::decode(&entry) {
        Ok(LogLeaf::Commitment(c)) if c.index == last => Ok(c),
        Ok(LogLeaf::Commitment(c)) => Err(Error::verify(format!(
            "the commitment ending checkpoint {size} names index {} instead of {last}",
            c.index
        ))),
        _ => Err(Error::verify(format!(
            "checkpoint {size} does not end with a state commitment (entry {last}): the log cannot prove what is current"
        ))),
    }
}

/// Proves `keys` under `checkpoint` (see the module docs).
pub fn prove(trust: &Trust, checkpoint: &Trusted, keys: &[StateKey]) -> Result<ProvenState> {
    let size = checkpoint.checkpoint.size;
    let c = commitment(trust, checkpoint)?;
    let hex_keys: Vec<String> = keys.iter().map(|k| hex::encode(k.encode())).collect();
    let answer = trust.client().state_proofs(size, &hex_keys)?;
    if answer.size != size || answer.proofs.len() != keys.len() {
        return Err(Error::verify(format!(
            "the log answered {} state proofs at size {} for {} keys at size {size}",
            answer.proofs.len(),
            answer.size,
            keys.len()
        )));
    }
    let mut values = HashMap::with_capacity(keys.len());
    for ((key, hex_key), p) in keys.iter().zip(&hex_keys).zip(answer.proofs) {
        let fail = |m: String| Error::verify(format!("state proof of {}: {m}", describe(key)));
        if &p.key != hex_key {
            return Err(fail("the log answered for another key".into()));
        }
        let value = match &p.value {
            None => None,
            Some(h) => {
                let bytes = hex::decode(h).map_err(|_| fail("value is not hex".into()))?;
                let v =
                    StateValue::decode(&bytes).map_err(|e| fail(format!("value does not decode: {e}")))?;
                if !v.fits(key) {
                    return Err(fail("value is of another kind than the key".into()));
                }
                Some(v)
            }
        };
        let proof_bytes = base64::engine::general_purpose::STANDARD
            .decode(&p.proof)
            .map_err(|_| fail("proof is not base64".into()))?;
        let proof = Proof::decode(&proof_bytes).map_err(|e| fail(format!("proof does not decode: {e}")))?;
        verify(&c.root, &key.hash(), value.as_ref().map(StateValue::hash).as_ref(), &proof)
            .map_err(|e| fail(format!("does not verify against the committed root: {e}")))?;
        values.insert(key.clone(), value);
    }
    Ok(ProvenState { size, root: c.root, values })
}

/// A key as people write it, for messages.
pub fn describe(key: &StateKey) -> String {
    match key {
        StateKey::Tag { name, tag } => format!("tag {}:{}", name.as_str(), tag.as_str()),
        StateKey::Version { name, version } => format!("version {}@{}", name.as_str(), version.as_str()),
        StateKey::ActorKey { key_id } => format!("key {key_id}"),
        StateKey::Grant { actor, role, pattern } => {
            format!("grant of {} on {pattern} to {}", role.as_str(), actor.as_str())
        }
        StateKey::Protection { name, tag } => format!("protection of {}:{}", name.as_str(), tag.as_str()),
        StateKey::Hold { name, version: None } => format!("hold on {}", name.as_str()),
        StateKey::Hold { name, version: Some(v) } => format!("hold on {}@{}", name.as_str(), v.as_str()),
        StateKey::NameEntries { name } => format!("entries of {}", name.as_str()),
        StateKey::DigestEntries { digest } => format!("entries of {digest}"),
        StateKey::ActorEntries { actor } => format!("entries of {}", actor.as_str()),
    }
}
