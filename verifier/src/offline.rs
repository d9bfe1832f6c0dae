//! `custody verify ...`: offline checks that need only a policy and files,
//! never the network. A verifier can hold a receipt (tlog-proof bundle)
//! for years and re-check it anywhere.

use custody_registry::actor_key::ActorKey;
use custody_registry::evidence::{Evidence, SplitView};
use custody_registry::leaf::Leaf;
use custody_registry::statement::SignedStatement;
use custody_standards::bundle::ProofBundle;
use custody_standards::note::NoteVerifier;
use custody_standards::policy::PolicyVerified;
use custody_standards::{leaf_hash, verify_consistency, verify_inclusion, Hash, Policy};

use crate::error::{Error, Result};

/// Verifies a checkpoint note against the policy (log signature, quorum).
pub fn verify_checkpoint(policy: &Policy, note: &[u8]) -> Result<PolicyVerified> {
    policy.verify_checkpoint(note).map_err(|e| Error::verify(format!("checkpoint: {e}")))
}

/// What a verified bundle proves.
#[derive(Debug, Clone)]
pub struct BundleVerified {
    /// The checkpoint and who cosigned it.
    pub checkpoint: PolicyVerified,
    /// Index of the entry.
    pub index: u64,
    /// The entry bytes that were proven included.
    pub entry: Vec<u8>,
    /// The registry statement in the entry, if it is a registry leaf.
    pub statement: Option<SignedStatement>,
}

/// Verifies a tlog-proof bundle offline. The entry comes from `entry` if
/// given, else from the bundle's `extra` line (how `custody` writes
/// receipts); either way it is hashed and proven, never trusted as is.
pub fn verify_bundle(policy: &Policy, bundle: &[u8], entry: Option<Vec<u8>>) -> Result<BundleVerified> {
    let b = ProofBundle::parse(bundle).map_err(|e| Error::verify(format!("bundle: {e}")))?;
    let entry = entry
        .or_else(|| b.extra.clone())
        .ok_or_else(|| Error::Usage("the bundle has no extra data: pass the entry with --entry".into()))?;
    let checkpoint = b.verify(&leaf_hash(&entry), policy).map_err(|e| Error::verify(e.to_string()))?;
    let statement = Leaf::decode(&entry).ok().and_then(|l| SignedStatement::parse(l.envelope).ok());
    Ok(BundleVerified { checkpoint, index: b.index, entry, statement })
}

/// What a bundle check made offline does not establish, printed with every
/// verdict that vouches for an artifact, so nobody reads "OK" as more than
/// it is.
pub const NOT_ESTABLISHED_OFFLINE: &str = "not established offline: that the signer held the role \
    the statement needed when it was logged (grants and revocations are in the log, not in the \
    bundle: `custody pull` or `custody audit` check them), that the key was still live then, and \
    that the version is still current (not deprecated, superseded or re-tagged since the checkpoint)";

/// Checks that the statement a verified bundle proves was signed by
/// `signer`: the statement names that actor and that key ID, and its DSSE
/// signature verifies with that key. A bundle proves only that some bytes
/// were logged; the signer is what ties them to a person, so whoever relies
/// on an artifact must say whom they expect it from.
pub fn verify_signer<'a>(bundle: &'a BundleVerified, signer: &ActorKey) -> Result<&'a SignedStatement> {
    let s = bundle
        .statement
        .as_ref()
        .ok_or_else(|| Error::verify(format!("entry {} is not a registry statement", bundle.index)))?;
    let st = &s.statement;
    if &st.actor != signer.actor() {
        return Err(Error::verify(format!(
            "entry {} is signed in the name of {}, not of the expected signer {}",
            bundle.index,
            st.actor.as_str(),
            signer.actor().as_str()
        )));
    }
    if st.key_id != signer.id() || s.key_id() != signer.id() {
        return Err(Error::verify(format!(
            "entry {} names key {}, not the expected signer's key {}",
            bundle.index,
            st.key_id,
            signer.id()
        )));
    }
    s.verify(signer).map_err(|e| {
        Error::verify(format!("entry {}: signature by {}: {e}", bundle.index, signer.actor().as_str()))
    })?;
    Ok(s)
}

/// Verifies that `entry` is at `index` in the tree of a policy-verified
/// checkpoint.
pub fn verify_inclusion_offline(
    policy: &Policy,
    note: &[u8],
    entry: &[u8],
    index: u64,
    proof: &[Hash],
) -> Result<PolicyVerified> {
    let v = verify_checkpoint(policy, note)?;
    verify_inclusion(&leaf_hash(entry), index, v.checkpoint.size, proof, &v.checkpoint.root).map_err(
        |e| Error::verify(format!("inclusion of entry {index} in checkpoint {}: {e}", v.checkpoint.size)),
    )?;
    Ok(v)
}

/// Verifies that two policy-verified checkpoints of one log are consistent.
pub fn verify_consistency_offline(
    policy: &Policy,
    old: &[u8],
    new: &[u8],
    proof: &[Hash],
) -> Result<(PolicyVerified, PolicyVerified)> {
    let (o, n) = (verify_checkpoint(policy, old)?, verify_checkpoint(policy, new)?);
    if o.checkpoint.origin != n.checkpoint.origin {
        return Err(Error::verify("the checkpoints are from different logs"));
    }
    let (a, b) = (&o.checkpoint, &n.checkpoint);
    verify_consistency(a.size, b.size, proof, &a.root, &b.root)
        .map_err(|e| Error::verify(format!("consistency {} -> {}: {e}", a.size, b.size)))?;
    Ok((o, n))
}

/// Parses a proof file: one base64 hash per line, or the JSON the log
/// serves (`{"proof": [...]}`).
pub fn parse_proof(text: &[u8]) -> Result<Vec<Hash>> {
    let text = std::str::from_utf8(text).map_err(|_| Error::Usage("proof file is not UTF-8".into()))?;
    let lines: Vec<String> = if text.trim_start().starts_with('{') {
        #[derive(serde::Deserialize)]
        struct P {
            proof: Vec<String>,
        }
        serde_json::from_str::<P>(text).map_err(|e| Error::Usage(format!("proof JSON: {e}")))?.proof
    } else {
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
    };
    if lines.len() > 64 {
        return Err(Error::verify("proof longer than 64 hashes"));
    }
    lines
        .iter()
        .map(|l| Hash::from_base64(l).map_err(|e| Error::Usage(format!("proof hash {l:?}: {e}"))))
        .collect()
}

/// Verifies split-view evidence (core's `custody.dev/split-view-evidence/v1`
/// format, written by witnesses and by this client) with the policy's log
/// key for its origin: succeeds only if the two signed checkpoints provably
/// cannot come from one append-only log.
pub fn verify_evidence(policy: &Policy, text: &[u8]) -> Result<(Evidence, SplitView)> {
    let ev = Evidence::parse(text).map_err(|e| Error::verify(format!("evidence: {e}")))?;
    let keys: Vec<&dyn NoteVerifier> = policy
        .logs()
        .iter()
        .filter(|l| l.key.name() == ev.origin)
        .map(|l| &l.key as &dyn NoteVerifier)
        .collect();
    if keys.is_empty() {
        return Err(Error::verify(format!("evidence: the policy has no log key for origin {}", ev.origin)));
    }
    let split = ev.verify(&keys).map_err(|e| Error::verify(format!("evidence: {e}")))?;
    Ok((ev, split))
}
