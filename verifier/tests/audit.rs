//! `custody audit` against the real `custody-log`: an honest log passes
//! (and a second audit resumes from the cache after a consistency check);
//! an entry altered inside the stopped server's RocksDB is named by index;
//! a log that appended a statement its grant history forbids fails at that
//! statement's index.

use std::time::{SystemTime, UNIX_EPOCH};

use custody_registry::actor_key::ActorSigner;
use custody_registry::leaf::Leaf;
use custody_registry::names::{ActorName, Digest, ModelName, Pattern, Version};
use custody_registry::registry::Role;
use custody_registry::statement::events::{Access, GrantRole};
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_testkit::cli::*;
use custody_testkit::http::http;
use custody_testkit::logserver::*;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn signed(who: &ActorSigner, n: u64, event: Event) -> Vec<u8> {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    nonce[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    let reason = Context::reason(Text::new("audit test").unwrap());
    Statement::new(who, Timestamp::from_unix_secs(now()).unwrap(), Nonce(nonce), reason, event)
        .sign(who)
        .unwrap()
}

fn grant(to: &ActorSigner, role: Role, pattern: &str) -> Event {
    Event::Grant(GrantRole {
        actor: to.actor().clone(),
        key: to.public().clone(),
        role,
        pattern: Pattern::new(pattern).unwrap(),
    })
}

fn actor(name: &str) -> ActorSigner {
    ActorSigner::from_seed(
        &ActorName::new(name).unwrap(),
        &custody_standards::hash::sha256(name.as_bytes()).0,
    )
}

#[test]
fn honest_log_passes_resumes_and_an_altered_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init_log(&data);
    let server = serve(&data, &["--rate-limit", "0"]);
    let policy = log_only_policy(dir.path(), &vkey);
    let admin = User::new(dir.path(), "root");
    admin.configure(&policy, &server.url);
    admin.use_key(&data.join("admin.key"));
    let alice = User::new(dir.path(), "alice");
    alice.configure(&policy, &server.url);
    let key = alice.keygen("alice");
    for role in ["publisher", "maintainer"] {
        admin.cli(&["grant", &key, "--role", role, "--pattern", "acme/*"]).ok();
    }
    let bytes = b"audited weights".repeat(100);
    let file = dir.path().join("m.bin");
    std::fs::write(&file, &bytes).unwrap();
    alice
        .cli(&["publish", file.to_str().unwrap(), "--name", "acme/m", "--version", "1", "--tag", "prod"])
        .ok();
    // 300 accesses so the log has a full tile and bundle to cache.
    let reader = actor("reader");
    admin.cli(&["grant", &reader.public().to_string(), "--role", "reader", "--pattern", "*"]).ok();
    let digest = Digest(custody_standards::hash::sha256(&bytes));
    let c = http();
    for n in 0..300 {
        let access =
            Access { name: ModelName::new("acme/m").unwrap(), version: Version::new("1").unwrap(), digest };
        let env = signed(&reader, n, Event::Access(access));
        let r = c
            .get(format!("{}/blobs/{digest}", server.url))
            .header("Custody-Statement", custody_standards::encoding::encode_base64(&env))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // genesis, 2 grants, publish, tag, reader grant, accesses, and the
    // commitment leaf ending each batch.
    let health: serde_json::Value = c.get(format!("{}/health", server.url)).send().unwrap().json().unwrap();
    let size = health["sequencer"]["tree_size"].as_u64().unwrap();
    assert!(size >= 6 + 300, "{health}");
    // An access at or after entry 200 (not a commitment leaf).
    let target = (200u64..)
        .find(|i| {
            let e = c.get(format!("{}/entries/{i}", server.url)).send().unwrap().bytes().unwrap();
            Leaf::decode(&e).is_ok()
        })
        .unwrap();

    let auditor = User::new(dir.path(), "auditor");
    auditor.configure(&policy, &server.url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let first = loop {
        let r = auditor.cli(&["audit", "--json"]);
        r.ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        if v["size"] == size {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint of size {size}: {v}");
    };
    assert_eq!(first["entries_replayed"], size);
    assert!(first["violation"].is_null(), "{first}");
    let second = auditor.cli(&["audit", &server.url, "--exact", "--jobs", "2"]);
    second.ok();
    assert!(second.stdout.contains(&format!("resumed from size {size}")), "{}", second.stdout);
    assert!(
        second.stdout.contains(" from cache") && !second.stdout.contains(" 0 from cache"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains(&format!("audit OK: {size} entries replayed")), "{}", second.stdout);

    // Cache files are written without fsync, so a crash can leave them torn.
    // A damaged cache is not evidence against the log: the audit fetches the
    // log's copy again, passes, and repairs the cache.
    let audit_dir = std::fs::read_dir(auditor.home.join("audit")).unwrap().next().unwrap().unwrap().path();
    let (bundle, tile) = (audit_dir.join("entries/0"), audit_dir.join("tile0/0"));
    let (good_bundle, good_tile) = (std::fs::read(&bundle).unwrap(), std::fs::read(&tile).unwrap());
    let mut torn = good_bundle.clone();
    torn[good_bundle.len() / 2] ^= 1;
    std::fs::write(&bundle, &torn).unwrap();
    std::fs::write(&tile, &good_tile[..good_tile.len() / 2]).unwrap();
    // Without the saved replay state the audit replays from entry 0, so it
    // reads (and repairs) every cached bundle.
    std::fs::remove_file(audit_dir.join("state")).unwrap();
    let third = auditor.cli(&["audit", &server.url]);
    third.ok();
    assert!(third.stdout.contains("replay: from entry 0 (no saved state"), "{}", third.stdout);
    assert!(third.stdout.contains(&format!("audit OK: {size} entries replayed")), "{}", third.stdout);
    assert_eq!(std::fs::read(&bundle).unwrap(), good_bundle, "the bundle cache is repaired");
    assert_eq!(std::fs::read(&tile).unwrap(), good_tile, "the tile cache is repaired");

    // Alter that access inside the stopped server's RocksDB: one
    // millisecond added to its receive time. The server restarts fine (the
    // statement is still valid), but the entry no longer hashes to its leaf.
    drop(server);
    custody_log::store::testing::rewrite_entry(&data.join("db"), target, |old| {
        let leaf = Leaf::decode(old).unwrap();
        Leaf::new(leaf.receive_time_ms + 1, leaf.envelope).unwrap().encode()
    })
    .unwrap();
    let server = serve(&data, &[]);
    let fresh = User::new(dir.path(), "fresh");
    fresh.configure(&policy, &server.url);
    let r = fresh.cli(&["audit"]);
    r.fails(2, &format!("audit: entry {target}"));
    assert!(r.stdout.contains(&format!("audit FAILED at entry {target}")), "{}", r.stdout);
    assert!(r.stderr.contains("altered in storage"), "{}", r.stderr);
    // The first auditor keeps the copy it verified (the tree is unchanged),
    // so its incremental audit passes; --refetch checks what is served now.
    auditor.cli(&["audit", &server.url]).ok();
    auditor.cli(&["audit", &server.url, "--refetch"]).fails(2, &format!("audit: entry {target}"));
}

#[test]
fn a_statement_the_grant_history_forbids_fails_at_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    // A generic log takes raw leaves: it plays a registry server that
    // skipped its checks.
    let vkey = init_generic(&data, ORIGIN).to_string();
    let server = serve(&data, &["--allow-raw-append"]);
    let (root, alice, mallory) = (actor("root"), actor("alice"), actor("mallory"));
    let ms = now() * 1000;
    let statements = [
        signed(&root, 1, grant(&root, Role::Admin, "*")),
        signed(&root, 2, grant(&alice, Role::Publisher, "acme/*")),
        signed(&root, 3, grant(&alice, Role::Reader, "*")),
        // alice is no admin: an honest registry refuses this grant.
        signed(&alice, 4, grant(&mallory, Role::Admin, "*")),
        signed(&root, 5, grant(&mallory, Role::Reader, "acme/*")),
    ];
    let c = http();
    for (i, env) in statements.iter().enumerate() {
        let leaf = Leaf::new(ms + i as u64, env).unwrap().encode();
        let r = c.post(format!("{}/entries", server.url)).body(leaf).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    }
    let policy = log_only_policy(dir.path(), &vkey);
    let auditor = User::new(dir.path(), "auditor");
    auditor.configure(&policy, &server.url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = auditor.cli(&["audit", "--json"]);
        if r.code == 2 {
            let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            assert_eq!(v["violation"]["index"], 3, "{v}");
            assert_eq!(v["entries_replayed"], 3, "{v}");
            assert!(r.stderr.contains("audit: entry 3"), "{}", r.stderr);
            break;
        }
        // Before the checkpoint covers entry 3 the audit passes (or there
        // is no checkpoint yet).
        if !r.stderr.contains("no checkpoint has been published yet") {
            r.ok();
        }
        assert!(std::time::Instant::now() < deadline, "the violation was never reported: {}", r.stdout);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
