//! `custody verify ...`: the offline checks, from files and the policy
//! alone, each reported as one result (see [`crate::output`]).

use std::path::Path;

use custody_registry::actor_key::ActorKey;
use custody_registry::statement::Event;
use custody_standards::leaf_hash;
use custody_verifier::error::Error;
use custody_verifier::home::{read_capped, Home};
use custody_verifier::offline;

use crate::cli::{Cli, Verify};
use crate::output::{
    BundleOutput, BundleSigner, BundleStatement, CheckpointOutput, ConsistencyOutput, EvidenceOutput,
    InclusionOutput, Printer, TreeHead, VerifiedCheckpointOutput, VerifiedFile,
};

/// Largest checkpoint, proof or bundle file read.
const CAP: u64 = 1 << 20;
/// Largest entry file read (the log's entry limit).
const ENTRY_CAP: u64 = 65_535;

/// Runs `custody verify ...` and reports the verdict.
pub fn verify(cli: &Cli, home: &Home, v: &Verify, p: &mut Printer) -> anyhow::Result<()> {
    let policy = crate::policy(cli, home)?;
    match v {
        Verify::Checkpoint { file } => {
            let r = offline::verify_checkpoint(&policy, &read_capped(file, CAP)?)?;
            p.result(&VerifiedCheckpointOutput {
                checkpoint: CheckpointOutput::verified(&r),
                satisfied: r.satisfied.clone(),
            })
        }
        Verify::Inclusion { checkpoint, entry, index, proof } => {
            let proof = offline::parse_proof(&read_capped(proof, CAP)?)?;
            let entry = read_capped(entry, ENTRY_CAP)?;
            let r = offline::verify_inclusion_offline(
                &policy,
                &read_capped(checkpoint, CAP)?,
                &entry,
                *index,
                &proof,
            )?;
            p.result(&InclusionOutput {
                index: *index,
                leaf_hash: leaf_hash(&entry).to_base64(),
                checkpoint: CheckpointOutput::verified(&r),
            })
        }
        Verify::Consistency { old, new, proof } => {
            let proof = offline::parse_proof(&read_capped(proof, CAP)?)?;
            let (o, n) = offline::verify_consistency_offline(
                &policy,
                &read_capped(old, CAP)?,
                &read_capped(new, CAP)?,
                &proof,
            )?;
            p.result(&ConsistencyOutput {
                old: CheckpointOutput::verified(&o),
                new: CheckpointOutput::verified(&n),
            })
        }
        Verify::Evidence { file } => {
            let cap = custody_registry::evidence::MAX_EVIDENCE_SIZE as u64;
            let (ev, split) = offline::verify_evidence(&policy, &read_capped(file, cap)?)?;
            p.result(&EvidenceOutput {
                origin: ev.origin.clone(),
                smaller: TreeHead::of(&split.smaller),
                larger: TreeHead::of(&split.larger),
                implied_root: split.implied_root.map(|r| r.to_base64()),
                reporter: ev.reporter.clone(),
                detected: ev.detected,
            })
        }
        Verify::Bundle { file, entry, artifact, signer } => {
            bundle(&policy, file, entry.as_deref(), artifact.as_deref(), signer.as_deref(), p)
        }
    }
}

/// `verify bundle`: the inclusion, then (each only once the one before
/// held, and reported as far as it got) the signer and the artifact.
fn bundle(
    policy: &custody_standards::Policy,
    file: &Path,
    entry: Option<&Path>,
    artifact: Option<&Path>,
    signer: Option<&str>,
    p: &mut Printer,
) -> anyhow::Result<()> {
    // Refused before anything is read: an artifact verdict without an
    // expected signer would vouch for whatever the log included.
    if artifact.is_some() && signer.is_none() {
        return Err(Error::verify(
            "--artifact needs --signer (or CUSTODY_SIGNER): the actor key of the expected \
             publisher; a bundle alone proves that some bytes were logged, not who published them",
        )
        .into());
    }
    let signer = signer.map(parse_signer).transpose()?;
    let entry = entry.map(|p| read_capped(p, ENTRY_CAP)).transpose()?;
    let r = offline::verify_bundle(policy, &read_capped(file, CAP)?, entry)?;
    let mut out = BundleOutput {
        index: r.index,
        leaf_hash: leaf_hash(&r.entry).to_base64(),
        checkpoint: CheckpointOutput::verified(&r.checkpoint),
        statement: r.statement.as_ref().map(|s| {
            let st = &s.statement;
            BundleStatement {
                action: st.event.action().to_owned(),
                actor: st.actor.as_str().to_owned(),
                key_id: st.key_id.to_string(),
                time: st.time.to_string(),
            }
        }),
        signer: None,
        artifact: None,
        not_established: None,
    };
    if let Some(key) = &signer {
        if let Err(e) = offline::verify_signer(&r, key) {
            return Err(p.failed_after(&out, e.into()));
        }
        out.signer =
            Some(BundleSigner { actor: key.actor().as_str().to_owned(), key_id: key.id().to_string() });
    }
    if let Some(path) = artifact {
        match artifact_of(&r, path) {
            Ok(a) => out.artifact = Some(a),
            Err(e) => return Err(p.failed_after(&out, e)),
        }
    }
    if signer.is_some() {
        out.not_established = Some(offline::NOT_ESTABLISHED_OFFLINE.to_owned());
    }
    p.result(&out)
}

/// Checks that `path` is the artifact the bundle's entry publishes.
fn artifact_of(r: &offline::BundleVerified, path: &Path) -> anyhow::Result<VerifiedFile> {
    let Some(Event::Publish(p)) = r.statement.as_ref().map(|s| &s.statement.event) else {
        return Err(Error::verify("the bundle's entry is not a publish").into());
    };
    let (digest, size) = custody_verifier::publish::hash_file(path)?;
    if digest != p.digest || size != p.size {
        return Err(Error::verify(format!(
            "{} is not {}@{} ({})",
            path.display(),
            p.name.as_str(),
            p.version.as_str(),
            p.digest
        ))
        .into());
    }
    Ok(VerifiedFile {
        path: path.display().to_string(),
        name: p.name.as_str().to_owned(),
        version: p.version.as_str().to_owned(),
        digest: digest.to_string(),
        size,
    })
}

/// `--signer`: an actor key, or a file whose first line is one.
fn parse_signer(s: &str) -> anyhow::Result<ActorKey> {
    if let Ok(k) = ActorKey::parse(s.trim()) {
        return Ok(k);
    }
    let path = Path::new(s);
    if !path.is_file() {
        return Err(
            Error::Usage(format!("--signer {s:?} is neither an actor key nor a file holding one")).into()
        );
    }
    let text = read_capped(path, 4096)?;
    let line = String::from_utf8_lossy(&text);
    let line = line.lines().next().unwrap_or("").trim();
    ActorKey::parse(line).map_err(|e| Error::Usage(format!("--signer {}: {e}", path.display())).into())
}
