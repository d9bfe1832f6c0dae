//! The verified content of a model-signing signature, and its comparison
//! with the files a directory actually holds.

use super::statement::OmsSerialization;
use custody_standards::encoding::encode_hex;

/// What a verified signature says: the model directory's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsFiles {
    /// The subject's name (the directory's name when it was signed).
    pub model_name: String,
    /// Every signed file, `(relative path, SHA-256)`, sorted by path in
    /// byte order, each path once.
    pub files: Vec<(String, [u8; 32])>,
    /// How the signer serialized the directory (`method` is `files`).
    pub serialization: OmsSerialization,
}

/// The first difference between the signed files and the files present,
/// in path byte order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OmsMismatch {
    /// A signed file that is not among the files present.
    #[error("signed file {path:?} is missing from the directory")]
    Missing {
        /// The path.
        path: String,
    },
    /// A file present that the signature does not cover (or a path given
    /// twice in the expected list).
    #[error("file {path:?} is not covered by the signature")]
    Extra {
        /// The path.
        path: String,
    },
    /// A file whose content differs from what was signed.
    #[error("file {path:?} has SHA-256 {found}, the signature says {signed}")]
    Different {
        /// The path.
        path: String,
        /// The signed digest, hex.
        signed: String,
        /// The digest of the file present, hex.
        found: String,
    },
}

impl OmsFiles {
    /// Checks that `expected` (the files present, e.g. a directory
    /// manifest's list, in any order) is exactly the signed set: the same
    /// paths, each with the signed SHA-256. Returns the first difference
    /// in path byte order, so the same two lists always name the same path.
    pub fn compare(&self, expected: &[(String, [u8; 32])]) -> Result<(), OmsMismatch> {
        let mut present: Vec<&(String, [u8; 32])> = expected.iter().collect();
        present.sort_by(|a, b| a.0.cmp(&b.0));
        let mut signed = self.files.iter().peekable();
        let mut present = present.into_iter().peekable();
        loop {
            match (signed.peek(), present.peek()) {
                (None, None) => return Ok(()),
                (Some(s), None) => return Err(OmsMismatch::Missing { path: s.0.clone() }),
                (None, Some(p)) => return Err(OmsMismatch::Extra { path: p.0.clone() }),
                // A path given twice meets the signed list after its first
                // copy matched, so it is reported as Extra like any other.
                (Some(s), Some(p)) => match s.0.cmp(&p.0) {
                    std::cmp::Ordering::Less => return Err(OmsMismatch::Missing { path: s.0.clone() }),
                    std::cmp::Ordering::Greater => return Err(OmsMismatch::Extra { path: p.0.clone() }),
                    std::cmp::Ordering::Equal if s.1 != p.1 => {
                        return Err(OmsMismatch::Different {
                            path: s.0.clone(),
                            signed: encode_hex(&s.1),
                            found: encode_hex(&p.1),
                        })
                    }
                    std::cmp::Ordering::Equal => {
                        signed.next();
                        present.next();
                    }
                },
            }
        }
    }
}
