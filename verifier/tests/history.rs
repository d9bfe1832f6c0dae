//! `custody history` and `custody report` against the real `custody-log`:
//! rows come from entries proven in the log (a query answer naming an
//! unrelated entry adds nothing), each with its leaf index.

use std::sync::Arc;

use custody_testkit::cli::*;
use custody_testkit::hostile::proxy;
use custody_testkit::logserver::*;

#[test]
fn history_and_report_come_from_proven_entries() {
    let LogWithAdmin { dir, server, policy, admin, .. } = log_with_admin();
    let (alice, carol) = (User::new(dir.path(), "alice"), User::new(dir.path(), "carol"));
    alice.configure(&policy, &server.url);
    carol.configure(&policy, &server.url);
    let (ka, kc) = (alice.keygen("alice"), carol.keygen("carol"));
    admin.cli(&["grant", &ka, "--role", "publisher", "--pattern", "acme/*"]).ok(); // 1
    admin.cli(&["grant", &ka, "--role", "maintainer", "--pattern", "acme/*"]).ok(); // 2
    admin.cli(&["grant", &kc, "--role", "approver", "--pattern", "acme/*"]).ok(); // 3
    let file = dir.path().join("m.bin");
    std::fs::write(&file, b"history weights".repeat(50)).unwrap();
    let f = file.to_str().unwrap();
    alice
        .cli(&[
            "--reason",
            "release 1.0",
            "publish",
            f,
            "--name",
            "acme/model",
            "--version",
            "1.0",
            "--tag",
            "prod",
        ])
        .ok(); // 4, 5
    alice.cli(&["promote", "acme/model@1.0", "--to", "staging"]).ok(); // 6
    carol.cli(&["approve", "acme/model@1.0"]).ok(); // 7
    alice.cli(&["promote", "acme/model@1.0", "--to", "production"]).ok(); // 8
    let out = dir.path().join("pulled.bin");
    carol.cli(&["pull", "acme/model:prod", "-o", out.to_str().unwrap()]).ok(); // 9 (access)

    let h = alice.cli(&["history", "acme/model"]);
    h.ok();
    let lines: Vec<&str> = h.stdout.lines().collect();
    assert!(lines[0].starts_with("INDEX"), "{}", h.stdout);
    let expect = [
        ("4 ", "alice", "publish"),
        ("5 ", "alice", "tag"),
        ("6 ", "alice", "promote"),
        ("7 ", "carol", "approve"),
        ("8 ", "alice", "promote"),
        ("9 ", "carol", "access"),
    ];
    for (i, (index, actor, event)) in expect.iter().enumerate() {
        let l = lines[i + 1];
        assert!(l.starts_with(index) && l.contains(actor) && l.contains(event), "row {i}: {l}\n{}", h.stdout);
    }
    assert!(lines[6].contains("1.0") && lines[3].contains("to staging"), "{}", h.stdout);

    // A lying query naming an unrelated entry (the grant at 1) as an
    // approval adds no row: rows come from the entries themselves.
    let url = proxy(
        server.url.clone(),
        Arc::new(|req, mut r| {
            if req.path.starts_with("/registry/models/acme/model") {
                let mut v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                v["versions"][0]["approvals"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"actor": "carol", "index": 1}));
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
    );
    let j = alice.cli(&["--log", &url, "history", "acme/model", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&j.ok().stdout).unwrap();
    let got: Vec<u64> = rows.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(got, vec![4, 5, 6, 7, 8, 9]);
    assert_eq!(rows[0]["reason"], "release 1.0");

    // The report over everything, and over a period with nothing in it.
    let md_file = dir.path().join("report.md");
    let json_file = dir.path().join("report.json");
    let r = alice.cli(&[
        "report",
        "--name",
        "acme/model",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2999-01-01T00:00:00Z",
        "--markdown",
        md_file.to_str().unwrap(),
        "--json-file",
        json_file.to_str().unwrap(),
    ]);
    r.ok();
    assert!(r.stdout.contains("# Compliance report: acme/model"), "{}", r.stdout);
    assert!(r.stdout.contains("| promote | 2 |") && r.stdout.contains("| carol | 2 |"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&md_file).unwrap(), r.stdout);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    assert_eq!(json["events_by_type"]["access"], 1);
    assert_eq!(json["versions_affected"], serde_json::json!(["1.0"]));
    assert_eq!(json["log"]["consistency_verified"], true);
    let empty = alice.cli(&[
        "report",
        "--name",
        "acme/model",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2000-12-31T00:00:00Z",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&empty.ok().stdout).unwrap();
    assert_eq!(v["events"], serde_json::json!([]));
    alice.cli(&["history", "acme/none"]).fails(2, "not in the log");
    alice
        .cli(&["report", "--name", "acme/model", "--from", "yesterday", "--to", "2000-12-31T00:00:00Z"])
        .fails(64, "--from");
}
