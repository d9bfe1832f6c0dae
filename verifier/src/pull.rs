//! `custody pull` and [`verify_artifact`]: verify before load.
//!
//! The server's resolve answer is only a pointer. What is checked, all
//! against one checkpoint that satisfies the policy and is consistent with
//! the remembered one:
//! - the publish entry is included (proof verified) and is a `publish` of
//!   the requested name and version (or digest), signed by a key bound to
//!   its publisher, who held `publisher` on the name at that point (chain of
//!   proven grants to the genesis, see [`crate::authz`]);
//! - for `name:tag`, the tag-move entry is included, moves that tag of that
//!   name to the publish's digest, after the publish, and is signed by a
//!   maintainer of the name (same checks);
//! - the bytes hash to the published digest and have its size.
//!
//! A protected tag (`production`, `staging`) whose target left the status
//! it requires is *disqualified*: the log answers 409 `tag_disqualified`
//! and the pull stops (exit 2), as it does when the log's answer shows no
//! qualifying status.
//!
//! Then, from the registry state committed by the same checkpoint
//! ([`crate::current`]): the tag move is the current one, the version's
//! status (protected tags, deprecated and archived versions), that
//! the signing keys were not revoked nor their roles taken away since, and
//! that no hold is in force on the name or the version (a held artifact is
//! refused, exit 2, even by a log that serves it).
//!
//! A version that is `deprecated` or `archived` ([`REFUSED_STATUSES`]) is
//! refused (exit 2) unless the caller allows that status: a replaced or
//! retired model is not loaded by accident. For `name@version` the status is
//! that version's; for `name:tag` and `sha256:<hex>` the reference stands
//! for every version with that digest (of the name, or of any name), and is
//! refused only when all of them are in a refused status. The decision is
//! [`check_status`], fed from the log's resolve answer first (an early refusal), then
//! from the statuses proven current.
//!
//! Only then is the file moved into place; any failure leaves nothing at
//! the destination.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Reference, TagName, Version};
use custody_registry::registry::lifecycle::{builtin_requirement, describe};
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::events::Access;
use custody_registry::statement::Event;
use custody_standards::hash::Hash;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::authz::{Authz, Target};
use crate::current::{prove_current, Claim, Signer};
use crate::error::{Error, Result};
use crate::progress::bar;
use crate::statements::{is_state_expired, sign, wait_checkpoint, Why};
use crate::trust::{Trust, Trusted};

/// A reference as `custody pull` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// `org/model@version`
    Version(ModelName, Version),
    /// `org/model:tag`
    Tag(ModelName, TagName),
    /// `sha256:<hex>`, or OCI-style `org/model@sha256:<hex>`: the digest as
    /// published (under that name only, when one is given).
    Digest(Option<ModelName>, Digest),
}

impl Ref {
    /// Parses `name:tag`, `name@version`, `sha256:<hex>` or
    /// `name@sha256:<hex>` (a version never contains `:`, so the digest
    /// form is unambiguous).
    pub fn parse(s: &str) -> Result<Self> {
        let usage = |e: &dyn std::fmt::Display| Error::Usage(format!("reference {s:?}: {e}"));
        if s.starts_with("sha256:") {
            return Digest::new(s).map(|d| Ref::Digest(None, d)).map_err(|e| usage(&e));
        }
        if let Some((n, d)) = s.split_once('@').filter(|(_, d)| d.starts_with("sha256:")) {
            let name = ModelName::new(n).map_err(|e| usage(&e))?;
            return Digest::new(d).map(|d| Ref::Digest(Some(name), d)).map_err(|e| usage(&e));
        }
        match Reference::parse(s).map_err(|e| Error::Usage(format!("reference {s:?}: {e}")))? {
            Reference::Version(n, v) => Ok(Ref::Version(n, v)),
            Reference::Tag(n, t) => Ok(Ref::Tag(n, t)),
        }
    }

    /// The reference as written (`org/model@sha256:<hex>` included).
    fn query(&self) -> String {
        match self {
            Ref::Version(n, v) => format!("{}@{}", n.as_str(), v.as_str()),
            Ref::Tag(n, t) => format!("{}:{}", n.as_str(), t.as_str()),
            Ref::Digest(None, d) => d.to_string(),
            Ref::Digest(Some(n), d) => format!("{}@{d}", n.as_str()),
        }
    }

    /// What the log's `/registry/resolve` is asked: the bare digest for a
    /// digest reference (its publishes under every name; the name, if any,
    /// is applied here to proven entries).
    fn resolve_query(&self) -> String {
        match self {
            Ref::Digest(_, d) => d.to_string(),
            _ => self.query(),
        }
    }

    /// Whether a publish under `name` can stand for this reference.
    fn names(&self, name: &str) -> bool {
        match self {
            Ref::Version(n, _) | Ref::Tag(n, _) | Ref::Digest(Some(n), _) => n.as_str() == name,
            Ref::Digest(None, _) => true,
        }
    }
}

/// What was verified about an artifact.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Model name.
    pub name: ModelName,
    /// Version.
    pub version: Version,
    /// Digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type (a model directory's is its manifest's).
    pub media_type: MediaType,
    /// Publisher.
    pub publisher: ActorName,
    /// Leaf of the publish.
    pub publish_index: u64,
    /// Leaf of the tag move, for `name:tag`.
    pub tag_index: Option<u64>,
    /// Every version checked with its status, proven current at the
    /// checkpoint.
    pub statuses: Vec<(Version, Lifecycle)>,
    /// The checkpoint everything was proven against.
    pub checkpoint: Trusted,
}

#[derive(Deserialize)]
struct Resolved {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    versions: Vec<ResolvedVersion>,
    #[serde(default)]
    tag_index: Option<u64>,
    #[serde(default)]
    publishes: Vec<ResolvedVersion>,
}

#[derive(Deserialize)]
struct ResolvedVersion {
    /// Only in digest answers, where publishes span names.
    #[serde(default)]
    name: Option<String>,
    version: String,
    published_index: u64,
    #[serde(default)]
    status: Option<String>,
}

/// Statuses refused unless explicitly allowed (`--allow-status`).
pub const REFUSED_STATUSES: [Lifecycle; 2] = [Lifecycle::Deprecated, Lifecycle::Archived];

/// Every status: what a caller that checks no status (e.g. moving an
/// ordinary tag) allows.
pub const ANY_STATUS: [Lifecycle; 5] = [
    Lifecycle::Development,
    Lifecycle::Staging,
    Lifecycle::Production,
    Lifecycle::Deprecated,
    Lifecycle::Archived,
];

/// Why [`check_status`] refused a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusRefused {
    /// The reference stands for no version with a known status.
    #[error("the log reports no status for it")]
    Unknown,
    /// Every version it stands for is in a refused status.
    #[error("it is {} (refused unless allowed: --allow-status {})", describe(.0), join(.0))]
    Refused(Vec<Lifecycle>),
}

fn join(statuses: &[Lifecycle]) -> String {
    statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// Decides whether an artifact may be used given `statuses`, the statuses
/// of every version the reference stands for: usable if one of them is
/// not in [`REFUSED_STATUSES`] or is in `allowed`. Pure, so callers can feed
/// it statuses from wherever they proved them.
pub fn check_status(statuses: &[Lifecycle], allowed: &[Lifecycle]) -> Result<(), StatusRefused> {
    if statuses.is_empty() {
        return Err(StatusRefused::Unknown);
    }
    if statuses.iter().any(|s| !REFUSED_STATUSES.contains(s) || allowed.contains(s)) {
        return Ok(());
    }
    let mut refused: Vec<Lifecycle> = statuses.to_vec();
    refused.sort();
    refused.dedup();
    Err(StatusRefused::Refused(refused))
}

/// The statuses the log reported for `versions`; a missing or unknown one
/// makes the whole answer unusable (an honest log reports every status).
fn reported_statuses<'a>(
    q: &str,
    versions: impl Iterator<Item = &'a ResolvedVersion>,
) -> Result<Vec<Lifecycle>> {
    versions
        .map(|v| {
            v.status
                .as_deref()
                .and_then(|s| serde_json::from_value(serde_json::Value::String(s.to_owned())).ok())
                .ok_or_else(|| {
                    Error::verify(format!("{q}: the log reports no valid status for {}", v.version))
                })
        })
        .collect()
}

/// What [`verify_reference_with`] does about holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Refuse a reference with a hold in force on its name or a version it
    /// stands for (proven from the committed state): what a reader does.
    Refuse,
    /// Do not look: the caller only signs a statement the log itself
    /// refuses while held (a tag move, deploy or transfer).
    LeaveToLog,
}

/// Resolves `reference` and verifies the entries it rests on (everything
/// but the bytes). A version in a refused status is refused unless its
/// status is in `allowed` (see [`check_status`]), and a held one always
/// (see [`Holds`]).
pub fn verify_reference(
    trust: &Trust,
    reference: &Ref,
    allowed: &[Lifecycle],
    timeout: Duration,
) -> Result<Verified> {
    verify_reference_with(trust, reference, allowed, Holds::Refuse, timeout)
}

/// [`verify_reference`], choosing what to do about holds.
///
/// A log keeps the registry state of its recent batches only, and after a
/// restart only from the size it restarted at; a checkpoint published
/// before that gets 410 `state_expired`. The answer is not a verdict on the
/// model: the verification is done again under the next checkpoint, until
/// `timeout`.
pub fn verify_reference_with(
    trust: &Trust,
    reference: &Ref,
    allowed: &[Lifecycle],
    holds: Holds,
    timeout: Duration,
) -> Result<Verified> {
    let deadline = std::time::Instant::now() + timeout;
    let mut expired = None;
    loop {
        let mut tried = 0;
        match verify_once(trust, reference, allowed, holds, timeout, expired, &mut tried) {
            Err(e) if is_state_expired(&e) && std::time::Instant::now() < deadline => {
                expired = Some(tried);
            }
            other => return other,
        }
    }
}

/// One verification of `reference` under a checkpoint past `expired` (the
/// size whose state the log no longer served), noting in `tried` the size
/// of the checkpoint it used.
fn verify_once(
    trust: &Trust,
    reference: &Ref,
    allowed: &[Lifecycle],
    holds: Holds,
    timeout: Duration,
    expired: Option<u64>,
    tried: &mut u64,
) -> Result<Verified> {
    let q = reference.query();
    let r: Resolved =
        match trust.client().get_json(&format!("registry/resolve?ref={}", reference.resolve_query())) {
            Err(Error::Refused { status: 404, .. }) => {
                return Err(Error::verify(format!("{q} is not in the log")))
            }
            Err(Error::Refused { status: 409, code, detail, .. }) if code == "tag_disqualified" => {
                return Err(Error::verify(format!("{q} is disqualified, refusing to use it: {detail}")))
            }
            other => other?,
        };
    // A server that does not say so is not believed either: the statuses
    // it reports must qualify a built-in protected tag. This is a fast
    // refusal only: statuses and every protection, built-in or set by a
    // `protect` statement, are checked again from proven state
    // ([`crate::current`]).
    if let Some((t, required)) = match reference {
        Ref::Tag(_, t) => builtin_requirement(t.as_str()).map(|req| (t, req)),
        _ => None,
    } {
        let qualifies = r
            .versions
            .iter()
            .any(|v| v.status.as_deref().is_some_and(|s| required.iter().any(|a| a.as_str() == s)));
        if !qualifies {
            return Err(Error::verify(format!(
                "{q} is disqualified, refusing to use it: tag {} requires a version in {}",
                t.as_str(),
                describe(required)
            )));
        }
    }
    // The publishes a digest reference stands for: every name's, or only
    // the named one's (the answer is a hint; the publish used is proven
    // below to be under that name).
    let publishes: Vec<&ResolvedVersion> = r
        .publishes
        .iter()
        .filter(|x| {
            matches!(reference, Ref::Digest(None, _)) || x.name.as_deref().is_some_and(|n| reference.names(n))
        })
        .collect();
    if matches!(reference, Ref::Digest(Some(_), _)) && publishes.is_empty() {
        return Err(Error::verify(format!("{q} is not in the log")));
    }
    let statuses = match reference {
        Ref::Version(_, v) => reported_statuses(&q, r.versions.iter().filter(|x| x.version == v.as_str()))?,
        Ref::Tag(..) => reported_statuses(&q, r.versions.iter())?,
        Ref::Digest(..) => reported_statuses(&q, publishes.iter().copied())?,
    };
    check_status(&statuses, allowed).map_err(|e| Error::verify(format!("refusing {q}: {e}")))?;
    let publish_index = match reference {
        Ref::Version(_, v) => r.versions.iter().find(|x| x.version == v.as_str()).map(|x| x.published_index),
        Ref::Tag(..) => r.versions.iter().map(|x| x.published_index).min(),
        Ref::Digest(..) => publishes.iter().map(|x| x.published_index).min(),
    }
    .ok_or_else(|| Error::verify(format!("the log names no publish for {q}")))?;
    let tag_index = match reference {
        Ref::Tag(..) => {
            Some(r.tag_index.ok_or_else(|| Error::verify(format!("the log names no tag move for {q}")))?)
        }
        _ => None,
    };
    let needed = publish_index.max(tag_index.unwrap_or(0)).max(expired.unwrap_or(0));
    let checkpoint = wait_checkpoint(trust, needed, timeout)?;
    *tried = checkpoint.checkpoint.size;
    let mut authz = Authz::new(trust, &checkpoint);
    let publish = authz.statement(publish_index)?;
    let Event::Publish(p) = &publish.statement.event else {
        return Err(Error::verify(format!("entry {publish_index} is not a publish")));
    };
    let ok = match reference {
        Ref::Version(n, v) => &p.name == n && &p.version == v,
        Ref::Tag(n, _) => &p.name == n && r.digest.as_deref() == Some(p.digest.to_string().as_str()),
        Ref::Digest(_, d) => &p.digest == d && reference.names(p.name.as_str()),
    };
    if !ok {
        return Err(Error::verify(format!("entry {publish_index} does not publish {q}")));
    }
    let publisher_target = Target::Name(p.name.clone());
    authz.require(&publish, publish_index, Role::Publisher, &publisher_target, 0)?;
    let mut tag_signer = None;
    if let (Ref::Tag(n, t), Some(ti)) = (reference, tag_index) {
        let tag = authz.statement(ti)?;
        let Event::Tag(m) = &tag.statement.event else {
            return Err(Error::verify(format!("entry {ti} is not a tag move")));
        };
        if &m.name != n || &m.tag != t {
            return Err(Error::verify(format!("entry {ti} moves another tag, not {q}")));
        }
        if m.digest != p.digest || ti <= publish_index {
            return Err(Error::verify(format!(
                "tag move at entry {ti} does not point at the publish at entry {publish_index}"
            )));
        }
        authz.require(&tag, ti, Role::Maintainer, &Target::Name(n.clone()), 0)?;
        tag_signer = Some((t, ti, tag.key_id(), Target::Name(n.clone())));
    }
    // What the entries showed was true when logged; now prove it is still
    // true at this checkpoint, from the committed registry state.
    let missing = || Error::verify("authorization was established without a grant (bug)".to_string());
    let publisher_grant =
        authz.grant_used(publish_index, Role::Publisher, &publisher_target).cloned().ok_or_else(missing)?;
    let tag_grant = match &tag_signer {
        Some((_, ti, _, target)) => {
            Some(authz.grant_used(*ti, Role::Maintainer, target).cloned().ok_or_else(missing)?)
        }
        None => None,
    };
    // Other versions said to hold the digest: a tag or digest reference
    // stands for all of them (their statuses are proven too; versions of
    // other names are not, so they do not count).
    let also: Vec<Version> = match reference {
        Ref::Tag(..) => r.versions.iter().filter_map(|v| Version::new(&v.version).ok()).collect(),
        Ref::Digest(..) => r
            .publishes
            .iter()
            .filter(|v| v.name.as_deref() == Some(p.name.as_str()))
            .filter_map(|v| Version::new(&v.version).ok())
            .collect(),
        Ref::Version(..) => Vec::new(),
    };
    let claim = Claim {
        name: &p.name,
        version: &p.version,
        digest: p.digest,
        publish_index,
        also: &also,
        publisher: Signer { key_id: publish.key_id(), grant: &publisher_grant },
        tag: match (&tag_signer, &tag_grant) {
            (Some((t, ti, key_id, _)), Some(g)) => Some((*t, *ti, Signer { key_id: *key_id, grant: g })),
            _ => None,
        },
        refuse_held: holds == Holds::Refuse,
    };
    let current = prove_current(trust, &checkpoint, &claim)?;
    // The log's reported statuses were only a first filter: decide again on
    // the statuses proven current.
    let proven: Vec<Lifecycle> = current.statuses.iter().map(|(_, s)| *s).collect();
    check_status(&proven, allowed).map_err(|e| Error::verify(format!("refusing {q}: {e}")))?;
    Ok(Verified {
        name: p.name.clone(),
        version: p.version.clone(),
        digest: p.digest,
        size: p.size,
        media_type: p.media_type.clone(),
        publisher: publish.statement.actor.clone(),
        publish_index,
        tag_index,
        statuses: current.statuses,
        checkpoint,
    })
}

/// Verifies a file already on disk against `reference`: the library
/// function model loaders call before loading anything. `allowed` names the
/// [`REFUSED_STATUSES`] the caller accepts (usually none).
pub fn verify_artifact(
    trust: &Trust,
    reference: &Ref,
    allowed: &[Lifecycle],
    path: &Path,
    timeout: Duration,
) -> Result<Verified> {
    let v = verify_reference(trust, reference, allowed, timeout)?;
    let (digest, size) = crate::publish::hash_file(path)?;
    check_bytes(&v, digest, size)?;
    Ok(v)
}

fn check_bytes(v: &Verified, digest: Digest, size: u64) -> Result<()> {
    if digest != v.digest || size != v.size {
        return Err(Error::verify(format!(
            "the bytes ({digest}, {size} bytes) are not the published artifact ({}, {} bytes)",
            v.digest, v.size
        )));
    }
    Ok(())
}

/// Name prefix of the private directory `pull` downloads into, beside the
/// destination.
pub const PULL_STAGING_PREFIX: &str = ".custody-pull-";

/// A private (0700) `.custody-pull-*` directory beside `out`, and the
/// directory it is in. Unverified bytes live there, never at the
/// destination: if this process dies (kill -9) before the checks pass,
/// what is left is a directory nobody else can read, not a plausible
/// model. Same file system as `out`, so the final rename is atomic.
pub fn staging_beside(out: &Path) -> Result<(&Path, tempfile::TempDir)> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(PULL_STAGING_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(staging.path(), e))?;
    Ok((dir, staging))
}

/// Downloads the verified artifact `v` (logging an access signed by
/// `signer`) into a private temporary directory next to `out` while
/// hashing it, and moves it to `out` only if it is the published bytes.
pub fn fetch_file(trust: &Trust, signer: &ActorSigner, why: &Why, v: &Verified, out: &Path) -> Result<()> {
    let access = Access { name: v.name.clone(), version: v.version.clone(), digest: v.digest };
    let envelope = sign(signer, why, Event::Access(access))?;
    let (mut resp, _access_index) = trust.client().download(&v.digest.to_string(), &envelope)?;
    let (dir, staging) = staging_beside(out)?;
    let partial = staging.path().join("unverified");
    let mut tmp = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| Error::io(&partial, e))?;
    let pb = bar(v.size, "downloading", true);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = resp.read(&mut buf).map_err(|e| Error::Network(format!("download of {}: {e}", v.digest)))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > v.size {
            return Err(Error::verify(format!("the log sent more than the published {} bytes", v.size)));
        }
        h.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| Error::io(&partial, e))?;
        pb.inc(n as u64);
    }
    pb.finish_and_clear();
    check_bytes(v, Digest(Hash(h.finalize().into())), total)?;
    tmp.sync_all().map_err(|e| Error::io(&partial, e))?;
    drop(tmp);
    std::fs::rename(&partial, out).map_err(|e| Error::io(out, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    staging.close().map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Lifecycle::*;

    #[test]
    fn deprecated_and_archived_are_refused_unless_allowed() {
        assert_eq!(check_status(&[Production], &[]), Ok(()));
        assert_eq!(check_status(&[Development], &[]), Ok(()));
        assert_eq!(check_status(&[Deprecated], &[]), Err(StatusRefused::Refused(vec![Deprecated])));
        assert_eq!(check_status(&[Archived], &[Deprecated]), Err(StatusRefused::Refused(vec![Archived])));
        assert_eq!(check_status(&[Deprecated], &[Deprecated, Archived]), Ok(()));
        // A digest is usable if any of its versions is.
        assert_eq!(check_status(&[Archived, Staging], &[]), Ok(()));
        let e = check_status(&[Archived, Deprecated, Archived], &[]).unwrap_err();
        assert_eq!(e, StatusRefused::Refused(vec![Deprecated, Archived]));
        assert!(e.to_string().contains("--allow-status deprecated,archived"), "{e}");
        assert_eq!(check_status(&[], &ANY_STATUS), Err(StatusRefused::Unknown));
    }

    #[test]
    fn references_parse_in_every_documented_form() {
        let hex = "ab".repeat(32);
        let digest = Digest::new(&format!("sha256:{hex}")).unwrap();
        let name = ModelName::new("acme/model").unwrap();
        assert_eq!(Ref::parse(&format!("sha256:{hex}")).unwrap(), Ref::Digest(None, digest));
        let oci = Ref::parse(&format!("acme/model@sha256:{hex}")).unwrap();
        assert_eq!(oci, Ref::Digest(Some(name.clone()), digest));
        assert_eq!(oci.query(), format!("acme/model@sha256:{hex}"));
        assert_eq!(oci.resolve_query(), format!("sha256:{hex}"));
        assert!(oci.names("acme/model") && !oci.names("acme/other"));
        assert!(Ref::parse(&format!("sha256:{hex}")).unwrap().names("anyone/at-all"));
        let v = Ref::parse("acme/model@1.0").unwrap();
        assert_eq!(v, Ref::Version(name.clone(), Version::new("1.0").unwrap()));
        assert_eq!(v.resolve_query(), "acme/model@1.0");
        assert!(matches!(Ref::parse("acme/model:prod").unwrap(), Ref::Tag(..)));
        for bad in [
            format!("acme/model@sha256:{}", &hex[2..]),
            format!("acme/model@sha256:{}", hex.to_uppercase()),
            format!("Acme Model@sha256:{hex}"),
            format!("@sha256:{hex}"),
            "acme/model".to_owned(),
        ] {
            assert!(matches!(Ref::parse(&bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }
}
