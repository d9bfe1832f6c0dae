//! `custody publish DIR`: a model directory published as its manifest.
//!
//! The files are hashed in parallel and listed in a manifest
//! ([`custody_registry::manifest`]); the publish statement names the
//! manifest. The manifest is uploaded first with that statement: the log
//! answers which files it does not hold yet, and only those are uploaded
//! (in parallel, one progress bar), each under the same statement. Then a
//! fresh publish is submitted and proven like any other. A rerun after an
//! interruption uploads only what is still missing; a new version that
//! changes one shard uploads one shard.

use std::collections::HashMap;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::manifest::{Manifest, ManifestPath, SignatureFile, SignatureFormat, MEDIA_TYPE};
use custody_registry::names::Digest;
use custody_registry::oms::{OmsPublicKey, MAX_BUNDLE_BYTES, MAX_PUBLIC_KEY_PEM_BYTES};

use super::scan::{hash_files, parallel, scan, Links, LocalFile};
use crate::client::Uploaded;
use crate::error::{Error, Result};
use crate::home::read_capped;
use crate::progress::{bar, ProgressReader};
use crate::publish::PublishRequest;
use crate::statements::{prove_submitted, sign, Receipt, Why};
use crate::trust::Trust;

/// What a directory publish did.
#[derive(Debug, Clone)]
pub struct DirPublished {
    /// The publish, proven in the log.
    pub receipt: Receipt,
    /// The manifest's digest (what the publish names).
    pub manifest: Digest,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// Files listed.
    pub files: usize,
    /// Bytes of all files.
    pub total_bytes: u64,
    /// Files this run uploaded (the others were already in the log).
    pub uploaded_files: usize,
    /// Bytes this run uploaded, the manifest excluded.
    pub uploaded_bytes: u64,
}

/// An OpenSSF model signature to publish with a directory: the bundle
/// `model_signing sign key` wrote and the public key it verifies with.
#[derive(Debug, Clone)]
pub struct OmsInput {
    /// The signature file (`model.sig`), inside the directory or not.
    pub bundle: PathBuf,
    /// The signer's P-256 public key (SubjectPublicKeyInfo PEM).
    pub key: PathBuf,
}

/// The signature as the manifest names it, with its bytes.
struct OmsSignature {
    entry: SignatureFile,
    bytes: Vec<u8>,
    file: PathBuf,
    /// Whether it lies inside the directory (then it is not one of the
    /// files: `model_signing` does not sign its own signature either).
    inside: bool,
}

impl OmsSignature {
    fn read(o: &OmsInput, dir: &Path) -> Result<Self> {
        let key = read_oms_key(&o.key)?;
        let bytes = read_capped(&o.bundle, MAX_BUNDLE_BYTES as u64)?;
        let canon = |p: &Path| p.canonicalize().map_err(|e| Error::io(p, e));
        let within =
            canon(&o.bundle)?.strip_prefix(canon(dir)?).ok().map(|p| p.to_string_lossy().into_owned());
        let path = ManifestPath::new(within.as_deref().unwrap_or(DEFAULT_SIGNATURE_PATH))
            .map_err(|e| Error::Usage(format!("{}: {e}", o.bundle.display())))?;
        let entry = SignatureFile {
            format: SignatureFormat::Oms,
            path,
            size: bytes.len() as u64,
            digest: Digest(custody_standards::hash::sha256(&bytes)),
            public_key: key.to_pem(),
        };
        Ok(OmsSignature { entry, bytes, file: o.bundle.clone(), inside: within.is_some() })
    }
}

/// Where a signature kept outside the directory is written on pull: the
/// name `model_signing`'s documentation uses.
pub const DEFAULT_SIGNATURE_PATH: &str = "model.sig";

/// A P-256 public key PEM file (`--oms-key`).
pub fn read_oms_key(path: &Path) -> Result<OmsPublicKey> {
    let pem = read_capped(path, MAX_PUBLIC_KEY_PEM_BYTES as u64)?;
    let pem =
        String::from_utf8(pem).map_err(|_| Error::Usage(format!("{}: not a PEM file", path.display())))?;
    OmsPublicKey::from_pem(&pem).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// Publishes directory `dir` as `req` (its media type becomes the
/// manifest's), hashing and uploading on `jobs` threads, with the OpenSSF
/// model signature `oms` if given (checked against the files first: a
/// signature that does not sign exactly them is refused, exit 2).
#[allow(clippy::too_many_arguments)]
pub fn publish_dir(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    req: &PublishRequest,
    dir: &Path,
    oms: Option<&OmsInput>,
    jobs: usize,
    timeout: Duration,
) -> Result<DirPublished> {
    let signature = oms.map(|o| OmsSignature::read(o, dir)).transpose()?;
    let skip: Vec<&str> = signature.iter().filter(|s| s.inside).map(|s| s.entry.path.as_str()).collect();
    let mut local = scan(dir, Links::Refuse, &skip)?;
    let entries = hash_files(&local, jobs)?;
    let manifest = Manifest::new(entries, signature.as_ref().map(|s| s.entry.clone()))
        .map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))?;
    if let Some(s) = &signature {
        manifest.check_signature(&s.bytes).map_err(|e| {
            Error::verify(format!("{}: refusing to publish it with {}: {e}", dir.display(), s.file.display()))
        })?;
        local.push(LocalFile { path: s.entry.path.clone(), abs: s.file.clone(), size: s.entry.size });
    }
    let bytes = manifest.encode();
    let (digest, size) = (manifest.digest(), bytes.len() as u64);
    let req = PublishRequest { media_type: MEDIA_TYPE.to_owned(), ..req.clone() };
    let envelope = sign(signer, why, req.event(digest, size)?)?;
    let client = trust.client();
    let answer = client.upload(&digest.to_string(), Cursor::new(bytes), size, &envelope)?;
    let (mut uploaded_files, mut uploaded_bytes) = (0, 0);
    let (envelope, index, duplicate) = match answer {
        Uploaded::Published(a) => (envelope, a.index, a.duplicate),
        Uploaded::StoredOnly => {
            let fresh = sign(signer, why, req.event(digest, size)?)?;
            let a = client.post_statement(&fresh)?;
            (fresh, a.index, a.duplicate)
        }
        Uploaded::FilesMissing(missing) => {
            let todo = files_to_upload(&local, &manifest, &missing)?;
            uploaded_files = todo.len();
            uploaded_bytes = todo.iter().map(|(_, f)| f.size).sum();
            let pb = bar(uploaded_bytes, "uploading", true);
            parallel(&todo, jobs, |(d, f)| {
                let file = File::open(&f.abs).map_err(|e| Error::io(&f.abs, e))?;
                let body = ProgressReader::new(file, pb.clone());
                client.upload(&d.to_string(), body, f.size, &envelope).map(|_| ())
            })?;
            pb.finish_and_clear();
            // Signed now: the uploads may have outlasted the first
            // statement's window.
            let fresh = sign(signer, why, req.event(digest, size)?)?;
            let a = client.post_statement(&fresh)?;
            (fresh, a.index, a.duplicate)
        }
    };
    Ok(DirPublished {
        receipt: prove_submitted(trust, &envelope, index, duplicate, timeout)?,
        manifest: digest,
        manifest_size: size,
        files: manifest.files().len(),
        total_bytes: manifest.total_size(),
        uploaded_files,
        uploaded_bytes,
    })
}

/// The local file for each digest the log says is missing; a digest the
/// manifest does not list means the log is confused or lying.
fn files_to_upload(
    local: &[LocalFile],
    m: &Manifest,
    missing: &[String],
) -> Result<Vec<(Digest, LocalFile)>> {
    let by_path: HashMap<&ManifestPath, &LocalFile> = local.iter().map(|f| (&f.path, f)).collect();
    let listed =
        m.files().iter().map(|e| (&e.path, e.digest)).chain(m.signature().map(|s| (&s.path, s.digest)));
    let by_digest: HashMap<Digest, &LocalFile> =
        listed.filter_map(|(p, d)| by_path.get(p).map(|f| (d, *f))).collect();
    missing
        .iter()
        .map(|s| {
            let d = Digest::new(s)
                .map_err(|e| Error::Network(format!("the log names a bad missing digest: {e}")))?;
            let f = by_digest.get(&d).ok_or_else(|| {
                Error::Network(format!("the log asks for {d}, which the manifest does not list"))
            })?;
            Ok((d, (*f).clone()))
        })
        .collect()
}
