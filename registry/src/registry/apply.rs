//! The writing half: performs exactly the [`Effect`] a check computed.
//! Every lookup here was proven to succeed by the check against the same
//! generation, so a failed `expect` means the check and apply halves
//! disagree (a bug in this module), never bad input.

use crate::names::Pattern;
use crate::registry::effect::{Applied, Effect};
use crate::registry::lifecycle::Lifecycle;
use crate::registry::roles::{Grant, Role};
use crate::registry::state::{
    ActorRecord, Approval, HoldRecord, KeyEnd, KeyRecord, Protection, StatusChange, TagMoveRecord, TagRecord,
    VersionRecord,
};
use crate::registry::{Accepted, ApplyError, Registry};

pub(super) fn apply(reg: &mut Registry, a: Accepted) -> Result<Applied, ApplyError> {
    if a.generation != reg.generation {
        return Err(ApplyError::Stale);
    }
    if let Some(last) = reg.last_index {
        if a.index <= last {
            return Err(ApplyError::IndexOrder { last, given: a.index });
        }
    }
    let index = a.index;
    let st = &mut reg.state;
    match &a.effect {
        Effect::Genesis { actor, key } => {
            bind_key(st, actor, key, index);
            let rec = st.actors.get_mut(actor).expect("just bound");
            rec.grants.push(Grant { role: Role::Admin, pattern: Pattern::All, index });
        }
        Effect::Granted { actor, key, bind_key: bind, role, pattern } => {
            if *bind {
                bind_key(st, actor, key, index);
            }
            let rec = st.actors.get_mut(actor).expect("granted actor exists");
            rec.grants.push(Grant { role: *role, pattern: pattern.clone(), index });
        }
        Effect::Revoked { actor, role, pattern } => {
            let rec = st.actors.get_mut(actor).expect("revoked actor exists");
            rec.grants.retain(|g| !(g.role == *role && g.pattern == *pattern));
        }
        Effect::KeyRevoked { actor, key_id } => {
            st.keys.get_mut(key_id).expect("revoked key exists").ended = Some(KeyEnd::Revoked(index));
            let rec = st.actors.get_mut(actor).expect("key owner exists");
            if rec.current_key == Some(*key_id) {
                rec.current_key = None;
            }
        }
        Effect::Rotated { actor, old, new } => {
            st.keys.get_mut(old).expect("old key exists").ended = Some(KeyEnd::Rotated(index));
            st.actors.get_mut(actor).expect("rotating actor exists").current_key = None;
            bind_key(st, actor, new, index);
        }
        Effect::Published { name, version, digest, size, kind, media_type, lineage } => {
            let model = st.models.entry(name.clone()).or_default();
            model.versions.insert(
                version.clone(),
                VersionRecord {
                    digest: *digest,
                    size: *size,
                    kind: *kind,
                    media_type: media_type.clone(),
                    publisher: a.actor.clone(),
                    published_at: index,
                    state: Lifecycle::Development,
                    history: vec![StatusChange { state: Lifecycle::Development, index }],
                    ever_production: false,
                    approvals: Vec::new(),
                    lineage: lineage.clone(),
                },
            );
            st.digests.entry(*digest).or_default().push((name.clone(), version.clone()));
        }
        Effect::Accessed { .. } | Effect::Deployed { .. } | Effect::Transferred { .. } => {}
        Effect::Held { name, version } => {
            let model = st.models.entry(name.clone()).or_default();
            model.holds.push(HoldRecord { version: version.clone(), index });
        }
        Effect::Released { name, version } => {
            let model = st.models.get_mut(name).expect("released name exists");
            model.holds.retain(|h| h.version != *version);
        }
        Effect::Tagged { name, tag, digest, .. } => {
            let model = st.models.get_mut(name).expect("tagged name exists");
            let rec = model.tags.entry(tag.clone()).or_insert_with(|| TagRecord { moves: Vec::new() });
            rec.moves.push(TagMoveRecord { index, digest: *digest });
        }
        Effect::Protected { name, tag, statuses, .. } => {
            let model = st.models.entry(name.clone()).or_default();
            model.protections.insert(tag.clone(), Protection { statuses: statuses.clone(), index });
        }
        Effect::Promoted { name, version, to, demoted, .. } => {
            let model = st.models.get_mut(name).expect("promoted name exists");
            if let Some(d) = demoted {
                set_state(
                    model.versions.get_mut(d).expect("production version exists"),
                    Lifecycle::Deprecated,
                    index,
                );
            }
            set_state(model.versions.get_mut(version).expect("promoted version exists"), *to, index);
            if *to == Lifecycle::Production {
                model.production = Some(version.clone());
            } else if model.production.as_ref() == Some(version) {
                model.production = None;
            }
        }
        Effect::Approved { name, version } => {
            let v = st
                .models
                .get_mut(name)
                .and_then(|m| m.versions.get_mut(version))
                .expect("approved version exists");
            v.approvals.push(Approval { actor: a.actor.clone(), index, key_id: a.key_id });
        }
        Effect::RolledBack { name, version, demoted } => {
            let model = st.models.get_mut(name).expect("rolled-back name exists");
            if let Some(d) = demoted {
                set_state(
                    model.versions.get_mut(d).expect("production version exists"),
                    Lifecycle::Deprecated,
                    index,
                );
            }
            set_state(
                model.versions.get_mut(version).expect("rollback target exists"),
                Lifecycle::Production,
                index,
            );
            model.production = Some(version.clone());
        }
    }
    reg.nonces.insert_id(a.nonce_id, a.nonce_expiry_ms);
    reg.nonces.prune(a.now_ms);
    reg.clock_ms = a.now_ms;
    reg.last_index = Some(index);
    reg.generation += 1;
    Ok(Applied { index, actor: a.actor, key_id: a.key_id, effect: a.effect })
}

fn set_state(v: &mut VersionRecord, state: Lifecycle, index: u64) {
    v.state = state;
    v.history.push(StatusChange { state, index });
    if state == Lifecycle::Production {
        v.ever_production = true;
    }
}

fn bind_key(
    st: &mut crate::registry::state::State,
    actor: &crate::names::ActorName,
    key: &crate::actor_key::ActorKey,
    index: u64,
) {
    st.keys
        .insert(key.id(), KeyRecord { key: key.clone(), actor: actor.clone(), bound_at: index, ended: None });
    let rec = st.actors.entry(actor.clone()).or_insert_with(|| ActorRecord {
        name: actor.clone(),
        current_key: None,
        keys: Vec::new(),
        grants: Vec::new(),
    });
    rec.current_key = Some(key.id());
    rec.keys.push(key.id());
}
