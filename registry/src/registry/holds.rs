//! Holds, and the events that record where an artifact went (`deploy`,
//! `transfer`).
//!
//! A hold freezes a name, or one version of it, while someone looks at it
//! (an incident, a legal hold, a suspected compromise). An approver or
//! admin over the name puts it with a `hold` statement and lifts it with a
//! `release` of exactly the same target; the statement's reason says why.
//! While it is in force the registry refuses, with 423 `held` and no
//! change, everything that would move or hand out what it covers:
//!
//! - `tag` moves of a held name, and moves to or away from a digest that a
//!   held version of the name has;
//! - `promote` and `rollback` of a held version, or ones that would demote
//!   a held production version;
//! - `access`, `deploy` and `transfer` of a held version;
//! - the same actions wrapped in a `break_glass`: holds are not a rule an
//!   emergency bypasses (an admin may release instead, on the record).
//!
//! A hold on the name covers every version, including ones published while
//! it is in force (publishing is not refused: a new version changes nothing
//! that exists). Holds are part of the committed state
//! ([`crate::commitment::StateKey::Hold`]), so a client proves a version is
//! not held before it loads it.

use crate::names::{ModelName, Version};
use crate::registry::effect::Effect;
use crate::registry::reject::Rejection;
use crate::registry::state::VersionRecord;
use crate::registry::Registry;
use crate::statement::events::{Deploy, HoldTarget, Transfer};

/// Refuses if a hold covers `name@version`.
pub(super) fn not_held(reg: &Registry, name: &ModelName, version: &Version) -> Result<(), Rejection> {
    match reg.model(name).and_then(|m| m.hold_covering(version)) {
        Some(h) => Err(Rejection::Held { name: name.clone(), version: h.version.clone(), index: h.index }),
        None => Ok(()),
    }
}

/// Refuses if the whole name is held.
pub(super) fn name_not_held(reg: &Registry, name: &ModelName) -> Result<(), Rejection> {
    match reg.model(name).and_then(|m| m.hold_on(None)) {
        Some(h) => Err(Rejection::Held { name: name.clone(), version: None, index: h.index }),
        None => Ok(()),
    }
}

/// `hold`: the target must exist if it is a version, and not be held
/// already.
pub(super) fn hold(reg: &Registry, h: &HoldTarget) -> Result<Effect, Rejection> {
    if let Some(v) = &h.version {
        if reg.version(&h.name, v).is_none() {
            return Err(Rejection::UnknownVersion { name: h.name.clone(), version: v.clone() });
        }
    }
    if let Some(existing) = reg.model(&h.name).and_then(|m| m.hold_on(h.version.as_ref())) {
        return Err(Rejection::AlreadyHeld {
            name: h.name.clone(),
            version: h.version.clone(),
            index: existing.index,
        });
    }
    Ok(Effect::Held { name: h.name.clone(), version: h.version.clone() })
}

/// `release`: exactly that hold must be in force.
pub(super) fn release(reg: &Registry, h: &HoldTarget) -> Result<Effect, Rejection> {
    if reg.model(&h.name).and_then(|m| m.hold_on(h.version.as_ref())).is_none() {
        return Err(Rejection::NotHeld { name: h.name.clone(), version: h.version.clone() });
    }
    Ok(Effect::Released { name: h.name.clone(), version: h.version.clone() })
}

/// The version a `deploy` or `transfer` names, published with that digest
/// and not held.
fn published<'a>(
    reg: &'a Registry,
    name: &ModelName,
    version: &Version,
    digest: &crate::names::Digest,
) -> Result<&'a VersionRecord, Rejection> {
    let v = reg
        .version(name, version)
        .ok_or_else(|| Rejection::UnknownVersion { name: name.clone(), version: version.clone() })?;
    if v.digest != *digest {
        return Err(Rejection::UnknownDigest(*digest));
    }
    not_held(reg, name, version)?;
    Ok(v)
}

/// `deploy`.
pub(super) fn deploy(reg: &Registry, d: &Deploy) -> Result<Effect, Rejection> {
    published(reg, &d.name, &d.version, &d.digest)?;
    Ok(Effect::Deployed {
        name: d.name.clone(),
        version: d.version.clone(),
        digest: d.digest,
        target: d.target.clone(),
    })
}

/// `transfer`.
pub(super) fn transfer(reg: &Registry, t: &Transfer) -> Result<Effect, Rejection> {
    published(reg, &t.name, &t.version, &t.digest)?;
    Ok(Effect::Transferred {
        name: t.name.clone(),
        version: t.version.clone(),
        digest: t.digest,
        destination: t.destination.clone(),
    })
}
