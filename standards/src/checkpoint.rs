//! [C2SP tlog-checkpoint](https://c2sp.org/tlog-checkpoint): the note text a
//! log signs for each tree head ([Note text](https://c2sp.org/tlog-checkpoint#note-text)),
//! inside a [signed note](https://c2sp.org/signed-note#format) whose key
//! name matches the origin ([Signatures](https://c2sp.org/tlog-checkpoint#signatures)).
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
    /// Parses a checkpoint note text (including its final newline). The
    /// text is trusted only once its note is opened ([`open_checkpoint`]).
    ///
    /// Spec ([tlog-checkpoint, Note text](https://c2sp.org/tlog-checkpoint#note-text)):
    /// "The note text is a sequence of at least three non-empty lines,
    /// separated by newlines": origin, tree size "with no leading zeroes",
    /// root hash in base64, then extension lines that "if any, MUST be
    /// non-empty".
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::checkpoint::{Checkpoint, CheckpointError};
    ///
    /// // The checkpoint text of the tlog-checkpoint spec example.
    /// let text = "example.com/behind-the-sofa\n\
    ///             20852163\n\
    ///             CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    /// let cp = Checkpoint::parse(text)?;
    /// assert_eq!(cp.origin, "example.com/behind-the-sofa");
    /// assert_eq!(cp.size, 20852163);
    /// assert_eq!(cp.root.to_base64(), "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=");
    /// assert_eq!(cp.to_text()?, text);
    ///
    /// // The same tree head with a leading zero on the size: refused.
    /// assert_eq!(
    ///     Checkpoint::parse(&text.replace("20852163", "020852163")),
    ///     Err(CheckpointError::Malformed("tree size is not canonical decimal u64"))
    /// );
    /// # Ok::<(), CheckpointError>(())
    /// ```
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
///
/// Spec ([tlog-checkpoint, Signatures](https://c2sp.org/tlog-checkpoint#signatures)):
/// "The log's key name in its signature line SHOULD match the origin line",
/// and "According to the note specification, clients MUST ignore unknown
/// signatures."
///
/// # Examples
///
/// ```rust
/// use custody_standards::checkpoint::{open_checkpoint, sign_checkpoint, Checkpoint, CheckpointError};
/// use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
/// use custody_standards::{leaf_hash, MemoryHashStore};
///
/// // A log with a key from a fixed seed signs a real checkpoint of 3 entries.
/// let log_key = SignerKey::from_seed("log.example/a", SIG_TYPE_ED25519, &[1; 32])?;
/// let mut tree = MemoryHashStore::new();
/// for entry in [&b"one"[..], b"two", b"three"] {
///     tree.append(leaf_hash(entry));
/// }
/// let cp = Checkpoint { origin: "log.example/a".into(), size: 3, root: tree.root(), extensions: vec![] };
/// let signed = sign_checkpoint(&cp, &log_key)?;
///
/// let opened = open_checkpoint(&signed, &log_key.verifier())?;
/// assert_eq!(opened.checkpoint, cp);
///
/// // The same bytes opened with another key of the same name: its key ID
/// // differs, so the log's signature is unknown to it and nothing verifies.
/// let impostor = SignerKey::from_seed("log.example/a", SIG_TYPE_ED25519, &[2; 32])?;
/// assert!(open_checkpoint(&signed, &impostor.verifier()).is_err());
/// # Ok::<(), CheckpointError>(())
/// ```
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
///
/// Spec: the key name only "SHOULD match the origin line"
/// ([tlog-checkpoint, Signatures](https://c2sp.org/tlog-checkpoint#signatures));
/// which signatures count is [signed-note, Signatures](https://c2sp.org/signed-note#signatures).
///
/// # Examples
///
/// ```rust
/// use custody_standards::checkpoint::{open_checkpoint, open_checkpoint_with, CheckpointError};
/// use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
/// use custody_standards::note::{sign_note, NoteSigner, NoteVerifier};
///
/// // A third-party log whose key is not named after its origin.
/// let key = SignerKey::from_seed("sofa-signing-key", SIG_TYPE_ED25519, &[3; 32])?;
/// let text = "example.com/behind-the-sofa\n\
///             20852163\n\
///             CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
/// let signed = sign_note(text, &[&key as &dyn NoteSigner])?;
///
/// let opened = open_checkpoint_with(&signed, &[&key.verifier() as &dyn NoteVerifier])?;
/// assert_eq!(opened.checkpoint.size, 20852163);
/// // `open_checkpoint` holds our own logs to the name rule and refuses it.
/// assert!(matches!(
///     open_checkpoint(&signed, &key.verifier()),
///     Err(CheckpointError::OriginMismatch { .. })
/// ));
///
/// // A validly signed note that is not a checkpoint is refused.
/// let not_a_checkpoint = sign_note("hello\n", &[&key as &dyn NoteSigner])?;
/// assert_eq!(
///     open_checkpoint_with(&not_a_checkpoint, &[&key.verifier() as &dyn NoteVerifier]),
///     Err(CheckpointError::Malformed("fewer than three lines"))
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_checkpoint_with(
    msg: &[u8],
    verifiers: &[&dyn NoteVerifier],
) -> Result<OpenedCheckpoint, CheckpointError> {
    let note = open_note(msg, verifiers)?;
    let checkpoint = Checkpoint::parse(&note.note.text)?;
    Ok(OpenedCheckpoint { checkpoint, note })
}
