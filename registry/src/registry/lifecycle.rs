//! Lifecycle of a published version.
//!
//! ```text
//! development -> staging -> production -> deprecated -> archived
//!            <-
//! ```
//!
//! - `publish` puts a version in `development`.
//! - `promote` moves one step along the chain, or from `staging` back to
//!   `development`. Anything else is an illegal transition (422).
//! - `staging -> production` needs a prior `approve` of that version that
//!   *counts* (two-person rule): by an actor other than the version's
//!   publisher and other than the promoter, who still holds `approver` on
//!   the name, signed with a key that was not later revoked by
//!   `revoke_key` (a key revoked as stolen vouches for nothing; a key
//!   rotated away is fine).
//! - A name has at most one `production` version: promoting another one
//!   moves the current one to `deprecated` in the same step.
//! - `rollback` brings back a `deprecated` version that was in `production`
//!   before; the current production version (if any) becomes `deprecated`.
//!   It needs a *fresh* approval that counts (as above, the rolling-back
//!   maintainer in place of the promoter), made after the version last left
//!   production: approving once does not approve every later return.
//!
//! Protected tags: `production` may only point at a digest with a version
//! of the name in `production`; `staging` at one in `staging` or
//! `production`. A tag whose target later leaves that status is
//! *disqualified*: resolving it is refused, never silently moved.

use serde::{Deserialize, Serialize};

/// Lifecycle state of a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Just published.
    Development,
    /// Candidate for production.
    Staging,
    /// Serving; at most one version per name.
    Production,
    /// Replaced or withdrawn; may be rolled back to if it was in production.
    Deprecated,
    /// Final.
    Archived,
}

impl Lifecycle {
    /// Whether `promote` may move a version from `self` to `to`.
    pub fn can_promote_to(self, to: Lifecycle) -> bool {
        use Lifecycle::*;
        matches!(
            (self, to),
            (Development, Staging)
                | (Staging, Development)
                | (Staging, Production)
                | (Production, Deprecated)
                | (Deprecated, Archived)
        )
    }

    /// The lowercase name used in statements.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Development => "development",
            Lifecycle::Staging => "staging",
            Lifecycle::Production => "production",
            Lifecycle::Deprecated => "deprecated",
            Lifecycle::Archived => "archived",
        }
    }
}

/// Tags whose target must be in a given status, so that a tag cannot route
/// around the two-person rule.
pub const PROTECTED_TAGS: [(&str, &[Lifecycle], &str); 2] = [
    ("production", &[Lifecycle::Production], "production"),
    ("staging", &[Lifecycle::Staging, Lifecycle::Production], "staging or production"),
];

/// For a protected tag, the statuses its target may be in and their
/// description; `None` for an ordinary tag.
pub fn tag_requirement(tag: &str) -> Option<(&'static [Lifecycle], &'static str)> {
    PROTECTED_TAGS.iter().find(|(t, _, _)| *t == tag).map(|(_, allowed, text)| (*allowed, *text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Lifecycle::*;

    #[test]
    fn transition_table_is_exactly_the_documented_one() {
        let all = [Development, Staging, Production, Deprecated, Archived];
        let allowed = [
            (Development, Staging),
            (Staging, Development),
            (Staging, Production),
            (Production, Deprecated),
            (Deprecated, Archived),
        ];
        for from in all {
            for to in all {
                assert_eq!(from.can_promote_to(to), allowed.contains(&(from, to)), "{from:?} -> {to:?}");
            }
        }
        assert_eq!(serde_json::to_string(&Production).unwrap(), "\"production\"");
        assert!(serde_json::from_str::<Lifecycle>("\"prod\"").is_err());
    }
}
