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
//! `production` (built in, [`PROTECTED_TAGS`]). An admin over a name
//! protects any other tag of it with a `protect` statement naming the
//! statuses its target may be in; a later `protect` replaces the set (all
//! five statuses lift the constraint). A tag move to a digest with no
//! version in a required status is refused. A tag whose target later leaves
//! that status, or that already pointed elsewhere when it was protected, is
//! *disqualified*: resolving it is refused, never silently moved; a
//! maintainer moves it to a qualifying version.

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
/// around the two-person rule. Built in: no statement can weaken them, and
/// `protect` refuses them.
pub const PROTECTED_TAGS: [(&str, &[Lifecycle]); 2] =
    [("production", &[Lifecycle::Production]), ("staging", &[Lifecycle::Staging, Lifecycle::Production])];

/// For a built-in protected tag, the statuses its target may be in.
pub fn builtin_requirement(tag: &str) -> Option<&'static [Lifecycle]> {
    PROTECTED_TAGS.iter().find(|(t, _)| *t == tag).map(|(_, allowed)| *allowed)
}

/// What a protected tag requires of its target: built in
/// ([`PROTECTED_TAGS`]) or set by a `protect` statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagRequirement<'a> {
    /// The statuses a version with the target digest must be in (one is
    /// enough).
    pub statuses: &'a [Lifecycle],
    /// Leaf of the `protect` statement, `None` for a built-in rule.
    pub protected_at: Option<u64>,
}

impl<'a> TagRequirement<'a> {
    /// Whether a version in `status` qualifies.
    pub fn allows(&self, status: Lifecycle) -> bool {
        self.statuses.contains(&status)
    }
}

/// `staging or production`: a status set as text for messages.
pub fn describe(statuses: &[Lifecycle]) -> String {
    match statuses.split_last() {
        None => String::new(),
        Some((last, [])) => last.as_str().to_owned(),
        Some((last, rest)) => {
            let head: Vec<&str> = rest.iter().map(|s| s.as_str()).collect();
            format!("{} or {}", head.join(", "), last.as_str())
        }
    }
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
