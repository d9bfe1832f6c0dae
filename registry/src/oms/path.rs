//! The rules a resource name of a model-signing bundle must obey before its
//! digest is believed to describe a file of the model directory.
//!
//! model_signing's `files` serialization names each file by its path
//! relative to the model directory, `/`-separated (`pathlib.PurePosixPath`
//! in `manifest.py`). A signed name that is absolute or climbs out with
//! `..` would describe a file outside the directory; one with an empty or
//! `.` component is a second spelling of another path (`a//b`, `./a` are
//! `a/b`, `a` to PurePosixPath), which would let one file be listed twice
//! under two names. So a name is accepted only in its single canonical
//! spelling:
//! - not empty, at most [`MAX_PATH_BYTES`] bytes, each component at most
//!   [`MAX_COMPONENT_BYTES`];
//! - no leading `/`, no empty component (`a//b`, trailing `/`), no `.` or
//!   `..` component;
//! - no control character and no `\` (a separator on Windows, where
//!   `a\..\b` would climb).
//!
//! These are the rules of Custody's directory manifests, so a name that
//! passes here is one a manifest can hold.

/// Longest resource name, in bytes of UTF-8.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest path component, in bytes of UTF-8 (the usual `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Why a resource name is not a canonical relative path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OmsPathRule {
    /// The empty name.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    /// A component longer than [`MAX_COMPONENT_BYTES`].
    #[error("has a component longer than {MAX_COMPONENT_BYTES} bytes")]
    ComponentTooLong,
    /// Starts with `/`.
    #[error("is absolute")]
    Absolute,
    /// `a//b` or a trailing `/`.
    #[error("has an empty component")]
    EmptyComponent,
    /// A `.` component.
    #[error("has a `.` component")]
    Dot,
    /// A `..` component.
    #[error("has a `..` component")]
    DotDot,
    /// A control character or a backslash.
    #[error("contains a control character or a backslash")]
    Character,
}

/// Checks one resource name against every rule of this module.
pub fn check_path(name: &str) -> Result<(), OmsPathRule> {
    if name.is_empty() {
        return Err(OmsPathRule::Empty);
    }
    if name.len() > MAX_PATH_BYTES {
        return Err(OmsPathRule::TooLong);
    }
    if name.starts_with('/') {
        return Err(OmsPathRule::Absolute);
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(OmsPathRule::Character);
    }
    for component in name.split('/') {
        match component {
            "" => return Err(OmsPathRule::EmptyComponent),
            "." => return Err(OmsPathRule::Dot),
            ".." => return Err(OmsPathRule::DotDot),
            c if c.len() > MAX_COMPONENT_BYTES => return Err(OmsPathRule::ComponentTooLong),
            _ => {}
        }
    }
    Ok(())
}
