//! A 2 GiB artifact streams through `PUT /blobs/...` with bounded server
//! memory: the client generates the bytes on the fly over a raw HTTP/1.1
//! connection (nothing buffered on either side), and the server's peak RSS
//! (`VmHWM`) is read from /proc afterwards.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;

use custody_registry::names::Digest;
use custody_registry::registry::Role;
use custody_standards::encoding::encode_base64;
use custody_testkit::aio::*;
use custody_testkit::logserver::*;
use custody_testkit::peak_rss_kib;
use custody_testkit::statements::*;
use sha2::{Digest as _, Sha256};

const BLOCK: usize = 1 << 20;
const BLOCKS: usize = 2048; // 2 GiB
/// Peak server RSS allowed: far below the artifact, generous for RocksDB,
/// actix and the test build's debug allocations.
const MAX_PEAK_RSS_KIB: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_gib_upload_streams_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let root = init_registry(&data);
    let server = serve(&data, &[]);
    let c = client();
    let alice = signer("alice");
    let (status, body) =
        post_statement(&c, &server.url, signed(&root, grant(&alice, Role::Publisher, "big/*"))).await;
    assert_eq!(status, 200, "{body}");

    let block = noise(BLOCK, 0);
    let size = (BLOCK * BLOCKS) as u64;
    let mut hasher = Sha256::new();
    for _ in 0..BLOCKS {
        hasher.update(&block);
    }
    let digest = Digest(custody_standards::Hash(hasher.finalize().into()));
    let envelope = signed(&alice, publish("big/model", "1", digest, size));

    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    let response = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "PUT /blobs/{digest} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {size}\r\n\
             Custody-Statement: {}\r\nConnection: close\r\n\r\n",
            encode_base64(&envelope)
        )
        .unwrap();
        for _ in 0..BLOCKS {
            s.write_all(&block).unwrap();
        }
        let mut reader = BufReader::new(s);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        (status_line, rest)
    })
    .await
    .unwrap();
    assert!(
        response.0.starts_with("HTTP/1.1 201"),
        "{} {}\nserver log:\n{}",
        response.0,
        response.1,
        std::fs::read_to_string(data.with_extension("stderr")).unwrap_or_default()
    );
    // Genesis, grant, publish, each followed by its batch's commitment leaf.
    assert!(response.1.contains("\"index\":4"), "the publish is entry 4: {}", response.1);

    let hex = digest.0.to_hex();
    let stored = data.join("blobs/sha256").join(&hex[..2]).join(&hex);
    // Stored sealed: the header and one tag per 64 KiB chunk on top.
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), custody_log::seal::format::sealed_len(size));
    let peak = peak_rss_kib(server.child.id());
    assert!(peak < MAX_PEAK_RSS_KIB, "server peak RSS {peak} KiB for a 2 GiB upload");
    eprintln!("2 GiB upload: server peak RSS {} MiB", peak / 1024);
}
