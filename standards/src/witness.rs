//! Request and response bodies of the C2SP tlog-witness
//! [`add-checkpoint`](https://c2sp.org/tlog-witness#add-checkpoint) call,
//! shared by the witness (which parses requests) and the log (which builds
//! them and reads the replies).
//!
//! Only framing lives here; verifying the checkpoint signature, the old size
//! and the consistency proof is the witness's job with [`crate::note`] and
//! [`crate::verify`].

use crate::encoding::parse_decimal_u64;
use crate::hash::{Hash, HASH_SIZE};

/// "The client MUST NOT send more than 63 consistency proof lines."
pub const MAX_PROOF_LINES: usize = 63;

/// Largest checkpoint note accepted inside a request. Checkpoints are three
/// short lines plus signatures; 64 KiB leaves room for many post-quantum
/// signatures while bounding what a witness buffers per request.
pub const MAX_CHECKPOINT_SIZE: usize = 64 * 1024;

/// Largest request body: the old-size line, 63 proof lines, the blank line
/// and the checkpoint. Callers cap the HTTP body at this before parsing.
pub const MAX_REQUEST_SIZE: usize = 32 + MAX_PROOF_LINES * 45 + 1 + MAX_CHECKPOINT_SIZE;

/// Content type of the 409 reply body carrying the witness's latest size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why an add-checkpoint body is malformed (the witness answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessBodyError {
    /// Body larger than [`MAX_REQUEST_SIZE`].
    #[error("request body of {0} bytes exceeds the {MAX_REQUEST_SIZE}-byte limit")]
    TooLarge(usize),
    /// First line is not `old <decimal>`.
    #[error("first line must be `old <size>` with a canonical decimal size")]
    OldSizeLine,
    /// A proof line is not canonical base64 of a 32-byte hash.
    #[error("consistency proof line {0} is not a base64 SHA-256 hash")]
    ProofLine(usize),
    /// More than 63 proof lines.
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    /// No blank line separating the proof from the checkpoint.
    #[error("missing the empty line before the checkpoint")]
    MissingSeparator,
    /// Nothing after the blank line.
    #[error("missing checkpoint")]
    MissingCheckpoint,
    /// Not UTF-8 where text is required.
    #[error("body is not valid UTF-8")]
    Utf8,
    /// A 409 size body that is not `<decimal>\n`.
    #[error("size body must be a canonical decimal followed by a newline")]
    SizeBody,
    /// A 200 reply line that is not a note signature line.
    #[error("cosignature response line {0} is not a `— ` signature line ending in a newline")]
    ResponseLine(usize),
}

/// A parsed `POST /add-checkpoint` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    /// Size of the checkpoint the client believes the witness last cosigned.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the new checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim (opened later with the log keys).
    pub checkpoint: Vec<u8>,
}

impl AddCheckpointRequest {
    /// Parses a request body.
    ///
    /// Spec ([tlog-witness, add-checkpoint](https://c2sp.org/tlog-witness#add-checkpoint)):
    /// "The request body MUST be a sequence of an old size line, zero or
    /// more consistency proof lines, and an empty line, followed by a
    /// checkpoint. Each line MUST terminate in a newline character."
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::witness::{AddCheckpointRequest, WitnessBodyError};
    ///
    /// // The example request body of the tlog-witness spec.
    /// let body = "old 20852014\n\
    ///     PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
    ///     jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
    ///     5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
    ///     /6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
    ///     \n\
    ///     example.com/behind-the-sofa\n\
    ///     20852163\n\
    ///     CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
    ///     \n\
    ///     \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    /// let req = AddCheckpointRequest::parse(body.as_bytes())?;
    /// assert_eq!((req.old_size, req.proof.len()), (20852014, 4));
    /// assert!(req.checkpoint.starts_with(b"example.com/behind-the-sofa\n20852163\n"));
    /// assert_eq!(req.to_bytes(), body.as_bytes());
    ///
    /// // "old 020852014": a second spelling of the size, refused.
    /// assert_eq!(
    ///     AddCheckpointRequest::parse(body.replace("old 2", "old 02").as_bytes()),
    ///     Err(WitnessBodyError::OldSizeLine)
    /// );
    /// # Ok::<(), WitnessBodyError>(())
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, WitnessBodyError> {
        if body.len() > MAX_REQUEST_SIZE {
            return Err(WitnessBodyError::TooLarge(body.len()));
        }
        let mut rest = body;
        // "The old size line MUST consist of the string `old`, a single space
        // (0x20), and the tree size ... with no leading zeroes."
        let first = next_line(&mut rest).ok_or(WitnessBodyError::OldSizeLine)?;
        let old_size = std::str::from_utf8(first)
            .ok()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(parse_decimal_u64)
            .ok_or(WitnessBodyError::OldSizeLine)?;
        let mut proof = Vec::new();
        loop {
            let line = next_line(&mut rest).ok_or(WitnessBodyError::MissingSeparator)?;
            if line.is_empty() {
                break;
            }
            // "The client MUST NOT send more than 63 consistency proof lines."
            if proof.len() == MAX_PROOF_LINES {
                return Err(WitnessBodyError::TooManyProofLines);
            }
            let n = proof.len() + 1;
            let text = std::str::from_utf8(line).map_err(|_| WitnessBodyError::ProofLine(n))?;
            proof.push(Hash::from_base64(text).map_err(|_| WitnessBodyError::ProofLine(n))?);
        }
        if rest.is_empty() {
            return Err(WitnessBodyError::MissingCheckpoint);
        }
        if rest.len() > MAX_CHECKPOINT_SIZE {
            return Err(WitnessBodyError::TooLarge(body.len()));
        }
        Ok(AddCheckpointRequest { old_size, proof, checkpoint: rest.to_vec() })
    }

    /// Encodes the body exactly as the spec lays it out.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(16 + self.proof.len() * (HASH_SIZE * 4 / 3 + 5) + self.checkpoint.len());
        out.extend_from_slice(format!("old {}\n", self.old_size).as_bytes());
        for h in &self.proof {
            out.extend_from_slice(h.to_base64().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// Splits off the next `\n`-terminated line (without its newline).
fn next_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let pos = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..pos];
    *rest = &rest[pos + 1..];
    Some(line)
}

/// Body of a 409 reply: "the tree size of the latest cosigned checkpoint in
/// decimal, followed by a newline".
pub fn format_size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Strict inverse of [`format_size_body`].
///
/// Spec ([tlog-witness, add-checkpoint](https://c2sp.org/tlog-witness#add-checkpoint)):
/// on a 409 "The response body MUST consist of the tree size of the latest
/// cosigned checkpoint in decimal, followed by a newline (U+000A)."
///
/// # Examples
///
/// ```rust
/// use custody_standards::witness::{parse_size_body, WitnessBodyError};
///
/// assert_eq!(parse_size_body(b"20852014\n"), Ok(20852014));
///
/// // Without the newline the body is not what the spec requires.
/// assert_eq!(parse_size_body(b"20852014"), Err(WitnessBodyError::SizeBody));
/// ```
pub fn parse_size_body(body: &[u8]) -> Result<u64, WitnessBodyError> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(parse_decimal_u64)
        .ok_or(WitnessBodyError::SizeBody)
}

/// Checks a 200 reply: "a sequence of one or more note signature lines, each
/// starting with the `—` character (U+2014) and ending with a newline". The
/// lines are returned verbatim so the caller can append them to the
/// checkpoint and verify them as a note with the witness keys it trusts.
///
/// Spec: [tlog-witness, add-checkpoint](https://c2sp.org/tlog-witness#add-checkpoint);
/// the lines are [cosignatures](https://c2sp.org/tlog-cosignature#format).
///
/// # Examples
///
/// ```rust
/// use custody_standards::checkpoint::{open_checkpoint_with, sign_checkpoint, Checkpoint};
/// use custody_standards::cosignature::{cosign, CosignatureSigner};
/// use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
/// use custody_standards::note::NoteVerifier;
/// use custody_standards::witness::{split_cosignature_response, WitnessBodyError};
///
/// let cp = Checkpoint::parse("log.example/a\n1\nbjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n")?;
/// let w1 = CosignatureSigner::from_seed("witness.example/w1", &[11; 32])?;
/// let reply = cosign(&w1, &cp, 1_790_000_000)?;
/// let lines = split_cosignature_response(reply.as_bytes())?;
/// assert_eq!(lines, vec![reply.as_str()]);
///
/// // The log appends the lines to its signed note and opens it with the
/// // witness keys it trusts.
/// let log_key = SignerKey::from_seed("log.example/a", SIG_TYPE_ED25519, &[1; 32])?;
/// let mut note = sign_checkpoint(&cp, &log_key)?;
/// note.extend_from_slice(lines.concat().as_bytes());
/// let trusted = [&log_key.verifier() as &dyn NoteVerifier, &w1.verifier() as &dyn NoteVerifier];
/// assert_eq!(open_checkpoint_with(&note, &trusted)?.note.verified.len(), 2);
///
/// // A reply that is not signature lines (here: an error page) is refused.
/// assert_eq!(
///     split_cosignature_response(b"internal error\n"),
///     Err(WitnessBodyError::ResponseLine(1))
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn split_cosignature_response(body: &[u8]) -> Result<Vec<&str>, WitnessBodyError> {
    if body.len() > MAX_CHECKPOINT_SIZE {
        return Err(WitnessBodyError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| WitnessBodyError::Utf8)?;
    if text.is_empty() || !text.ends_with('\n') {
        return Err(WitnessBodyError::ResponseLine(1));
    }
    text.split_inclusive('\n')
        .enumerate()
        .map(|(i, line)| {
            if line.starts_with("\u{2014} ") && line.len() > 5 {
                Ok(line)
            } else {
                Err(WitnessBodyError::ResponseLine(i + 1))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example request body printed in the tlog-witness spec.
    const SPEC_EXAMPLE: &str = "old 20852014\n\
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
\n\
example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
\n\
\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
\u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";

    #[test]
    fn parses_spec_example_and_round_trips() {
        let req = AddCheckpointRequest::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(req.old_size, 20852014);
        assert_eq!(req.proof.len(), 4);
        assert_eq!(req.proof[3].to_base64(), "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=");
        assert!(req.checkpoint.starts_with(b"example.com/behind-the-sofa\n20852163\n"));
        assert_eq!(req.to_bytes(), SPEC_EXAMPLE.as_bytes());
    }

    #[test]
    fn empty_proof() {
        let body = b"old 0\n\norigin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\xe2\x80\x94 x y\n";
        let req = AddCheckpointRequest::parse(body).unwrap();
        assert_eq!((req.old_size, req.proof.len()), (0, 0));
        assert_eq!(req.to_bytes(), body);
    }

    #[test]
    fn rejects_malformed_bodies() {
        let h = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=";
        let cases: Vec<(String, WitnessBodyError)> = vec![
            ("".into(), WitnessBodyError::OldSizeLine),
            ("old 1".into(), WitnessBodyError::OldSizeLine),
            ("old 01\n\ncp\n".into(), WitnessBodyError::OldSizeLine),
            ("old  1\n\ncp\n".into(), WitnessBodyError::OldSizeLine),
            ("Old 1\n\ncp\n".into(), WitnessBodyError::OldSizeLine),
            ("old -1\n\ncp\n".into(), WitnessBodyError::OldSizeLine),
            ("old 1\r\n\ncp\n".into(), WitnessBodyError::OldSizeLine),
            (format!("old 1\n{h}\n"), WitnessBodyError::MissingSeparator),
            (format!("old 1\n{h}\n\n"), WitnessBodyError::MissingCheckpoint),
            (format!("old 1\n{}\n\ncp\n", &h[..43]), WitnessBodyError::ProofLine(1)),
            (format!("old 1\n{h}\n{h} \n\ncp\n"), WitnessBodyError::ProofLine(2)),
            (format!("old 1\n{}\n\ncp\n", h.replace('=', "")), WitnessBodyError::ProofLine(1)),
            (
                format!("old 1\n{}\n\ncp\n", format!("{h}\n").repeat(64).trim_end()),
                WitnessBodyError::TooManyProofLines,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(AddCheckpointRequest::parse(body.as_bytes()), Err(want), "{body:?}");
        }
        let ok63 = format!("old 1\n{}\ncp\n", format!("{h}\n").repeat(63));
        assert_eq!(AddCheckpointRequest::parse(ok63.as_bytes()).unwrap().proof.len(), 63);
        let huge = vec![b'a'; MAX_REQUEST_SIZE + 1];
        assert_eq!(AddCheckpointRequest::parse(&huge), Err(WitnessBodyError::TooLarge(huge.len())));
    }

    #[test]
    fn size_body() {
        assert_eq!(format_size_body(42), "42\n");
        assert_eq!(parse_size_body(b"42\n"), Ok(42));
        assert_eq!(parse_size_body(b"0\n"), Ok(0));
        for bad in [&b"42"[..], b"042\n", b"42\n\n", b" 42\n", b"\n", b""] {
            assert_eq!(parse_size_body(bad), Err(WitnessBodyError::SizeBody), "{bad:?}");
        }
    }

    #[test]
    fn cosignature_response_lines() {
        let body = "\u{2014} w1 AAAA\n\u{2014} w2 BBBB\n";
        assert_eq!(
            split_cosignature_response(body.as_bytes()).unwrap(),
            vec!["\u{2014} w1 AAAA\n", "\u{2014} w2 BBBB\n"]
        );
        assert_eq!(split_cosignature_response(b""), Err(WitnessBodyError::ResponseLine(1)));
        assert_eq!(
            split_cosignature_response("\u{2014} w1 AAAA".as_bytes()),
            Err(WitnessBodyError::ResponseLine(1))
        );
        assert_eq!(
            split_cosignature_response("\u{2014} w1 A\n- w2 B\n".as_bytes()),
            Err(WitnessBodyError::ResponseLine(2))
        );
        assert_eq!(split_cosignature_response(b"\xff\n"), Err(WitnessBodyError::Utf8));
    }
}
