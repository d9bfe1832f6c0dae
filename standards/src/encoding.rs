//! Canonical text encodings shared by every C2SP format in the crate.
//!
//! Base64 is "the standard Base 64 encoding specified in RFC 4648, Section 4"
//! ([RFC 4648 section 4](https://www.rfc-editor.org/rfc/rfc4648#section-4)),
//! as every C2SP spec's conventions say. Decimals are "ASCII decimal ...
//! with no leading zeroes" ([tlog-checkpoint, Note text](https://c2sp.org/tlog-checkpoint#note-text);
//! the same wording in [tlog-witness](https://c2sp.org/tlog-witness#add-checkpoint),
//! [tlog-proof](https://c2sp.org/tlog-proof#format) and
//! [tlog-cosignature](https://c2sp.org/tlog-cosignature#ed25519-signed-message)).
//!
//! Signed texts must have exactly one accepted spelling of each value: a
//! second spelling ("007" for 7, base64 with stray bits) would let two
//! different byte strings mean the same thing, which breaks byte-level
//! comparison of checkpoints and makes equivocation harder to see.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Parses an ASCII decimal with no sign and no leading zeroes (`0` itself is
/// allowed), as required for tree sizes, indexes and timestamps by
/// tlog-checkpoint, tlog-witness, tlog-proof and tlog-cosignature.
///
/// Spec ([tlog-checkpoint, Note text](https://c2sp.org/tlog-checkpoint#note-text)):
/// "the ASCII decimal representation of the number of leaves in the tree,
/// with no leading zeroes (unless the tree is empty, in which case the tree
/// size is `0`)". Values above `u64::MAX` are refused rather than wrapped.
///
/// # Examples
///
/// ```rust
/// use custody_standards::encoding::parse_decimal_u64;
///
/// // The tree size of the tlog-checkpoint spec example.
/// assert_eq!(parse_decimal_u64("20852163"), Some(20_852_163));
/// assert_eq!(parse_decimal_u64("0"), Some(0));
///
/// // A second spelling of the same number is refused, as are signs and
/// // anything that does not fit a u64.
/// assert_eq!(parse_decimal_u64("020852163"), None);
/// assert_eq!(parse_decimal_u64("+20852163"), None);
/// assert_eq!(parse_decimal_u64("18446744073709551616"), None);
/// ```
pub fn parse_decimal_u64(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    text.parse().ok()
}

/// Decodes standard padded base64 (RFC 4648 section 4), rejecting
/// non-canonical trailing bits and missing padding.
///
/// Alphabet and padding are those of
/// [RFC 4648 section 4](https://www.rfc-editor.org/rfc/rfc4648#section-4).
/// [Section 3.5](https://www.rfc-editor.org/rfc/rfc4648#section-3.5) leaves
/// non-zero pad bits to the decoder ("decoders MAY chose to reject an
/// encoding if the pad bits have not been set to zero"); we reject them, so
/// each byte string has one accepted text.
///
/// # Examples
///
/// ```rust
/// use custody_standards::encoding::decode_base64_strict;
///
/// assert_eq!(decode_base64_strict("aGVsbG8="), Some(b"hello".to_vec()));
///
/// // "aGVsbG9=" differs only in the unused low bits of its last character:
/// // a look-alike spelling of the same bytes, refused.
/// assert_eq!(decode_base64_strict("aGVsbG9="), None);
/// // Missing padding and the URL-safe alphabet are refused too.
/// assert_eq!(decode_base64_strict("aGVsbG8"), None);
/// assert_eq!(decode_base64_strict("-w=="), None);
/// ```
pub fn decode_base64_strict(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Standard padded base64 (RFC 4648 section 4).
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Lowercase hex (RFC 4648 section 8, lowercase), the form used in URLs,
/// digests and operators' messages.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from_digit(u32::from(b >> 4), 16).expect("nibble"));
        s.push(char::from_digit(u32::from(b & 15), 16).expect("nibble"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(encode_hex(&[0x00, 0xab, 0x0f, 0xf0, 0xff]), "00ab0ff0ff");
        assert_eq!(encode_hex(&[]), "");
    }

    #[test]
    fn decimal_is_canonical() {
        assert_eq!(parse_decimal_u64("0"), Some(0));
        assert_eq!(parse_decimal_u64("20852163"), Some(20852163));
        assert_eq!(parse_decimal_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "00", "01", "+1", "-1", " 1", "1 ", "1.0", "18446744073709551616", "１"] {
            assert_eq!(parse_decimal_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_is_canonical() {
        assert_eq!(decode_base64_strict("AQ=="), Some(vec![1]));
        assert_eq!(decode_base64_strict("AR=="), None, "stray bits");
        assert_eq!(decode_base64_strict("AQ"), None, "missing padding");
        assert_eq!(decode_base64_strict("A-=="), None, "url alphabet");
        assert_eq!(encode_base64(&[1]), "AQ==");
    }
}
