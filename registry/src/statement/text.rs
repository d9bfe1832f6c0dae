//! Small validated values used inside statements: free text, nonces and
//! the schema number.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest free-text value (context fields, framework, description, label
/// values), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Size of a nonce in bytes (written as 32 lowercase hex digits).
pub const NONCE_SIZE: usize = 16;
/// The only statement schema this code understands.
pub const SCHEMA_V1: u64 = 1;

/// Why a small value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty, too long, or containing a control or format character.
    #[error(
        "text must be 1..={MAX_TEXT_LEN} bytes without control characters, line or paragraph \
         separators, or invisible format characters (bidi controls, zero-width characters)"
    )]
    Text,
    /// Not 32 lowercase hex digits.
    #[error("nonce must be 32 lowercase hex digits (16 random bytes)")]
    Nonce,
    /// A schema other than 1.
    #[error("unsupported statement schema {0} (this code reads schema 1)")]
    Schema(u64),
}

/// Free text: 1..=[`MAX_TEXT_LEN`] bytes of UTF-8 with no control
/// characters (U+0000..U+001F, U+007F..U+009F), no line or paragraph
/// separator (U+2028, U+2029) and no format character (general category
/// `Cf`: bidi embeddings, overrides and isolates, zero-width characters,
/// the BOM, ...), so it cannot forge lines in logs or terminals, nor make
/// `history` and `report` show text in another order than it was signed.
/// Checked on parse and on build: one rule for what is signed and what is
/// accepted.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<Self, TextError> {
        Text::try_from(s.to_owned())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Text {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, TextError> {
        if s.is_empty() || s.len() > MAX_TEXT_LEN || s.chars().any(is_refused_char) {
            return Err(TextError::Text);
        }
        Ok(Text(s))
    }
}

/// Unicode 15.1 general category `Cf` (format characters), as ranges.
/// Invisible by design, they change how the surrounding text is shown
/// (direction, joining, hyphenation) without showing themselves.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether free text may not contain `c` (see [`Text`]).
pub fn is_refused_char(c: char) -> bool {
    c.is_control()
        || c == '\u{2028}'
        || c == '\u{2029}'
        || FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A statement nonce: 16 bytes the client draws at random, written as 32
/// lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nonce(pub [u8; NONCE_SIZE]);

impl Nonce {
    /// Parses 32 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, TextError> {
        let b = s.as_bytes();
        if b.len() != 2 * NONCE_SIZE {
            return Err(TextError::Nonce);
        }
        let nib = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(TextError::Nonce),
        };
        let mut out = [0u8; NONCE_SIZE];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
        }
        Ok(Nonce(out))
    }
}

impl TryFrom<String> for Nonce {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, TextError> {
        Nonce::parse(&s)
    }
}

impl From<Nonce> for String {
    fn from(n: Nonce) -> String {
        n.to_string()
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({self})")
    }
}

/// The `schema` field: always `1` for now. A future schema gets a new
/// payload type as well, so old verifiers refuse it instead of misreading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Schema(u64);

impl Schema {
    /// Schema 1.
    pub const V1: Schema = Schema(SCHEMA_V1);
}

impl TryFrom<u64> for Schema {
    type Error = TextError;
    fn try_from(v: u64) -> Result<Self, TextError> {
        if v == SCHEMA_V1 {
            Ok(Schema(v))
        } else {
            Err(TextError::Schema(v))
        }
    }
}

impl From<Schema> for u64 {
    fn from(s: Schema) -> u64 {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(Text::new("retraining after drift").unwrap().as_str(), "retraining after drift");
        Text::new("ünïcode ✓").unwrap();
        Text::new(&"x".repeat(MAX_TEXT_LEN)).unwrap();
        for bad in ["", "a\nb", "a\u{7f}", "a\u{85}", "\t", &"x".repeat(MAX_TEXT_LEN + 1)] {
            assert_eq!(Text::new(bad), Err(TextError::Text), "{bad:?}");
        }
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        for c in [
            '\u{202E}',  // right-to-left override
            '\u{202A}',  // left-to-right embedding
            '\u{2066}',  // left-to-right isolate
            '\u{2069}',  // pop directional isolate
            '\u{200B}',  // zero-width space
            '\u{200D}',  // zero-width joiner
            '\u{200E}',  // left-to-right mark
            '\u{2060}',  // word joiner
            '\u{FEFF}',  // zero-width no-break space (BOM)
            '\u{00AD}',  // soft hyphen
            '\u{061C}',  // Arabic letter mark
            '\u{E0041}', // tag latin capital A
            '\u{2028}',  // line separator
            '\u{2029}',  // paragraph separator
        ] {
            let s = format!("approved{c} by alice");
            assert_eq!(Text::new(&s), Err(TextError::Text), "U+{:04X}", c as u32);
            let json = serde_json::to_string(&s).unwrap();
            assert!(serde_json::from_str::<Text>(&json).is_err(), "parse refuses U+{:04X}", c as u32);
        }
        // Visible neighbours stay allowed.
        for ok in ["مرحبا بالعالم", "שלום", "naïve café", "日本語", "a\u{00A0}b", "emoji 🙂"]
        {
            Text::new(ok).unwrap();
        }
    }

    #[test]
    fn nonce_rules() {
        let n = Nonce::parse("00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(n.to_string(), "00112233445566778899aabbccddeeff");
        for bad in [
            "",
            "00112233445566778899AABBCCDDEEFF",
            "00112233445566778899aabbccddeef",
            "00112233445566778899aabbccddeeff0",
            "g0112233445566778899aabbccddeeff",
        ] {
            assert_eq!(Nonce::parse(bad), Err(TextError::Nonce), "{bad:?}");
        }
    }

    #[test]
    fn schema_rules() {
        assert_eq!(serde_json::from_str::<Schema>("1").unwrap(), Schema::V1);
        assert!(serde_json::from_str::<Schema>("2").unwrap_err().to_string().contains("schema 2"));
        assert!(serde_json::from_str::<Schema>("1.0").is_err());
        assert!(serde_json::from_str::<Schema>("\"1\"").is_err());
    }
}
