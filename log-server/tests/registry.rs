//! The registry against the real `custody-log`: the full lifecycle with
//! every entry verified in the log, every rejection path with its status
//! and an unchanged tree, concurrent tag moves, replay after restart, and
//! a tampered artifact refused on read.

use custody_registry::leaf::Leaf;
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::metadata::{Lineage, LineageRef};
use custody_standards::checkpoint::open_checkpoint;
use custody_standards::{leaf_hash, verify_inclusion, Hash, VerifierKey};
use custody_testkit::aio::*;
use custody_testkit::bin;
use custody_testkit::logserver::*;
use custody_testkit::statements::*;

fn b64_hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap()).collect()
}

/// Asserts a statement is accepted; returns its leaf index.
async fn ok(c: &reqwest::Client, base: &str, envelope: Vec<u8>) -> u64 {
    let (status, body) = post_statement(c, base, envelope).await;
    assert_eq!(status, 200, "{body}");
    body["index"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_is_logged_and_every_entry_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let root = init_registry(&data);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(data.join("admin.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the admin key must not be readable by others");
    let server = serve(&data, &[]);
    let (c, base) = (client(), server.url.clone());
    let (alice, bob, carol, dave) = (signer("alice"), signer("bob"), signer("carol"), signer("dave"));

    // Grants (entry 0 is the genesis written by init).
    let mut sent: Vec<(u64, Vec<u8>)> = Vec::new();
    for (who, role) in
        [(&alice, Role::Publisher), (&bob, Role::Maintainer), (&carol, Role::Approver), (&dave, Role::Reader)]
    {
        let env = signed(&root, grant(who, role, "acme/*"));
        sent.push((ok(&c, &base, env.clone()).await, env));
    }

    // Upload + publish a dataset, then a model whose lineage names it.
    let dataset = b"training data v1".repeat(1000);
    let env = signed(&alice, publish_bytes("acme/corpus", "1", &dataset, Lineage::default()));
    let (status, body) = upload(&c, &base, &dataset, &env).await;
    assert_eq!(status, 201, "{body}");
    let publish_index = body["index"].as_u64().unwrap();
    sent.push((publish_index, env.clone()));
    // The same publish again is idempotent: same index, nothing appended.
    let size = tree_size(&c, &base).await;
    let (status, again) = post_statement(&c, &base, env).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["index"].as_u64(), again["duplicate"].as_bool()), (Some(publish_index), Some(true)));
    assert_eq!(tree_size(&c, &base).await, size);
    let lineage = Lineage {
        datasets: vec![LineageRef { digest: digest_of(&dataset), external: false }],
        ..Lineage::default()
    };
    let (v1, v2) = (b"weights v1".repeat(5000), b"weights v2".repeat(5000));
    for (version, bytes) in [("1.0", &v1), ("2.0", &v2)] {
        let env = signed(&alice, publish_bytes("acme/model", version, bytes, lineage.clone()));
        let (status, body) = upload(&c, &base, bytes, &env).await;
        assert_eq!(status, 201, "{body}");
        sent.push((body["index"].as_u64().unwrap(), env));
    }

    // Approve, promote to production, tag; then v2 to production (and the
    // tag), and a rollback to v1 approved afresh.
    let mut steps = vec![
        signed(&bob, promote("acme/model", "1.0", Lifecycle::Staging)),
        signed(&carol, approve("acme/model", "1.0")),
        signed(&bob, promote("acme/model", "1.0", Lifecycle::Production)),
        signed(&bob, tag("acme/model", "production", digest_of(&v1), None)),
    ];
    for env in steps.drain(..) {
        sent.push((ok(&c, &base, env.clone()).await, env));
    }
    let first_tag = sent[sent.len() - 1].0;
    for env in [
        signed(&bob, promote("acme/model", "2.0", Lifecycle::Staging)),
        signed(&carol, approve("acme/model", "2.0")),
        signed(&bob, promote("acme/model", "2.0", Lifecycle::Production)),
        signed(&bob, tag("acme/model", "production", digest_of(&v2), Some(first_tag))),
        signed(&carol, approve("acme/model", "1.0")),
        signed(&bob, rollback("acme/model", "1.0")),
    ] {
        sent.push((ok(&c, &base, env.clone()).await, env));
    }

    // An access: the entry is durable before the bytes come back.
    let env = signed(&dave, access("acme/model", "1.0", digest_of(&v1)));
    let (status, index, bytes) = download(&c, &base, digest_of(&v1), &env).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, v1);
    let access_index = index.expect("the response names the access entry");
    sent.push((access_index, env));

    // Queries carry the leaf indexes that prove them.
    let (status, m) = get_json(&c, format!("{base}/registry/models/acme/model")).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["production"], "1.0");
    let versions = m["versions"].as_array().unwrap();
    assert_eq!(versions[0]["status"], "production");
    assert_eq!(versions[1]["status"], "deprecated");
    assert_eq!(versions[0]["approvals"][0]["actor"], "carol");
    let history = m["tags"][0]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["index"].as_u64(), Some(first_tag));
    let (_, art) = get_json(&c, format!("{base}/registry/artifacts/{}", digest_of(&v1))).await;
    assert_eq!(art["accesses"]["indexes"], serde_json::json!([access_index]));
    assert_eq!(art["publishes"][0]["version"], "1.0");
    // The tag still points at v2, now deprecated: disqualified, not moved.
    let (status, res) = get_json(&c, format!("{base}/registry/resolve?ref=acme/model:production")).await;
    assert_eq!((status, res["error"].as_str()), (409, Some("tag_disqualified")), "{res}");
    let (_, res) = get_json(&c, format!("{base}/registry/resolve?ref=acme/model@1.0")).await;
    assert_eq!(res["versions"][0]["status"], "production", "{res}");
    let (_, who) = get_json(&c, format!("{base}/registry/actors/dave")).await;
    // Entries dave signed (his grant was signed by root).
    assert_eq!(who["entries"]["indexes"], serde_json::json!([access_index]));
    assert_eq!(who["grants"][0]["role"], "reader");

    // Every entry is in the log, verbatim, under a verified checkpoint.
    let vkey =
        VerifierKey::parse(std::fs::read_to_string(data.join("log.vkey")).unwrap().trim_end()).unwrap();
    let (status, last) = post_statement(&c, &base, signed(&dave, grant(&dave, Role::Reader, "acme/*"))).await;
    assert_eq!(status, 403, "a reader cannot grant: {last}");
    // Wait (bounded) for a published checkpoint covering the last entry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let opened = loop {
        let r = c.get(format!("{base}/checkpoint")).send().await.unwrap();
        if r.status() == 200 {
            let cp = open_checkpoint(&r.bytes().await.unwrap(), &vkey).unwrap().checkpoint;
            if cp.size > access_index {
                break cp;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint covering entry {access_index}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let size = opened.size;
    for (index, envelope) in &sent {
        let entry = c.get(format!("{base}/entries/{index}")).send().await.unwrap().bytes().await.unwrap();
        let leaf = Leaf::decode(&entry).unwrap();
        assert_eq!(leaf.envelope, envelope.as_slice(), "entry {index} is not the statement sent");
        let (status, p) = get_json(&c, format!("{base}/proof/inclusion?index={index}&size={size}")).await;
        assert_eq!(status, 200, "{p}");
        verify_inclusion(&leaf_hash(&entry), *index, size, &b64_hashes(&p["proof"]), &opened.root).unwrap();
    }

    // A restart rebuilds the same registry from the log alone.
    drop(server);
    let server = serve(&data, &[]);
    let (_, again) = get_json(&c, format!("{}/registry/models/acme/model", server.url)).await;
    assert_eq!(again, m);
    drop(server);
    let (code, report) = fsck(&data);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("registry replayed and every artifact re-hashed"), "{report}");
}

/// Runs `custody-log fsck`; returns the exit code and stdout.
fn fsck(data: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(bin("custody-log"))
        .args(["fsck", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_has_its_status_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let root = init_registry(&data);
    let server = serve(&data, &["--rate-limit", "5"]);
    let (c, base) = (client(), server.url.clone());
    let (alice, bob, mallory) = (signer("alice"), signer("bob"), signer("mallory"));
    ok(&c, &base, signed(&root, grant(&alice, Role::Publisher, "acme/*"))).await;
    ok(&c, &base, signed(&root, grant(&bob, Role::Maintainer, "acme/*"))).await;
    let v1 = b"v1 weights".to_vec();
    let (status, _) =
        upload(&c, &base, &v1, &signed(&alice, publish_bytes("acme/m", "1", &v1, Lineage::default()))).await;
    assert_eq!(status, 201);
    let tag_index = ok(&c, &base, signed(&bob, tag("acme/m", "prod", digest_of(&v1), None))).await;
    let size = tree_size(&c, &base).await;

    let replayed = signed(&bob, promote("acme/m", "1", Lifecycle::Staging));
    ok(&c, &base, replayed.clone()).await;
    // The statement and the commitment leaf that ends its batch.
    let size = size + 2;
    // A well-formed envelope whose signature belongs to another statement
    // by the same key: canonical base64, valid shape, wrong signature.
    let tampered = {
        let mut env: serde_json::Value =
            serde_json::from_slice(&signed(&bob, promote("acme/m", "1", Lifecycle::Development))).unwrap();
        let donor: serde_json::Value =
            serde_json::from_slice(&signed(&bob, promote("acme/m", "1", Lifecycle::Archived))).unwrap();
        env["signatures"][0]["sig"] = donor["signatures"][0]["sig"].clone();
        serde_json::to_vec(&env).unwrap()
    };
    let other = b"other bytes".to_vec();

    let cases: Vec<(&str, u16, Vec<u8>)> = vec![
        ("malformed JSON", 400, b"{not json".to_vec()),
        ("bad signature", 401, tampered),
        ("unknown key", 401, signed(&mallory, promote("acme/m", "1", Lifecycle::Development))),
        (
            "expired",
            401,
            statement_at(&bob, now_secs() - 3600, promote("acme/m", "1", Lifecycle::Development))
                .sign(&bob)
                .unwrap(),
        ),
        (
            "from the future",
            401,
            statement_at(&bob, now_secs() + 3600, promote("acme/m", "1", Lifecycle::Development))
                .sign(&bob)
                .unwrap(),
        ),
        ("replayed", 401, replayed),
        ("no role on that name", 403, signed(&bob, promote("other/m", "1", Lifecycle::Staging))),
        ("publisher cannot tag", 403, signed(&alice, tag("acme/m", "prod", digest_of(&v1), Some(tag_index)))),
        ("stale previous", 409, signed(&bob, tag("acme/m", "prod", digest_of(&v1), None))),
        ("production without approval", 422, signed(&bob, promote("acme/m", "1", Lifecycle::Production))),
        ("rollback to a version never in production", 422, signed(&bob, rollback("acme/m", "1"))),
        (
            "publish of bytes never uploaded",
            422,
            signed(&alice, publish_bytes("acme/m", "2", &other, Lineage::default())),
        ),
    ];
    for (what, want, envelope) in cases {
        let (status, body) = post_statement(&c, &base, envelope).await;
        assert_eq!(status, want, "{what}: {body}");
        assert!(body["error"].is_string() && body["detail"].is_string(), "{what}: {body}");
        assert_eq!(tree_size(&c, &base).await, size, "{what} changed the tree");
    }

    // Version conflict: same name+version, other bytes.
    let env = signed(&alice, publish_bytes("acme/m", "1", &other, Lineage::default()));
    let (status, body) = upload(&c, &base, &other, &env).await;
    assert_eq!(status, 409, "{body}");
    // Unknown lineage digest.
    let lineage = Lineage {
        parents: vec![LineageRef { digest: digest_of(b"nowhere"), external: false }],
        ..Lineage::default()
    };
    let env = signed(&alice, publish_bytes("acme/m", "3", &other, lineage));
    let (status, body) = upload(&c, &base, &other, &env).await;
    assert_eq!(status, 422, "{body}");
    // Upload whose bytes do not match the statement.
    let env = signed(&alice, publish_bytes("acme/m", "4", &other, Lineage::default()));
    let r = c
        .put(format!("{base}/blobs/{}", digest_of(&other)))
        .header("Custody-Statement", custody_standards::encoding::encode_base64(&env))
        .body(b"OTHER BYTES".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    // Unsigned download, and an oversized statement.
    let r = c.get(format!("{base}/blobs/{}", digest_of(&v1))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c.post(format!("{base}/statements")).body(vec![b' '; 70_000]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(tree_size(&c, &base).await, size);

    // Rate limit: burst of 10 for 5/s, then 429 with Retry-After.
    let mut limited = None;
    for i in 0..30 {
        let (status, body) =
            post_statement(&c, &base, signed(&bob, tag("acme/m", &format!("t{i}"), digest_of(&v1), None)))
                .await;
        if status == 429 {
            limited = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let body = limited.expect("the rate limit never triggered");
    assert_eq!(body["error"], "rate_limited");
    let (_, metrics) = {
        let r = c.get(format!("{base}/metrics")).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    for reason in ["bad_signature", "unknown_key", "rate_limited"] {
        assert!(
            metrics.contains(&format!("custody_rejected_total{{reason=\"{reason}\"}}")),
            "{reason} not counted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tag_moves_on_one_tag_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let root = init_registry(&data);
    let server = serve(&data, &[]);
    let (c, base) = (client(), server.url.clone());
    let (alice, bob) = (signer("alice"), signer("bob"));
    ok(&c, &base, signed(&root, grant(&alice, Role::Publisher, "acme/*"))).await;
    ok(&c, &base, signed(&root, grant(&bob, Role::Maintainer, "acme/*"))).await;
    let mut digests = Vec::new();
    for i in 0..8 {
        let bytes = format!("model {i}").into_bytes();
        let (status, body) = upload(
            &c,
            &base,
            &bytes,
            &signed(&alice, publish_bytes("acme/m", &format!("{i}"), &bytes, Lineage::default())),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        digests.push(digest_of(&bytes));
    }
    let first = ok(&c, &base, signed(&bob, tag("acme/m", "latest", digests[0], None))).await;
    let size = tree_size(&c, &base).await;
    let tasks: Vec<_> = digests[1..]
        .iter()
        .map(|d| {
            let (c, base, env) =
                (c.clone(), base.clone(), signed(&bob, tag("acme/m", "latest", *d, Some(first))));
            tokio::spawn(async move { post_statement(&c, &base, env).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().0);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 409, 409, 409, 409, 409, 409], "exactly one move wins");
    // The winning move and the commitment leaf after it.
    assert_eq!(tree_size(&c, &base).await, size + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blob_is_refused_on_read_and_counted() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let root = init_registry(&data);
    let server = serve(&data, &[]);
    let (c, base) = (client(), server.url.clone());
    let alice = signer("alice");
    ok(&c, &base, signed(&root, grant(&alice, Role::Admin, "acme/*"))).await;
    let bytes = b"honest weights".repeat(100);
    let (status, _) =
        upload(&c, &base, &bytes, &signed(&alice, publish_bytes("acme/m", "1", &bytes, Lineage::default())))
            .await;
    assert_eq!(status, 201);
    let hex = digest_of(&bytes).0.to_hex();
    let path = data.join("blobs/sha256").join(&hex[..2]).join(&hex);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut evil = bytes.clone();
    evil[7] ^= 0x20;
    std::fs::write(&path, &evil).unwrap();
    let (status, _, body) =
        download(&c, &base, digest_of(&bytes), &signed(&alice, access("acme/m", "1", digest_of(&bytes))))
            .await;
    assert_eq!(status, 500);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"], "integrity_violation", "{err}");
    assert!(!body.windows(evil.len()).any(|w| w == evil.as_slice()), "tampered bytes were served");
    let metrics = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("custody_integrity_violations_total 1\n"), "{metrics}");
    // fsck on the stopped server names the blob.
    drop(server);
    let (code, report) = fsck(&data);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(&format!("blob sha256:{hex}")), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_rotated_keys_are_refused() {
    use custody_registry::actor_key::ActorSigner;
    use custody_registry::names::ActorName;
    use custody_registry::statement::events::{RevokeKey, Rotate};
    use custody_registry::statement::Event;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let root = init_registry(&data);
    let server = serve(&data, &[]);
    let (c, base) = (client(), server.url.clone());
    let (bob, carol) = (signer("bob"), signer("carol"));
    ok(&c, &base, signed(&root, grant(&bob, Role::Maintainer, "acme/*"))).await;
    ok(&c, &base, signed(&root, grant(&carol, Role::Maintainer, "acme/*"))).await;

    // An admin kills carol's key: her next statement is refused, nothing appended.
    let revoke = Event::RevokeKey(RevokeKey { actor: carol.actor().clone(), key_id: carol.key_id() });
    ok(&c, &base, signed(&root, revoke)).await;
    let size = tree_size(&c, &base).await;
    let (status, body) =
        post_statement(&c, &base, signed(&carol, promote("acme/m", "1", Lifecycle::Staging))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("key_revoked")), "{body}");
    assert_eq!(tree_size(&c, &base).await, size);

    // Bob rotates (signed by his old key): the old key is dead, the new one works.
    let bob2 = ActorSigner::from_seed(&ActorName::new("bob").unwrap(), &[42; 32]);
    ok(&c, &base, signed(&bob, Event::Rotate(Rotate { new_key: bob2.public().clone() }))).await;
    let size = tree_size(&c, &base).await;
    let (status, body) =
        post_statement(&c, &base, signed(&bob, tag("acme/m", "x", digest_of(b"x"), None))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("key_rotated")), "{body}");
    assert_eq!(tree_size(&c, &base).await, size);
    // The new key holds bob's roles: a tag of an unpublished digest is a
    // rule violation (422), not an authentication failure.
    let (status, body) =
        post_statement(&c, &base, signed(&bob2, tag("acme/m", "x", digest_of(b"x"), None))).await;
    assert_eq!(status, 422, "the rotated-in key authenticates: {body}");
    let (_, who) = get_json(&c, format!("{base}/registry/actors/bob")).await;
    assert_eq!(who["keys"][0]["ended"], "rotated", "{who}");
    assert!(who["keys"][1]["ended"].is_null(), "{who}");
}
