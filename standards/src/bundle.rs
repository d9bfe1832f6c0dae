//! [C2SP tlog-proof](https://c2sp.org/tlog-proof) bundles
//! (`c2sp.org/tlog-proof@v1`, [Format](https://c2sp.org/tlog-proof#format)):
//! an entry's index, its inclusion proof
//! ([RFC 9162 section 2.1.3](https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3))
//! and the cosigned checkpoint it is proven against, in one file that
//! verifies offline against a [tlog-policy](https://c2sp.org/tlog-policy).
//!
//! This is the receipt a publisher keeps and the artifact an auditor can check
//! years later with nothing but the policy's keys: no log needs to be online.

use crate::encoding::{decode_base64_strict, encode_base64, parse_decimal_u64};
use crate::hash::Hash;
use crate::policy::{Policy, PolicyError, PolicyVerified};
use crate::verify::{verify_inclusion, VerifyError};

/// "The first line MUST be the string `c2sp.org/tlog-proof@v1`."
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Recommended file extension ("Proofs SHOULD be stored with file extension
/// `.tlog-proof`").
pub const FILE_EXTENSION: &str = "tlog-proof";

/// Largest bundle accepted by [`ProofBundle::parse`]: a 64-line proof, a
/// checkpoint with many cosignatures and a modest `extra`. Checked before
/// anything is decoded.
pub const MAX_BUNDLE_SIZE: usize = 128 * 1024;

/// An inclusion proof is one hash per tree level; 63 is enough for any tree
/// whose size fits in a `u64` leaf count.
pub const MAX_PROOF_HASHES: usize = 63;

/// Why a bundle is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Larger than [`MAX_BUNDLE_SIZE`].
    #[error("proof bundle of {0} bytes exceeds the {MAX_BUNDLE_SIZE}-byte limit")]
    TooLarge(usize),
    /// Not UTF-8.
    #[error("proof bundle is not valid UTF-8")]
    Utf8,
    /// First line is not the tlog-proof header.
    #[error("first line must be `{HEADER}`")]
    Header,
    /// The `extra` line is present but not `extra <base64>`.
    #[error("`extra` line must be `extra <non-empty canonical base64>`")]
    Extra,
    /// Missing or malformed `index <decimal>` line.
    #[error("missing or malformed `index <decimal>` line")]
    Index,
    /// A proof line is not canonical base64 of 32 bytes.
    #[error("inclusion proof line {0} is not a base64 SHA-256 hash")]
    ProofLine(usize),
    /// More proof hashes than any tree can need.
    #[error("more than {MAX_PROOF_HASHES} inclusion proof hashes")]
    TooManyProofHashes,
    /// No empty line before the checkpoint, or nothing after it.
    #[error("missing the empty line and checkpoint after the proof")]
    MissingCheckpoint,
}

/// Why a well-formed bundle does not prove what it claims.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleVerifyError {
    /// The checkpoint is not signed by a policy log or lacks the witness
    /// quorum.
    #[error("bundle checkpoint rejected by policy: {0}")]
    Checkpoint(#[from] PolicyError),
    /// The inclusion proof does not lead from the entry to the checkpoint root.
    #[error("bundle inclusion proof invalid: {0}")]
    Inclusion(#[from] VerifyError),
}

/// A parsed tlog-proof bundle. The checkpoint stays verbatim bytes: it is a
/// signed note and is only meaningful once opened against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// Opaque, unauthenticated application data ("Applications MUST NOT
    /// implicitly trust the extra data").
    pub extra: Option<Vec<u8>>,
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// RFC 6962 inclusion proof, from the leaf's sibling up to the root's child.
    pub proof: Vec<Hash>,
    /// The signed (and usually cosigned) checkpoint note, verbatim.
    pub checkpoint: Vec<u8>,
}

impl ProofBundle {
    /// Parses a bundle following the spec's line order exactly
    /// ([tlog-proof, Format](https://c2sp.org/tlog-proof#format); each step
    /// is quoted in the code). Parsing checks only the framing: the
    /// checkpoint stays bytes until [`ProofBundle::verify`] opens it.
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::bundle::{BundleError, ProofBundle};
    /// use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
    /// use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
    /// use custody_standards::policy::Policy;
    /// use custody_standards::{inclusion_proof, leaf_hash, MemoryHashStore};
    ///
    /// // A log of five entries signs its checkpoint with a fixed-seed key.
    /// let log_key = SignerKey::from_seed("log.example/a", SIG_TYPE_ED25519, &[1; 32])?;
    /// let entries: Vec<Vec<u8>> = (0..5).map(|i| format!("entry {i}").into_bytes()).collect();
    /// let mut tree = MemoryHashStore::new();
    /// for e in &entries {
    ///     tree.append(leaf_hash(e));
    /// }
    /// let cp = Checkpoint { origin: "log.example/a".into(), size: 5, root: tree.root(), extensions: vec![] };
    /// let checkpoint = sign_checkpoint(&cp, &log_key)?;
    /// let bytes = ProofBundle { extra: None, index: 3, proof: inclusion_proof(3, 5, &tree)?, checkpoint }
    ///     .to_bytes();
    /// assert!(bytes.starts_with(b"c2sp.org/tlog-proof@v1\nindex 3\n"));
    ///
    /// let bundle = ProofBundle::parse(&bytes)?;
    /// assert_eq!((bundle.index, bundle.proof.len()), (3, 3));
    /// // Offline verification against a policy that trusts the log.
    /// let policy = Policy::parse(format!("log {}\nquorum none\n", log_key.verifier()).as_bytes())?;
    /// bundle.verify(&leaf_hash(&entries[3]), &policy)?;
    ///
    /// // The same bundle with the index spelled "03": refused.
    /// let text = String::from_utf8(bytes)?;
    /// assert_eq!(
    ///     ProofBundle::parse(text.replace("index 3", "index 03").as_bytes()),
    ///     Err(BundleError::Index)
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(data: &[u8]) -> Result<Self, BundleError> {
        if data.len() > MAX_BUNDLE_SIZE {
            return Err(BundleError::TooLarge(data.len()));
        }
        let text = std::str::from_utf8(data).map_err(|_| BundleError::Utf8)?;
        let mut rest = text;
        let mut line = || -> Option<&str> {
            let pos = rest.find('\n')?;
            let l = &rest[..pos];
            rest = &rest[pos + 1..];
            Some(l)
        };
        // "The first line MUST be the string `c2sp.org/tlog-proof@v1`."
        if line() != Some(HEADER) {
            return Err(BundleError::Header);
        }
        // "The second line MAY start with the string `extra` followed by a
        // space and base64-encoded opaque extra data. If no extra data is
        // present, this line is omitted."
        let mut next = line().ok_or(BundleError::Index)?;
        let mut extra = None;
        if let Some(b64) = next.strip_prefix("extra ") {
            let bytes = decode_base64_strict(b64).filter(|b| !b.is_empty()).ok_or(BundleError::Extra)?;
            extra = Some(bytes);
            next = line().ok_or(BundleError::Index)?;
        } else if next.starts_with("extra") {
            return Err(BundleError::Extra);
        }
        // "The next line MUST start with the string `index` followed by a
        // space and the zero-based index ... with no leading zeroes."
        let index = next.strip_prefix("index ").and_then(parse_decimal_u64).ok_or(BundleError::Index)?;
        // "The next zero or more non-empty lines are the base64-encoded Merkle
        // inclusion proof ... After the inclusion proof lines and an empty
        // line, the checkpoint issued by the log is included verbatim."
        let mut proof = Vec::new();
        loop {
            let l = line().ok_or(BundleError::MissingCheckpoint)?;
            if l.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_HASHES {
                return Err(BundleError::TooManyProofHashes);
            }
            proof.push(Hash::from_base64(l).map_err(|_| BundleError::ProofLine(proof.len() + 1))?);
        }
        if rest.is_empty() {
            return Err(BundleError::MissingCheckpoint);
        }
        Ok(ProofBundle { extra, index, proof, checkpoint: rest.as_bytes().to_vec() })
    }

    /// Encodes the bundle; [`ProofBundle::parse`] of the result is identity.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.proof.len() * 45);
        out.push_str(HEADER);
        out.push('\n');
        if let Some(extra) = &self.extra {
            out.push_str("extra ");
            out.push_str(&encode_base64(extra));
            out.push('\n');
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            out.push_str(&h.to_base64());
            out.push('\n');
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.checkpoint);
        bytes
    }
}

impl ProofBundle {
    /// Verifies the bundle offline: the checkpoint must satisfy `policy`
    /// (log signature and witness quorum), and the proof must include
    /// `leaf_hash` at [`ProofBundle::index`] in that checkpoint's tree.
    ///
    /// `leaf_hash` is computed by the caller from the entry it holds
    /// ([`crate::leaf_hash`]): the bundle deliberately does not carry the
    /// entry, so a bundle can never vouch for bytes the caller did not check.
    pub fn verify(&self, leaf_hash: &Hash, policy: &Policy) -> Result<PolicyVerified, BundleVerifyError> {
        let verified = policy.verify_checkpoint(&self.checkpoint)?;
        let cp = &verified.checkpoint;
        verify_inclusion(leaf_hash, self.index, cp.size, &self.proof, &cp.root)?;
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in the tlog-proof spec (signatures elided there, which is
    /// fine: the checkpoint is only opened against a policy later).
    const SPEC_EXAMPLE: &str = "c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u{2014} example.com/fancylog hI2DJw[...]1roloI=
";

    #[test]
    fn spec_example_structure() {
        let b = ProofBundle::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        let extra = b.extra.as_deref().unwrap();
        assert!(extra.starts_with(b"age-v1.2.1-darwin-arm64.tar.gz"));
        assert_eq!(extra.len(), 39);
        assert_eq!(b.index, 73894);
        assert_eq!(b.proof.len(), 5);
        assert_eq!(b.proof[0].to_base64(), "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=");
        assert_eq!(b.proof[4].to_base64(), "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=");
        assert!(b.checkpoint.starts_with(b"example.com/fancylog\n109482\n"));
        // Formatting reproduces the spec's bytes exactly.
        assert_eq!(b.to_bytes(), SPEC_EXAMPLE.as_bytes());
    }

    #[test]
    fn round_trip_with_extra_and_empty_proof() {
        let b = ProofBundle {
            extra: Some(b"model.bin".to_vec()),
            index: 0,
            proof: vec![],
            checkpoint: b"o\n1\nx\n\n\xe2\x80\x94 o AAAA\n".to_vec(),
        };
        assert_eq!(ProofBundle::parse(&b.to_bytes()).unwrap(), b);
    }

    #[test]
    fn rejects_malformed() {
        let h = "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=";
        let cases: Vec<(String, BundleError)> = vec![
            ("".into(), BundleError::Header),
            ("c2sp.org/tlog-proof@v2\nindex 1\n\ncp\n".into(), BundleError::Header),
            ("c2sp.org/tlog-proof@v1\nindex 01\n\ncp\n".into(), BundleError::Index),
            ("c2sp.org/tlog-proof@v1\nindex\n\ncp\n".into(), BundleError::Index),
            ("c2sp.org/tlog-proof@v1\n\ncp\n".into(), BundleError::Index),
            ("c2sp.org/tlog-proof@v1\nextra \nindex 1\n\ncp\n".into(), BundleError::Extra),
            ("c2sp.org/tlog-proof@v1\nextra AR==\nindex 1\n\ncp\n".into(), BundleError::Extra),
            ("c2sp.org/tlog-proof@v1\nextraAQ==\nindex 1\n\ncp\n".into(), BundleError::Extra),
            (format!("c2sp.org/tlog-proof@v1\nindex 1\n{h}x\n\ncp\n"), BundleError::ProofLine(1)),
            (format!("c2sp.org/tlog-proof@v1\nindex 1\n{h}\n"), BundleError::MissingCheckpoint),
            (format!("c2sp.org/tlog-proof@v1\nindex 1\n{h}\n\n"), BundleError::MissingCheckpoint),
            (
                format!("c2sp.org/tlog-proof@v1\nindex 1\n{}\ncp\n", format!("{h}\n").repeat(64)),
                BundleError::TooManyProofHashes,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(ProofBundle::parse(text.as_bytes()), Err(want), "{text:?}");
        }
        assert_eq!(ProofBundle::parse(&[0xff]), Err(BundleError::Utf8));
        let huge = vec![b'a'; MAX_BUNDLE_SIZE + 1];
        assert_eq!(ProofBundle::parse(&huge), Err(BundleError::TooLarge(huge.len())));
    }
}
