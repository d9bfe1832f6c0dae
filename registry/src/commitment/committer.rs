//! Maintains the state map as statements are applied, in log order, and
//! seals it into a root at each commitment leaf.
//!
//! The server and the auditor run the same code: the server after each
//! statement it sequences, the auditor after each statement it replays.
//! Both call [`StateCommitter::record`] with the registry *after* the
//! statement was applied, so values are read from the one state machine
//! rather than recomputed here, and [`StateCommitter::seal`] where the log
//! has (or will append) a commitment leaf.

use std::collections::{BTreeMap, HashMap};

use custody_standards::hash::Hash;

use crate::commitment::key::StateKey;
use crate::commitment::value::{EntriesValue, KeyValue, ProtectionValue, StateValue, TagValue, VersionValue};
use crate::names::{ModelName, Pattern, Version};
use crate::registry::{Applied, Effect, Registry, Role};
use crate::state_map::Tree;
use crate::statement::Statement;

/// One change sealed into the map: the key, its value before and after
/// (`None`: absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The key.
    pub key: StateKey,
    /// Its value before the seal.
    pub before: Option<StateValue>,
    /// Its value after the seal.
    pub after: Option<StateValue>,
}

/// The result of [`StateCommitter::seal`].
#[derive(Clone, Debug)]
pub struct Sealed {
    /// The new root.
    pub root: Hash,
    /// Every key whose value changed, in key-hash order.
    pub changes: Vec<Change>,
}

/// The state map of a registry, kept in step with it.
#[derive(Clone, Default)]
pub struct StateCommitter {
    tree: Tree,
    values: HashMap<Hash, StateValue>,
    /// The key of each hash in `values`, to persist and list records.
    keys: HashMap<Hash, StateKey>,
    pending: BTreeMap<Hash, (StateKey, Option<StateValue>)>,
}

impl std::fmt::Debug for StateCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCommitter")
            .field("root", &self.tree.root())
            .field("keys", &self.values.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl StateCommitter {
    /// The map of an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the map from its persisted key/value records (each key
    /// once). The caller compares the root with the log's last commitment.
    pub fn restore(records: impl IntoIterator<Item = (StateKey, StateValue)>) -> Self {
        let mut values = HashMap::new();
        let mut keys = HashMap::new();
        for (k, v) in records {
            let h = k.hash();
            values.insert(h, v);
            keys.insert(h, k);
        }
        let tree = Tree::from_entries(values.iter().map(|(k, v)| (*k, v.hash())));
        StateCommitter { tree, values, keys, pending: BTreeMap::new() }
    }

    /// The root sealed last.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The sealed tree (an O(1) snapshot: clone it to keep proving this
    /// version after later seals).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The sealed value of `key`.
    pub fn value(&self, key: &StateKey) -> Option<&StateValue> {
        self.values.get(&key.hash())
    }

    /// Every sealed value by key hash.
    pub fn values(&self) -> impl Iterator<Item = (&Hash, &StateValue)> + '_ {
        self.values.iter()
    }

    /// Every sealed key with its value (in no particular order): what a
    /// store persists to restore the map with [`StateCommitter::restore`].
    pub fn records(&self) -> impl Iterator<Item = (&StateKey, &StateValue)> + '_ {
        self.keys.iter().filter_map(|(h, k)| self.values.get(h).map(|v| (k, v)))
    }

    /// Number of keys in the sealed map.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the sealed map is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of the key hashing to `h`, with what was recorded since
    /// the last seal.
    fn current(&self, h: &Hash) -> Option<&StateValue> {
        match self.pending.get(h) {
            Some((_, v)) => v.as_ref(),
            None => self.values.get(h),
        }
    }

    fn set(&mut self, key: StateKey, value: Option<StateValue>) {
        self.pending.insert(key.hash(), (key, value));
    }

    /// Appends `index` to an entry list: the key is hashed once for the
    /// lookup and the update (three lists per statement).
    fn push_entry(&mut self, key: StateKey, index: u64) {
        let h = key.hash();
        let mut v = match self.current(&h) {
            Some(StateValue::Entries(e)) => *e,
            _ => EntriesValue::default(),
        };
        v.push(index);
        self.pending.insert(h, (key, Some(StateValue::Entries(v))));
    }

    fn set_version(&mut self, registry: &Registry, name: &ModelName, version: &Version) {
        let value = registry.version(name, version).map(|v| StateValue::Version(VersionValue::of(v)));
        self.set(StateKey::Version { name: name.clone(), version: version.clone() }, value);
    }

    fn set_key(&mut self, registry: &Registry, id: &crate::actor_key::KeyId) {
        let value = registry.key(id).map(|k| StateValue::ActorKey(KeyValue::of(k)));
        self.set(StateKey::ActorKey { key_id: *id }, value);
    }

    fn set_grant(
        &mut self,
        registry: &Registry,
        actor: &crate::names::ActorName,
        role: Role,
        pattern: &Pattern,
    ) {
        let value = registry
            .actor(actor)
            .and_then(|a| a.grants.iter().find(|g| g.role == role && &g.pattern == pattern))
            .map(|g| StateValue::Grant(g.index));
        self.set(StateKey::Grant { actor: actor.clone(), role, pattern: pattern.clone() }, value);
    }

    /// Records what `applied` changed. `registry` is the state right after
    /// applying it; `statement` is the statement applied.
    pub fn record(&mut self, registry: &Registry, statement: &Statement, applied: &Applied) {
        let index = applied.index;
        match &applied.effect {
            Effect::Genesis { actor, key } => {
                self.set_key(registry, &key.id());
                self.set_grant(registry, actor, Role::Admin, &Pattern::All);
            }
            Effect::Granted { actor, key, bind_key, role, pattern } => {
                if *bind_key {
                    self.set_key(registry, &key.id());
                }
                self.set_grant(registry, actor, *role, pattern);
            }
            Effect::Revoked { actor, role, pattern } => self.set_grant(registry, actor, *role, pattern),
            Effect::KeyRevoked { key_id, .. } => self.set_key(registry, key_id),
            Effect::Rotated { old, new, .. } => {
                self.set_key(registry, old);
                self.set_key(registry, &new.id());
            }
            Effect::Published { name, version, digest, .. } => {
                self.set_version(registry, name, version);
                self.push_entry(StateKey::DigestEntries { digest: *digest }, index);
            }
            Effect::Accessed { digest } => {
                self.push_entry(StateKey::DigestEntries { digest: *digest }, index)
            }
            Effect::Tagged { name, tag, digest, .. } => self.set(
                StateKey::Tag { name: name.clone(), tag: tag.clone() },
                Some(StateValue::Tag(TagValue { digest: *digest, index })),
            ),
            Effect::Promoted { name, version, demoted, .. }
            | Effect::RolledBack { name, version, demoted } => {
                self.set_version(registry, name, version);
                if let Some(d) = demoted {
                    self.set_version(registry, name, d);
                }
            }
            Effect::Approved { name, version } => self.set_version(registry, name, version),
            Effect::Protected { name, tag, .. } => {
                let value = registry.model(name).and_then(|m| m.protections().get(tag)).map(|p| {
                    StateValue::Protection(ProtectionValue { statuses: p.statuses.clone(), index: p.index })
                });
                self.set(StateKey::Protection { name: name.clone(), tag: tag.clone() }, value);
            }
            Effect::Held { name, version } => self.set(
                StateKey::Hold { name: name.clone(), version: version.clone() },
                Some(StateValue::Hold(index)),
            ),
            Effect::Released { name, version } => {
                self.set(StateKey::Hold { name: name.clone(), version: version.clone() }, None)
            }
            Effect::Deployed { .. } | Effect::Transferred { .. } => {}
        }
        if let Some(name) = statement.event.name() {
            self.push_entry(StateKey::NameEntries { name: name.clone() }, index);
        }
        self.push_entry(StateKey::ActorEntries { actor: applied.actor.clone() }, index);
    }

    /// Records a log event at `index` (see [`crate::log_event`]): it joins
    /// the entries of its digest and of every name that published the
    /// digest, in the order the registry lists them (each name once).
    pub fn record_log_event(&mut self, registry: &Registry, event: &crate::log_event::LogEvent, index: u64) {
        let digest = *event.event.digest();
        self.push_entry(StateKey::DigestEntries { digest }, index);
        for name in log_event_names(registry, &digest) {
            self.push_entry(StateKey::NameEntries { name }, index);
        }
    }

    /// Applies everything recorded since the last seal to the tree.
    pub fn seal(&mut self) -> Sealed {
        let pending = std::mem::take(&mut self.pending);
        let mut changes = Vec::with_capacity(pending.len());
        let mut updates = Vec::with_capacity(pending.len());
        for (h, (key, after)) in pending {
            let before = match &after {
                Some(v) => {
                    self.keys.insert(h, key.clone());
                    self.values.insert(h, v.clone())
                }
                None => {
                    self.keys.remove(&h);
                    self.values.remove(&h)
                }
            };
            if before == after {
                continue;
            }
            updates.push((h, after.as_ref().map(StateValue::hash)));
            changes.push(Change { key, before, after });
        }
        self.tree.apply(updates);
        Sealed { root: self.tree.root(), changes }
    }
}

/// The names a log event about `digest` is listed under: every name that
/// published it, each once, in the order of their first publish.
pub fn log_event_names(registry: &Registry, digest: &crate::names::Digest) -> Vec<ModelName> {
    let mut names: Vec<ModelName> = Vec::new();
    for (name, _) in registry.publishes_of(digest) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}
