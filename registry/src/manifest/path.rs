//! The path of one file in a model directory, and the rules every path
//! obeys, checked the same way by the client that builds a manifest, the
//! log that stores one and the auditor that reads one.
//!
//! A path is relative, `/`-separated, in Unicode Normalization Form C, and
//! names a place inside the directory on every common file system:
//! - not empty, at most [`MAX_PATH_BYTES`] bytes, each component at most
//!   [`MAX_COMPONENT_BYTES`] (the usual `NAME_MAX`);
//! - no leading `/` (absolute), no empty component (`a//b`, trailing `/`),
//!   no `.` or `..` component;
//! - no control character and no `\` (a separator on Windows, so `a\..`
//!   would escape there);
//! - NFC: macOS stores names decomposed and Linux stores bytes, so a
//!   decomposed and a composed spelling of one name would be two files on
//!   one and one file on the other. Requiring NFC leaves one spelling.
//!
//! Two paths of one manifest must also differ after Unicode canonical case
//! folding ([`ManifestPath::fold_key`], the "canonical caseless match" of
//! Unicode section 3.13, D145): on a case-insensitive file system
//! (macOS, Windows) `Model.bin` and `model.bin` are one file, and which of
//! the two a loader read would depend on the order they were written.

use std::fmt;

use caseless::Caseless as _;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

/// Longest path, in bytes of UTF-8.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest path component, in bytes of UTF-8.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The empty path.
    #[error("empty path")]
    Empty,
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("path {0:?} is longer than {MAX_PATH_BYTES} bytes")]
    TooLong(String),
    /// A component longer than [`MAX_COMPONENT_BYTES`].
    #[error("path {0:?} has a component longer than {MAX_COMPONENT_BYTES} bytes")]
    ComponentTooLong(String),
    /// Starts with `/`.
    #[error("path {0:?} is absolute")]
    Absolute(String),
    /// An empty component: `a//b` or a trailing `/`.
    #[error("path {0:?} has an empty component")]
    EmptyComponent(String),
    /// A `.` or `..` component.
    #[error("path {0:?} has a `.` or `..` component")]
    DotComponent(String),
    /// A control character or a backslash.
    #[error("path {0:?} contains a control character or a backslash")]
    Character(String),
    /// Not in Normalization Form C.
    #[error("path {0:?} is not in Unicode Normalization Form C")]
    NotNfc(String),
}

/// A path that obeys every rule of this module.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ManifestPath(String);

impl ManifestPath {
    /// Checks `s` against every rule.
    pub fn new(s: &str) -> Result<Self, PathError> {
        let owned = || s.to_owned();
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong(s.chars().take(64).collect()));
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute(owned()));
        }
        if s.chars().any(|c| c.is_control() || c == '\\') {
            return Err(PathError::Character(owned()));
        }
        for component in s.split('/') {
            match component {
                "" => return Err(PathError::EmptyComponent(owned())),
                "." | ".." => return Err(PathError::DotComponent(owned())),
                c if c.len() > MAX_COMPONENT_BYTES => return Err(PathError::ComponentTooLong(owned())),
                _ => {}
            }
        }
        if !unicode_normalization::is_nfc(s) {
            return Err(PathError::NotNfc(owned()));
        }
        Ok(ManifestPath(s.to_owned()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, `/`-separated.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The key two paths must not share: NFD(casefold(NFD(path))), Unicode's
    /// canonical caseless match (D145).
    pub fn fold_key(&self) -> String {
        fold(&self.0)
    }

    /// The fold keys of every directory above this path (`a`, `a/b` for
    /// `a/b/c`): a file may not have the name of another path's directory.
    pub fn parent_keys(&self) -> impl Iterator<Item = String> + '_ {
        self.0.match_indices('/').map(|(i, _)| fold(&self.0[..i]))
    }
}

fn fold(s: &str) -> String {
    s.chars().nfd().default_case_fold().nfd().collect()
}

impl TryFrom<String> for ManifestPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        ManifestPath::new(&s)
    }
}

impl From<ManifestPath> for String {
    fn from(p: ManifestPath) -> String {
        p.0
    }
}

impl fmt::Display for ManifestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ManifestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManifestPath({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_model_paths_are_accepted() {
        for ok in [
            "config.json",
            "model-00001-of-00003.safetensors",
            "tokenizer/vocab.txt",
            ".gitattributes",
            "a/.hidden/b",
            "...",
            "données/modèle.bin",
            "日本語/重み.bin",
            "a b/c d",
        ] {
            assert_eq!(ManifestPath::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn every_rule_refuses_its_case() {
        let long_component = "x".repeat(MAX_COMPONENT_BYTES + 1);
        let long_path = ["y"; MAX_PATH_BYTES / 2 + 1].join("/");
        type Case = (String, fn(&PathError) -> bool);
        let cases: Vec<Case> = vec![
            ("".into(), |e| matches!(e, PathError::Empty)),
            ("/etc/passwd".into(), |e| matches!(e, PathError::Absolute(_))),
            ("a//b".into(), |e| matches!(e, PathError::EmptyComponent(_))),
            ("a/".into(), |e| matches!(e, PathError::EmptyComponent(_))),
            ("../x".into(), |e| matches!(e, PathError::DotComponent(_))),
            ("a/../../x".into(), |e| matches!(e, PathError::DotComponent(_))),
            ("./a".into(), |e| matches!(e, PathError::DotComponent(_))),
            ("a\\..\\b".into(), |e| matches!(e, PathError::Character(_))),
            ("a\nb".into(), |e| matches!(e, PathError::Character(_))),
            ("a\0b".into(), |e| matches!(e, PathError::Character(_))),
            ("a\u{7f}".into(), |e| matches!(e, PathError::Character(_))),
            ("e\u{301}.bin".into(), |e| matches!(e, PathError::NotNfc(_))),
            (format!("a/{long_component}"), |e| matches!(e, PathError::ComponentTooLong(_))),
            (long_path, |e| matches!(e, PathError::TooLong(_))),
        ];
        for (path, want) in cases {
            let e = ManifestPath::new(&path).unwrap_err();
            assert!(want(&e), "{path:?}: {e:?}");
        }
    }

    #[test]
    fn case_folding_joins_what_case_insensitive_file_systems_join() {
        let key = |s: &str| ManifestPath::new(s).unwrap().fold_key();
        assert_eq!(key("Model.BIN"), key("model.bin"));
        // Full case folding: ß folds to ss, the Kelvin sign to k.
        assert_eq!(key("STRASSE"), key("straße"));
        // The Kelvin sign is not NFC (refused as a path), yet folds like k.
        assert!(ManifestPath::new("\u{212a}.bin").is_err());
        assert_eq!(fold("\u{212a}.bin"), key("k.bin"));
        // A precomposed letter and its folded form.
        assert_eq!(key("É"), key("é"));
        assert_ne!(key("a.bin"), key("b.bin"));
        let p = ManifestPath::new("A/b/C").unwrap();
        assert_eq!(p.parent_keys().collect::<Vec<_>>(), vec![key("a"), key("a/B")]);
    }
}
