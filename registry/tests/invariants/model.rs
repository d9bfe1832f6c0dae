//! An independent model of the registry, written from docs/protocol.md
//! (sections 3 and 5), not from `registry/src/registry`: who holds which role,
//! which keys are bound and live, what was published and approved. Every
//! statement the registry accepts is checked against it *before* the model
//! applies it: a violation is a statement the documented rules forbid that
//! the rule code let through (or a divergence between the two states).

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};

use custody_registry::actor_key::KeyId;
use custody_registry::names::{ActorName, Digest, ModelName, Pattern, TagName, Version};
use custody_registry::registry::{Lifecycle, Registry, Role};
use custody_registry::statement::events::BreakGlass;
use custody_registry::statement::{Event, Statement};

/// The invariant families, so a test can check one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inv {
    /// Every statement but the genesis is signed by a live key bound to
    /// its actor.
    LiveKey,
    /// Roles are held only through grants by admins over the pattern (so a
    /// chain of grants back to the genesis), and each action needs its
    /// role; the registry's holdings match the model's.
    Roles,
    /// A key is bound to an existing actor only by someone with authority
    /// over everything that actor holds.
    Binding,
    /// An access (and a publish claiming a digest published under another
    /// name) needs reader on a name whose authorized publish has that
    /// digest.
    Access,
    /// Production, and the protected tags `production` and `staging`, only
    /// with an approval from an actor other than the publisher and the
    /// promoter, made with a key live then and not revoked since.
    TwoPerson,
    /// A tag protected by `protect` (set only by an admin over the name,
    /// never on `production` or `staging`) points only at a digest with a
    /// version in one of its statuses when moved; the registry's
    /// protections match the model's.
    Protect,
}

/// A violation: which invariant and what happened.
pub type Violation = (Inv, String);

#[derive(Clone, Debug)]
struct KeyState {
    actor: ActorName,
    revoked: bool,
    rotated: bool,
}

#[derive(Clone, Debug)]
struct VersionState {
    digest: Digest,
    publisher: ActorName,
    state: Lifecycle,
    /// (approver, key, leaf index).
    approvals: Vec<(ActorName, KeyId, u64)>,
    /// Leaf at which the version last left production.
    left_production: Option<u64>,
}

/// The model state.
#[derive(Default, Debug)]
pub struct Model {
    keys: HashMap<KeyId, KeyState>,
    current: HashMap<ActorName, KeyId>,
    grants: HashMap<ActorName, BTreeSet<(Role, String)>>,
    versions: HashMap<(ModelName, Version), VersionState>,
    /// digest -> names that published it.
    publishes: HashMap<Digest, BTreeSet<ModelName>>,
    production: HashMap<ModelName, Version>,
    /// (name, tag) -> statuses set by the last `protect`.
    protections: HashMap<(ModelName, TagName), Vec<Lifecycle>>,
}

/// "An admin's pattern must cover the pattern it grants or revokes on (`*`
/// covers all; `org/*` covers `org/*` and `org/x`; an exact name covers
/// itself)."
fn covers(outer: &str, inner: &str) -> bool {
    if outer == "*" {
        return true;
    }
    if let Some(org) = outer.strip_suffix("/*") {
        return inner == outer || inner.split_once('/').is_some_and(|(o, m)| o == org && m != "*");
    }
    outer == inner
}

/// "`admin` implies every role; every role implies `reader`."
fn implies(held: Role, needed: Role) -> bool {
    held == needed || held == Role::Admin || needed == Role::Reader
}

fn pat(p: &Pattern) -> String {
    p.to_string()
}

impl Model {
    /// The genesis admin.
    pub fn new() -> Self {
        Model::default()
    }

    fn holds(&self, actor: &ActorName, needed: Role, name: &ModelName) -> bool {
        self.grants
            .get(actor)
            .is_some_and(|g| g.iter().any(|(r, p)| implies(*r, needed) && covers(p, name.as_str())))
    }

    fn admin_over(&self, actor: &ActorName, pattern: &str) -> bool {
        self.grants.get(actor).is_some_and(|g| g.iter().any(|(r, p)| *r == Role::Admin && covers(p, pattern)))
    }

    fn key_live(&self, id: &KeyId) -> bool {
        self.keys.get(id).is_some_and(|k| !k.revoked && !k.rotated)
    }

    /// Approvals of `v` that count for a promotion (or protected tag) by
    /// `by`: from an actor other than the publisher and `by`, with a key
    /// not revoked since, by an actor that still holds approver.
    fn valid_approvals(&self, name: &ModelName, v: &VersionState, by: &ActorName) -> usize {
        self.valid_approvals_since(name, v, by, None)
    }

    /// [`Model::valid_approvals`] made after leaf `since`.
    fn valid_approvals_since(
        &self,
        name: &ModelName,
        v: &VersionState,
        by: &ActorName,
        since: Option<u64>,
    ) -> usize {
        v.approvals
            .iter()
            .filter(|(who, key, at)| {
                since.map_or(true, |s| *at > s)
                    && who != &v.publisher
                    && who != by
                    && self.keys.get(key).is_some_and(|k| !k.revoked)
                    && self.holds(who, Role::Approver, name)
            })
            .count()
    }

    /// Checks `stmt`, accepted by the registry at `index`, against the
    /// invariants, then applies it to the model.
    pub fn observe(&mut self, stmt: &Statement, index: u64) -> Vec<Violation> {
        let mut out = Vec::new();
        let who = &stmt.actor;
        let mut fail =
            |inv: Inv, msg: String| out.push((inv, format!("leaf {index} ({}): {msg}", stmt.event.action())));
        if index == 0 {
            // The genesis: a self-signed grant of admin on `*`.
            match &stmt.event {
                Event::Grant(g)
                    if g.role == Role::Admin && g.pattern == Pattern::All && g.key.id() == stmt.key_id => {}
                _ => fail(Inv::Roles, "the genesis is not a self-signed admin grant on *".into()),
            }
        } else {
            match self.keys.get(&stmt.key_id) {
                Some(k) if &k.actor == who && !k.revoked && !k.rotated => {}
                Some(k) => fail(
                    Inv::LiveKey,
                    format!(
                        "{} signed with a key of {} that is not live ({k:?})",
                        who.as_str(),
                        k.actor.as_str()
                    ),
                ),
                None => fail(Inv::LiveKey, format!("{} signed with an unbound key", who.as_str())),
            }
            let need = |m: &Model, role: Role, name: &ModelName| m.holds(who, role, name);
            match &stmt.event {
                Event::Publish(p) => {
                    if !need(self, Role::Publisher, &p.name) {
                        fail(Inv::Roles, format!("{} lacks publisher on {}", who.as_str(), p.name.as_str()));
                    }
                    // "if `digest` is already published (under any name),
                    // also `reader` on a name that published it".
                    let others: Vec<&ModelName> =
                        self.publishes.get(&p.digest).into_iter().flatten().collect();
                    let known = self.versions.contains_key(&(p.name.clone(), p.version.clone()));
                    if !known && !others.is_empty() && !others.iter().any(|n| need(self, Role::Reader, n)) {
                        fail(
                            Inv::Access,
                            format!(
                                "{} claimed a digest stored under {others:?} without reading any",
                                who.as_str()
                            ),
                        );
                    }
                }
                Event::Access(a) => {
                    if !need(self, Role::Reader, &a.name) {
                        fail(
                            Inv::Access,
                            format!("{} read {} without reader on it", who.as_str(), a.name.as_str()),
                        );
                    }
                    match self.versions.get(&(a.name.clone(), a.version.clone())) {
                        Some(v) if v.digest == a.digest => {}
                        v => fail(
                            Inv::Access,
                            format!(
                                "{} read {} of a version that did not publish it: {v:?}",
                                who.as_str(),
                                a.digest
                            ),
                        ),
                    }
                }
                Event::Tag(t) => {
                    if !need(self, Role::Maintainer, &t.name) {
                        fail(Inv::Roles, format!("{} lacks maintainer on {}", who.as_str(), t.name.as_str()));
                    }
                    // "`production` may only point at a digest with a version
                    // of the name in `production`, `staging` at one in
                    // `staging` or `production`."
                    // "A tag protected by `protect` may only be moved to a
                    // digest with a version in one of its statuses."
                    let (allowed, inv): (&[Lifecycle], Inv) = match t.tag.as_str() {
                        "production" => (&[Lifecycle::Production], Inv::TwoPerson),
                        "staging" => (&[Lifecycle::Staging, Lifecycle::Production], Inv::TwoPerson),
                        _ => match self.protections.get(&(t.name.clone(), t.tag.clone())) {
                            Some(set) => (set, Inv::Protect),
                            None => (&[], Inv::Protect),
                        },
                    };
                    let ok = allowed.is_empty()
                        || self.versions.iter().any(|((n, _), v)| {
                            n == &t.name && v.digest == t.digest && allowed.contains(&v.state)
                        });
                    if !ok {
                        fail(
                            inv,
                            format!(
                                "{} moved protected tag {} to a digest without a version in {allowed:?}",
                                who.as_str(),
                                t.tag.as_str()
                            ),
                        );
                    }
                }
                Event::Promote(p) => {
                    if !need(self, Role::Maintainer, &p.name) {
                        fail(Inv::Roles, format!("{} lacks maintainer on {}", who.as_str(), p.name.as_str()));
                    }
                    if p.to == Lifecycle::Production {
                        match self.versions.get(&(p.name.clone(), p.version.clone())) {
                            Some(v) if self.valid_approvals(&p.name, v, who) > 0 => {}
                            v => fail(
                                Inv::TwoPerson,
                                format!(
                                    "{} promoted to production without a valid approval: {v:?}",
                                    who.as_str()
                                ),
                            ),
                        }
                    }
                }
                Event::Approve(a) => {
                    if !need(self, Role::Approver, &a.name) {
                        fail(Inv::Roles, format!("{} lacks approver on {}", who.as_str(), a.name.as_str()));
                    }
                }
                Event::Rollback(r) => {
                    if !need(self, Role::Maintainer, &r.name) {
                        fail(Inv::Roles, format!("{} lacks maintainer on {}", who.as_str(), r.name.as_str()));
                    }
                    // "made *after* the version last left production: the
                    // approvals of its first promotion are spent."
                    match self.versions.get(&(r.name.clone(), r.version.clone())) {
                        Some(v) if self.valid_approvals_since(&r.name, v, who, v.left_production) > 0 => {}
                        v => fail(
                            Inv::TwoPerson,
                            format!(
                                "{} rolled back to production without a fresh approval: {v:?}",
                                who.as_str()
                            ),
                        ),
                    }
                }
                // Holds, deploy, transfer and break-glass are not generated
                // by the ops (registry/tests/registry_holds.rs checks them).
                Event::Hold(_)
                | Event::Release(_)
                | Event::Deploy(_)
                | Event::Transfer(_)
                | Event::BreakGlass(_) => {}
                Event::Grant(g) => {
                    if !self.admin_over(who, &pat(&g.pattern)) {
                        fail(Inv::Roles, format!("{} lacks admin over {}", who.as_str(), g.pattern));
                    }
                    let rebinding = self.current.get(&g.actor) != Some(&g.key.id());
                    let exists = self.current.contains_key(&g.actor)
                        || self.grants.get(&g.actor).is_some_and(|s| !s.is_empty());
                    if rebinding && exists && !self.admin_over(who, "*") {
                        let held = self.grants.get(&g.actor).cloned().unwrap_or_default();
                        let beyond: Vec<_> = held.iter().filter(|(_, p)| !self.admin_over(who, p)).collect();
                        if !beyond.is_empty() {
                            fail(Inv::Binding, format!(
                                "{} bound a new key to {}, who holds {beyond:?} beyond the granter's authority",
                                who.as_str(), g.actor.as_str()
                            ));
                        }
                    }
                }
                Event::Revoke(r) => {
                    if !self.admin_over(who, &pat(&r.pattern)) {
                        fail(Inv::Roles, format!("{} lacks admin over {}", who.as_str(), r.pattern));
                    }
                }
                Event::RevokeKey(r) => {
                    if &r.actor != who && !self.admin_over(who, "*") {
                        fail(
                            Inv::Roles,
                            format!(
                                "{} revoked a key of {} without admin on *",
                                who.as_str(),
                                r.actor.as_str()
                            ),
                        );
                    }
                }
                Event::Protect(p) => {
                    // "signed by an admin over the name; `production` and
                    // `staging` cannot be protected (their rules are built
                    // in)."
                    if !need(self, Role::Admin, &p.name) {
                        fail(Inv::Protect, format!("{} lacks admin on {}", who.as_str(), p.name.as_str()));
                    }
                    if matches!(p.tag.as_str(), "production" | "staging") {
                        fail(
                            Inv::Protect,
                            format!("{} changed the built-in rule of {}", who.as_str(), p.tag),
                        );
                    }
                    if p.statuses.is_empty() {
                        fail(Inv::Protect, "an empty status set".into());
                    }
                }
                Event::Rotate(_) => {}
            }
        }
        self.apply(stmt, index);
        out
    }

    fn apply(&mut self, stmt: &Statement, index: u64) {
        let who = stmt.actor.clone();
        match &stmt.event {
            Event::Grant(g) => {
                let id = g.key.id();
                if self.current.get(&g.actor) != Some(&id) {
                    self.keys.insert(id, KeyState { actor: g.actor.clone(), revoked: false, rotated: false });
                    self.current.insert(g.actor.clone(), id);
                }
                self.grants.entry(g.actor.clone()).or_default().insert((g.role, pat(&g.pattern)));
            }
            Event::Revoke(r) => {
                if let Some(s) = self.grants.get_mut(&r.actor) {
                    s.remove(&(r.role, pat(&r.pattern)));
                }
            }
            Event::RevokeKey(r) => {
                if let Some(k) = self.keys.get_mut(&r.key_id) {
                    k.revoked = true;
                }
            }
            Event::Rotate(r) => {
                if let Some(k) = self.keys.get_mut(&stmt.key_id) {
                    k.rotated = true;
                }
                let id = r.new_key.id();
                self.keys.insert(id, KeyState { actor: who.clone(), revoked: false, rotated: false });
                self.current.insert(who, id);
            }
            Event::Publish(p) => {
                self.versions.entry((p.name.clone(), p.version.clone())).or_insert_with(|| VersionState {
                    digest: p.digest,
                    publisher: who,
                    state: Lifecycle::Development,
                    approvals: Vec::new(),
                    left_production: None,
                });
                self.publishes.entry(p.digest).or_default().insert(p.name.clone());
            }
            Event::Approve(a) => {
                if let Some(v) = self.versions.get_mut(&(a.name.clone(), a.version.clone())) {
                    v.approvals.push((who, stmt.key_id, index));
                }
            }
            Event::Promote(p) => self.set_state(&p.name, &p.version, p.to, index),
            Event::Rollback(r) => self.set_state(&r.name, &r.version, Lifecycle::Production, index),
            Event::Protect(p) => {
                self.protections.insert((p.name.clone(), p.tag.clone()), p.statuses.clone());
            }
            Event::BreakGlass(BreakGlass::Promote(p)) => self.set_state(&p.name, &p.version, p.to, index),
            Event::BreakGlass(BreakGlass::Rollback(r)) => {
                self.set_state(&r.name, &r.version, Lifecycle::Production, index)
            }
            Event::Access(_)
            | Event::Tag(_)
            | Event::BreakGlass(BreakGlass::Tag(_))
            | Event::Hold(_)
            | Event::Release(_)
            | Event::Deploy(_)
            | Event::Transfer(_) => {}
        }
    }

    /// "A name has one production version: promoting another one moves the
    /// current one to `deprecated` in the same step."
    fn set_state(&mut self, name: &ModelName, version: &Version, to: Lifecycle, index: u64) {
        if to == Lifecycle::Production {
            if let Some(old) = self.production.insert(name.clone(), version.clone()) {
                if &old != version {
                    if let Some(v) = self.versions.get_mut(&(name.clone(), old)) {
                        v.state = Lifecycle::Deprecated;
                        v.left_production = Some(index);
                    }
                }
            }
        } else if self.production.get(name) == Some(version) {
            self.production.remove(name);
            if let Some(v) = self.versions.get_mut(&(name.clone(), version.clone())) {
                v.left_production = Some(index);
            }
        }
        if let Some(v) = self.versions.get_mut(&(name.clone(), version.clone())) {
            v.state = to;
        }
    }

    /// Compares the registry's state with the model's: holdings, bound
    /// keys, production versions.
    pub fn compare(&self, reg: &Registry) -> Vec<Violation> {
        let mut out = Vec::new();
        for a in reg.actors() {
            let theirs: BTreeSet<(Role, String)> =
                a.grants.iter().map(|g| (g.role, pat(&g.pattern))).collect();
            let ours = self.grants.get(&a.name).cloned().unwrap_or_default();
            if theirs != ours {
                out.push((
                    Inv::Roles,
                    format!(
                        "{} holds {theirs:?} in the registry, {ours:?} by the documented rules",
                        a.name.as_str()
                    ),
                ));
            }
            if a.current_key.is_some() && a.current_key.as_ref() != self.current.get(&a.name) {
                out.push((
                    Inv::LiveKey,
                    format!("{}'s current key differs from the model's", a.name.as_str()),
                ));
            }
        }
        let theirs: HashMap<(ModelName, TagName), Vec<Lifecycle>> = reg
            .models()
            .flat_map(|(n, m)| {
                m.protections().iter().map(|(t, p)| ((n.clone(), t.clone()), p.statuses.clone()))
            })
            .collect();
        if theirs != self.protections {
            out.push((
                Inv::Protect,
                format!("protections {theirs:?} in the registry, {:?} by the rules", self.protections),
            ));
        }
        for (name, m) in reg.models() {
            if m.production.as_ref() != self.production.get(name) {
                out.push((
                    Inv::TwoPerson,
                    format!(
                        "{}: production {:?} in the registry, {:?} by the rules",
                        name.as_str(),
                        m.production,
                        self.production.get(name)
                    ),
                ));
            }
        }
        out
    }
}
