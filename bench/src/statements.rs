//! Signing statements and publishing an artifact, as the load and attack
//! generators both do: a tool signs for the actors it made up, with the
//! clock of the machine it runs on and a fresh nonce each time.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{Digest, MediaType, ModelName, Pattern, Version};
use custody_registry::registry::Role;
use custody_registry::statement::events::{Access, GrantRole, Kind, Publish};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::encoding::encode_base64;

/// `N` bytes from the operating system's random source.
pub fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    Ok(b)
}

/// Signs `event` by `who` now, with a fresh random nonce and `reason` as
/// the statement's context.
pub fn sign(who: &ActorSigner, reason: &str, event: Event) -> anyhow::Result<Vec<u8>> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let time = Timestamp::from_unix_secs(secs).context("clock out of range")?;
    let reason = Text::new(reason).map_err(|e| anyhow::anyhow!("{e}"))?;
    let stmt = Statement::new(who, time, Nonce(random()?), Context::reason(reason), event);
    stmt.sign(who).map_err(|e| anyhow::anyhow!("signing: {e}"))
}

/// A grant of `role` on `pattern` to `to`'s actor and key.
pub fn grant(to: &ActorSigner, role: Role, pattern: &Pattern) -> Event {
    Event::Grant(GrantRole {
        actor: to.actor().clone(),
        key: to.public().clone(),
        role,
        pattern: pattern.clone(),
    })
}

/// Publishes `bytes` as `name@1` by `who` with `PUT /blobs` and returns
/// the access statement's event for it.
pub async fn publish_artifact(
    c: &custody_client::Client,
    base: &str,
    who: &ActorSigner,
    reason: &str,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<Access> {
    let digest = Digest(custody_standards::hash::sha256(&bytes));
    let name = ModelName::new(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let version = Version::new("1").map_err(|e| anyhow::anyhow!("{e}"))?;
    let access = Access { name: name.clone(), version: version.clone(), digest };
    let event = Event::Publish(Publish {
        name,
        version,
        kind: Kind::Model,
        digest,
        size: bytes.len() as u64,
        media_type: MediaType::new("application/octet-stream").map_err(|e| anyhow::anyhow!("{e}"))?,
        metadata: Metadata::default(),
        lineage: Lineage::default(),
    });
    let url = format!("{base}/blobs/{digest}");
    let req = custody_client::Request::new(custody_client::Method::PUT, url, Some(bytes.into()), 64 * 1024)
        .header("custody-statement", &encode_base64(&sign(who, reason, event)?))?;
    c.fetch(&req).await.context("artifact upload refused")?;
    Ok(access)
}
