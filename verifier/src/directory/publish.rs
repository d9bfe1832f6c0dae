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
use std::path::Path;
use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::manifest::{Manifest, ManifestPath, MEDIA_TYPE};
use custody_registry::names::Digest;

use super::scan::{hash_files, parallel, scan, Links, LocalFile};
use crate::client::Uploaded;
use crate::error::{Error, Result};
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

/// Publishes directory `dir` as `req` (its media type becomes the
/// manifest's), hashing and uploading on `jobs` threads.
pub fn publish_dir(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    req: &PublishRequest,
    dir: &Path,
    jobs: usize,
    timeout: Duration,
) -> Result<DirPublished> {
    let local = scan(dir, Links::Refuse, &[])?;
    let entries = hash_files(&local, jobs)?;
    let manifest =
        Manifest::new(entries, None).map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))?;
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
    let by_digest: HashMap<Digest, &LocalFile> =
        m.files().iter().filter_map(|e| by_path.get(&e.path).map(|f| (e.digest, *f))).collect();
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
