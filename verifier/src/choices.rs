//! The closed sets a flag takes (roles, lifecycle states, artifact kinds)
//! as clap value enums: `--help` lists the choices, and a typo is a usage
//! error (exit 64) before anything is signed. Each maps onto the registry
//! type it stands for; a test holds the spellings equal to the protocol's.

use clap::ValueEnum;
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::events::Kind;

/// A role, as `grant` and `revoke` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleChoice {
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

impl From<RoleChoice> for Role {
    fn from(c: RoleChoice) -> Role {
        match c {
            RoleChoice::Reader => Role::Reader,
            RoleChoice::Publisher => Role::Publisher,
            RoleChoice::Maintainer => Role::Maintainer,
            RoleChoice::Approver => Role::Approver,
            RoleChoice::Admin => Role::Admin,
        }
    }
}

/// A lifecycle state, as `promote --to`, `protect --statuses` and `pull
/// --allow-status` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusChoice {
    /// Just published.
    Development,
    /// Candidate for production.
    Staging,
    /// Approved and in production (two-person rule).
    Production,
    /// Replaced or withdrawn.
    Deprecated,
    /// Retired.
    Archived,
}

impl From<StatusChoice> for Lifecycle {
    fn from(c: StatusChoice) -> Lifecycle {
        match c {
            StatusChoice::Development => Lifecycle::Development,
            StatusChoice::Staging => Lifecycle::Staging,
            StatusChoice::Production => Lifecycle::Production,
            StatusChoice::Deprecated => Lifecycle::Deprecated,
            StatusChoice::Archived => Lifecycle::Archived,
        }
    }
}

/// A set of states in canonical order (the lifecycle's, no duplicates)
/// whatever order the flag listed them in.
pub fn lifecycle_set(choices: &[StatusChoice]) -> Vec<Lifecycle> {
    let mut out: Vec<Lifecycle> = choices.iter().map(|&c| c.into()).collect();
    out.sort();
    out.dedup();
    out
}

/// What kind of artifact `publish` logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindChoice {
    /// Model weights or a packaged model.
    Model,
    /// A dataset.
    Dataset,
    /// Anything else (tokenizer, config, evaluation report...).
    Other,
}

impl From<KindChoice> for Kind {
    fn from(c: KindChoice) -> Kind {
        match c {
            KindChoice::Model => Kind::Model,
            KindChoice::Dataset => Kind::Dataset,
            KindChoice::Other => Kind::Other,
        }
    }
}

/// The flag spelling of a choice (the same as the protocol's).
pub fn spelling(choice: &impl ValueEnum) -> String {
    choice.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every choice is spelled as the protocol spells the value it maps to.
    fn same_spelling<C: ValueEnum, T: From<C> + serde::Serialize>() {
        for c in C::value_variants() {
            let wire = serde_json::to_value(T::from(c.clone())).unwrap();
            assert_eq!(wire.as_str(), Some(spelling(c).as_str()));
        }
    }

    #[test]
    fn choices_are_spelled_as_the_protocol_spells_them() {
        same_spelling::<RoleChoice, Role>();
        same_spelling::<StatusChoice, Lifecycle>();
        same_spelling::<KindChoice, Kind>();
        assert_eq!(RoleChoice::value_variants().len(), 5);
        assert_eq!(StatusChoice::value_variants().len(), 5);
        assert_eq!(KindChoice::value_variants().len(), 3);
    }

    #[test]
    fn a_status_set_is_canonical() {
        use StatusChoice::*;
        let set = lifecycle_set(&[Production, Staging, Production]);
        assert_eq!(set, vec![Lifecycle::Staging, Lifecycle::Production]);
    }
}
