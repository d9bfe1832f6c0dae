//! The object store the scale-out work builds on is real and distributed:
//! a 3-node Garage cluster (replication factor 3) on loopback, driven by a
//! real S3 client (`object_store`, SigV4, path-style requests).
//!
//! - what one node stores, the others serve, and every node holds a copy;
//! - with one node killed by SIGKILL, the other two still take writes and
//!   serve reads (quorum 2 of 3);
//! - the killed node, restarted, serves what was written while it was down;
//! - a multipart upload through one node reads back whole through another.
//!
//! Needs the pinned Garage from `./scripts/garage-install` (scripts/test runs
//! it first); the test says so when it is missing.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use custody_testkit::garage::{GarageCluster, NODES};
// Incompressible bytes, so the size on disk says how many copies a node holds.
use custody_testkit::statements::noise;
use custody_testkit::{eventually, tempdir};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, PutPayload, RetryConfig};
use tokio::runtime::Runtime;

/// One S3 client per node: the same bucket and key, a different endpoint.
fn client(cluster: &GarageCluster, node: usize) -> Arc<dyn ObjectStore> {
    let store = AmazonS3Builder::new()
        .with_endpoint(cluster.endpoint(node))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region(&cluster.region)
        .with_bucket_name(&cluster.bucket)
        .with_access_key_id(&cluster.access_key_id)
        .with_secret_access_key(&cluster.secret_access_key)
        // Few, quick retries: the test polls itself where it waits for the
        // cluster, and a failure should show in seconds, not minutes.
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
        })
        .build()
        .expect("S3 client");
    Arc::new(store)
}

async fn put(store: &dyn ObjectStore, key: &str, body: &[u8]) -> Result<(), object_store::Error> {
    store.put(&ObjectPath::from(key), PutPayload::from(body.to_vec())).await.map(|_| ())
}

async fn get(store: &dyn ObjectStore, key: &str) -> Result<Vec<u8>, object_store::Error> {
    Ok(store.get(&ObjectPath::from(key)).await?.bytes().await?.to_vec())
}

#[test]
fn every_node_serves_and_holds_what_any_node_stored_and_survives_a_kill9() {
    let dir = tempdir().unwrap();
    let cluster = GarageCluster::start(dir.path());
    let rt = Runtime::new().unwrap();
    let s3: Vec<_> = NODES.iter().map(|&n| client(&cluster, n)).collect();

    // 1 MiB: above Garage's inline threshold, so it lands in data blocks.
    let first = noise(1 << 20, 1);
    rt.block_on(put(&*s3[0], "models/first.bin", &first)).expect("put through node 1");
    for (i, store) in s3.iter().enumerate().skip(1) {
        let got = rt
            .block_on(get(&**store, "models/first.bin"))
            .unwrap_or_else(|e| panic!("get through node {}: {e}", i + 1));
        assert!(got == first, "node {} returned other bytes", i + 1);
    }
    // Replication factor 3: each node ends up with its own copy on disk.
    for n in NODES {
        eventually(&format!("node {n} to hold a copy of the 1 MiB object"), 60, || {
            (cluster.data_bytes(n) >= first.len() as u64).then_some(())
        });
    }

    cluster.kill9(3);
    assert!(!cluster.is_running(3), "node 3 still runs after SIGKILL");
    // Nothing listens on node 3's S3 port any more: the kill is real.
    let node3 = cluster.endpoint(3).trim_start_matches("http://").to_owned();
    assert!(TcpStream::connect(&node3).is_err(), "node 3 still accepts connections after SIGKILL");

    let second = noise(1 << 20, 2);
    rt.block_on(put(&*s3[0], "models/second.bin", &second)).expect("put through node 1 with node 3 down");
    assert!(
        rt.block_on(get(&*s3[1], "models/second.bin")).expect("get through node 2 with node 3 down")
            == second
    );
    assert!(
        rt.block_on(get(&*s3[1], "models/first.bin")).expect("old object through node 2 with node 3 down")
            == first
    );
    rt.block_on(put(&*s3[1], "models/third.bin", b"written through node 2"))
        .expect("put through node 2 with node 3 down");
    assert!(
        rt.block_on(get(&*s3[0], "models/third.bin")).expect("get through node 1")
            == b"written through node 2"
    );

    cluster.restart(3);
    let s3_3 = client(&cluster, 3);
    let got = eventually("node 3 to serve the object written while it was down", 60, || {
        rt.block_on(get(&*s3_3, "models/second.bin")).ok()
    });
    assert!(got == second, "node 3 returned other bytes for the object written while it was down");
    rt.block_on(put(&*s3_3, "models/fourth.bin", b"written through node 3"))
        .expect("put through restarted node 3");
    assert!(
        rt.block_on(get(&*s3[0], "models/fourth.bin")).expect("get through node 1")
            == b"written through node 3"
    );
}

#[test]
fn a_multipart_upload_through_one_node_reads_back_through_another() {
    let dir = tempdir().unwrap();
    let cluster = GarageCluster::start(dir.path());
    let rt = Runtime::new().unwrap();
    let (node1, node2) = (client(&cluster, 1), client(&cluster, 2));

    // Two parts: S3 requires every part but the last to be at least 5 MiB.
    let body = noise(5 * 1024 * 1024 + 777_777, 3);
    let (head, tail) = body.split_at(5 * 1024 * 1024);
    let key = ObjectPath::from("models/big.safetensors");
    rt.block_on(async {
        let mut upload = node1.put_multipart(&key).await.expect("create multipart upload on node 1");
        upload.put_part(PutPayload::from(head.to_vec())).await.expect("part 1");
        upload.put_part(PutPayload::from(tail.to_vec())).await.expect("part 2");
        upload.complete().await.expect("complete multipart upload");
    });
    let meta = rt.block_on(node2.head(&key)).expect("head through node 2");
    assert_eq!(meta.size as usize, body.len(), "size seen through node 2");
    let got = rt.block_on(get(&*node2, "models/big.safetensors")).expect("get through node 2");
    assert!(
        got == body,
        "node 2 returned {} bytes, not the {} uploaded through node 1",
        got.len(),
        body.len()
    );
}
