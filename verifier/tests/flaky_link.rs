//! `custody audit` over a flaky link: a proxy in front of the real log that
//! answers every other request 503 or 429 with `Retry-After`, or cuts the
//! connection. The shared client retries idempotent reads with backoff, so
//! the audit still replays every entry and passes; the same link with the
//! retries' budget exhausted (every request refused) fails with a clear
//! error instead of hanging or passing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use custody_registry::registry::Role;
use custody_testkit::cli::*;
use custody_testkit::hostile::{proxy, Response};
use custody_testkit::http::{download, http, post_statement, upload};
use custody_testkit::logserver::*;
use custody_testkit::statements::{access, digest_of, grant, publish, signed, signer};

#[test]
fn an_audit_over_a_link_that_refuses_every_other_request_still_passes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init_log(&data);
    let server = serve(&data, &[]);
    let policy = log_only_policy(dir.path(), &vkey);
    let admin = read_signer(&data.join("admin.key"));

    // A publisher and a reader, one artifact, and enough accesses that the
    // audit fetches several entry bundles and tiles.
    let c = http();
    let (alice, rita) = (signer("alice"), signer("rita"));
    for (who, role, pattern) in [(&alice, Role::Publisher, "acme/*"), (&rita, Role::Reader, "*")] {
        let (status, body) = post_statement(&c, &server.url, signed(&admin, grant(who, role, pattern)));
        assert_eq!(status, 200, "{body}");
    }
    let bytes = b"weights behind a flaky link".repeat(50);
    let digest = digest_of(&bytes);
    let env = signed(&alice, publish("acme/m", "1", digest, bytes.len() as u64));
    let (status, body) = upload(&c, &server.url, &bytes, &env);
    assert_eq!(status, 201, "{body}");
    for _ in 0..600 {
        let env = signed(&rita, access("acme/m", "1", digest));
        let (status, body) = download(&c, &server.url, digest, &env);
        assert_eq!(status, 200, "{body}");
    }
    // Genesis, two grants, the publish and 600 accesses, each batch ended
    // by its commitment leaf: the durable tree size says how many.
    let health: serde_json::Value = c.get(format!("{}/health", server.url)).send().unwrap().json().unwrap();
    let size = health["sequencer"]["tree_size"].as_u64().unwrap();
    assert!(size >= 1 + 2 + 1 + 600, "{health}");

    // Every other request through the proxy is refused, in turn with 503,
    // 429 (each with Retry-After: 0) and a 502 standing for a dropped
    // upstream connection.
    let served = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let (s, r) = (served.clone(), refused.clone());
    let flaky = proxy(
        server.url.clone(),
        Arc::new(move |_req, honest: Response| {
            let n = s.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 1 {
                r.fetch_add(1, Ordering::SeqCst);
                return match (n / 2) % 3 {
                    0 => Response::retry_after(503, 0),
                    1 => Response::retry_after(429, 0),
                    _ => Response::new(502, "upstream connection dropped"),
                };
            }
            honest
        }),
    );

    let auditor = User::new(dir.path(), "auditor");
    auditor.configure(&policy, &flaky);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let report = loop {
        let run = auditor.cli(&["audit", "--json"]);
        run.ok();
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        if v["size"] == size {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint of size {size} yet: {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(report["entries_replayed"], size, "{report}");
    assert!(report["violation"].is_null(), "{report}");
    assert!(
        refused.load(Ordering::SeqCst) >= 5,
        "the link really refused requests: {} of {}",
        refused.load(Ordering::SeqCst),
        served.load(Ordering::SeqCst)
    );

    // A link that refuses everything: the audit gives up with the status
    // named, rather than retrying forever or passing.
    let dead = proxy(server.url.clone(), Arc::new(|_req, _honest: Response| Response::retry_after(503, 0)));
    let stranded = User::new(dir.path(), "stranded");
    stranded.configure(&policy, &dead);
    let run = stranded.cli(&["audit"]);
    assert_ne!(run.code, 0, "an audit that fetched nothing must not pass: {}", run.stdout);
    assert!(run.stderr.contains("503"), "the refusal is named: {}", run.stderr);
}
