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
    admin.cli(&["grant", &ka, "--role", "publisher", "--pattern", "acme/*"]).ok(); // 2
    admin.cli(&["grant", &ka, "--role", "maintainer", "--pattern", "acme/*"]).ok();
    admin.cli(&["grant", &kc, "--role", "approver", "--pattern", "acme/*"]).ok();
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
        .ok();
    alice.cli(&["promote", "acme/model@1.0", "--to", "staging"]).ok();
    carol.cli(&["approve", "acme/model@1.0"]).ok();
    alice.cli(&["promote", "acme/model@1.0", "--to", "production"]).ok();
    let out = dir.path().join("pulled.bin");
    carol.cli(&["pull", "acme/model:prod", "-o", out.to_str().unwrap()]).ok(); // an access

    let h = alice.cli(&["history", "acme/model"]);
    h.ok();
    // The table: its header and one line per row (a line about the
    // checkpoint follows).
    let lines: Vec<&str> = h
        .stdout
        .lines()
        .take_while(|l| l.starts_with("INDEX") || l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(lines[0].starts_with("INDEX"), "{}", h.stdout);
    // Each batch ends with a state commitment leaf, so entry indexes are
    // not consecutive: check the order and take the indexes from the rows.
    let expect = [
        ("alice", "publish"),
        ("alice", "tag"),
        ("alice", "promote"),
        ("carol", "approve"),
        ("alice", "promote"),
        ("carol", "access"),
    ];
    assert_eq!(lines.len(), expect.len() + 1, "{}", h.stdout);
    for (i, (actor, event)) in expect.iter().enumerate() {
        let l = lines[i + 1];
        assert!(l.contains(actor) && l.contains(event), "row {i}: {l}\n{}", h.stdout);
    }
    assert!(lines[6].contains("1.0") && lines[3].contains("to staging"), "{}", h.stdout);
    let honest: Vec<u64> =
        lines[1..].iter().map(|l| l.split_whitespace().next().unwrap().parse().unwrap()).collect();
    assert!(honest.windows(2).all(|w| w[0] < w[1]), "{honest:?}");

    // A lying query naming an unrelated entry (the first grant) as an
    // approval adds no row: rows come from the entries themselves, listed
    // by the complete entry list.
    let url = proxy(
        server.url.clone(),
        Arc::new(|req, mut r| {
            if req.path == "/registry/models/acme/model" {
                let mut v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                v["versions"][0]["approvals"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"actor": "carol", "index": 2}));
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
    );
    let j = alice.cli(&["--log", &url, "history", "acme/model", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&j.ok().stdout).unwrap();
    assert_eq!(h["name"], "acme/model");
    let rows = h["rows"].as_array().unwrap();
    let got: Vec<u64> = rows.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(got, honest);
    assert_eq!(rows[0]["reason"], "release 1.0");

    // A log that leaves the approval out of the entry list, or slips the
    // grant in, is refused: the committed entries chain of the name does
    // not match (exit 2).
    let approval = honest[3];
    for (what, edit) in [("omits", 0u8), ("adds", 1u8)] {
        let url = proxy(
            server.url.clone(),
            Arc::new(move |req, mut r| {
                if req.path.starts_with("/registry/models/acme/model/entries") {
                    let mut v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                    let list = v["indexes"].as_array_mut().unwrap();
                    if edit == 0 {
                        list.retain(|i| i.as_u64() != Some(approval));
                    } else {
                        list.insert(0, serde_json::json!(2));
                    }
                    r.body = serde_json::to_vec(&v).unwrap();
                }
                r
            }),
        );
        let run = alice.cli(&["--log", &url, "history", "acme/model"]);
        assert!(
            run.code == 2 && run.stderr.contains("not complete"),
            "a list that {what} an entry: {}{}",
            run.stdout,
            run.stderr
        );
    }

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
