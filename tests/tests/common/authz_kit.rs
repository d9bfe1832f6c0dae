//! Helpers for the authorization scenarios: access statements and signed
//! downloads over HTTP.

// Each scenario file includes this module and uses part of it.
#![allow(dead_code)]

use custody_registry::names::{Digest, ModelName, Version};
use custody_registry::statement::events::Access;
use custody_registry::statement::Event;
use custody_standards::encoding::encode_base64;
use serde_json::Value;

/// An `access` of `name@version`, whose blob is `digest`.
pub fn access(name: &str, version: &str, digest: Digest) -> Event {
    Event::Access(Access {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        digest,
    })
}

/// `GET /blobs/<digest>` with `envelope` in `Custody-Statement`: status and
/// the JSON error body (`Null` for a successful download).
pub fn download(c: &reqwest::blocking::Client, base: &str, digest: Digest, envelope: &[u8]) -> (u16, Value) {
    let r = c
        .get(format!("{base}/blobs/{digest}"))
        .header("Custody-Statement", encode_base64(envelope))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().unwrap_or_default();
    (status, if status == 200 { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) })
}
