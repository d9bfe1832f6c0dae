//! The registry's identifiers: model names, versions, tags, actor names,
//! role patterns, artifact digests and media types.
//!
//! Every identifier is ASCII with a small documented charset and a length
//! cap, so each has exactly one spelling (no case folding, no Unicode
//! look-alikes) and can be used verbatim in URLs, log lines and map keys.
//! Each type validates on construction and in `Deserialize`, so a value of
//! the type is always valid.
//!
//! | identifier | rule |
//! |---|---|
//! | model name | `org/model`: two segments joined by one `/`; org 1..=64 bytes, model 1..=128 bytes; each segment is `[a-z0-9._-]`, starting and ending with `[a-z0-9]` |
//! | version | 1..=128 bytes of `[A-Za-z0-9._+-]`, first byte `[A-Za-z0-9_]` |
//! | tag | 1..=128 bytes of `[A-Za-z0-9._-]`, first byte `[A-Za-z0-9_]` (the OCI tag rule) |
//! | actor | 1..=64 bytes of `[a-z0-9._@-]`, first byte `[a-z0-9]` |
//! | pattern | `*` (every name), `org/*` (every name in `org`), or an exact model name |
//! | digest | `sha256:` and 64 lowercase hex digits |
//! | media type | `type/subtype`, each 1..=127 bytes of RFC 6838 restricted-name characters `[A-Za-z0-9!#$&^_.+-]`, first byte alphanumeric; no parameters |

use std::fmt;

use serde::{Deserialize, Serialize};

use custody_standards::hash::Hash;

/// Longest organisation segment of a model name.
pub const MAX_ORG_LEN: usize = 64;
/// Longest model segment of a model name.
pub const MAX_MODEL_LEN: usize = 128;
/// Longest version and tag.
pub const MAX_VERSION_LEN: usize = 128;
/// Longest actor name.
pub const MAX_ACTOR_LEN: usize = 64;
/// Longest media type (two 127-byte halves and the slash).
pub const MAX_MEDIA_TYPE_LEN: usize = 255;

/// Why an identifier was rejected. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a model name.
    #[error("invalid model name {0:?}: expected org/model, lowercase [a-z0-9._-], segments start and end alphanumeric, org <= 64 and model <= 128 bytes")]
    ModelName(String),
    /// Not a version.
    #[error("invalid version {0:?}: expected 1..=128 bytes of [A-Za-z0-9._+-] starting with [A-Za-z0-9_]")]
    Version(String),
    /// Not a tag.
    #[error("invalid tag {0:?}: expected 1..=128 bytes of [A-Za-z0-9._-] starting with [A-Za-z0-9_]")]
    Tag(String),
    /// Not an actor name.
    #[error("invalid actor name {0:?}: expected 1..=64 bytes of [a-z0-9._@-] starting with [a-z0-9]")]
    Actor(String),
    /// Not a role pattern.
    #[error("invalid pattern {0:?}: expected *, org/* or org/model")]
    Pattern(String),
    /// Not a digest.
    #[error("invalid digest {0:?}: expected sha256: and 64 lowercase hex digits")]
    Digest(String),
    /// Not a media type.
    #[error("invalid media type {0:?}: expected type/subtype of RFC 6838 restricted names, no parameters")]
    MediaType(String),
    /// Not `name@version` or `name:tag`.
    #[error("invalid reference {0:?}: expected org/model@version or org/model:tag")]
    Reference(String),
}

fn preview(s: &str) -> String {
    // Error messages quote the input; cap it so a hostile 64 KB string does
    // not end up in every log line.
    s.chars().take(80).collect()
}

fn is_segment(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= max
        && b.iter().all(|c| edge(c) || matches!(c, b'.' | b'_' | b'-'))
        && edge(&b[0])
        && edge(&b[b.len() - 1])
}

fn is_version_like(s: &str, plus: bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_VERSION_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-') || (plus && c == b'+'))
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $check:expr, $err:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(NameError::$err(preview(s)))
                }
            }

            /// The identifier text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                let check: fn(&str) -> bool = $check;
                if check(&s) {
                    Ok($name(s))
                } else {
                    Err(NameError::$err(preview(&s)))
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $name::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn check_model_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((org, model)) => is_segment(org, MAX_ORG_LEN) && is_segment(model, MAX_MODEL_LEN),
        None => false,
    }
}

fn check_actor(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ACTOR_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'@' | b'-'))
}

fn check_media_type(s: &str) -> bool {
    // RFC 6838 section 4.2 restricted-name.
    let half = |h: &str| {
        let b = h.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
    };
    match s.split_once('/') {
        Some((t, sub)) => half(t) && half(sub),
        None => false,
    }
}

string_newtype!(
    /// A model name, `org/model` (see the module table for the exact rule).
    ModelName,
    check_model_name,
    ModelName
);
string_newtype!(
    /// A version of a model name, unique and immutable per name.
    Version,
    |s| is_version_like(s, true),
    Version
);
string_newtype!(
    /// A movable tag of a model name (for example `latest`, `stable`).
    TagName,
    |s| is_version_like(s, false),
    Tag
);
string_newtype!(
    /// An actor: a person, service or pipeline that signs statements.
    ActorName,
    check_actor,
    Actor
);
string_newtype!(
    /// An artifact media type such as `application/octet-stream`.
    MediaType,
    check_media_type,
    MediaType
);

impl ModelName {
    /// The organisation segment (before the `/`).
    pub fn org(&self) -> &str {
        self.0.split_once('/').map(|(o, _)| o).unwrap_or(&self.0)
    }
}

/// Where a role applies: every name, every name in one organisation, or
/// one exact name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pattern {
    /// `*`: every model name (the genesis admin's scope).
    All,
    /// `org/*`: every name whose organisation is `org`.
    Org(String),
    /// `org/model`: that name only.
    Exact(ModelName),
}

impl Pattern {
    /// Parses `*`, `org/*` or an exact model name.
    pub fn new(s: &str) -> Result<Self, NameError> {
        if s == "*" {
            return Ok(Pattern::All);
        }
        if let Some(org) = s.strip_suffix("/*") {
            if is_segment(org, MAX_ORG_LEN) {
                return Ok(Pattern::Org(org.to_owned()));
            }
            return Err(NameError::Pattern(preview(s)));
        }
        ModelName::new(s).map(Pattern::Exact).map_err(|_| NameError::Pattern(preview(s)))
    }

    /// Whether the pattern covers `name`.
    pub fn matches(&self, name: &ModelName) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Org(org) => name.org() == org,
            Pattern::Exact(n) => n == name,
        }
    }

    /// Whether every name `other` covers is also covered by `self` (used to
    /// scope admins: an admin on `org/*` may grant within `org/*` only).
    pub fn covers(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::All, _) => true,
            (Pattern::Org(a), Pattern::Org(b)) => a == b,
            (Pattern::Org(a), Pattern::Exact(n)) => n.org() == a,
            (Pattern::Exact(a), Pattern::Exact(b)) => a == b,
            _ => false,
        }
    }
}

impl TryFrom<String> for Pattern {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Pattern::new(&s)
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.to_string()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::All => f.write_str("*"),
            Pattern::Org(o) => write!(f, "{o}/*"),
            Pattern::Exact(n) => f.write_str(n.as_str()),
        }
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({self})")
    }
}

/// An artifact digest, `sha256:<64 lowercase hex>`. Stored as the 32 raw
/// bytes: it is the key of the registry's digest index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(pub Hash);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn new(s: &str) -> Result<Self, NameError> {
        s.strip_prefix("sha256:")
            .and_then(|h| Hash::from_hex(h).ok())
            .map(Digest)
            .ok_or_else(|| NameError::Digest(preview(s)))
    }
}

impl TryFrom<String> for Digest {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Digest::new(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A query reference: `org/model@version` or `org/model:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `name@version`.
    Version(ModelName, Version),
    /// `name:tag`.
    Tag(ModelName, TagName),
}

impl Reference {
    /// Parses a reference. Model names contain neither `@` nor `:`, so the
    /// first one found splits unambiguously.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let err = || NameError::Reference(preview(s));
        if let Some((n, v)) = s.split_once('@') {
            return Ok(Reference::Version(
                ModelName::new(n).map_err(|_| err())?,
                Version::new(v).map_err(|_| err())?,
            ));
        }
        if let Some((n, t)) = s.split_once(':') {
            return Ok(Reference::Tag(
                ModelName::new(n).map_err(|_| err())?,
                TagName::new(t).map_err(|_| err())?,
            ));
        }
        Err(err())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Version(n, v) => write!(f, "{n}@{v}"),
            Reference::Tag(n, t) => write!(f, "{n}:{t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        for ok in
            ["acme/resnet-50", "a/b", "org.x/m_1.v2", &format!("{}/{}", "o".repeat(64), "m".repeat(128))]
        {
            let n = ModelName::new(ok).unwrap();
            assert_eq!(n.as_str(), ok);
        }
        assert_eq!(ModelName::new("acme/resnet").unwrap().org(), "acme");
        let long_org = format!("{}/m", "o".repeat(65));
        let long_model = format!("o/{}", "m".repeat(129));
        for bad in [
            "",
            "acme",
            "/m",
            "o/",
            "o//m",
            "o/m/x",
            "Acme/m",
            "o/M",
            "-o/m",
            "o/m-",
            "o/.m",
            "o/m ",
            "o/m\n",
            "o/m@1",
            "o/m:t",
            "o/*",
            "*",
            "o/é",
            &long_org,
            &long_model,
        ] {
            assert!(matches!(ModelName::new(bad), Err(NameError::ModelName(_))), "{bad:?}");
        }
    }

    #[test]
    fn versions_tags_actors() {
        for ok in ["1", "1.2.3", "1.0.0-rc.1+build.5", "_x", "V2"] {
            Version::new(ok).unwrap();
        }
        for bad in ["", ".1", "-1", "+1", "1 2", "1/2", "1@2", "1:2", &"v".repeat(129)] {
            assert!(matches!(Version::new(bad), Err(NameError::Version(_))), "{bad:?}");
        }
        for ok in ["latest", "Stable_2", "v1.2-x", &"t".repeat(128)] {
            TagName::new(ok).unwrap();
        }
        for bad in ["", "a+b", ".x", "-x", "a b", &"t".repeat(129)] {
            assert!(matches!(TagName::new(bad), Err(NameError::Tag(_))), "{bad:?}");
        }
        for ok in ["alice", "ci-bot", "alice@example.com", "0", &"a".repeat(64)] {
            ActorName::new(ok).unwrap();
        }
        for bad in ["", "Alice", "@a", "-a", "a b", "a+b", "a/b", &"a".repeat(65)] {
            assert!(matches!(ActorName::new(bad), Err(NameError::Actor(_))), "{bad:?}");
        }
    }

    #[test]
    fn patterns() {
        let n = ModelName::new("acme/m").unwrap();
        let other = ModelName::new("beta/m").unwrap();
        let all = Pattern::new("*").unwrap();
        let org = Pattern::new("acme/*").unwrap();
        let exact = Pattern::new("acme/m").unwrap();
        assert!(all.matches(&n) && org.matches(&n) && exact.matches(&n));
        assert!(!org.matches(&other) && !exact.matches(&other));
        assert!(all.covers(&all) && all.covers(&org) && org.covers(&org) && org.covers(&exact));
        assert!(!org.covers(&all) && !exact.covers(&org) && !Pattern::new("beta/*").unwrap().covers(&exact));
        for p in ["*", "acme/*", "acme/m"] {
            assert_eq!(Pattern::new(p).unwrap().to_string(), p);
        }
        for bad in ["", "**", "*/*", "acme/", "acme/*x", "ACME/*", "acme/m*", "/*"] {
            assert!(matches!(Pattern::new(bad), Err(NameError::Pattern(_))), "{bad:?}");
        }
    }

    #[test]
    fn digests_media_types_references() {
        let hex = "ab".repeat(32);
        let d = Digest::new(&format!("sha256:{hex}")).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        for bad in [
            hex.clone(),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha512:{hex}"),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{hex}0"),
        ] {
            assert!(matches!(Digest::new(&bad), Err(NameError::Digest(_))), "{bad:?}");
        }
        for ok in ["application/octet-stream", "application/vnd.onnx+protobuf", "text/x.custody"] {
            MediaType::new(ok).unwrap();
        }
        for bad in ["", "application", "application/", "/x", "a/b; charset=utf-8", "a/b/c", "+a/b"] {
            assert!(matches!(MediaType::new(bad), Err(NameError::MediaType(_))), "{bad:?}");
        }
        assert_eq!(
            Reference::parse("acme/m@1.0").unwrap(),
            Reference::Version(ModelName::new("acme/m").unwrap(), Version::new("1.0").unwrap())
        );
        assert_eq!(Reference::parse("acme/m:latest").unwrap().to_string(), "acme/m:latest");
        for bad in ["acme/m", "acme/m@", "acme/m:", "acme@1", "acme/m@1@2", "acme/m:a:b"] {
            assert!(matches!(Reference::parse(bad), Err(NameError::Reference(_))), "{bad:?}");
        }
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<ModelName>("\"acme/m\"").is_ok());
        assert!(serde_json::from_str::<ModelName>("\"Acme/m\"").is_err());
        assert_eq!(serde_json::to_string(&Pattern::new("acme/*").unwrap()).unwrap(), "\"acme/*\"");
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }
}
