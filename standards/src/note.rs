//! [C2SP signed-note](https://c2sp.org/signed-note): text signed by one or
//! more keys.
//!
//! ```text
//! <text, ending in newline>
//! <blank line>
//! — <key name> <base64(key ID || signature)>
//! ...
//! ```
//!
//! Parsing is strict and bounded: the size and signature-count caps are
//! checked before any base64 is decoded, base64 must be canonical (padding
//! required, zero trailing bits; Go's decoder tolerates non-zero trailing
//! bits, we do not, so every note has exactly one accepted spelling), and
//! every rule of the spec's [Format](https://c2sp.org/signed-note#format)
//! section is enforced. Which signatures count is the
//! [Signatures](https://c2sp.org/signed-note#signatures) section, applied by
//! [`open_note`].

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::keys::{is_valid_key_name, SignerKey, VerifierKey, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519};

/// Largest signed note accepted (1 MiB). signed-note: verifiers SHOULD
/// limit the number of signatures "or, equivalently, the overall size";
/// 1 MiB holds [`MAX_SIGNATURES`] post-quantum signatures (~6.6 KB of base64
/// each) with room to spare, while bounding the work an attacker can cause.
pub const MAX_NOTE_SIZE: usize = 1 << 20;
/// Most signature lines accepted. signed-note: "MUST accept at least up to
/// 16 signatures"; 100 is Go's limit, so we accept whatever Go accepts.
pub const MAX_SIGNATURES: usize = 100;

/// The signature line prefix: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note could not be parsed, formatted, signed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Larger than [`MAX_NOTE_SIZE`].
    #[error("note is {size} bytes, the limit is {MAX_NOTE_SIZE}")]
    TooLarge {
        /// Size found.
        size: usize,
    },
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// Violates the signed-note format.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// Well-formed, but no signature from a known key (signed-note: "If no
    /// signature from a known key verifies successfully, clients MUST reject
    /// the note").
    #[error("note has no verifiable signatures")]
    UnverifiedNote,
    /// A signature from a known key failed (signed-note: clients SHOULD
    /// reject the whole note; we do).
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name of the failing line.
        name: String,
        /// Key ID of the failing line.
        key_id: u32,
    },
    /// Two configured verifiers share name and key ID, so a signature line
    /// cannot be attributed (a configuration error).
    #[error("ambiguous key {name}+{key_id:08x}")]
    AmbiguousVerifier {
        /// Shared name.
        name: String,
        /// Shared key ID.
        key_id: u32,
    },
    /// A signer could not sign (for example a cosignature key used without
    /// a timestamp).
    #[error("signer {name} cannot sign: {reason}")]
    Signer {
        /// Signer's key name.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

/// One signature line, verified or not.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID (first four bytes of the decoded signature, big-endian).
    pub key_id: u32,
    /// The algorithm's signature bytes (after the key ID).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Parses one line *without* its trailing newline:
    /// `— <name> <base64(key ID || signature)>`.
    ///
    /// Spec ([signed-note, Format](https://c2sp.org/signed-note#format)):
    /// "em dash (U+2014), space (U+0020), key name, space, base64-encoded
    /// signature", where "Signatures are the base64 encoding of 4+n bytes.
    /// The first four bytes in the signature are the uint32 key ID stored in
    /// big-endian order."
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::note::{NoteError, NoteSignature};
    ///
    /// // The signature line of the golang.org/x/mod/sumdb/note example.
    /// let line = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";
    /// let sig = NoteSignature::from_line(line)?;
    /// assert_eq!((sig.name.as_str(), sig.key_id), ("PeterNeumann", 0xc74f20a3));
    /// assert_eq!(sig.signature.len(), 64);
    ///
    /// // A hyphen-minus is not the em dash the format requires.
    /// assert!(NoteSignature::from_line(&line.replace('\u{2014}', "-")).is_err());
    /// # Ok::<(), NoteError>(())
    /// ```
    pub fn from_line(line: &str) -> Result<Self, NoteError> {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(NoteError::Malformed("signature line must start with '— '"))?;
        let (name, b64) =
            rest.split_once(' ').ok_or(NoteError::Malformed("signature line has no space after the name"))?;
        if !is_valid_key_name(name) {
            return Err(NoteError::Malformed("invalid key name in signature line"));
        }
        if line.bytes().any(|b| b < 0x20) {
            return Err(NoteError::Malformed("control character in signature line"));
        }
        let raw =
            STANDARD.decode(b64).map_err(|_| NoteError::Malformed("signature is not canonical base64"))?;
        // At least one byte of signature after the 4-byte key ID.
        if raw.len() < 5 {
            return Err(NoteError::Malformed("signature shorter than key ID plus one byte"));
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            signature: raw[4..].to_vec(),
        })
    }

    /// The exact line, including the trailing newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSignature({}+{:08x}, {} bytes)", self.name, self.key_id, self.signature.len())
    }
}

/// A parsed, *unverified* note. Its text MUST be ignored until
/// [`open_note`] has verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    /// Signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

fn check_chars(s: &str) -> Result<(), NoteError> {
    // signed-note: "MUST NOT contain any ASCII control characters (those
    // below U+0020) other than newline."
    if s.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::Malformed("control character other than newline"));
    }
    Ok(())
}

impl Note {
    /// Parses a signed note, enforcing every format rule and the caps. The
    /// result is *unverified*: use [`open_note`] before trusting the text.
    ///
    /// Spec ([signed-note, Format](https://c2sp.org/signed-note#format)): "A
    /// signed note consists of a text ending in newline (U+000A), followed by
    /// a blank line (only a newline), followed by one or more signature
    /// lines", and "Signed notes MUST be valid UTF-8 and MUST NOT contain any
    /// ASCII control characters (those below U+0020) other than newline."
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::note::{Note, NoteError};
    ///
    /// // The signed note of the golang.org/x/mod/sumdb/note documentation.
    /// let msg = "If you think cryptography is the answer to your problem,\n\
    ///            then you don't know what your problem is.\n\
    ///            \n\
    ///            \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    /// let note = Note::parse(msg.as_bytes())?;
    /// assert!(note.text.ends_with("what your problem is.\n"));
    /// assert_eq!(note.signatures.len(), 1);
    /// assert_eq!(note.signatures[0].name, "PeterNeumann");
    /// assert_eq!(note.to_bytes()?, msg.as_bytes());
    ///
    /// // The same note with Windows line endings: a control character.
    /// assert_eq!(
    ///     Note::parse(msg.replace('\n', "\r\n").as_bytes()),
    ///     Err(NoteError::Malformed("control character other than newline"))
    /// );
    /// # Ok::<(), NoteError>(())
    /// ```
    pub fn parse(msg: &[u8]) -> Result<Self, NoteError> {
        if msg.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge { size: msg.len() });
        }
        // "Signed notes MUST be valid UTF-8".
        let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed("not valid UTF-8"))?;
        check_chars(msg)?;
        // "the text is separated from the signatures by the last empty line".
        let split = msg.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("last signature line does not end in newline"));
        }
        // Cap the count before decoding anything.
        if sigs.bytes().filter(|&b| b == b'\n').count() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let signatures = sigs[..sigs.len() - 1]
            .split('\n')
            .map(NoteSignature::from_line)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// The exact bytes of the signed note. Fails rather than produce
    /// something [`Note::parse`] would reject.
    pub fn to_bytes(&self) -> Result<Vec<u8>, NoteError> {
        check_text(&self.text)?;
        if self.signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let mut out = String::with_capacity(self.text.len() + 1 + 128 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            if !is_valid_key_name(&s.name) {
                return Err(NoteError::Malformed("invalid key name in signature line"));
            }
            if s.signature.is_empty() {
                return Err(NoteError::Malformed("signature shorter than key ID plus one byte"));
            }
            out.push_str(&s.to_line());
        }
        if out.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge { size: out.len() });
        }
        Ok(out.into_bytes())
    }
}

/// Checks a note text is signable: ends in newline, no control characters.
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text does not end in newline"));
    }
    check_chars(text)
}

/// A key that can check note signatures. Implementations decide what
/// message their algorithm actually signs (plain text for `0x01`,
/// cosignature/v1 message for `0x04`).
pub trait NoteVerifier {
    /// Key name, matched exactly against signature lines.
    fn name(&self) -> &str;
    /// Key ID, matched together with the name.
    fn key_id(&self) -> u32;
    /// Whether `sig` (the bytes after the key ID) is valid over note `text`.
    fn verify(&self, text: &[u8], sig: &[u8]) -> bool;
    /// The timestamp a signature carries, for timestamped types
    /// (cosignature/v1); `None` for plain signatures.
    fn timestamp(&self, _sig: &[u8]) -> Option<u64> {
        None
    }
}

/// A key that can sign notes.
pub trait NoteSigner {
    /// Key name written on the signature line.
    fn name(&self) -> &str;
    /// Key ID written in the signature.
    fn key_id(&self) -> u32;
    /// Signature bytes over `text` (without the key ID). Fallible because a
    /// key may be unusable without extra input (a cosigner needs a time).
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError>;
}

impl NoteVerifier for VerifierKey {
    fn name(&self) -> &str {
        VerifierKey::name(self)
    }
    fn key_id(&self) -> u32 {
        VerifierKey::key_id(self)
    }
    fn verify(&self, text: &[u8], sig: &[u8]) -> bool {
        match self.sig_type() {
            SIG_TYPE_ED25519 => self.verify_ed25519(text, sig),
            SIG_TYPE_COSIGNATURE_V1 => crate::cosignature::verify_cosignature(self, text, sig),
            _ => false,
        }
    }
    fn timestamp(&self, sig: &[u8]) -> Option<u64> {
        match self.sig_type() {
            SIG_TYPE_COSIGNATURE_V1 => crate::cosignature::cosignature_timestamp(sig),
            _ => None,
        }
    }
}

impl NoteSigner for SignerKey {
    fn name(&self) -> &str {
        SignerKey::name(self)
    }
    fn key_id(&self) -> u32 {
        SignerKey::key_id(self)
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        match self.sig_type() {
            SIG_TYPE_ED25519 => Ok(self.sign_ed25519(text).to_vec()),
            _ => Err(NoteError::Signer {
                name: self.name().to_owned(),
                reason: "only type 0x01 keys sign plain notes; use cosignature::CosignatureSigner",
            }),
        }
    }
}

/// Signs `text` with each signer, in order, and returns the note bytes.
pub fn sign_note(text: &str, signers: &[&dyn NoteSigner]) -> Result<Vec<u8>, NoteError> {
    let note = Note { text: text.to_owned(), signatures: Vec::new() };
    add_signatures(note, signers)?.to_bytes()
}

/// Appends signatures by `signers` to an existing note. Existing lines with
/// the same name and key ID as a new signer are dropped first (as Go's
/// `note.Sign` does), so re-signing never duplicates a key.
pub fn add_signatures(mut note: Note, signers: &[&dyn NoteSigner]) -> Result<Note, NoteError> {
    check_text(&note.text)?;
    let mut fresh = Vec::with_capacity(signers.len());
    for s in signers {
        if !is_valid_key_name(s.name()) {
            return Err(NoteError::Signer { name: s.name().to_owned(), reason: "invalid key name" });
        }
        let signature = s.sign(note.text.as_bytes())?;
        fresh.push(NoteSignature { name: s.name().to_owned(), key_id: s.key_id(), signature });
    }
    note.signatures.retain(|old| !fresh.iter().any(|n| n.name == old.name && n.key_id == old.key_id));
    note.signatures.extend(fresh);
    Ok(note)
}

/// One signature that a known key verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// Index of the verifier in the slice given to [`open_note`].
    pub verifier: usize,
    /// Key name.
    pub name: String,
    /// Key ID.
    pub key_id: u32,
    /// Cosignature timestamp, for timestamped types.
    pub timestamp: Option<u64>,
}

/// A note whose text may now be trusted, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The parsed note, all signature lines included.
    pub note: Note,
    /// One entry per known key that verified (first line per key), in line
    /// order.
    pub verified: Vec<VerifiedSignature>,
    /// Lines from unknown keys, ignored as the spec requires.
    pub unknown: Vec<NoteSignature>,
}

/// Parses and verifies a signed note against the known keys.
///
/// signed-note "Signatures": a line is from a known key only if name AND key
/// ID both match; other lines are ignored. Every line from a known key is
/// verified (the spec's MUST; Go skips repeats of an already-verified key,
/// we do not), one failure rejects the note, and at least one must verify.
///
/// Spec ([signed-note, Signatures](https://c2sp.org/signed-note#signatures)):
/// "Verifiers MUST ignore signatures from unknown keys, even if they share a
/// name or ID (but not both) with a known key. If the key name and ID match
/// a known key, verifiers MUST verify the signature. If a signature from a
/// known key fails to verify, clients SHOULD reject the whole note. If no
/// signature from a known key verifies successfully, clients MUST reject the
/// note."
///
/// # Examples
///
/// ```rust
/// use custody_standards::keys::{SignerKey, VerifierKey, SIG_TYPE_ED25519};
/// use custody_standards::note::{open_note, NoteError, NoteVerifier};
///
/// let msg = "If you think cryptography is the answer to your problem,\n\
///            then you don't know what your problem is.\n\
///            \n\
///            \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
/// let peter = VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")?;
/// let opened = open_note(msg.as_bytes(), &[&peter as &dyn NoteVerifier])?;
/// assert_eq!(opened.verified[0].name, "PeterNeumann");
///
/// // One changed byte of text: the known key's signature fails, and the
/// // whole note is rejected.
/// let tampered = msg.replace("problem,", "problem;");
/// assert_eq!(
///     open_note(tampered.as_bytes(), &[&peter as &dyn NoteVerifier]).unwrap_err(),
///     NoteError::InvalidSignature { name: "PeterNeumann".into(), key_id: 0xc74f20a3 }
/// );
/// // A verifier for some other key: nothing verifies, so nothing is trusted.
/// let other = SignerKey::from_seed("EnochRoot", SIG_TYPE_ED25519, &[7; 32])?.verifier();
/// assert_eq!(
///     open_note(msg.as_bytes(), &[&other as &dyn NoteVerifier]).unwrap_err(),
///     NoteError::UnverifiedNote
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_note(msg: &[u8], verifiers: &[&dyn NoteVerifier]) -> Result<VerifiedNote, NoteError> {
    let note = Note::parse(msg)?;
    let mut verified: Vec<VerifiedSignature> = Vec::new();
    let mut unknown = Vec::new();
    for sig in &note.signatures {
        let mut matches =
            verifiers.iter().enumerate().filter(|(_, v)| v.name() == sig.name && v.key_id() == sig.key_id);
        let Some((index, v)) = matches.next() else {
            unknown.push(sig.clone());
            continue;
        };
        if matches.next().is_some() {
            return Err(NoteError::AmbiguousVerifier { name: sig.name.clone(), key_id: sig.key_id });
        }
        if !v.verify(note.text.as_bytes(), &sig.signature) {
            return Err(NoteError::InvalidSignature { name: sig.name.clone(), key_id: sig.key_id });
        }
        if !verified.iter().any(|x| x.verifier == index) {
            verified.push(VerifiedSignature {
                verifier: index,
                name: sig.name.clone(),
                key_id: sig.key_id,
                timestamp: v.timestamp(&sig.signature),
            });
        }
    }
    if verified.is_empty() {
        return Err(NoteError::UnverifiedNote);
    }
    Ok(VerifiedNote { note, verified, unknown })
}
