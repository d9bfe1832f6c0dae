//! "Is it still true?": what `pull` proves about a reference from the
//! registry state committed by the checkpoint it verified ([`crate::state`]),
//! beyond the entries that show it *was* logged:
//! - a tag's move is its *current* move (a later move cannot be hidden by
//!   serving the old one);
//! - the version's current status, from which protected tags and the
//!   refusal of deprecated and archived versions are decided;
//! - the keys that signed the publish and the tag move were not revoked
//!   (a key revoked as stolen vouches for nothing, even for statements it
//!   signed before), and the roles they used are still held;
//! - no hold is in force on the name or on a version the reference stands
//!   for (refused unless the caller leaves holds to the log, as writers
//!   do: the log refuses a held tag move, deploy or transfer itself).
//!
//! A key *rotated* away is not refused: rotation is routine, the
//! statements it signed while live stay valid under the registry rules,
//! and a compromise is answered by `revoke_key`, which this does refuse.

use custody_registry::actor_key::KeyId;
use custody_registry::commitment::{StateKey, StateValue};
use custody_registry::names::{Digest, ModelName, TagName, Version};
use custody_registry::registry::lifecycle::{builtin_requirement, describe as describe_statuses};
use custody_registry::registry::{KeyEnd, Lifecycle};

use crate::authz::UsedGrant;
use crate::error::{Error, Result};
use crate::state::{describe, prove, ProvenState};
use crate::trust::{Trust, Trusted};

/// A signature a reference rests on: its key and the grant that allowed it.
#[derive(Debug, Clone)]
pub struct Signer<'a> {
    /// The signing key.
    pub key_id: KeyId,
    /// The grant that gave the role.
    pub grant: &'a UsedGrant,
}

/// What `pull` established from logged entries, to be proven current.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    /// Model name.
    pub name: &'a ModelName,
    /// The version whose publish was proven.
    pub version: &'a Version,
    /// Its digest.
    pub digest: Digest,
    /// Leaf of its publish.
    pub publish_index: u64,
    /// Other versions of the name said to share the digest (a tag's target
    /// may be published under several versions).
    pub also: &'a [Version],
    /// The publish's signer.
    pub publisher: Signer<'a>,
    /// For `name:tag`: the tag, the proven move's leaf and its signer.
    pub tag: Option<(&'a TagName, u64, Signer<'a>)>,
    /// Whether a hold on the name or one of the versions refuses the claim.
    pub refuse_held: bool,
}

/// The statuses proven current, version by version.
#[derive(Debug, Clone)]
pub struct Current {
    /// Every version checked with its current status.
    pub statuses: Vec<(Version, Lifecycle)>,
    /// The tree size they are proven at.
    pub size: u64,
}

fn grant_key(g: &UsedGrant) -> StateKey {
    StateKey::Grant { actor: g.actor.clone(), role: g.role, pattern: g.pattern.clone() }
}

/// Proves `claim` current under `checkpoint` (see the module docs).
pub fn prove_current(trust: &Trust, checkpoint: &Trusted, claim: &Claim) -> Result<Current> {
    let version_key = |v: &Version| StateKey::Version { name: claim.name.clone(), version: v.clone() };
    let mut versions = vec![claim.version.clone()];
    versions.extend(claim.also.iter().filter(|v| *v != claim.version).cloned());
    let mut keys: Vec<StateKey> = versions.iter().map(version_key).collect();
    let mut signers = vec![&claim.publisher];
    if let Some((tag, _, signer)) = &claim.tag {
        keys.push(StateKey::Tag { name: claim.name.clone(), tag: (*tag).clone() });
        keys.push(StateKey::Protection { name: claim.name.clone(), tag: (*tag).clone() });
        signers.push(signer);
    }
    for s in &signers {
        keys.push(StateKey::ActorKey { key_id: s.key_id });
        keys.push(grant_key(s.grant));
    }
    let hold_keys: Vec<StateKey> = std::iter::once(None)
        .chain(versions.iter().cloned().map(Some))
        .map(|version| StateKey::Hold { name: claim.name.clone(), version })
        .collect();
    if claim.refuse_held {
        keys.extend(hold_keys.iter().cloned());
    }
    let state = prove(trust, checkpoint, &keys)?;
    let at = state.size;
    let fail = |m: String| Error::verify(format!("{m} (state proven at checkpoint {at})"));

    let mut statuses = Vec::new();
    for v in &versions {
        match state.get(&version_key(v)) {
            Some(StateValue::Version(rec)) if rec.digest == claim.digest => {
                statuses.push((v.clone(), rec.status))
            }
            Some(StateValue::Version(rec)) if v == claim.version => {
                return Err(fail(format!(
                    "{}@{} is {} in the registry state, not the proven publish's {}",
                    claim.name.as_str(),
                    v.as_str(),
                    rec.digest,
                    claim.digest
                )))
            }
            // Another version the log named with another digest, or not
            // at all: it just does not count.
            Some(_) | None if v != claim.version => {}
            _ => {
                return Err(fail(format!(
                    "{}@{} is not in the registry state",
                    claim.name.as_str(),
                    v.as_str()
                )))
            }
        }
    }
    if let Some(StateValue::Version(rec)) = state.get(&version_key(claim.version)) {
        if rec.publish_index != claim.publish_index {
            return Err(fail(format!(
                "{}@{} was published at entry {}, not {}",
                claim.name.as_str(),
                claim.version.as_str(),
                rec.publish_index,
                claim.publish_index
            )));
        }
    }

    if let Some((tag, move_index, _)) = &claim.tag {
        match state.get(&StateKey::Tag { name: claim.name.clone(), tag: (*tag).clone() }) {
            Some(StateValue::Tag(t)) if t.index == *move_index && t.digest == claim.digest => {}
            Some(StateValue::Tag(t)) => {
                return Err(fail(format!(
                    "{}:{} currently points at {} (move at entry {}), not the move at entry {move_index} the log served",
                    claim.name.as_str(),
                    tag.as_str(),
                    t.digest,
                    t.index
                )))
            }
            _ => return Err(fail(format!("{}:{} is not in the registry state", claim.name.as_str(), tag.as_str()))),
        }
        // Built-in rules first (no statement can weaken them), then a
        // protection set by a `protect` statement, as the registry decides.
        let required: Option<Vec<Lifecycle>> = match builtin_requirement(tag.as_str()) {
            Some(b) => Some(b.to_vec()),
            None => {
                match state.get(&StateKey::Protection { name: claim.name.clone(), tag: (*tag).clone() }) {
                    Some(StateValue::Protection(p)) => Some(p.statuses.clone()),
                    _ => None,
                }
            }
        };
        if let Some(allowed) = required {
            let text = describe_statuses(&allowed);
            if !statuses.iter().any(|(_, s)| allowed.contains(s)) {
                let now: Vec<String> =
                    statuses.iter().map(|(v, s)| format!("{} is {}", v.as_str(), s.as_str())).collect();
                return Err(fail(format!(
                    "{}:{} is disqualified, refusing to use it: the tag requires a version in {text}, but {}",
                    claim.name.as_str(),
                    tag.as_str(),
                    now.join(", ")
                )));
            }
        }
    }

    for s in &signers {
        check_signer(&state, s).map_err(fail)?;
    }
    if claim.refuse_held {
        for key in &hold_keys {
            if let Some(StateValue::Hold(index)) = state.get(key) {
                return Err(fail(format!(
                    "{} is held (hold at entry {index}), refusing to use it until a release",
                    match key {
                        StateKey::Hold { version: Some(v), .. } =>
                            format!("{}@{}", claim.name.as_str(), v.as_str()),
                        _ => claim.name.as_str().to_owned(),
                    }
                )));
            }
        }
    }
    Ok(Current { statuses, size: at })
}

fn check_signer(state: &ProvenState, s: &Signer) -> std::result::Result<(), String> {
    let key = StateKey::ActorKey { key_id: s.key_id };
    match state.get(&key) {
        Some(StateValue::ActorKey(k)) => {
            if let Some(KeyEnd::Revoked(at)) = k.end {
                return Err(format!(
                    "{} of {} was revoked at entry {at}: what it signed is not trusted",
                    describe(&key),
                    k.actor.as_str()
                ));
            }
        }
        _ => return Err(format!("{} is not in the registry state", describe(&key))),
    }
    let grant = grant_key(s.grant);
    match state.get(&grant) {
        Some(StateValue::Grant(_)) => Ok(()),
        _ => Err(format!("the {} was revoked", describe(&grant))),
    }
}
