//! Roles, what each one allows, and how grants on name patterns are
//! matched.
//!
//! | role | allows |
//! |---|---|
//! | `reader` | `access` |
//! | `publisher` | `publish`, and everything `reader` allows |
//! | `maintainer` | `tag`, `promote`, `rollback`, and everything `reader` allows |
//! | `approver` | `approve`, and everything `reader` allows |
//! | `admin` | everything above, plus `grant` and `revoke` within its pattern, and `protect` on the names it covers |
//!
//! A grant is `(role, pattern)`; an actor holds role R on name N if one of
//! its grants has a role implying R and a pattern matching N. Roles belong
//! to the actor, not to a key, so they carry over a key rotation.

use serde::{Deserialize, Serialize};

use crate::names::{ModelName, Pattern};

/// A role an admin can grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May read (access) artifacts.
    Reader,
    /// May publish new versions.
    Publisher,
    /// May move tags, promote and roll back.
    Maintainer,
    /// May approve versions for production (two-person rule).
    Approver,
    /// May grant and revoke roles within its pattern, and do everything.
    Admin,
}

impl Role {
    /// Whether holding `self` gives `needed`: a role gives itself and
    /// `reader`; `admin` gives every role.
    pub fn implies(self, needed: Role) -> bool {
        self == needed || self == Role::Admin || needed == Role::Reader
    }

    /// The lowercase name used in statements.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Publisher => "publisher",
            Role::Maintainer => "maintainer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

/// One role held on one pattern, with the leaf index that granted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// Where it applies.
    pub pattern: Pattern,
    /// Leaf index of the `grant` statement (the genesis grant is the first
    /// statement of the log).
    pub index: u64,
}

/// Whether `grants` give `needed` on `name`.
pub fn holds(grants: &[Grant], needed: Role, name: &ModelName) -> bool {
    grants.iter().any(|g| g.role.implies(needed) && g.pattern.matches(name))
}

/// Whether `grants` make the holder an admin over every name `pattern`
/// covers (the scope rule for `grant` and `revoke`).
pub fn admin_over(grants: &[Grant], pattern: &Pattern) -> bool {
    grants.iter().any(|g| g.role == Role::Admin && g.pattern.covers(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(role: Role, p: &str) -> Grant {
        Grant { role, pattern: Pattern::new(p).unwrap(), index: 0 }
    }

    #[test]
    fn implication_table() {
        use Role::*;
        let all = [Reader, Publisher, Maintainer, Approver, Admin];
        for held in all {
            for needed in all {
                let expect = held == needed || held == Admin || needed == Reader;
                assert_eq!(held.implies(needed), expect, "{held:?} -> {needed:?}");
            }
        }
        assert_eq!(serde_json::to_string(&Maintainer).unwrap(), "\"maintainer\"");
        assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
        assert!(serde_json::from_str::<Role>("\"owner\"").is_err());
    }

    #[test]
    fn scoped_holding_and_admin_scope() {
        let n = ModelName::new("acme/m").unwrap();
        let other = ModelName::new("beta/m").unwrap();
        let grants = [g(Role::Publisher, "acme/*"), g(Role::Admin, "beta/m")];
        assert!(holds(&grants, Role::Publisher, &n));
        assert!(holds(&grants, Role::Reader, &n));
        assert!(!holds(&grants, Role::Maintainer, &n));
        assert!(holds(&grants, Role::Maintainer, &other));
        assert!(admin_over(&grants, &Pattern::new("beta/m").unwrap()));
        assert!(!admin_over(&grants, &Pattern::new("beta/*").unwrap()));
        assert!(!admin_over(&grants, &Pattern::new("acme/m").unwrap()));
        assert!(admin_over(&[g(Role::Admin, "*")], &Pattern::All));
    }
}
