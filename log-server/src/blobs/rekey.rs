//! KEK rotation: every key record wrapped by the previous KEK is rewrapped
//! by the current one; the data is never touched.
//!
//! Each record is replaced atomically (`local_keys`,
//! `bucket_keys`), records already wrapped by the current KEK are
//! skipped, and the check record moves to the new KEK only after every key
//! record did. So a rotation killed at any point leaves every artifact
//! readable by a server holding both KEKs, and running it again finishes
//! the job. A server may run meanwhile (started with the new KEK and the
//! previous one): it only adds records, wrapped by the new KEK.

use std::fmt;

use super::{BlobError, BlobStore};
use crate::seal::{CheckRecord, KeyRecord, SealError};

/// What a rotation did.
#[derive(Debug, Default)]
pub struct RekeyReport {
    /// Records rewrapped by this run.
    pub rewrapped: u64,
    /// Records already wrapped by the current KEK.
    pub current: u64,
    /// Records that could not be rewrapped (malformed, or wrapped by a KEK
    /// that is not configured): the check record is then left as it was.
    pub failed: Vec<String>,
    /// The KEK the check record names at the end.
    pub check_kek: String,
}

impl RekeyReport {
    /// True when every record is wrapped by the current KEK.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for RekeyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rewrapped {} data keys; {} already under the current KEK",
            self.rewrapped, self.current
        )?;
        for failure in &self.failed {
            writeln!(f, "FAILED: {failure}")?;
        }
        write!(f, "store sealed under KEK {}", self.check_kek)
    }
}

/// Rewraps every key record of `blobs` with its current KEK (see the
/// module documentation). The store must be sealed under the current or the
/// previous KEK.
pub fn rekey(blobs: &BlobStore) -> Result<RekeyReport, BlobError> {
    let seal = blobs.seal().ok_or(BlobError::Key(SealError::NoKek))?;
    let keys = seal.keys();
    let check = blobs.read_check()?.ok_or_else(|| {
        BlobError::Key(SealError::Unsealed("no check record: the store was never sealed".into()))
    })?;
    let check = CheckRecord::parse(&check).map_err(BlobError::Key)?;
    check.verify(keys).map_err(BlobError::Key)?;
    let mut report = RekeyReport::default();
    for name in blobs.list_records()? {
        // Gone since the listing (a refused upload's copy): nothing to do.
        let Some(bytes) = blobs.get_record(&name.digest, &name.blob_id)? else { continue };
        let rewrapped = KeyRecord::parse(&bytes).and_then(|r| r.rewrapped(keys, &name.digest, &name.blob_id));
        match rewrapped {
            Ok(None) => report.current += 1,
            Ok(Some(record)) => {
                blobs.put_record(&name.digest, &name.blob_id, &record.to_bytes())?;
                report.rewrapped += 1;
            }
            Err(e) => report.failed.push(format!(
                "sha256:{} copy {}: {e}",
                name.digest.to_hex(),
                hex::encode(name.blob_id)
            )),
        }
    }
    report.check_kek = check.kek.clone();
    if report.is_complete() && check.kek != keys.current().id() {
        let fresh = CheckRecord::new(keys).map_err(BlobError::Key)?;
        blobs.write_check(&fresh.to_bytes())?;
        report.check_kek = fresh.kek;
    }
    Ok(report)
}
