//! C2SP tlog-checkpoint: the note text a log signs for each tree head.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! [<extension line>...]
//! ```
//!
//! Parsing accepts exactly one spelling of each checkpoint: two different
//! texts must never describe the same tree head, or a log could sign
//! look-alike variants that clients compare as different.

use crate::encoding::parse_decimal_u64;
use crate::hash::Hash;
use crate::keys::{KeyError, SignerKey, VerifierKey, SIG_TYPE_ED25519};
use crate::note::{
    check_text, open_note, sign_note, NoteError, NoteSigner, NoteVerifier, VerifiedNote, MAX_NOTE_SIZE,
};

/// Why a checkpoint could not be parsed, formatted, signed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The text violates tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The signed note around it is bad or unverified.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The key is unusable for this role.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The log key's name is not the checkpoint origin.
    #[error("checkpoint origin {origin:?} does not match log key name {key_name:?}")]
    OriginMismatch {
        /// Origin line.
        origin: String,
        /// Log key name.
        key_name: String,
    },
}

/// A parsed checkpoint (tree head plus optional extension lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity (first line).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash at `size`.
    pub root: Hash,
    /// Opaque extension lines (without newlines); NOT RECOMMENDED by the spec.
    pub extensions: Vec<String>,
}

fn check_line(line: &str, what: &'static str) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(CheckpointError::Malformed(what));
    }
    if line.bytes().any(|b| b < 0x20) {
        return Err(CheckpointError::Malformed("control character in a line"));
    }
    Ok(())
}

impl Checkpoint {
    /// Parses a checkpoint note text (including its final newline).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        if text.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge { size: text.len() }.into());
        }
        // "a sequence of at least three non-empty lines, separated by
        // newlines"; as note text it also ends in a newline.
        let body =
            text.strip_suffix('\n').ok_or(CheckpointError::Malformed("text does not end in newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(CheckpointError::Malformed("fewer than three lines"));
        };
        // 1. "The origin MUST be non-empty"; its URL shape is only a SHOULD
        //    and "clients MUST NOT assume" it, so nothing more is checked.
        check_line(origin, "empty origin line")?;
        // 2. Tree size.
        let size = parse_decimal_u64(size)
            .ok_or(CheckpointError::Malformed("tree size is not canonical decimal u64"))?;
        // 3. Root hash: canonical standard base64 of exactly 32 bytes.
        let root = Hash::from_base64(root)
            .map_err(|_| CheckpointError::Malformed("root hash is not base64 of 32 bytes"))?;
        // 4. "Extension lines, if any, MUST be non-empty."
        let extensions = lines
            .map(|l| check_line(l, "empty extension line").map(|()| l.to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint { origin: origin.to_owned(), size, root, extensions })
    }

    /// The exact note text. Fails on fields that could not round-trip
    /// (empty or multi-line origin / extensions).
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        check_line(&self.origin, "empty origin line")?;
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_base64());
        for e in &self.extensions {
            check_line(e, "empty extension line")?;
            s.push_str(e);
            s.push('\n');
        }
        check_text(&s)?;
        Ok(s)
    }
}

/// A checkpoint whose signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedCheckpoint {
    /// The parsed checkpoint.
    pub checkpoint: Checkpoint,
    /// Verification evidence (which keys signed, cosignature timestamps).
    pub note: VerifiedNote,
}

/// Signs a checkpoint as a Custody log. The key must be type `0x01` and named
/// after the origin: tlog-checkpoint says the key name SHOULD match the
/// origin line, and for our own logs we make it a requirement so clients
/// can find the key from the checkpoint alone.
pub fn sign_checkpoint(checkpoint: &Checkpoint, log_key: &SignerKey) -> Result<Vec<u8>, CheckpointError> {
    log_key.verifier().require_type(SIG_TYPE_ED25519)?;
    if log_key.name() != checkpoint.origin {
        return Err(CheckpointError::OriginMismatch {
            origin: checkpoint.origin.clone(),
            key_name: log_key.name().to_owned(),
        });
    }
    Ok(sign_note(&checkpoint.to_text()?, &[log_key as &dyn NoteSigner])?)
}

/// Opens a checkpoint signed by `log_key`, requiring the key name to equal
/// the origin (our stricter reading of the spec's SHOULD; see
/// [`sign_checkpoint`]). Other signature lines (e.g. cosignatures) are
/// ignored unless their key is the log key.
pub fn open_checkpoint(msg: &[u8], log_key: &VerifierKey) -> Result<OpenedCheckpoint, CheckpointError> {
    log_key.require_type(SIG_TYPE_ED25519)?;
    let opened = open_checkpoint_with(msg, &[log_key as &dyn NoteVerifier])?;
    if opened.checkpoint.origin != log_key.name() {
        return Err(CheckpointError::OriginMismatch {
            origin: opened.checkpoint.origin,
            key_name: log_key.name().to_owned(),
        });
    }
    Ok(opened)
}

/// Opens a checkpoint with any verifiers and no origin/key-name rule, for
/// third-party logs that do not follow the SHOULD. At least one verifier
/// must have verified (signed-note rules).
pub fn open_checkpoint_with(
    msg: &[u8],
    verifiers: &[&dyn NoteVerifier],
) -> Result<OpenedCheckpoint, CheckpointError> {
    let note = open_note(msg, verifiers)?;
    let checkpoint = Checkpoint::parse(&note.note.text)?;
    Ok(OpenedCheckpoint { checkpoint, note })
}
