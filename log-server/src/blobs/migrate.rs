//! Sealing a store written in plaintext (before encryption at rest, or by
//! `--plaintext-artifacts`), in place, on a stopped server
//! (`custody-log seal-artifacts`).
//!
//! Each plaintext copy is read, sealed under a fresh data key and checked
//! against its digest and size as any upload is; only then does the sealed
//! copy replace it (its key record first, then an atomic rename or PUT). A
//! copy that does not match its digest is left as it is and reported. The
//! check record is written last, once every copy is sealed: until then an
//! encrypting server refuses to start on the store, and running the
//! command again resumes (copies already sealed are recognised by a header
//! whose blob id has its key record, which no plaintext can forge).

use std::fmt;

use custody_standards::Hash;

use super::{BlobError, BlobStore};
use crate::seal::format::HEADER_LEN;
use crate::seal::{CheckRecord, SealError};

/// Bytes read per step.
const STEP: u64 = 8 << 20;

/// What sealing a store did.
#[derive(Debug, Default)]
pub struct SealReport {
    /// Copies sealed by this run.
    pub sealed: u64,
    /// Copies already sealed (an earlier, interrupted run).
    pub already: u64,
    /// Copies left as they are, with the reason (their bytes do not match
    /// their digest, or could not be read).
    pub failed: Vec<String>,
    /// True once the check record is written: the store is sealed.
    pub complete: bool,
}

impl fmt::Display for SealReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failed {
            writeln!(f, "FAILED: {failure}")?;
        }
        write!(f, "sealed {} artifacts; {} already sealed", self.sealed, self.already)?;
        if self.complete {
            write!(f, "; the store is sealed")
        } else {
            write!(f, "; the store is NOT sealed yet (fix the failures and run again)")
        }
    }
}

/// Whether the stored copy of `digest` is sealed already.
fn is_sealed(sealed: &BlobStore, digest: &Hash) -> Result<bool, BlobError> {
    match sealed.stored_blob_id(digest)? {
        Some(id) => Ok(sealed.get_record(digest, &id)?.is_some()),
        None => Ok(false),
    }
}

/// Seals the plaintext copy of `digest` of `size` bytes in place.
fn seal_one(sealed: &BlobStore, plain: &BlobStore, digest: &Hash, size: u64) -> Result<(), BlobError> {
    let mut w = sealed.begin_replace(*digest, size)?;
    let mut at = 0;
    while at < size {
        let bytes = plain.read_stored(digest, at, STEP.min(size - at))?;
        if bytes.is_empty() {
            break; // shorter than listed: the writer's size check refuses it
        }
        w.write(&bytes)?;
        at += bytes.len() as u64;
    }
    w.finish().map(drop)
}

/// Seals every plaintext copy of the store: `sealed` and `plain` are the
/// same store opened with and without the KEK. Idempotent.
pub fn seal_artifacts(sealed: &BlobStore, plain: &BlobStore) -> Result<SealReport, BlobError> {
    let seal = sealed.seal().ok_or(BlobError::Key(SealError::NoKek))?;
    let mut report = SealReport::default();
    if let Some(check) = sealed.read_check()? {
        // Written last: the store is sealed already; the KEK must open it.
        CheckRecord::parse(&check).and_then(|c| c.verify(seal.keys())).map_err(BlobError::Key)?;
        report.already = sealed.list()?.len() as u64;
        report.complete = true;
        return Ok(report);
    }
    for listed in plain.list_stored()? {
        let digest = listed.digest;
        if listed.size >= HEADER_LEN as u64 && is_sealed(sealed, &digest)? {
            report.already += 1;
            continue;
        }
        match seal_one(sealed, plain, &digest, listed.size) {
            Ok(()) => report.sealed += 1,
            Err(e @ (BlobError::DigestMismatch { .. } | BlobError::SizeMismatch { .. })) => {
                report.failed.push(format!("sha256:{}: {e}", digest.to_hex()));
            }
            Err(e) => return Err(e),
        }
    }
    if report.failed.is_empty() {
        sealed.write_check(&CheckRecord::new(seal.keys()).map_err(BlobError::Key)?.to_bytes())?;
        report.complete = true;
    }
    Ok(report)
}
