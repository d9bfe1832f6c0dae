//! What a deployment's log publishes, checked with `custody-standards` the way a
//! verifier checks it: the checkpoint against the policy, consistency
//! between two checkpoints, inclusion of an entry.

use custody_standards::checkpoint::Checkpoint;
use custody_standards::{verify_consistency, verify_inclusion, Hash, Policy};
use reqwest::blocking::Client;
use serde_json::Value;

use super::Deployment;
use crate::http::{get_bytes, get_json};

/// The published checkpoint, verified against the deployment's policy:
/// (checkpoint, cosigner names, note).
pub fn published(c: &Client, d: &Deployment) -> Option<(Checkpoint, Vec<String>, Vec<u8>)> {
    let note = get_bytes(c, &format!("{}/checkpoint", d.log.url))?;
    let v = policy(d).verify_checkpoint(&note).expect("a published checkpoint satisfies the policy");
    Some((v.checkpoint, v.cosigners.into_iter().map(|(n, _)| n).collect(), note))
}

/// The deployment's policy, parsed.
pub fn policy(d: &Deployment) -> Policy {
    Policy::parse(&std::fs::read(&d.policy).unwrap()).unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .expect("proof array")
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect()
}

/// Verifies the log's consistency proof between two checkpoints.
pub fn check_consistent(c: &Client, base: &str, old: &Checkpoint, new: &Checkpoint) {
    if old.size == new.size {
        assert_eq!(old.root, new.root, "two checkpoints of size {} with different roots", old.size);
        return;
    }
    let (status, p) = get_json(c, &format!("{base}/proof/consistency?old={}&new={}", old.size, new.size));
    assert_eq!(status, 200, "{p}");
    verify_consistency(old.size, new.size, &hashes(&p["proof"]), &old.root, &new.root).unwrap_or_else(|e| {
        panic!("checkpoint {} is not consistent with earlier {}: {e}", new.size, old.size)
    });
}

/// Fetches entry `index` and verifies its inclusion under `cp`; returns the
/// entry bytes.
pub fn proven_entry(c: &Client, base: &str, index: u64, cp: &Checkpoint) -> Vec<u8> {
    let entry =
        get_bytes(c, &format!("{base}/entries/{index}")).unwrap_or_else(|| panic!("entry {index} is gone"));
    let (status, p) = get_json(c, &format!("{base}/proof/inclusion?index={index}&size={}", cp.size));
    assert_eq!(status, 200, "{p}");
    verify_inclusion(&custody_standards::leaf_hash(&entry), index, cp.size, &hashes(&p["proof"]), &cp.root)
        .unwrap_or_else(|e| panic!("entry {index} is not included in checkpoint {}: {e}", cp.size));
    entry
}

/// The envelope inside a log entry.
pub fn envelope_of(entry: &[u8]) -> Vec<u8> {
    custody_registry::leaf::Leaf::decode(entry).unwrap().envelope.to_vec()
}
