//! The canonical byte encoding shared by state keys and values: a kind
//! byte, then fields in a fixed order. Strings are a u16 big-endian length
//! then UTF-8; integers are u64 big-endian; hashes are 32 raw bytes. There
//! is exactly one encoding of each key and value, and the reader refuses
//! anything else (short input, trailing bytes, invalid names), so two
//! parties that agree on a key agree on its bytes and on its hash.

use custody_standards::hash::Hash;

/// Why bytes are not a canonical state key or value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended inside a field.
    #[error("truncated: {0} needs more bytes")]
    Truncated(&'static str),
    /// Bytes left after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// An unknown kind byte.
    #[error("unknown kind 0x{0:02x}")]
    Kind(u8),
    /// A field that is not valid for its type (a name, a status, a flag).
    #[error("invalid {field}: {reason}")]
    Field {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Larger than any canonical encoding can be.
    #[error("{0} bytes exceeds the {1}-byte cap")]
    TooLong(usize, usize),
}

/// Appends fields in canonical form.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn kind(kind: u8) -> Self {
        Writer(vec![kind])
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn hash(&mut self, h: &Hash) -> &mut Self {
        self.0.extend_from_slice(&h.0);
        self
    }
    /// Names are capped far below 65,535 bytes by their types.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        let n = u16::try_from(s.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&n.to_be_bytes());
        self.0.extend_from_slice(&s.as_bytes()[..usize::from(n)]);
        self
    }
}

/// Reads fields in canonical form, refusing short input.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return Err(CodecError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    pub(crate) fn hash(&mut self, what: &'static str) -> Result<Hash, CodecError> {
        Ok(Hash(self.take(32, what)?.try_into().expect("32 bytes")))
    }
    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'a str, CodecError> {
        let n = u16::from_be_bytes(self.take(2, what)?.try_into().expect("2 bytes"));
        let bytes = self.take(usize::from(n), what)?;
        std::str::from_utf8(bytes).map_err(|e| CodecError::Field { field: what, reason: e.to_string() })
    }
    pub(crate) fn end(self) -> Result<(), CodecError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(CodecError::Trailing(n)),
        }
    }
}

/// Maps a parse error of a typed field into [`CodecError::Field`].
pub(crate) fn field<T, E: std::fmt::Display>(what: &'static str, r: Result<T, E>) -> Result<T, CodecError> {
    r.map_err(|e| CodecError::Field { field: what, reason: e.to_string() })
}
