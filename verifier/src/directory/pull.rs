//! `custody pull` of a model directory: everything `pull` proves for the
//! manifest ([`crate::pull::verify_reference`]), then every file's digest
//! and size.
//!
//! One access statement is logged for the manifest; each file is fetched
//! under it (`Custody-Access-Index`, see docs/api.md). Files are written
//! into a private staging directory beside the destination and the tree is
//! renamed into place only when every file verified: on any failure, and
//! after `kill -9`, nothing is at the destination (a killed pull leaves a
//! `.custody-pull-*` directory only its owner can read).
//!
//! `--verify-only DIR` checks a directory already on disk, following
//! symbolic links as a loader does (a Hugging Face cache snapshot is made
//! of them), and names every missing, extra and modified file.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use custody_registry::actor_key::ActorSigner;
use custody_registry::manifest::{Manifest, ManifestPath, MAX_MANIFEST_BYTES};
use custody_registry::names::{Digest, ModelName, Version};
use custody_registry::oms::{OmsPublicKey, MAX_BUNDLE_BYTES};
use custody_registry::statement::events::Access;
use custody_registry::statement::Event;
use custody_standards::hash::Hash;
use indicatif::ProgressBar;
use sha2::{Digest as _, Sha256};

use super::scan::{hash_path, parallel, scan, Links};
use crate::error::{Error, Result};
use crate::home::read_capped;
use crate::progress::bar;
use crate::pull::{staging_beside, Verified};
use crate::statements::{sign, Why};
use crate::trust::Trust;

/// What a directory pull or check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirPulled {
    /// Files (the signature file included).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The access entry that covered every file.
    pub access_index: u64,
}

/// One file to write: its path, digest and size.
type Member = (ManifestPath, Digest, u64);

fn members(m: &Manifest) -> Vec<Member> {
    let files = m.files().iter().map(|f| (f.path.clone(), f.digest, f.size));
    files.chain(m.signature().map(|s| (s.path.clone(), s.digest, s.size))).collect()
}

/// Logs an access of the manifest published as `name@version` (`digest`,
/// `size` bytes), downloads it and checks it: its digest and size, and
/// every manifest rule (a hostile log's manifest is refused here, exit 2).
/// Returns it with the access envelope and the access entry's index, under
/// which its files are fetched.
pub fn fetch_manifest(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    name: &ModelName,
    version: &Version,
    digest: Digest,
    size: u64,
) -> Result<(Manifest, Vec<u8>, u64)> {
    if size > MAX_MANIFEST_BYTES {
        return Err(Error::verify(format!("the published manifest is {size} bytes, more than any manifest")));
    }
    let access = Access { name: name.clone(), version: version.clone(), digest };
    let envelope = sign(signer, why, Event::Access(access))?;
    let (resp, index) = trust.client().download(&digest.to_string(), &envelope)?;
    let index = index.ok_or_else(|| Error::verify("the log did not say where it logged the access"))?;
    let mut bytes = Vec::new();
    resp.take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Network(format!("download of {digest}: {e}")))?;
    if Digest(custody_standards::hash::sha256(&bytes)) != digest || bytes.len() as u64 != size {
        return Err(Error::verify(format!("the log sent a manifest other than the published {digest}")));
    }
    let m = Manifest::parse(&bytes)
        .map_err(|e| Error::verify(format!("the published manifest {digest}: {e}")))?;
    Ok((m, envelope, index))
}

/// [`fetch_manifest`] of a verified publish.
fn fetch_verified(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    v: &Verified,
) -> Result<(Manifest, Vec<u8>, u64)> {
    fetch_manifest(trust, signer, why, &v.name, &v.version, v.digest, v.size)
}

/// The OpenSSF signature a manifest names, fetched under its access (the
/// bytes are checked by [`Manifest::check_signature`]).
pub fn fetch_signature(trust: &Trust, m: &Manifest, envelope: &[u8], index: u64) -> Result<Option<Vec<u8>>> {
    let Some(sig) = m.signature() else { return Ok(None) };
    let body = trust.client().download_file(&sig.digest.to_string(), envelope, index)?;
    let mut bytes = Vec::new();
    body.take(MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Network(format!("download of {}: {e}", sig.digest)))?;
    Ok(Some(bytes))
}

/// Pulls the verified directory `v` into `out`, which must not exist (or be
/// an empty directory).
#[allow(clippy::too_many_arguments)]
pub fn pull_dir(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    v: &Verified,
    out: &Path,
    oms_key: Option<&OmsPublicKey>,
    jobs: usize,
) -> Result<DirPulled> {
    if let Ok(mut entries) = fs::read_dir(out) {
        if entries.next().is_some() {
            return Err(Error::Usage(format!("{} exists and is not empty", out.display())));
        }
    } else if out.exists() {
        return Err(Error::Usage(format!("{} exists and is not a directory", out.display())));
    }
    let (m, envelope, index) = fetch_verified(trust, signer, why, v)?;
    let (parent, staging) = staging_beside(out)?;
    let tree = staging.path().join("tree");
    let list = members(&m);
    let bytes: u64 = list.iter().map(|(_, _, s)| s).sum();
    let pb = bar(bytes, "downloading", true);
    let client = trust.client();
    parallel(&list, jobs, |(path, digest, size)| {
        let dest = tree.join(path.as_str());
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut body = client.download_file(&digest.to_string(), &envelope, index)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&dest)
            .map_err(|e| Error::io(&dest, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = body.read(&mut buf).map_err(|e| Error::Network(format!("download of {path}: {e}")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > *size {
                return Err(Error::verify(format!("{path}: the log sent more than its {size} bytes")));
            }
            h.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(&dest, e))?;
            pb.inc(n as u64);
        }
        let got = Digest(Hash(h.finalize().into()));
        if got != *digest || total != *size {
            return Err(Error::verify(format!(
                "{path}: the log sent {got} ({total} bytes), not the listed {digest} ({size} bytes)"
            )));
        }
        file.sync_all().map_err(|e| Error::io(&dest, e))
    })?;
    pb.finish_and_clear();
    if let Some(key) = oms_key {
        check_oms(&m, key, &tree)?;
    }
    if out.exists() {
        fs::remove_dir(out).map_err(|e| Error::io(out, e))?;
    }
    fs::rename(&tree, out).map_err(|e| Error::io(out, e))?;
    if let Ok(d) = fs::File::open(parent) {
        let _ = d.sync_all();
    }
    staging.close().map_err(|e| Error::io(parent, e))?;
    Ok(DirPulled { files: list.len(), bytes, access_index: index })
}

/// How a directory on disk differs from its manifest, by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirDiff {
    /// Listed, not on disk.
    pub missing: Vec<String>,
    /// On disk, not listed.
    pub extra: Vec<String>,
    /// On disk with other bytes.
    pub modified: Vec<String>,
}

impl DirDiff {
    /// No difference.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.modified.is_empty()
    }
}

impl std::fmt::Display for DirDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (what, list) in [("missing", &self.missing), ("extra", &self.extra), ("modified", &self.modified)]
        {
            for p in list {
                write!(f, "\n  {what}: {p}")?;
            }
        }
        Ok(())
    }
}

/// Compares `dir` with `m`: every listed file must be there with its bytes,
/// and nothing else.
pub fn diff_dir(m: &Manifest, dir: &Path, jobs: usize) -> Result<DirDiff> {
    let local = scan(dir, Links::Follow, &[])?;
    let listed = members(m);
    let expected: BTreeMap<&str, (Digest, u64)> =
        listed.iter().map(|(p, d, s)| (p.as_str(), (*d, *s))).collect();
    let mut diff = DirDiff::default();
    let mut to_hash = Vec::new();
    for f in &local {
        match expected.get(f.path.as_str()) {
            None => diff.extra.push(f.path.to_string()),
            Some((_, size)) if *size != f.size => diff.modified.push(f.path.to_string()),
            Some((digest, _)) => to_hash.push((f.clone(), *digest)),
        }
    }
    let on_disk: std::collections::HashSet<&str> = local.iter().map(|f| f.path.as_str()).collect();
    diff.missing = expected.keys().filter(|p| !on_disk.contains(*p)).map(|p| (*p).to_owned()).collect();
    let pb: ProgressBar = bar(to_hash.iter().map(|(f, _)| f.size).sum(), "hashing", true);
    let same = parallel(&to_hash, jobs, |(f, digest)| Ok(hash_path(&f.abs, &pb)?.0 == *digest))?;
    pb.finish_and_clear();
    diff.modified
        .extend(to_hash.iter().zip(same).filter(|(_, same)| !same).map(|((f, _), _)| f.path.to_string()));
    diff.modified.sort();
    Ok(diff)
}

/// `--verify-only DIR` for a directory: refuses (exit 2) naming every
/// difference.
#[allow(clippy::too_many_arguments)]
pub fn verify_dir(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    v: &Verified,
    dir: &Path,
    oms_key: Option<&OmsPublicKey>,
    jobs: usize,
) -> Result<DirPulled> {
    let (m, _, index) = fetch_verified(trust, signer, why, v)?;
    let diff = diff_dir(&m, dir, jobs)?;
    if !diff.is_empty() {
        return Err(Error::verify(format!(
            "{} is not {}@{} ({} missing, {} extra, {} modified):{diff}",
            dir.display(),
            v.name.as_str(),
            v.version.as_str(),
            diff.missing.len(),
            diff.extra.len(),
            diff.modified.len()
        )));
    }
    if let Some(key) = oms_key {
        check_oms(&m, key, dir)?;
    }
    let list = members(&m);
    Ok(DirPulled { files: list.len(), bytes: list.iter().map(|(_, _, s)| s).sum(), access_index: index })
}

/// `--oms-key`: the directory's OpenSSF model signature, as written under
/// `dir`, must be made with `key` and sign exactly the manifest's files.
/// The log checked it when it was published; this checks it against the
/// key the caller trusts, not the one the manifest names.
fn check_oms(m: &Manifest, key: &OmsPublicKey, dir: &Path) -> Result<()> {
    let sig =
        m.signature().ok_or_else(|| Error::verify("the directory carries no OpenSSF model signature"))?;
    if sig.public_key != key.to_pem() {
        return Err(Error::verify(format!(
            "the directory's OpenSSF model signature is made with another key than --oms-key (key {})",
            key.id()
        )));
    }
    let bytes = read_capped(&dir.join(sig.path.as_str()), MAX_BUNDLE_BYTES as u64)?;
    m.check_signature(&bytes).map(|_| ()).map_err(|e| Error::verify(e.to_string()))
}
