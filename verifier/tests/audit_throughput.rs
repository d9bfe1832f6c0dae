//! Ignored measurement: `custody audit` throughput on a generic log filled
//! with valid registry leaves (a publish, then signed accesses). Run with
//! `cargo test -p custody-verifier --test audit_throughput -- --ignored --nocapture`
//! (`CUSTODY_AUDIT_BENCH_N` entries, default 20,000).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use custody_registry::actor_key::ActorSigner;
use custody_registry::leaf::Leaf;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, Version};
use custody_registry::registry::Role;
use custody_registry::statement::events::{Access, GrantRole, Kind, Publish};
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_testkit::bin;
use custody_testkit::cli::*;
use custody_testkit::http::http;
use custody_testkit::logserver::*;

#[test]
#[ignore = "measurement; prints entries per second"]
fn audit_throughput() {
    let n: u64 = std::env::var("CUSTODY_AUDIT_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let out = std::process::Command::new(bin("custody-log"))
        .args(["init", "--generic", "--origin", ORIGIN, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let server = serve(&data, &["--allow-raw-append"]);
    let root = ActorSigner::from_seed(&ActorName::new("root").unwrap(), &[1; 32]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let time = Timestamp::from_unix_secs(now).unwrap();
    let ctx = Context::reason(Text::new("bench").unwrap());
    let digest = Digest(custody_standards::hash::sha256(b"bench"));
    let mut events = vec![
        Event::Grant(GrantRole {
            actor: root.actor().clone(),
            key: root.public().clone(),
            role: Role::Admin,
            pattern: Pattern::All,
        }),
        Event::Publish(Publish {
            name: ModelName::new("acme/m").unwrap(),
            version: Version::new("1").unwrap(),
            kind: Kind::Model,
            digest,
            size: 5,
            media_type: MediaType::new("application/octet-stream").unwrap(),
            metadata: Default::default(),
            lineage: Default::default(),
        }),
    ];
    let access =
        Access { name: ModelName::new("acme/m").unwrap(), version: Version::new("1").unwrap(), digest };
    events.extend((2..n).map(|_| Event::Access(access.clone())));
    let c = http();
    let t0 = Instant::now();
    for (i, e) in events.into_iter().enumerate() {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let env = Statement::new(&root, time, Nonce(nonce), ctx.clone(), e).sign(&root).unwrap();
        let leaf = Leaf::new(now * 1000 + i as u64 / 1000, &env).unwrap().encode();
        let r = c.post(format!("{}/entries", server.url)).body(leaf).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    eprintln!("filled {n} entries in {:.1?}", t0.elapsed());
    let policy = log_only_policy(dir.path(), &vkey);
    let u = User::new(dir.path(), "auditor");
    u.configure(&policy, &server.url);
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&c.get(format!("{}/health", server.url)).send().unwrap().bytes().unwrap())
                .unwrap();
        if v["checkpoint"]["last_published_size"].as_u64() == Some(n) {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for pass in ["first (all fetched)", "second (cached)"] {
        let t = Instant::now();
        let r = u.cli(&["audit", "--json"]);
        r.ok();
        let s = t.elapsed().as_secs_f64();
        eprintln!("audit {pass}: {n} entries in {s:.2} s = {:.0} entries/s", n as f64 / s);
    }
}
