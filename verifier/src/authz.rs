//! "Did the signer hold the right at that point?", established from proven
//! log entries rather than the server's word, without a full replay.
//!
//! The server's actor query (`/registry/actors/<actor>`) is used only as an
//! index: it says *where* the key binding and the grants are. Every entry a
//! decision rests on is fetched and its inclusion verified under the trusted
//! checkpoint, then checked with `custody-registry`:
//! 1. the statement's key is bound to its actor by an earlier proven `grant`
//!    (whose own signer is authorized, recursively; when the actor had a key
//!    before, the grant's signer must also be an admin over every pattern
//!    the actor held a role on, as the registry rules require) or `rotate`
//!    (signed by the previous key, recursively), or it is the genesis at
//!    entry 0 (a self-signed grant of `admin` on `*`, written by
//!    `custody-log init`);
//! 2. the envelope signature verifies with that key (core DSSE);
//! 3. an earlier proven `grant` gives the actor a role implying the one
//!    needed on a pattern covering the name, and that grant's signer was an
//!    admin over the pattern at its point, recursively down to the genesis.
//!
//! Not established here (it needs the whole log, which `custody audit`
//! replays): that no `revoke`, `revoke_key` or `rotate` *between* a grant or
//! binding and its use was hidden by the server (a key end or revoked grant
//! the server does report is honoured), and that every rule (nonces, time
//! window, lifecycle) held. A grant that was later revoked is not listed by
//! the server, so a statement authorized only by it is refused here
//! (conservatively) even though it was valid when made.

use std::collections::{HashMap, HashSet};

use custody_registry::actor_key::{ActorKey, KeyId};
use custody_registry::names::{ActorName, ModelName, Pattern};
use custody_registry::registry::Role;
use custody_registry::statement::{Event, SignedStatement};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::statements::{decode_statement, fetch_proven};
use crate::trust::{Trust, Trusted};

/// The grant that gave a statement's actor the role it needed: what a
/// loader then proves is still in force ([`crate::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedGrant {
    /// Holder.
    pub actor: ActorName,
    /// Role granted (implies the one needed).
    pub role: Role,
    /// Pattern granted.
    pub pattern: Pattern,
    /// Leaf of the grant (0: the genesis).
    pub index: u64,
}

/// Longest chain of grants followed back to the genesis.
pub const MAX_DEPTH: usize = 32;

/// What a role is needed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A model name.
    Name(ModelName),
    /// A pattern (for grants: the admin must cover it).
    Pattern(Pattern),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => write!(f, "{}", n.as_str()),
            Target::Pattern(p) => write!(f, "{p}"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct ActorInfo {
    keys: Vec<KeyInfo>,
    grants: Vec<GrantInfo>,
}

#[derive(Debug, Clone, Deserialize)]
struct KeyInfo {
    key: String,
    bound_index: u64,
    #[serde(default)]
    end_index: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
struct GrantInfo {
    role: String,
    pattern: String,
    index: u64,
}

/// Follows authorization chains through proven entries under one checkpoint.
pub struct Authz<'a> {
    trust: &'a Trust<'a>,
    checkpoint: &'a Trusted,
    entries: HashMap<u64, SignedStatement>,
    actors: HashMap<ActorName, ActorInfo>,
    established: HashSet<(u64, Role, Target)>,
    used: HashMap<(u64, Role, Target), UsedGrant>,
}

fn role_of(s: &str) -> Option<Role> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

impl<'a> Authz<'a> {
    /// Chains are checked against `checkpoint`.
    pub fn new(trust: &'a Trust<'a>, checkpoint: &'a Trusted) -> Self {
        Authz {
            trust,
            checkpoint,
            entries: HashMap::new(),
            actors: HashMap::new(),
            established: HashSet::new(),
            used: HashMap::new(),
        }
    }

    /// The statement at `index`, its inclusion verified.
    pub fn statement(&mut self, index: u64) -> Result<SignedStatement> {
        if let Some(s) = self.entries.get(&index) {
            return Ok(s.clone());
        }
        let (entry, _) = fetch_proven(self.trust, index, self.checkpoint)?;
        let s = decode_statement(&entry, index)?;
        self.entries.insert(index, s.clone());
        Ok(s)
    }

    fn actor(&mut self, name: &ActorName) -> Result<ActorInfo> {
        if let Some(a) = self.actors.get(name) {
            return Ok(a.clone());
        }
        let info: ActorInfo =
            match self.trust.client().get_json(&format!("registry/actors/{}", name.as_str())) {
                Ok(i) => i,
                Err(Error::Refused { status: 404, .. }) => {
                    return Err(Error::verify(format!("actor {} is unknown to the log", name.as_str())))
                }
                Err(e) => return Err(e),
            };
        self.actors.insert(name.clone(), info.clone());
        Ok(info)
    }

    /// Checks that `stmt` (at `index`) is signed by a key bound to its actor
    /// before `index` and not reported ended before it.
    pub fn check_signature(&mut self, stmt: &SignedStatement, index: u64, depth: usize) -> Result<()> {
        let fail = |m: String| Error::verify(format!("entry {index}: {m}"));
        if depth > MAX_DEPTH {
            return Err(fail("authorization chain too deep".into()));
        }
        let actor = stmt.statement.actor.clone();
        let id: KeyId = stmt.key_id();
        let info = self.actor(&actor)?;
        let (key, rec) = info
            .keys
            .iter()
            .filter_map(|k| ActorKey::parse(&k.key).ok().map(|key| (key, k)))
            .find(|(key, _)| key.id() == id)
            .ok_or_else(|| fail(format!("key {id} is not a key of {} in the log", actor.as_str())))?;
        if let Some(end) = rec.end_index.filter(|&e| e < index) {
            return Err(fail(format!("key {id} of {} ended at entry {end}", actor.as_str())));
        }
        stmt.verify(&key).map_err(|e| fail(format!("signature by {}: {e}", actor.as_str())))?;
        if rec.bound_index == index {
            // Only the genesis binds the key that signs it.
            return if index == 0 && is_genesis(stmt) {
                Ok(())
            } else {
                Err(fail("statement signed by a key it binds itself (only the genesis may)".into()))
            };
        }
        if rec.bound_index > index {
            return Err(fail(format!("key {id} was bound later, at entry {}", rec.bound_index)));
        }
        let binding = self.statement(rec.bound_index)?;
        match &binding.statement.event {
            Event::Grant(g) if g.actor == actor && g.key == key => {
                let at = rec.bound_index;
                self.require(&binding, at, Role::Admin, &Target::Pattern(g.pattern.clone()), depth + 1)?;
                // A key bound to an actor that existed before inherits its
                // roles: the binder must administer every one of them.
                if info.keys.iter().any(|k| k.bound_index < at) {
                    for held in info.grants.iter().filter(|h| h.index < at) {
                        let pattern = Pattern::new(&held.pattern).map_err(|e| {
                            fail(format!("the log lists a bad pattern {:?}: {e}", held.pattern))
                        })?;
                        self.require(&binding, at, Role::Admin, &Target::Pattern(pattern), depth + 1).map_err(
                            |_| {
                                fail(format!(
                                    "entry {at} binds a new key to existing actor {} without admin over {} (rebind_forbidden)",
                                    actor.as_str(),
                                    held.pattern
                                ))
                            },
                        )?;
                    }
                }
                Ok(())
            }
            Event::Rotate(r) if binding.statement.actor == actor && r.new_key == key => {
                self.check_signature(&binding, rec.bound_index, depth + 1)
            }
            _ => Err(fail(format!("entry {} does not bind key {id} to {}", rec.bound_index, actor.as_str()))),
        }
    }

    /// The grant that [`Authz::require`] found for `(index, role, target)`.
    pub fn grant_used(&self, index: u64, role: Role, target: &Target) -> Option<&UsedGrant> {
        self.used.get(&(index, role, target.clone()))
    }

    /// Checks that `stmt` (at `index`) is validly signed and that its actor
    /// held `role` on `target` at that point (see the module docs).
    pub fn require(
        &mut self,
        stmt: &SignedStatement,
        index: u64,
        role: Role,
        target: &Target,
        depth: usize,
    ) -> Result<()> {
        if self.established.contains(&(index, role, target.clone())) {
            return Ok(());
        }
        self.check_signature(stmt, index, depth)?;
        if index == 0 && is_genesis(stmt) {
            self.established.insert((index, role, target.clone()));
            let used = UsedGrant {
                actor: stmt.statement.actor.clone(),
                role: Role::Admin,
                pattern: Pattern::All,
                index,
            };
            self.used.insert((index, role, target.clone()), used);
            return Ok(());
        }
        let actor = stmt.statement.actor.clone();
        let info = self.actor(&actor)?;
        let mut last_error = None;
        for g in info.grants.iter().filter(|g| g.index < index) {
            let (Some(grole), Ok(pattern)) = (role_of(&g.role), Pattern::new(&g.pattern)) else { continue };
            let covers = match target {
                Target::Name(n) => pattern.matches(n),
                Target::Pattern(p) => pattern.covers(p),
            };
            if !grole.implies(role) || !covers {
                continue;
            }
            let gs = self.statement(g.index)?;
            let matches = matches!(&gs.statement.event,
                Event::Grant(e) if e.actor == actor && e.role == grole && e.pattern == pattern);
            if !matches {
                last_error =
                    Some(Error::verify(format!("entry {} is not the grant the log claims", g.index)));
                continue;
            }
            match self.require(&gs, g.index, Role::Admin, &Target::Pattern(pattern.clone()), depth + 1) {
                Ok(()) => {
                    self.established.insert((index, role, target.clone()));
                    let used = UsedGrant { actor: actor.clone(), role: grole, pattern, index: g.index };
                    self.used.insert((index, role, target.clone()), used);
                    return Ok(());
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            Error::verify(format!(
                "entry {index}: {} held no proven {} grant on {target} at that point",
                actor.as_str(),
                role.as_str()
            ))
        }))
    }
}

/// The genesis: a grant of `admin` on `*` to the signer's own actor and key.
fn is_genesis(s: &SignedStatement) -> bool {
    matches!(&s.statement.event, Event::Grant(g)
        if g.actor == s.statement.actor && g.key.id() == s.key_id() && g.role == Role::Admin && g.pattern == Pattern::All)
}
