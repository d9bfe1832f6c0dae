//! Split-view evidence: two checkpoints signed by the same log key that
//! cannot both be honest, in a self-contained text format anyone can verify
//! offline with nothing but the log's verifier key.
//!
//! A witness records evidence when it finds that a log showed different
//! parties incompatible trees (tlog-witness: a checkpoint that fails the
//! consistency check "might be proof of log misbehavior"). The evidence must
//! convince a third party who trusts neither witness, so it carries only
//! things the log itself signed plus public Merkle math:
//!
//! - **Same size, different root**: two checkpoints of one origin and one
//!   size with different roots. The log's two signatures are the proof.
//! - **Not a prefix**: checkpoints of sizes `m < n`. The evidence carries the
//!   root `prefix` that the tree of the size-`n` checkpoint has at size `m`,
//!   and a consistency proof from `(m, prefix)` to `(n, root_n)`. If that
//!   proof verifies, `prefix` *is* the size-`m` root of the log's size-`n`
//!   tree (RFC 9162 2.1.4: a valid consistency proof binds the old root to
//!   the new one), so a signed size-`m` root different from `prefix` shows
//!   the log signed two trees that do not extend each other. A witness
//!   obtains `prefix` and the proof from the log's own tiles, authenticated
//!   against the size-`n` root.
//!
//! Format (every line ends in `\n`, fields in this order, no blank lines):
//!
//! ```text
//! custody.dev/split-view-evidence/v1
//! origin <checkpoint origin>
//! detected <POSIX seconds when the witness recorded it>
//! reporter <name of the witness that recorded it>
//! checkpoint <base64 of a signed checkpoint note, signatures included>
//! source <one line: where the witness got it>
//! checkpoint <base64 of the second signed checkpoint note>
//! source <one line>
//! prefix <base64 root>          (only when the sizes differ)
//! proof <base64 hash>           (zero or more, only after `prefix`)
//! ```
//!
//! Notes are base64-encoded so the evidence stays line-oriented even though
//! notes contain blank lines. Cosignatures kept in the notes (for example the
//! peer witness's) are context, not proof: verification needs only the log
//! key. As everywhere in this crate, each evidence text has exactly one
//! accepted spelling and every size is capped before decoding.

use custody_standards::checkpoint::{open_checkpoint_with, Checkpoint, CheckpointError};
use custody_standards::encoding::{decode_base64_strict, encode_base64, parse_decimal_u64};
use custody_standards::hash::{sha256, Hash};
use custody_standards::note::NoteVerifier;
use custody_standards::verify::{verify_consistency, VerifyError, MAX_CONSISTENCY_PROOF_LEN};
use custody_standards::witness::MAX_CHECKPOINT_SIZE;

/// First line of every evidence text.
pub const EVIDENCE_HEADER: &str = "custody.dev/split-view-evidence/v1";
/// Largest checkpoint note carried (same cap as a tlog-witness request).
pub const MAX_EVIDENCE_NOTE_SIZE: usize = MAX_CHECKPOINT_SIZE;
/// Longest `origin`, `reporter` or `source` value.
pub const MAX_EVIDENCE_FIELD_LEN: usize = 1024;
/// Largest evidence text: two base64 notes, the proof and the short fields.
pub const MAX_EVIDENCE_SIZE: usize =
    2 * (MAX_EVIDENCE_NOTE_SIZE * 4 / 3 + 16) + (MAX_CONSISTENCY_PROOF_LEN + 1) * 52 + 5 * 1100;
/// `Content-Type` under which witnesses serve evidence.
pub const EVIDENCE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Why evidence could not be parsed, encoded or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// Larger than [`MAX_EVIDENCE_SIZE`].
    #[error("evidence is {0} bytes, the limit is {MAX_EVIDENCE_SIZE}")]
    TooLarge(usize),
    /// Violates the format.
    #[error("malformed evidence: {0}")]
    Malformed(&'static str),
    /// Checkpoint `index` (0 or 1) is not a checkpoint signed by a trusted key.
    #[error("checkpoint {index} is not validly signed by a trusted log key: {source}")]
    Checkpoint {
        /// Which checkpoint (0 = first in the text).
        index: usize,
        /// Why it failed.
        source: CheckpointError,
    },
    /// A checkpoint's origin is not the evidence origin.
    #[error("checkpoint {index} has origin {found:?}, the evidence is about {expected:?}")]
    OriginMismatch {
        /// Which checkpoint.
        index: usize,
        /// Origin in the checkpoint.
        found: String,
        /// Origin line of the evidence.
        expected: String,
    },
    /// The checkpoints are consistent (or the evidence does not show
    /// otherwise): this is not proof of a split view.
    #[error("not a split view: {0}")]
    NotSplit(&'static str),
    /// The consistency proof from the prefix does not verify, so the prefix
    /// root is unproven.
    #[error("consistency proof from the prefix root does not verify: {0}")]
    Proof(VerifyError),
}

/// One checkpoint of the evidence, with where the reporter got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceCheckpoint {
    /// The signed checkpoint note, verbatim.
    pub note: Vec<u8>,
    /// Free text, one line (e.g. `add-checkpoint` or `peer <name> <url>`).
    pub source: String,
}

/// The root a larger tree has at the smaller size, with the proof of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixProof {
    /// Root of the larger checkpoint's tree at the smaller checkpoint's size.
    pub prefix: Hash,
    /// Consistency proof from `(smaller size, prefix)` to the larger checkpoint.
    pub proof: Vec<Hash>,
}

/// Split-view evidence (see the module docs for the format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Checkpoint origin both checkpoints must carry.
    pub origin: String,
    /// When the reporter recorded it (POSIX seconds).
    pub detected: u64,
    /// Name of the witness that recorded it.
    pub reporter: String,
    /// The two conflicting checkpoints.
    pub checkpoints: [EvidenceCheckpoint; 2],
    /// Present exactly when the two sizes differ.
    pub prefix: Option<PrefixProof>,
}

/// What verified evidence proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitView {
    /// The checkpoint with the smaller (or equal) size.
    pub smaller: Checkpoint,
    /// The checkpoint with the larger (or equal) size.
    pub larger: Checkpoint,
    /// For different sizes: the root the larger tree has at the smaller size.
    pub implied_root: Option<Hash>,
}

fn check_field(value: &str, what: &'static str) -> Result<(), EvidenceError> {
    if value.is_empty() || value.len() > MAX_EVIDENCE_FIELD_LEN || value.chars().any(char::is_control) {
        return Err(EvidenceError::Malformed(what));
    }
    Ok(())
}

/// Takes the next line, which must be `<key> <value>`.
fn field<'a>(lines: &mut std::iter::Peekable<std::str::Split<'a, char>>, key: &str) -> Option<&'a str> {
    let line: &'a str = lines.peek()?;
    let value = line.strip_prefix(key)?.strip_prefix(' ')?;
    lines.next();
    Some(value)
}

fn hash_field(value: &str, what: &'static str) -> Result<Hash, EvidenceError> {
    Hash::from_base64(value).map_err(|_| EvidenceError::Malformed(what))
}

impl Evidence {
    /// Parses evidence text strictly (one accepted spelling).
    pub fn parse(text: &[u8]) -> Result<Self, EvidenceError> {
        if text.len() > MAX_EVIDENCE_SIZE {
            return Err(EvidenceError::TooLarge(text.len()));
        }
        let text = std::str::from_utf8(text).map_err(|_| EvidenceError::Malformed("not UTF-8"))?;
        let body = text.strip_suffix('\n').ok_or(EvidenceError::Malformed("does not end in a newline"))?;
        let mut lines = body.split('\n').peekable();
        if lines.next() != Some(EVIDENCE_HEADER) {
            return Err(EvidenceError::Malformed("missing header line"));
        }
        let origin = field(&mut lines, "origin").ok_or(EvidenceError::Malformed("missing origin line"))?;
        check_field(origin, "bad origin")?;
        let detected = field(&mut lines, "detected")
            .and_then(parse_decimal_u64)
            .ok_or(EvidenceError::Malformed("missing or non-canonical detected line"))?;
        let reporter =
            field(&mut lines, "reporter").ok_or(EvidenceError::Malformed("missing reporter line"))?;
        check_field(reporter, "bad reporter")?;
        let mut checkpoint = || -> Result<EvidenceCheckpoint, EvidenceError> {
            let b64 =
                field(&mut lines, "checkpoint").ok_or(EvidenceError::Malformed("missing checkpoint line"))?;
            // Cap before decoding: base64 is 4/3 of the bytes.
            if b64.len() > MAX_EVIDENCE_NOTE_SIZE.div_ceil(3) * 4 {
                return Err(EvidenceError::Malformed("checkpoint note too large"));
            }
            let note = decode_base64_strict(b64)
                .ok_or(EvidenceError::Malformed("checkpoint is not canonical base64"))?;
            let source =
                field(&mut lines, "source").ok_or(EvidenceError::Malformed("missing source line"))?;
            check_field(source, "bad source")?;
            Ok(EvidenceCheckpoint { note, source: source.to_owned() })
        };
        let checkpoints = [checkpoint()?, checkpoint()?];
        let prefix = match field(&mut lines, "prefix") {
            None => None,
            Some(p) => {
                let prefix = hash_field(p, "prefix is not a base64 hash")?;
                let mut proof = Vec::new();
                while let Some(h) = field(&mut lines, "proof") {
                    if proof.len() == MAX_CONSISTENCY_PROOF_LEN {
                        return Err(EvidenceError::Malformed("too many proof lines"));
                    }
                    proof.push(hash_field(h, "proof line is not a base64 hash")?);
                }
                Some(PrefixProof { prefix, proof })
            }
        };
        if lines.next().is_some() {
            return Err(EvidenceError::Malformed("unexpected line"));
        }
        Ok(Evidence {
            origin: origin.to_owned(),
            detected,
            reporter: reporter.to_owned(),
            checkpoints,
            prefix,
        })
    }

    /// The exact text. Fails rather than produce text [`Evidence::parse`]
    /// would reject.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EvidenceError> {
        check_field(&self.origin, "bad origin")?;
        check_field(&self.reporter, "bad reporter")?;
        let mut out = format!(
            "{EVIDENCE_HEADER}\norigin {}\ndetected {}\nreporter {}\n",
            self.origin, self.detected, self.reporter
        );
        for c in &self.checkpoints {
            if c.note.len() > MAX_EVIDENCE_NOTE_SIZE {
                return Err(EvidenceError::Malformed("checkpoint note too large"));
            }
            check_field(&c.source, "bad source")?;
            out.push_str(&format!("checkpoint {}\nsource {}\n", encode_base64(&c.note), c.source));
        }
        if let Some(p) = &self.prefix {
            if p.proof.len() > MAX_CONSISTENCY_PROOF_LEN {
                return Err(EvidenceError::Malformed("too many proof lines"));
            }
            out.push_str(&format!("prefix {}\n", p.prefix.to_base64()));
            for h in &p.proof {
                out.push_str(&format!("proof {}\n", h.to_base64()));
            }
        }
        if out.len() > MAX_EVIDENCE_SIZE {
            return Err(EvidenceError::TooLarge(out.len()));
        }
        Ok(out.into_bytes())
    }

    /// A stable identifier: lowercase hex SHA-256 of the encoded evidence.
    pub fn id(&self) -> Result<String, EvidenceError> {
        Ok(sha256(&self.to_bytes()?).to_hex())
    }

    /// Verifies the evidence against the log keys the caller trusts for
    /// `origin` (as for [`open_checkpoint_with`]: at least one signature per
    /// checkpoint from these keys must verify and none may fail). Succeeds
    /// only if the two checkpoints provably cannot come from one
    /// append-only log.
    pub fn verify(&self, log_keys: &[&dyn NoteVerifier]) -> Result<SplitView, EvidenceError> {
        let mut opened = Vec::with_capacity(2);
        for (index, c) in self.checkpoints.iter().enumerate() {
            if c.note.len() > MAX_EVIDENCE_NOTE_SIZE {
                return Err(EvidenceError::Malformed("checkpoint note too large"));
            }
            let cp = open_checkpoint_with(&c.note, log_keys)
                .map_err(|source| EvidenceError::Checkpoint { index, source })?
                .checkpoint;
            if cp.origin != self.origin {
                return Err(EvidenceError::OriginMismatch {
                    index,
                    found: cp.origin,
                    expected: self.origin.clone(),
                });
            }
            opened.push(cp);
        }
        let (b, a) = (opened.pop(), opened.pop());
        let (Some(a), Some(b)) = (a, b) else {
            return Err(EvidenceError::Malformed("evidence needs two checkpoints"));
        };
        let (smaller, larger) = if a.size <= b.size { (a, b) } else { (b, a) };
        if smaller.size == larger.size {
            // Same size: two signed roots for one tree size is the proof.
            if self.prefix.is_some() {
                return Err(EvidenceError::Malformed("prefix proof given for checkpoints of equal size"));
            }
            if smaller.root == larger.root {
                return Err(EvidenceError::NotSplit("same size and same root"));
            }
            return Ok(SplitView { smaller, larger, implied_root: None });
        }
        let p = self
            .prefix
            .as_ref()
            .ok_or(EvidenceError::Malformed("checkpoints of different sizes need a prefix proof"))?;
        // RFC 9162 2.1.4.2: a verifying proof shows `prefix` is the root of
        // the first `smaller.size` leaves of the tree signed in `larger`.
        verify_consistency(smaller.size, larger.size, &p.proof, &p.prefix, &larger.root)
            .map_err(EvidenceError::Proof)?;
        if p.prefix == smaller.root {
            return Err(EvidenceError::NotSplit("the smaller checkpoint is a prefix of the larger one"));
        }
        Ok(SplitView { smaller, larger, implied_root: Some(p.prefix) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_standards::checkpoint::sign_checkpoint;
    use custody_standards::cosignature::{CosignatureSigner, TimestampedCosigner};
    use custody_standards::hash::leaf_hash;
    use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
    use custody_standards::memory::MemoryHashStore;
    use custody_standards::note::{add_signatures, Note, NoteSigner};
    use custody_standards::proof::{consistency_proof, tree_hash};

    const ORIGIN: &str = "example.com/split";

    fn key() -> SignerKey {
        SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[7; 32]).unwrap()
    }

    fn tree(common: u64, extra: u64, tag: &[u8]) -> MemoryHashStore {
        let mut t = MemoryHashStore::new();
        for i in 0..common {
            t.append(leaf_hash(&i.to_be_bytes()));
        }
        for i in 0..extra {
            t.append(leaf_hash(&[tag, &i.to_be_bytes()[..]].concat()));
        }
        t
    }

    fn signed(t: &MemoryHashStore, key: &SignerKey) -> Vec<u8> {
        let cp = Checkpoint { origin: ORIGIN.into(), size: t.size(), root: t.root(), extensions: vec![] };
        sign_checkpoint(&cp, key).unwrap()
    }

    fn cosigned(note: Vec<u8>) -> Vec<u8> {
        let w = CosignatureSigner::from_seed("witness.example/w1", &[9; 32]).unwrap();
        let c: TimestampedCosigner<'_> = w.at(1_700_000_000).unwrap();
        add_signatures(Note::parse(&note).unwrap(), &[&c as &dyn NoteSigner]).unwrap().to_bytes().unwrap()
    }

    fn evidence(a: Vec<u8>, b: Vec<u8>, prefix: Option<PrefixProof>) -> Evidence {
        Evidence {
            origin: ORIGIN.into(),
            detected: 1_700_000_123,
            reporter: "witness.example/w1".into(),
            checkpoints: [
                EvidenceCheckpoint { note: a, source: "add-checkpoint".into() },
                EvidenceCheckpoint { note: b, source: "peer witness.example/w2 http://127.0.0.1:1".into() },
            ],
            prefix,
        }
    }

    /// Builds the prefix proof the way a witness does: from the larger tree.
    fn prefix_of(larger: &MemoryHashStore, m: u64) -> PrefixProof {
        PrefixProof {
            prefix: tree_hash(m, larger).unwrap(),
            proof: consistency_proof(m, larger.size(), larger).unwrap(),
        }
    }

    #[test]
    fn same_size_different_root_verifies_and_round_trips() {
        let k = key();
        let (a, b) = (tree(5, 3, b"a"), tree(5, 3, b"b"));
        let ev = evidence(signed(&a, &k), cosigned(signed(&b, &k)), None);
        let bytes = ev.to_bytes().unwrap();
        assert!(bytes.starts_with(format!("{EVIDENCE_HEADER}\norigin {ORIGIN}\n").as_bytes()));
        let parsed = Evidence::parse(&bytes).unwrap();
        assert_eq!(parsed, ev);
        assert_eq!(parsed.to_bytes().unwrap(), bytes);
        assert_eq!(parsed.id().unwrap().len(), 64);
        let v = k.verifier();
        let split = parsed.verify(&[&v as &dyn NoteVerifier]).unwrap();
        assert_eq!((split.smaller.size, split.larger.size), (8, 8));
        assert_ne!(split.smaller.root, split.larger.root);
    }

    #[test]
    fn different_sizes_need_a_proof_from_the_larger_tree() {
        let k = key();
        let v = k.verifier();
        let keys = [&v as &dyn NoteVerifier];
        let (a, b) = (tree(5, 3, b"a"), tree(5, 7, b"b"));
        // Either order of the checkpoints in the text verifies.
        let ev = evidence(signed(&a, &k), signed(&b, &k), Some(prefix_of(&b, 8)));
        let split = ev.verify(&keys).unwrap();
        assert_eq!((split.smaller.size, split.larger.size), (8, 12));
        assert_eq!(split.implied_root, Some(tree_hash(8, &b).unwrap()));
        let ev = evidence(signed(&b, &k), signed(&a, &k), Some(prefix_of(&b, 8)));
        ev.verify(&keys).unwrap();
        assert_eq!(Evidence::parse(&ev.to_bytes().unwrap()).unwrap(), ev);

        // Missing proof, a forged prefix, a proof from the wrong tree.
        let no_proof = evidence(signed(&a, &k), signed(&b, &k), None);
        assert!(matches!(no_proof.verify(&keys), Err(EvidenceError::Malformed(_))));
        let mut forged = prefix_of(&b, 8);
        forged.prefix = Hash([1; 32]);
        let ev = evidence(signed(&a, &k), signed(&b, &k), Some(forged));
        assert!(matches!(ev.verify(&keys), Err(EvidenceError::Proof(_))));
        let wrong_tree = evidence(signed(&a, &k), signed(&b, &k), Some(prefix_of(&tree(5, 7, b"c"), 8)));
        assert!(matches!(wrong_tree.verify(&keys), Err(EvidenceError::Proof(_))));
    }

    #[test]
    fn consistent_checkpoints_are_not_evidence() {
        let k = key();
        let v = k.verifier();
        let keys = [&v as &dyn NoteVerifier];
        let honest = tree(5, 7, b"a");
        let small = tree(5, 3, b"a");
        let ev = evidence(signed(&small, &k), signed(&honest, &k), Some(prefix_of(&honest, 8)));
        assert!(matches!(ev.verify(&keys), Err(EvidenceError::NotSplit(_))));
        let same = evidence(signed(&small, &k), cosigned(signed(&small, &k)), None);
        assert!(matches!(same.verify(&keys), Err(EvidenceError::NotSplit(_))));
        let extra = evidence(signed(&small, &k), signed(&tree(5, 3, b"b"), &k), Some(prefix_of(&small, 8)));
        assert!(matches!(extra.verify(&keys), Err(EvidenceError::Malformed(_))));
    }

    #[test]
    fn signatures_and_origins_are_checked() {
        let k = key();
        let (a, b) = (tree(5, 3, b"a"), tree(5, 3, b"b"));
        let other = SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[8; 32]).unwrap();
        let v = k.verifier();
        let keys = [&v as &dyn NoteVerifier];
        let ev = evidence(signed(&a, &k), signed(&b, &other), None);
        assert!(matches!(ev.verify(&keys), Err(EvidenceError::Checkpoint { index: 1, .. })));
        let mut ev = evidence(signed(&a, &k), signed(&b, &k), None);
        ev.origin = "example.com/other".into();
        assert!(matches!(ev.verify(&keys), Err(EvidenceError::OriginMismatch { index: 0, .. })));
    }

    proptest::proptest! {
        /// Any byte flip of valid evidence is either rejected or parses to
        /// text that re-encodes to exactly the same bytes (one spelling).
        #[test]
        fn mutations_never_panic_and_accepted_text_is_canonical(pos in 0usize..4096, bit in 0u8..8) {
            let k = key();
            let (a, b) = (tree(5, 3, b"a"), tree(5, 7, b"b"));
            let good = evidence(signed(&a, &k), signed(&b, &k), Some(prefix_of(&b, 8))).to_bytes().unwrap();
            let mut bad = good.clone();
            let i = pos % bad.len();
            bad[i] ^= 1 << bit;
            if let Ok(ev) = Evidence::parse(&bad) {
                proptest::prop_assert_eq!(ev.to_bytes().unwrap(), bad);
                let v = k.verifier();
                let _ = ev.verify(&[&v as &dyn NoteVerifier]);
            }
        }
    }

    #[test]
    fn parse_is_strict_and_bounded() {
        let k = key();
        let ev = evidence(signed(&tree(1, 0, b""), &k), signed(&tree(2, 0, b""), &k), None);
        let good = String::from_utf8(ev.to_bytes().unwrap()).unwrap();
        let bad = [
            good.trim_end().to_owned(),
            good.replacen("v1", "v2", 1),
            good.replacen("detected 1700000123", "detected 01700000123", 1),
            good.replacen("source add-checkpoint\n", "", 1),
            format!("{good}extra line\n"),
            format!("{good}proof {}\n", Hash([0; 32]).to_base64()),
            good.replacen("checkpoint ", "checkpoint !", 1),
            good.replacen("reporter witness.example/w1", "reporter a\tb", 1),
        ];
        for b in bad {
            assert!(Evidence::parse(b.as_bytes()).is_err(), "{b}");
        }
        let huge = vec![b'a'; MAX_EVIDENCE_SIZE + 1];
        assert_eq!(Evidence::parse(&huge), Err(EvidenceError::TooLarge(huge.len())));
        let many = format!(
            "{good}prefix {}\n{}",
            Hash([0; 32]).to_base64(),
            format!("proof {}\n", Hash([0; 32]).to_base64()).repeat(66)
        );
        assert_eq!(Evidence::parse(many.as_bytes()), Err(EvidenceError::Malformed("too many proof lines")));
    }
}
