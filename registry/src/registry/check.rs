//! The read-only half: every rule a statement must pass, in the order
//! documented in the module above. Nothing here mutates.

use crate::names::{ActorName, ModelName, Pattern};
use crate::registry::effect::Effect;
use crate::registry::holds::{self, name_not_held, not_held};
use crate::registry::lifecycle::{builtin_requirement, Lifecycle};
use crate::registry::nonces::NonceId;
use crate::registry::reject::Rejection;
use crate::registry::roles::{admin_over, holds, Role};
use crate::registry::state::{tag_requirement, ActorRecord, Approval, KeyEnd, VersionRecord};
use crate::registry::{Accepted, Registry, Verdict};
use crate::statement::events::{BreakGlass, GrantRole, Promote, Protect, Publish, Rollback, TagMove};
use crate::statement::{Event, Statement};

pub(super) fn check(
    reg: &Registry,
    stmt: &Statement,
    index: u64,
    receive_ms: u64,
) -> Result<Verdict, Rejection> {
    let now_ms = receive_ms.max(reg.clock_ms);
    // 1. Key (genesis has no key yet: the grant introduces it).
    reg.signing_key(stmt)?;
    let genesis = reg.state.actors.is_empty();
    // 2. Time.
    let t = stmt.time.unix_millis();
    if t.abs_diff(now_ms) > reg.config.window_ms {
        return Err(Rejection::TimestampOutsideWindow {
            time: stmt.time,
            now_ms,
            window_ms: reg.config.window_ms,
        });
    }
    // One fingerprint serves the replay check and, once applied, the window.
    let nonce_id = NonceId::of(&stmt.key_id, &stmt.nonce);
    let accept = |effect| {
        Verdict::Append(Box::new(Accepted {
            index,
            now_ms,
            actor: stmt.actor.clone(),
            key_id: stmt.key_id,
            nonce_expiry_ms: t.saturating_add(reg.config.window_ms),
            nonce_id,
            generation: reg.generation,
            effect,
        }))
    };
    if genesis {
        return genesis_effect(stmt).map(accept);
    }
    let actor = reg.state.actors.get(&stmt.actor).expect("a live key's actor exists");
    // 3. Role.
    authorize(reg, actor, &stmt.event)?;
    // 4. Idempotent publish.
    if let Event::Publish(p) = &stmt.event {
        if let Some(v) = reg.version(&p.name, &p.version) {
            if v.digest == p.digest && v.size == p.size {
                return Ok(Verdict::AlreadyLogged { index: v.published_at });
            }
            return Err(Rejection::VersionExists {
                name: p.name.clone(),
                version: p.version.clone(),
                index: v.published_at,
            });
        }
    }
    // 5. Replay.
    if reg.nonces.contains_id(nonce_id, now_ms) {
        return Err(Rejection::Replay);
    }
    // 6. Event rules.
    rules(reg, stmt).map(accept)
}

fn genesis_effect(stmt: &Statement) -> Result<Effect, Rejection> {
    // `signing_key` already required a grant whose key signed it.
    let Event::Grant(g) = &stmt.event else { unreachable!("signing_key admits only a grant as genesis") };
    if g.role != Role::Admin || g.pattern != Pattern::All {
        return Err(Rejection::InvalidGenesis("the first statement must grant admin on *"));
    }
    if g.actor != stmt.actor {
        return Err(Rejection::InvalidGenesis("the genesis grant must be to its own signer"));
    }
    Ok(Effect::Genesis { actor: g.actor.clone(), key: g.key.clone() })
}

fn forbidden(actor: &ActorRecord, role: Role, scope: String) -> Rejection {
    Rejection::Forbidden { actor: actor.name.clone(), role, scope }
}

fn need(actor: &ActorRecord, role: Role, name: &ModelName) -> Result<(), Rejection> {
    if holds(&actor.grants, role, name) {
        Ok(())
    } else {
        Err(forbidden(actor, role, name.to_string()))
    }
}

fn need_admin(actor: &ActorRecord, pattern: &Pattern) -> Result<(), Rejection> {
    if admin_over(&actor.grants, pattern) {
        Ok(())
    } else {
        Err(forbidden(actor, Role::Admin, pattern.to_string()))
    }
}

fn authorize(reg: &Registry, actor: &ActorRecord, event: &Event) -> Result<(), Rejection> {
    match event {
        Event::Publish(p) => {
            need(actor, Role::Publisher, &p.name)?;
            // Claiming bytes someone already published reads them (the
            // server hands them out under the new name): the claimant must
            // be a reader of a name that published them.
            let names = reg.publishes_of(&p.digest);
            if names.is_empty() || names.iter().any(|(n, _)| holds(&actor.grants, Role::Reader, n)) {
                Ok(())
            } else {
                Err(forbidden(actor, Role::Reader, format!("any name that published {}", p.digest)))
            }
        }
        Event::Access(a) => need(actor, Role::Reader, &a.name),
        Event::Tag(e) => need(actor, Role::Maintainer, &e.name),
        Event::Promote(e) => need(actor, Role::Maintainer, &e.name),
        Event::Rollback(e) => need(actor, Role::Maintainer, &e.name),
        Event::Approve(e) => need(actor, Role::Approver, &e.name),
        // Protection governs what maintainers may do with a name: only
        // those who govern the name's roles may set it.
        Event::Protect(e) => need(actor, Role::Admin, &e.name),
        Event::Grant(g) => need_admin(actor, &g.pattern).and_then(|()| rebind(reg, actor, g)),
        Event::Revoke(r) => need_admin(actor, &r.pattern),
        // An actor may always kill its own key; anyone else's needs root.
        Event::RevokeKey(k) if k.actor == actor.name => Ok(()),
        Event::RevokeKey(_) => need_admin(actor, &Pattern::All),
        Event::Rotate(_) => Ok(()),
        // A hold stops maintainers and readers: those who sign off what
        // reaches production may stop it too.
        Event::Hold(h) | Event::Release(h) => need(actor, Role::Approver, &h.name),
        // A record of where bytes the actor may read went.
        Event::Deploy(d) => need(actor, Role::Reader, &d.name),
        Event::Transfer(t) => need(actor, Role::Reader, &t.name),
        // Bypassing a rule is for those who set the name's rules.
        Event::BreakGlass(b) => need(actor, Role::Admin, b.name()),
    }
}

fn rules(reg: &Registry, stmt: &Statement) -> Result<Effect, Rejection> {
    let st = &reg.state;
    match &stmt.event {
        Event::Publish(p) => publish(reg, p),
        Event::Access(a) => {
            let v = reg.version(&a.name, &a.version).ok_or_else(|| Rejection::UnknownVersion {
                name: a.name.clone(),
                version: a.version.clone(),
            })?;
            if v.digest != a.digest {
                return Err(Rejection::UnknownDigest(a.digest));
            }
            not_held(reg, &a.name, &a.version)?;
            Ok(Effect::Accessed { digest: a.digest })
        }
        Event::Tag(e) => tag_move(reg, e, false),
        Event::Promote(e) => promote(reg, stmt, e, false),
        Event::Approve(e) => {
            let unknown = || Rejection::UnknownVersion { name: e.name.clone(), version: e.version.clone() };
            let v = reg.version(&e.name, &e.version).ok_or_else(unknown)?;
            // Once a version left production, earlier approvals are spent
            // and each approver may approve it again (for a rollback).
            if let Some(a) = v.fresh_approvals().find(|a| a.actor == stmt.actor && !key_revoked(reg, a)) {
                return Err(Rejection::AlreadyApproved(a.index));
            }
            Ok(Effect::Approved { name: e.name.clone(), version: e.version.clone() })
        }
        Event::Rollback(e) => rollback(reg, stmt, e, false),
        Event::Protect(e) => protect(reg, e),
        Event::Grant(g) => grant(reg, g),
        Event::Revoke(r) => {
            let target = st.actors.get(&r.actor).ok_or_else(|| Rejection::UnknownActor(r.actor.clone()))?;
            if !target.grants.iter().any(|g| g.role == r.role && g.pattern == r.pattern) {
                return Err(Rejection::NoSuchGrant {
                    actor: r.actor.clone(),
                    role: r.role,
                    pattern: r.pattern.clone(),
                });
            }
            if r.role == Role::Admin && r.pattern == Pattern::All && is_last_root_admin(reg, target) {
                return Err(Rejection::LastAdmin);
            }
            Ok(Effect::Revoked { actor: r.actor.clone(), role: r.role, pattern: r.pattern.clone() })
        }
        Event::RevokeKey(k) => {
            let target = st.actors.get(&k.actor).ok_or_else(|| Rejection::UnknownActor(k.actor.clone()))?;
            let rec = st
                .keys
                .get(&k.key_id)
                .filter(|rec| rec.actor == k.actor)
                .ok_or_else(|| Rejection::NotKeyOwner { actor: k.actor.clone(), key_id: k.key_id })?;
            if rec.ended.is_some() {
                return Err(Rejection::KeyDead(k.key_id));
            }
            if is_last_root_admin(reg, target) {
                return Err(Rejection::LastAdmin);
            }
            Ok(Effect::KeyRevoked { actor: k.actor.clone(), key_id: k.key_id })
        }
        Event::Rotate(r) => {
            if st.keys.contains_key(&r.new_key.id()) {
                return Err(Rejection::KeyInUse(r.new_key.id()));
            }
            Ok(Effect::Rotated { actor: stmt.actor.clone(), old: stmt.key_id, new: r.new_key.clone() })
        }
        Event::Hold(h) => holds::hold(reg, h),
        Event::Release(h) => holds::release(reg, h),
        Event::Deploy(d) => holds::deploy(reg, d),
        Event::Transfer(t) => holds::transfer(reg, t),
        Event::BreakGlass(BreakGlass::Promote(e)) => promote(reg, stmt, e, true),
        Event::BreakGlass(BreakGlass::Rollback(e)) => rollback(reg, stmt, e, true),
        Event::BreakGlass(BreakGlass::Tag(e)) => tag_move(reg, e, true),
    }
}

/// Whether a rule that `break_glass` may bypass lets the action through:
/// without break-glass it must (else `refusal`); with it, it must not
/// (else the bypass is unneeded and refused).
fn bypassable(
    passes: bool,
    break_glass: bool,
    action: &'static str,
    refusal: Rejection,
) -> Result<(), Rejection> {
    match (passes, break_glass) {
        (true, false) | (false, true) => Ok(()),
        (false, false) => Err(refusal),
        (true, true) => Err(Rejection::BreakGlassUnneeded(action)),
    }
}

/// `tag` (`break_glass`: to a version the tag's protection refuses).
fn tag_move(reg: &Registry, e: &TagMove, break_glass: bool) -> Result<Effect, Rejection> {
    let model = reg.model(&e.name);
    if !model.is_some_and(|m| m.versions_with(&e.digest).next().is_some()) {
        return Err(Rejection::TagTarget { name: e.name.clone(), digest: e.digest });
    }
    // Held: the name, a version the tag would point at, or one it points
    // at now.
    name_not_held(reg, &e.name)?;
    let current = model.and_then(|m| m.tags.get(&e.tag)).map(|t| *t.current());
    if let Some(m) = model {
        let digests = std::iter::once(e.digest).chain(current.map(|c| c.digest));
        for d in digests {
            for (v, _) in m.versions_with(&d) {
                not_held(reg, &e.name, v)?;
            }
        }
    }
    let req = tag_requirement(model, &e.tag);
    let qualifies = match &req {
        Some(req) => model.is_some_and(|m| m.qualifies(req, &e.digest)),
        None => true,
    };
    let refusal = || Rejection::TagProtected {
        name: e.name.clone(),
        tag: e.tag.clone(),
        digest: e.digest,
        required: req.as_ref().map(|r| r.statuses.to_vec()).unwrap_or_default(),
    };
    bypassable(qualifies, break_glass, "tag move", refusal())?;
    let current = current.map(|c| c.index);
    if e.previous != current {
        return Err(Rejection::StaleTag { given: e.previous, current });
    }
    Ok(Effect::Tagged { name: e.name.clone(), tag: e.tag.clone(), digest: e.digest, previous: current })
}

/// `promote` (`break_glass`: to production without the two-person
/// approval).
fn promote(reg: &Registry, stmt: &Statement, e: &Promote, break_glass: bool) -> Result<Effect, Rejection> {
    let unknown = || Rejection::UnknownVersion { name: e.name.clone(), version: e.version.clone() };
    let v = reg.version(&e.name, &e.version).ok_or_else(unknown)?;
    not_held(reg, &e.name, &e.version)?;
    if !v.state.can_promote_to(e.to) {
        return Err(Rejection::IllegalTransition { from: v.state, to: e.to });
    }
    let mut demoted = None;
    if e.to == Lifecycle::Production {
        demoted = reg.model(&e.name).and_then(|m| m.production.clone());
        if let Some(d) = &demoted {
            not_held(reg, &e.name, d)?;
        }
        let approved = two_person_approved(reg, v, &e.name, &stmt.actor);
        bypassable(approved, break_glass, "promote", Rejection::ApprovalRequired)?;
    } else if break_glass {
        return Err(Rejection::BreakGlassUnneeded("promote"));
    }
    Ok(Effect::Promoted {
        name: e.name.clone(),
        version: e.version.clone(),
        from: v.state,
        to: e.to,
        demoted,
    })
}

/// `rollback` (`break_glass`: without a fresh two-person approval).
fn rollback(reg: &Registry, stmt: &Statement, e: &Rollback, break_glass: bool) -> Result<Effect, Rejection> {
    let unknown = || Rejection::UnknownVersion { name: e.name.clone(), version: e.version.clone() };
    let v = reg.version(&e.name, &e.version).ok_or_else(unknown)?;
    not_held(reg, &e.name, &e.version)?;
    if !v.ever_production || v.state != Lifecycle::Deprecated {
        return Err(Rejection::RollbackTarget);
    }
    let demoted = reg.model(&e.name).and_then(|m| m.production.clone());
    if let Some(d) = &demoted {
        not_held(reg, &e.name, d)?;
    }
    let approved = two_person_approved(reg, v, &e.name, &stmt.actor);
    bypassable(approved, break_glass, "rollback", Rejection::ApprovalRequired)?;
    Ok(Effect::RolledBack { name: e.name.clone(), version: e.version.clone(), demoted })
}

/// The two-person rule (see [`crate::registry::lifecycle`]): a fresh
/// approval of `v` by an actor other than its publisher and the `signer`
/// (promoter or rolling-back maintainer), who still holds `approver` on
/// `name`, signed with a key not revoked since.
fn two_person_approved(reg: &Registry, v: &VersionRecord, name: &ModelName, signer: &ActorName) -> bool {
    let st = &reg.state;
    v.fresh_approvals().any(|a| {
        a.actor != *signer
            && a.actor != v.publisher
            && !key_revoked(reg, a)
            && st.actors.get(&a.actor).is_some_and(|r| holds(&r.grants, Role::Approver, name))
    })
}

/// Whether the key that signed an approval was later revoked as
/// compromised (a key rotated away is not suspect).
fn key_revoked(reg: &Registry, a: &Approval) -> bool {
    reg.state.keys.get(&a.key_id).is_some_and(|k| matches!(k.ended, Some(KeyEnd::Revoked(_))))
}

/// A grant that binds a new key to an actor the registry already knows
/// hands the key holder every role that actor holds, so the signer must be
/// an admin over each of them, not only over the granted pattern.
fn rebind(reg: &Registry, signer: &ActorRecord, g: &GrantRole) -> Result<(), Rejection> {
    let Some(existing) = reg.state.actors.get(&g.actor) else { return Ok(()) };
    // A live key or an already bound key: no new binding (the event rules
    // refuse the mismatches with 409).
    if existing.current_key.is_some() || reg.state.keys.contains_key(&g.key.id()) {
        return Ok(());
    }
    match existing.grants.iter().find(|held| !admin_over(&signer.grants, &held.pattern)) {
        None => Ok(()),
        Some(held) => Err(Rejection::RebindForbidden {
            signer: signer.name.clone(),
            actor: g.actor.clone(),
            pattern: held.pattern.clone(),
        }),
    }
}

fn is_last_root_admin(reg: &Registry, target: &ActorRecord) -> bool {
    let mut live = reg.state.live_root_admins();
    match (live.next(), live.next()) {
        (Some(only), None) => only.name == target.name,
        _ => false,
    }
}

fn publish(reg: &Registry, p: &Publish) -> Result<Effect, Rejection> {
    // (An existing name@version was handled before the replay check.)
    if let Some(r) = p.lineage.refs().find(|r| !r.external && reg.publishes_of(&r.digest).is_empty()) {
        return Err(Rejection::UnknownLineage(r.digest));
    }
    Ok(Effect::Published {
        name: p.name.clone(),
        version: p.version.clone(),
        digest: p.digest,
        size: p.size,
        kind: p.kind,
        media_type: p.media_type.clone(),
        lineage: p.lineage.clone(),
    })
}

fn grant(reg: &Registry, g: &GrantRole) -> Result<Effect, Rejection> {
    let st = &reg.state;
    let id = g.key.id();
    let bind_key = match st.keys.get(&id) {
        Some(rec) if rec.actor != g.actor => return Err(Rejection::KeyInUse(id)),
        Some(rec) if rec.ended.is_some() => return Err(Rejection::KeyDead(id)),
        Some(_) => false,
        None => match st.actors.get(&g.actor).and_then(|a| a.current_key) {
            Some(current) => return Err(Rejection::KeyMismatch { actor: g.actor.clone(), current }),
            None => true,
        },
    };
    if let Some(existing) = st
        .actors
        .get(&g.actor)
        .and_then(|a| a.grants.iter().find(|x| x.role == g.role && x.pattern == g.pattern))
    {
        return Err(Rejection::AlreadyGranted {
            actor: g.actor.clone(),
            role: g.role,
            pattern: g.pattern.clone(),
            index: existing.index,
        });
    }
    Ok(Effect::Granted {
        actor: g.actor.clone(),
        key: g.key.clone(),
        bind_key,
        role: g.role,
        pattern: g.pattern.clone(),
    })
}

/// `protect`: never the built-in tags (their rules cannot be weakened, and
/// a narrower set would make `staging` stop accepting what the two-person
/// rule let into production). A tag that points at a non-qualifying
/// version when protected is accepted and becomes disqualified: refusing
/// would let any maintainer block protection by moving the tag first.
fn protect(reg: &Registry, p: &Protect) -> Result<Effect, Rejection> {
    if builtin_requirement(p.tag.as_str()).is_some() {
        return Err(Rejection::BuiltinTag(p.tag.clone()));
    }
    let current = reg.model(&p.name).and_then(|m| m.protections().get(&p.tag));
    if let Some(c) = current.filter(|c| c.statuses == p.statuses) {
        return Err(Rejection::AlreadyProtected { name: p.name.clone(), tag: p.tag.clone(), index: c.index });
    }
    Ok(Effect::Protected {
        name: p.name.clone(),
        tag: p.tag.clone(),
        statuses: p.statuses.clone(),
        previous: current.map(|c| c.index),
    })
}
