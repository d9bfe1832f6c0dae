//! `custody monitor` against the real `custody-log`: one JSON line per
//! matching entry (tag moves and promotions of watched names, publishes by
//! unlisted publishers, grants, accesses outside hours), nothing twice.

use std::time::{SystemTime, UNIX_EPOCH};

use custody_testkit::cli::*;
use custody_testkit::logserver::*;

#[test]
fn monitor_reports_matching_events_once() {
    let LogWithAdmin { dir, server, policy, admin, .. } = log_with_admin();
    let (alice, bob, carol) =
        (User::new(dir.path(), "alice"), User::new(dir.path(), "bob"), User::new(dir.path(), "carol"));
    for u in [&alice, &bob, &carol] {
        u.configure(&policy, &server.url);
    }
    let (ka, kb, kc) = (alice.keygen("alice"), bob.keygen("bob"), carol.keygen("carol"));
    admin.cli(&["grant", &ka, "--role", "publisher", "--pattern", "acme/*"]).ok();
    admin.cli(&["grant", &ka, "--role", "maintainer", "--pattern", "acme/*"]).ok();
    admin.cli(&["grant", &kb, "--role", "publisher", "--pattern", "acme/*"]).ok();

    // Accesses are allowed only in an hour window that excludes now and the
    // next hour, so this test's access is always outside it.
    let hour = (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 86_400) / 3_600;
    let rules = dir.path().join("rules.json");
    let (from, to) = ((hour + 2) % 24, (hour + 3) % 24);
    std::fs::write(
        &rules,
        format!(r#"{{"names": ["acme/model"], "publishers": ["alice"], "grants": true, "access_hours": {{"from": {from}, "to": {to}}}}}"#),
    )
    .unwrap();
    let watcher = User::new(dir.path(), "watcher");
    watcher.configure(&policy, &server.url);
    let rules = rules.to_str().unwrap();
    // First pass: starts at the current size, so the grants are not shown.
    let first = watcher.cli(&["monitor", "--watch", rules, "--once"]);
    assert_eq!(first.ok().stdout, "", "{}", first.stdout);

    let f = dir.path().join("m.bin");
    std::fs::write(&f, b"monitored").unwrap();
    let f = f.to_str().unwrap();
    alice.cli(&["publish", f, "--name", "acme/model", "--version", "1", "--tag", "prod"]).ok(); // 4, 5
    alice.cli(&["promote", "acme/model@1", "--to", "staging"]).ok(); // 6
    bob.cli(&["publish", f, "--name", "acme/other", "--version", "1", "--tag", "x"]).fails(1, "forbidden"); // 7
    admin.cli(&["grant", &kc, "--role", "reader", "--pattern", "acme/*"]).ok(); // 8
    let out = dir.path().join("read.bin");
    carol.cli(&["pull", "acme/model:prod", "-o", out.to_str().unwrap()]).ok(); // 9

    // The access is durable before its checkpoint is published: poll
    // (bounded) until a checkpoint covers it, collecting lines.
    let mut lines: Vec<serde_json::Value> = Vec::new();
    let mut stdout = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lines.len() < 5 && std::time::Instant::now() < deadline {
        let r = watcher.cli(&["monitor", &server.url, "--watch", rules, "--once"]);
        stdout.push_str(&r.ok().stdout);
        lines.extend(r.stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let got: Vec<(String, u64)> = lines
        .iter()
        .map(|l| (l["rule"].as_str().unwrap().to_owned(), l["index"].as_u64().unwrap()))
        .collect();
    let want: Vec<(String, u64)> = [
        // Every statement is followed by its batch's commitment leaf.
        ("tag_move", 10),
        ("promotion", 12),
        ("unlisted_publisher", 14),
        ("grant_change", 16),
        ("access_outside_hours", 18),
    ]
    .iter()
    .map(|(r, i)| (r.to_string(), *i))
    .collect();
    assert_eq!(got, want, "{stdout}");
    assert_eq!(lines[0]["event"]["tag"]["tag"], "prod");
    assert_eq!(lines[2]["actor"], "bob");
    // Nothing twice.
    assert_eq!(watcher.cli(&["monitor", "--watch", rules, "--once"]).ok().stdout, "");
    // A new monitor with --from-start sees the history, grants included.
    let late = User::new(dir.path(), "late");
    late.configure(&policy, &server.url);
    let all = late.cli(&["monitor", "--watch", rules, "--once", "--from-start"]);
    let first: serde_json::Value = serde_json::from_str(all.ok().stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["rule"].as_str(), first["index"].as_u64()),
        (Some("grant_change"), Some(0)),
        "{}",
        all.stdout
    );
    assert_eq!(all.stdout.lines().count(), 9, "{}", all.stdout);
    // Bad rules: a clear usage error.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"names": ["Not A Name"]}"#).unwrap();
    watcher.cli(&["monitor", "--watch", bad.to_str().unwrap(), "--once"]).fails(64, "watch rules");
}
