//! `custody publish`: hash a file, upload it streamed with the signed
//! publish statement, then prove the publish leaf is in the log under a
//! policy-satisfying checkpoint (see [`crate::statements`]). An upload that
//! outlasts the log's statement window is stored but not published (202);
//! the publish is then signed again and submitted for the stored bytes.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{Digest, MediaType, ModelName, Version};
use custody_registry::statement::events::{Kind, Publish};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::Event;

use crate::client::Uploaded;
use crate::error::{Error, Result};
use crate::progress::{bar, ProgressReader};
use crate::statements::{prove_submitted, sign, Receipt, Why};
use crate::trust::Trust;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// Model name `org/model`.
    pub name: String,
    /// Version.
    pub version: String,
    /// `model`, `dataset` or `other`.
    pub kind: String,
    /// Media type.
    pub media_type: String,
    /// Metadata JSON (docs/protocol.md section 3), if any.
    pub metadata: Option<String>,
    /// Lineage JSON, if any.
    pub lineage: Option<String>,
}

impl PublishRequest {
    pub(crate) fn event(&self, digest: Digest, size: u64) -> Result<Event> {
        let usage = |what: &str, e: &dyn std::fmt::Display| Error::Usage(format!("{what}: {e}"));
        let json = |what: &str, s: &Option<String>| -> Result<serde_json::Value> {
            match s {
                Some(s) => serde_json::from_str(s).map_err(|e| usage(what, &e)),
                None => Ok(serde_json::json!({})),
            }
        };
        Ok(Event::Publish(Publish {
            name: ModelName::new(&self.name).map_err(|e| usage("--name", &e))?,
            version: Version::new(&self.version).map_err(|e| usage("--version", &e))?,
            kind: serde_json::from_value::<Kind>(serde_json::Value::String(self.kind.clone()))
                .map_err(|e| usage("--kind", &e))?,
            digest,
            size,
            media_type: MediaType::new(&self.media_type).map_err(|e| usage("--media-type", &e))?,
            metadata: serde_json::from_value::<Metadata>(json("--metadata", &self.metadata)?)
                .map_err(|e| usage("--metadata", &e))?,
            lineage: serde_json::from_value::<Lineage>(json("--lineage", &self.lineage)?)
                .map_err(|e| usage("--lineage", &e))?,
        }))
    }
}

/// SHA-256 and length of a file, streamed, with a progress bar.
pub fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    let pb = bar(len, "hashing", true);
    let out = crate::directory::scan::hash_path(path, &pb);
    pb.finish_and_clear();
    out
}

/// Hashes `file`, signs the publish statement, uploads the bytes and proves
/// the publish is logged.
pub fn publish(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    req: &PublishRequest,
    file: &Path,
    timeout: Duration,
) -> Result<Receipt> {
    let (digest, size) = hash_file(file)?;
    let envelope = sign(signer, why, req.event(digest, size)?)?;
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let pb = bar(size, "uploading", true);
    let answer =
        trust.client().upload(&digest.to_string(), ProgressReader::new(f, pb.clone()), size, &envelope)?;
    pb.finish_and_clear();
    let (envelope, answer) = match answer {
        Uploaded::Published(answer) => (envelope, answer),
        // The upload took longer than the log's statement window: the bytes
        // are stored, the statement signed before them is too old to log.
        // The same publish signed now claims them (the log accepts that
        // from the actor who uploaded them, within its grace period).
        // Only a directory's manifest is answered so (see
        // `crate::directory`): this file claimed the manifest media type.
        Uploaded::FilesMissing(_) => {
            return Err(Error::Usage(format!(
                "{}: a file published with media type {} must be a directory manifest; publish the \
                 directory instead",
                file.display(),
                custody_registry::manifest::MEDIA_TYPE
            )))
        }
        Uploaded::StoredOnly => {
            let fresh = sign(signer, why, req.event(digest, size)?)?;
            let answer = trust.client().post_statement(&fresh)?;
            (fresh, answer)
        }
    };
    prove_submitted(trust, &envelope, answer.index, answer.duplicate, timeout)
}
