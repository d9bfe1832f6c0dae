//! The log's HTTP API from an async client, for `#[tokio::test]`s that run
//! the log's components in process next to the real binary.

use std::time::Duration;

use custody_registry::names::Digest;
use custody_standards::encoding::encode_base64;
use reqwest::Client;
use serde_json::Value;

use crate::statements::digest_of;

/// An async client that ignores proxy settings and gives up after 120 s.
pub fn client() -> Client {
    Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap()
}

/// Status and JSON body (`Null` if the body is not JSON).
async fn json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or(Value::Null))
}

/// `POST /statements`; returns status and JSON body.
pub async fn post_statement(c: &Client, base: &str, envelope: Vec<u8>) -> (u16, Value) {
    json(c.post(format!("{base}/statements")).body(envelope).send().await.unwrap()).await
}

/// `PUT /blobs/<digest>` with the publish statement in the header.
pub async fn upload(c: &Client, base: &str, bytes: &[u8], envelope: &[u8]) -> (u16, Value) {
    let r = c
        .put(format!("{base}/blobs/{}", digest_of(bytes)))
        .header("Custody-Statement", encode_base64(envelope))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    json(r).await
}

/// `GET /blobs/<digest>` with an access statement; returns status, the
/// access leaf index header, and the body.
pub async fn download(
    c: &Client,
    base: &str,
    digest: Digest,
    envelope: &[u8],
) -> (u16, Option<u64>, Vec<u8>) {
    let r = c
        .get(format!("{base}/blobs/{digest}"))
        .header("Custody-Statement", encode_base64(envelope))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let index = r.headers().get("Custody-Leaf-Index").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, index, r.bytes().await.unwrap().to_vec())
}

pub async fn get_json(c: &Client, url: String) -> (u16, Value) {
    json(c.get(url).send().await.unwrap()).await
}

/// The durable tree size, from `/health`.
pub async fn tree_size(c: &Client, base: &str) -> u64 {
    let (_, h) = get_json(c, format!("{base}/health")).await;
    h["sequencer"]["tree_size"].as_u64().unwrap()
}
