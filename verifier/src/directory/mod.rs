//! Model directories on the client: publishing a directory as its
//! manifest, pulling one into place only when every file verified, and
//! checking one already on disk. The manifest format and its path rules
//! are [`custody_registry::manifest`]'s, the same code the log and the
//! auditor run.

pub mod publish;
pub mod pull;
pub mod scan;

use std::path::Path;
use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::manifest::MEDIA_TYPE;
use custody_registry::oms::OmsPublicKey;
use custody_registry::registry::Lifecycle;

use crate::error::Result;
use crate::pull::{fetch_file, verify_artifact, verify_reference, Ref, Verified};
use crate::statements::Why;
use crate::trust::Trust;
use pull::DirPulled;

/// Whether a verified publish is a directory (its artifact a manifest).
pub fn is_directory(v: &Verified) -> bool {
    v.media_type.as_str() == MEDIA_TYPE
}

/// Threads for hashing, uploading and downloading: one per core, at least
/// two so a slow transfer does not idle the other core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).max(2)
}

/// `custody pull REF -o OUT`: verifies `reference`, then writes a file or,
/// for a directory, the whole tree (see [`pull::pull_dir`]).
#[allow(clippy::too_many_arguments)]
pub fn pull_any(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    reference: &Ref,
    allowed: &[Lifecycle],
    out: &Path,
    oms_key: Option<&OmsPublicKey>,
    jobs: usize,
    timeout: Duration,
) -> Result<(Verified, Option<DirPulled>)> {
    let v = verify_reference(trust, reference, allowed, timeout)?;
    if is_directory(&v) {
        let d = pull::pull_dir(trust, signer, why, &v, out, oms_key, jobs)?;
        return Ok((v, Some(d)));
    }
    if oms_key.is_some() {
        return Err(not_a_directory(&v));
    }
    fetch_file(trust, signer, why, &v, out)?;
    Ok((v, None))
}

/// `custody pull REF --verify-only PATH`: a file is hashed against the
/// publish; a directory against its manifest, which is downloaded (one
/// access logged, so this needs the actor's key: `signer`).
#[allow(clippy::too_many_arguments)]
pub fn verify_any(
    trust: &Trust,
    signer: impl FnOnce() -> Result<ActorSigner>,
    why: &Why,
    reference: &Ref,
    allowed: &[Lifecycle],
    path: &Path,
    oms_key: Option<&OmsPublicKey>,
    jobs: usize,
    timeout: Duration,
) -> Result<(Verified, Option<DirPulled>)> {
    if !path.is_dir() && oms_key.is_none() {
        return verify_artifact(trust, reference, allowed, path, timeout).map(|v| (v, None));
    }
    let v = verify_reference(trust, reference, allowed, timeout)?;
    if !is_directory(&v) {
        return Err(not_a_directory(&v));
    }
    let d = pull::verify_dir(trust, &signer()?, why, &v, path, oms_key, jobs)?;
    Ok((v, Some(d)))
}

fn not_a_directory(v: &Verified) -> crate::error::Error {
    crate::error::Error::verify(format!(
        "{}@{} is a single file, not a model directory (an OpenSSF model signature covers directories)",
        v.name.as_str(),
        v.version.as_str()
    ))
}
