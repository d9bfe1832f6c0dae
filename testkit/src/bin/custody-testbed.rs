//! `custody-testbed`: a whole deployment for tests written outside Rust
//! (the Python package's pytest suite). It starts the real `custody-log`
//! with three witnesses under a 2-of-3 policy ([`demo_team`]: alice may
//! publish and maintain `demo/*`, dave may read it, each with a home made
//! by `custody init`), plus two hostile proxies in front of the log, prints
//! one JSON object describing it all on stdout, and stays up until its
//! stdin closes; then everything stops and its directory is removed.
//!
//! - `tamper_url`: flips a byte of every model-directory file it serves;
//! - `fork_url`: serves a checkpoint of the log's size with another root,
//!   signed with the log's key and two witnesses' keys (a fork).
//!
//! The binaries are found next to this one, as tests find them.

use std::io::Read as _;

use custody_testkit::scenario::forge::{fork_proxy, tampering_proxy};
use custody_testkit::scenario::{bin, demo_team};

fn main() {
    let dir = tempfile::Builder::new().prefix("custody-testbed-").tempdir().expect("a temporary directory");
    let (d, admin, alice, dave, _) = demo_team(dir.path());
    let description = serde_json::json!({
        "dir": dir.path(),
        "log_url": d.log.url,
        "origin": d.origin,
        "policy": d.policy,
        "witnesses": d.witnesses.iter().map(|w| w.url.clone()).collect::<Vec<_>>(),
        "custody": bin("custody"),
        "homes": { "admin": admin.home, "alice": alice.home, "dave": dave.home },
        "tamper_url": tampering_proxy(&d.log.url),
        "fork_url": fork_proxy(&d),
    });
    println!("{description}");
    // Up until the test harness closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(d);
}
