//! The log's HTTP API from a blocking client, one call per endpoint:
//! status and JSON body back, so assertions read as the protocol does.

use std::time::Duration;

use custody_registry::names::Digest;
use custody_standards::encoding::encode_base64;
use reqwest::blocking::{Client, Response};
use serde_json::Value;

use crate::statements::digest_of;

/// A blocking client that ignores proxy settings and gives up after 30 s.
pub fn http() -> Client {
    Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Status and JSON body (`Null` if the body is not JSON).
pub fn json(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, serde_json::from_slice(&r.bytes().unwrap_or_default()).unwrap_or(Value::Null))
}

pub fn get_json(c: &Client, url: &str) -> (u16, Value) {
    json(c.get(url).send().unwrap())
}

/// The body of a successful GET, `None` on any failure.
pub fn get_bytes(c: &Client, url: &str) -> Option<Vec<u8>> {
    let r = c.get(url).send().ok()?;
    r.status().is_success().then(|| r.bytes().ok().map(|b| b.to_vec()))?
}

/// `POST /statements`.
pub fn post_statement(c: &Client, base: &str, envelope: Vec<u8>) -> (u16, Value) {
    json(c.post(format!("{base}/statements")).body(envelope).send().unwrap())
}

/// `PUT /blobs/<digest>` with the publish statement in `Custody-Statement`.
pub fn upload(c: &Client, base: &str, bytes: &[u8], envelope: &[u8]) -> (u16, Value) {
    let r = c
        .put(format!("{base}/blobs/{}", digest_of(bytes)))
        .header("Custody-Statement", encode_base64(envelope))
        .body(bytes.to_vec())
        .send()
        .unwrap();
    json(r)
}

/// `GET /blobs/<digest>` with `envelope` in `Custody-Statement`: status and
/// the JSON error body (`Null` for a successful download).
pub fn download(c: &Client, base: &str, digest: Digest, envelope: &[u8]) -> (u16, Value) {
    let r = c
        .get(format!("{base}/blobs/{digest}"))
        .header("Custody-Statement", encode_base64(envelope))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().unwrap_or_default();
    (status, if status == 200 { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) })
}

/// The durable tree size, from `/health` (which answers 503 when degraded).
pub fn tree_size(c: &Client, base: &str) -> u64 {
    let (_, h) = get_json(c, &format!("{base}/health"));
    h["sequencer"]["tree_size"].as_u64().unwrap_or_else(|| panic!("no tree size in /health: {h}"))
}

/// Appends raw entries to a generic log (`--allow-raw-append`) one by one;
/// returns the last one's index.
pub fn append_raw(c: &Client, base: &str, entries: &[Vec<u8>]) -> u64 {
    let mut last = 0;
    for e in entries {
        let (status, body) = json(c.post(format!("{base}/entries")).body(e.clone()).send().unwrap());
        assert_eq!(status, 200, "{body}");
        last = body["index"].as_u64().unwrap();
    }
    last
}
