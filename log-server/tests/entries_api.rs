//! The entry listings per digest and per actor against the real
//! `custody-log`: exactly the entries the committed chains cover (every
//! publish and access of a digest, every entry an actor signed), in log
//! order, paged, with 400 for bad input; and `fsck` agrees with the rows.

use custody_registry::registry::Role;
use custody_registry::statement::metadata::Lineage;
use custody_testkit::aio::*;
use custody_testkit::logserver::*;
use custody_testkit::statements::*;
use serde_json::{json, Value};

async fn ok(c: &reqwest::Client, base: &str, envelope: Vec<u8>) -> u64 {
    let (status, body) = post_statement(c, base, envelope).await;
    assert_eq!(status, 200, "{body}");
    body["index"].as_u64().unwrap()
}

/// Every index of a listing, following `next_after` with pages of `limit`.
async fn all_pages(c: &reqwest::Client, url: &str, limit: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = get_json(c, format!("{url}?limit={limit}{after}")).await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["indexes"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap()));
        match page["next_after"].as_u64() {
            Some(n) => after = format!("&after={n}"),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_and_actor_listings_are_exactly_the_committed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let root = init_registry(&data);
    let server = serve(&data, &[]);
    let (c, base) = (client(), server.url.clone());
    let (alice, dave) = (signer("alice"), signer("dave"));
    let mut root_entries = vec![0];
    root_entries.push(ok(&c, &base, signed(&root, grant(&alice, Role::Publisher, "acme/*"))).await);
    root_entries.push(ok(&c, &base, signed(&root, grant(&alice, Role::Maintainer, "acme/*"))).await);
    root_entries.push(ok(&c, &base, signed(&root, grant(&dave, Role::Reader, "acme/*"))).await);

    // One artifact published under two names, read twice; another read
    // once. Tags name a digest but neither publish nor read it.
    let (w1, w2) = (b"listed weights".repeat(100), b"other weights".repeat(100));
    let mut alice_entries = Vec::new();
    let mut w1_entries = Vec::new();
    for (name, bytes) in [("acme/a", &w1), ("acme/b", &w1), ("acme/c", &w2)] {
        let env = signed(&alice, publish_bytes(name, "1", bytes, Lineage::default()));
        let (status, body) = upload(&c, &base, bytes, &env).await;
        // 201 stored, 200 already stored (the second name's publish).
        assert!(status == 201 || status == 200, "{status} {body}");
        let i = body["index"].as_u64().unwrap();
        alice_entries.push(i);
        if bytes == &w1 {
            w1_entries.push(i);
        }
    }
    alice_entries.push(ok(&c, &base, signed(&alice, tag("acme/a", "latest", digest_of(&w1), None))).await);
    let mut dave_entries = Vec::new();
    for (name, bytes) in [("acme/a", &w1), ("acme/c", &w2), ("acme/b", &w1)] {
        let (status, index, _) =
            download(&c, &base, digest_of(bytes), &signed(&dave, access(name, "1", digest_of(bytes)))).await;
        assert_eq!(status, 200);
        let i = index.unwrap();
        dave_entries.push(i);
        if bytes == &w1 {
            w1_entries.push(i);
        }
    }

    let digest_url = format!("{base}/registry/artifacts/{}/entries", digest_of(&w1));
    for limit in [1, 2, 1000] {
        assert_eq!(all_pages(&c, &digest_url, limit).await, w1_entries, "limit {limit}");
        assert_eq!(
            all_pages(&c, &format!("{base}/registry/actors/alice/entries"), limit).await,
            alice_entries
        );
        assert_eq!(all_pages(&c, &format!("{base}/registry/actors/dave/entries"), limit).await, dave_entries);
        assert_eq!(all_pages(&c, &format!("{base}/registry/actors/root/entries"), limit).await, root_entries);
    }
    let (_, page) = get_json(&c, format!("{digest_url}?after={}&limit=1", w1_entries[0])).await;
    assert_eq!(page, json!({"indexes": [w1_entries[1]], "next_after": w1_entries[1]}));
    // The artifact's access history is still accesses only.
    let (_, art) = get_json(&c, format!("{base}/registry/artifacts/{}", digest_of(&w1))).await;
    assert_eq!(art["accesses"]["indexes"], json!([w1_entries[2], w1_entries[3]]));
    // Nothing logged about it: an empty list, which its absent chain proves.
    let (status, none) = get_json(&c, format!("{base}/registry/actors/nobody/entries")).await;
    assert_eq!((status, none), (200, json!({"indexes": [], "next_after": Value::Null})));

    for (path, status) in [
        ("registry/artifacts/sha256:abc/entries".to_owned(), 400),
        (format!("registry/artifacts/{}/entries?limit=0", digest_of(&w1)), 400),
        (format!("registry/artifacts/{}/entries?after=x", digest_of(&w1)), 400),
        ("registry/actors/Not%20An%20Actor/entries".to_owned(), 400),
        ("registry/actors/alice/entries?limit=-1".to_owned(), 400),
    ] {
        let (got, body) = get_json(&c, format!("{base}/{path}")).await;
        assert_eq!((got, body["error"].as_str()), (status, Some("bad_request")), "{path}: {body}");
    }

    drop(server);
    let out = std::process::Command::new(custody_testkit::bin("custody-log"))
        .args(["fsck", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    let report = custody_testkit::text(&out.stdout) + &custody_testkit::text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{report}");
}
