//! `custody report` over the whole registry and over one name, on the real
//! binaries: a registry with several names and every event kind, a period
//! that splits what the test did, and the three formats. The report lists
//! exactly the events in the period, each with its verdict, the checkpoint
//! it was proven against, and how completeness was proven (a full audit for
//! the registry, the committed entries chain for a name).
//!
//! Hostile: a log (or anything in front of it) that omits, reorders or
//! alters an entry, or shows a forked checkpoint, gets no report (exit 2,
//! or 3 with evidence for a fork of what the client remembered) and no file
//! is written; a reason carrying markup is escaped in the HTML page.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use custody_registry::timestamp::Timestamp;
use custody_standards::Hash;
use custody_testkit::hostile::proxy;
use custody_testkit::scenario::forge::{forged_checkpoint, lying_bundles};
use custody_testkit::scenario::*;
use serde_json::Value;

const TO: &str = "2999-01-01T00:00:00Z";
/// The action of an emergency bypass.
const BREAK_GLASS: &str = "break_glass";
/// A reason with markup: shown as text, never as HTML.
const HOSTILE_REASON: &str = "nightly <script>alert('x')</script> & <b>build</b>";

/// What the test did inside the period.
struct World {
    d: Deployment,
    alice: User,
    dave: User,
    /// Start of the period: after the first publishes, before the rest.
    from: String,
    /// Statement indexes logged in the period, by action (the access is
    /// not printed by `pull`, it is found in the report).
    in_range: BTreeMap<&'static str, Vec<u64>>,
    /// Indexes logged before the period.
    before: Vec<u64>,
    /// Entries about demo/other in the period, in log order.
    other: Vec<u64>,
}

/// Seconds since the epoch now.
fn now() -> u64 {
    now_secs()
}

/// Sleeps until the wall clock is past `secs`.
fn after(secs: u64) {
    while now() <= secs {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn world(tmp: &Path) -> World {
    let (d, admin, alice, dave, _) = demo_team(tmp);
    let carol = d.user("carol");
    admin.ok(&["grant", &carol.keygen("carol"), "--role", "approver", "--pattern", "demo/*"]);
    let v1 = write_file(tmp, "v1.bin", &b"weights one ".repeat(300));
    let before = vec![
        logged_index(&alice.ok(&["publish", &v1, "--name", "demo/model", "--version", "1"])),
        logged_index(&alice.ok(&["tag", "demo/model@1", "latest"])),
    ];
    // The period starts strictly after every statement so far and before
    // every one to come (statement and receive times alike).
    let last = now();
    after(last);
    let from = now();
    after(from);

    let mut in_range: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    let mut log =
        |what: &'static str, out: String| in_range.entry(what).or_default().push(logged_index(&out));
    let v2 = write_file(tmp, "v2.bin", &b"weights two ".repeat(300));
    log(
        "publish",
        alice.ok(&[
            "--environment",
            "train",
            "--pipeline",
            "ci#7",
            "--reason",
            HOSTILE_REASON,
            "publish",
            &v2,
            "--name",
            "demo/model",
            "--version",
            "2",
        ]),
    );
    let other = write_file(tmp, "other.bin", b"another model");
    log("publish", alice.ok(&["publish", &other, "--name", "demo/other", "--version", "1"]));
    log("tag", alice.ok(&["tag", "demo/model@2", "latest"]));
    log("promote", alice.ok(&["promote", "demo/model@2", "--to", "staging"]));
    log("approve", carol.ok(&["approve", "demo/model@2"]));
    log("promote", alice.ok(&["promote", "demo/model@2", "--to", "production"]));
    log("protect", admin.ok(&["protect", "demo/model", "release", "--statuses", "production"]));
    // The new kinds: a deploy and a transfer record, a hold and its
    // release, and an emergency promotion past the two-person rule.
    log(
        "deploy",
        dave.ok(&["--environment", "prod-eu", "deploy", "demo/model@2", "--target", "k8s/prod-eu/serving"]),
    );
    log("transfer", dave.ok(&["transfer", "demo/model@2", "--destination", "registry.mirror.example"]));
    log("hold", carol.ok(&["--reason", "incident 42: suspicious weights", "hold", "demo/other"]));
    log("release", carol.ok(&["--reason", "incident 42 cleared", "release", "demo/other"]));
    log("promote", alice.ok(&["promote", "demo/other@1", "--to", "staging"]));
    log(
        BREAK_GLASS,
        admin.ok(&[
            "--reason",
            "incident 43: hotfix without a second approver",
            "promote",
            "demo/other@1",
            "--to",
            "production",
            "--break-glass",
        ]),
    );
    let erin = d.user("erin");
    log("grant", admin.ok(&["grant", &erin.keygen("erin"), "--role", "reader", "--pattern", "demo/*"]));
    let out = tmp.join("pulled.bin");
    dave.ok(&[
        "--environment",
        "prod-eu",
        "--pipeline",
        "deploy#3",
        "--reason",
        "serve traffic",
        "pull",
        "demo/model:latest",
        "-o",
        out.to_str().unwrap(),
    ]);
    // The access is logged as the download starts; wait for a checkpoint
    // covering it and the commitment after it.
    let grant = in_range["grant"][0];
    let c = http();
    eventually("a checkpoint covering the access", 30, || {
        published(&c, &d)
            .and_then(|(cp, ..)| (cp.size >= grant + 4 && cp.size >= tree_size(&c, &d.log.url)).then_some(()))
    });
    let mut other: Vec<u64> = ["hold", "release", BREAK_GLASS]
        .iter()
        .map(|k| in_range[k][0])
        .chain([in_range["publish"][1], in_range["promote"][2]])
        .collect();
    other.sort_unstable();
    World {
        d,
        alice,
        dave,
        from: Timestamp::from_unix_secs(from).unwrap().to_string(),
        in_range,
        before,
        other,
    }
}

fn report_json(u: &User, args: &[&str]) -> Value {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = u.ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn events(r: &Value) -> &Vec<Value> {
    r["events"].as_array().unwrap()
}

fn indexes(r: &Value) -> Vec<u64> {
    events(r).iter().map(|e| e["index"].as_u64().unwrap()).collect()
}

/// Every field a row of schema v1 has.
const ROW_FIELDS: [&str; 15] = [
    "index",
    "time",
    "received_ms",
    "received",
    "actor",
    "event",
    "name",
    "version",
    "detail",
    "reason",
    "environment",
    "pipeline",
    "source",
    "verdict",
    "break_glass",
];

#[test]
fn a_registry_report_lists_exactly_the_events_of_the_period_proven_by_an_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let r = report_json(&w.alice, &["--from", &w.from, "--to", TO]);

    assert_eq!(r["schema"], "custody.dev/compliance-report/v1", "{r}");
    assert_eq!(r["scope"], "registry");
    assert!(r.get("name").is_none() && r.get("actor").is_none() && r.get("digest").is_none());
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str(), r["time_basis"].as_str()),
        (Some(w.from.as_str()), Some(TO), Some("statement"))
    );
    // The checkpoint: the log's current one, cosigned by a quorum.
    let size = tree_size(&http(), &w.d.log.url);
    assert_eq!(r["log"]["size"], size, "{r}");
    assert_eq!(r["log"]["origin"], w.d.origin.as_str());
    assert!(r["log"]["root"].as_str().is_some_and(|s| s.len() == 44));
    assert!(r["log"]["cosigners"].as_array().unwrap().len() >= 2, "{r}");
    assert_eq!(r["log"]["consistency_verified"], true);
    // Completeness by a full audit of every entry up to that size.
    assert_eq!(r["completeness"]["method"], "audit");
    assert_eq!(r["completeness"]["entries"], size);
    assert!(r["completeness"]["explanation"].as_str().unwrap().contains("full audit"), "{r}");
    assert_eq!(r["audit"]["audited_size"], size);
    assert_eq!(r["audit"]["replay_from"], 0);
    assert!(r["audit"]["state_root"].is_string());

    // Exactly the statements of the period: what the test logged, plus the
    // one access, and nothing from before.
    let mut expected: Vec<u64> = w.in_range.values().flatten().copied().collect();
    let access: Vec<&Value> = events(&r).iter().filter(|e| e["event"] == "access").collect();
    assert_eq!(access.len(), 1, "{r}");
    expected.push(access[0]["index"].as_u64().unwrap());
    expected.sort_unstable();
    assert_eq!(indexes(&r), expected, "{r}");
    assert!(w.before.iter().all(|i| !indexes(&r).contains(i)));
    let mut by_type: BTreeMap<String, usize> =
        w.in_range.iter().map(|(k, v)| (k.to_string(), v.len())).collect();
    by_type.insert("access".into(), 1);
    assert_eq!(r["events_by_type"], serde_json::to_value(&by_type).unwrap());
    assert_eq!(r["actors"], serde_json::json!({"admin": 3, "alice": 6, "carol": 3, "dave": 3}));
    assert_eq!(
        r["versions_affected"],
        serde_json::json!(["demo/model@2", "demo/other@1"]),
        "a registry report names versions as name@version"
    );
    // The break-glass is flagged, in the summary and on its row.
    let bg = w.in_range[BREAK_GLASS][0];
    assert_eq!(r["break_glass"], serde_json::json!([bg]));
    assert_eq!(r["integrity_violations"], serde_json::json!([]));

    // Field by field: every row, both times, verdict from the audit.
    for e in events(&r) {
        for f in ROW_FIELDS {
            assert!(e.get(f).is_some(), "row lacks {f}: {e}");
        }
        assert_eq!(e["verdict"], "audited", "{e}");
        assert_eq!(e["break_glass"], e["index"] == bg, "{e}");
        let t = Timestamp::parse(e["time"].as_str().unwrap()).unwrap();
        let rcv = Timestamp::parse(e["received"].as_str().unwrap()).unwrap();
        assert!(t >= Timestamp::parse(&w.from).unwrap(), "{e}");
        assert_eq!(rcv.unix_secs(), e["received_ms"].as_u64().unwrap() / 1000);
    }
    let a = access[0];
    assert_eq!(
        (a["actor"].as_str(), a["name"].as_str(), a["version"].as_str()),
        (Some("dave"), Some("demo/model"), Some("2"))
    );
    assert_eq!((a["environment"].as_str(), a["pipeline"].as_str()), (Some("prod-eu"), Some("deploy#3")));
    assert_eq!(a["reason"], "serve traffic");
    let publish = events(&r).iter().find(|e| e["index"] == w.in_range["publish"][0]).unwrap();
    assert_eq!(
        (publish["environment"].as_str(), publish["reason"].as_str()),
        (Some("train"), Some(HOSTILE_REASON))
    );
    let row = |kind: &str| events(&r).iter().find(|e| e["event"] == kind).unwrap();
    let deploy = row("deploy");
    assert_eq!((deploy["environment"].as_str(), deploy["version"].as_str()), (Some("prod-eu"), Some("2")));
    assert!(deploy["detail"].as_str().unwrap().contains("k8s/prod-eu/serving"), "{deploy}");
    assert!(row("transfer")["detail"].as_str().unwrap().contains("registry.mirror.example"));
    assert_eq!(row("hold")["reason"], "incident 42: suspicious weights");
    assert_eq!(row("release")["name"], "demo/other");
    let glass = row(BREAK_GLASS);
    assert_eq!((glass["actor"].as_str(), glass["version"].as_str()), (Some("admin"), Some("1")));
    assert_eq!(glass["reason"], "incident 43: hotfix without a second approver");
    let tag = events(&r).iter().find(|e| e["event"] == "tag").unwrap();
    assert_eq!(tag["version"], "2", "a tag move names the version its digest was published as: {tag}");

    // The same period by receive time lists the same entries here (the
    // period starts between two seconds nothing was logged in).
    let rr = report_json(&w.alice, &["--from", &w.from, "--to", TO, "--time-basis", "received"]);
    assert_eq!(rr["time_basis"], "received");
    assert_eq!(indexes(&rr), expected);
    // A period before everything: an empty, still proven, report.
    let empty = report_json(&w.alice, &["--from", "2001-01-01T00:00:00Z", "--to", "2001-12-31T00:00:00Z"]);
    assert_eq!(events(&empty).len(), 0);
    assert_eq!(empty["completeness"]["method"], "audit");
    // The second report resumed the first one's audit.
    assert_eq!(empty["audit"]["replay_from"], size);

    // Markdown, the default, says the same.
    let md = w.alice.ok(&["report", "--from", &w.from, "--to", TO]);
    assert!(md.starts_with("# Compliance report: whole registry\n"), "{md}");
    assert!(md.contains("## Completeness") && md.contains("full audit"), "{md}");
    assert!(md.contains("| access | 1 |") && md.contains("| publish | 2 |"), "{md}");
    assert!(md.contains("| prod-eu | deploy#3 |"), "{md}");
    assert!(
        md.contains(&format!(
            "> **BREAK-GLASS: 1 emergency action(s) bypassed a rule in this period** (entries {bg})"
        )),
        "{md}"
    );
    assert!(md.contains("| **BREAK-GLASS** break_glass |"), "{md}");
    assert!(!md.contains("<script>"), "markup in a reason is escaped in Markdown too: {md}");
}

#[test]
fn a_name_report_is_proven_by_the_entries_chain_with_per_row_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let model: Vec<u64> = ["publish", "tag", "promote", "approve", "protect", "deploy", "transfer"]
        .iter()
        .flat_map(|k| w.in_range[k].iter().copied())
        .filter(|i| !w.other.contains(i))
        .collect();

    // No audit yet in dave's home: every row is `included`.
    let r = report_json(&w.dave, &["demo/model", "--from", &w.from, "--to", TO]);
    assert_eq!((r["scope"].as_str(), r["name"].as_str()), (Some("name"), Some("demo/model")), "{r}");
    assert_eq!(r["completeness"]["method"], "entries_chain");
    assert!(r["completeness"]["explanation"].as_str().unwrap().contains("entries chain"));
    assert_eq!(r["audit"]["audited_size"], Value::Null);
    let mut want = model.clone();
    let access = events(&r).iter().find(|e| e["event"] == "access").unwrap()["index"].as_u64().unwrap();
    want.push(access);
    want.sort_unstable();
    assert_eq!(indexes(&r), want, "{r}");
    assert!(events(&r).iter().all(|e| e["verdict"] == "included"), "{r}");
    // The whole name (all time) counts its chain.
    let all = report_json(&w.dave, &["--name", "demo/model", "--from", "2000-01-01T00:00:00Z", "--to", TO]);
    assert_eq!(all["completeness"]["entries"], indexes(&all).len() as u64);
    assert_eq!(indexes(&all).len(), want.len() + 2);

    // With --audit every row is `audited`; a later entry is `included`
    // until the next audit.
    let r = report_json(&w.dave, &["demo/model", "--from", &w.from, "--to", TO, "--audit"]);
    let audited = r["audit"]["audited_size"].as_u64().unwrap();
    assert!(events(&r).iter().all(|e| e["verdict"] == "audited" && e["index"].as_u64().unwrap() < audited));
    let out = tmp.path().join("again.bin");
    w.dave.ok(&["pull", "demo/model@2", "-o", out.to_str().unwrap()]);
    let r = report_json(&w.dave, &["demo/model", "--from", &w.from, "--to", TO]);
    let last = events(&r).last().unwrap();
    assert_eq!((last["event"].as_str(), last["verdict"].as_str()), (Some("access"), Some("included")), "{r}");
    assert_eq!(r["audit"]["audited_size"], audited);

    // A name listing that omits an entry: refused, nothing written.
    let url = proxy(
        w.d.log.url.clone(),
        Arc::new(|req, mut r| {
            if req.path.starts_with("/registry/models/demo/model/entries") && r.status == 200 {
                let mut v: Value = serde_json::from_slice(&r.body).unwrap();
                v["indexes"].as_array_mut().unwrap().remove(1);
                r.body = serde_json::to_vec(&v).unwrap();
            }
            r
        }),
    );
    let file = tmp.path().join("refused.html");
    w.dave
        .cli(&[
            "--log",
            &url,
            "report",
            "demo/model",
            "--from",
            &w.from,
            "--to",
            TO,
            "--format",
            "html",
            "-o",
            file.to_str().unwrap(),
        ])
        .fails(2, "not complete");
    assert!(!file.exists(), "a refused report writes no file");
}

#[test]
fn the_three_formats_render_and_html_is_self_contained_and_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let dir = tmp.path();
    let html_file = dir.join("report.html");
    let md_file = dir.join("report.md");
    let json_file = dir.join("report.json");

    // -o writes the file; stdout says where and how much.
    let out = w.alice.ok(&[
        "report",
        "--from",
        &w.from,
        "--to",
        TO,
        "--format",
        "html",
        "-o",
        html_file.to_str().unwrap(),
    ]);
    assert!(out.contains("report written to") && out.contains("(html)"), "{out}");
    let page = std::fs::read_to_string(&html_file).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"), "{page}");
    assert!(page.trim_end().ends_with("</html>"));
    assert!(page.contains("<style>") && page.contains("<table id=\"events\">"));
    // Self-contained: no script, no external resource of any kind.
    for banned in ["<script", "src=", "href=", "url(", "@import", "http://", "https://"] {
        assert!(!page.contains(banned), "the page contains {banned:?}");
    }
    // Every value escaped: the reason's markup is text.
    assert!(
        page.contains(
            "nightly &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;build&lt;/b&gt;"
        ),
        "{page}"
    );
    assert!(!page.contains("<b>build"));
    // Structure: one table row per event, the checkpoint and completeness.
    let json = report_json(&w.alice, &["--from", &w.from, "--to", TO]);
    let table = page.split("<table id=\"events\">").nth(1).unwrap();
    let flagged = table.matches("<tr class=\"break-glass\"><td>").count();
    assert_eq!(flagged, 1, "the break-glass row is highlighted: {page}");
    assert_eq!(table.matches("<tr><td>").count() + flagged, events(&json).len(), "{page}");
    assert!(
        page.contains("<div class=\"alert\" id=\"break-glass\">BREAK-GLASS: 1 emergency action(s)"),
        "{page}"
    );
    assert!(page.contains(&format!("at size {}", json["log"]["size"])));
    assert!(page.contains("id=\"completeness\"") && page.contains("id=\"verdict\""));

    // The environment supplies every flag; the old --markdown and
    // --json-file still write their files.
    let run: Run = w
        .alice
        .command()
        .args(["report", "--markdown", md_file.to_str().unwrap(), "--json-file", json_file.to_str().unwrap()])
        .env("CUSTODY_FROM", &w.from)
        .env("CUSTODY_TO", TO)
        .env("CUSTODY_REPORT_FORMAT", "json")
        .env("CUSTODY_NAME", "demo/other")
        .output()
        .unwrap()
        .into();
    let v: Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!((v["scope"].as_str(), v["name"].as_str()), (Some("name"), Some("demo/other")));
    assert_eq!(indexes(&v), w.other);
    let from_file: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    assert_eq!(from_file["events"], v["events"]);
    assert!(std::fs::read_to_string(&md_file).unwrap().starts_with("# Compliance report: demo/other"));

    // At most one subject; --output json prints only JSON.
    w.alice.cli(&["report", "demo/model", "--actor", "alice", "--from", &w.from, "--to", TO]).fails(64, "");
    w.alice
        .cli(&["--output", "json", "report", "--format", "html", "--from", &w.from, "--to", TO])
        .fails(64, "-o");
    w.alice.cli(&["report", "--from", TO, "--to", &w.from]).fails(64, "after --to");
}

#[test]
fn a_log_that_omits_reorders_or_alters_an_entry_or_forks_gets_no_report() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let file = tmp.path().join("report.json");
    let refused = |url: &str, code: i32, needle: &str, what: &str| {
        let run = w.alice.cli(&[
            "--log",
            url,
            "report",
            "--from",
            &w.from,
            "--to",
            TO,
            "--format",
            "json",
            "-o",
            file.to_str().unwrap(),
            "--refetch",
        ]);
        assert!(
            run.code == code && run.stderr.contains(needle),
            "a log that {what}: exit {}\n{}{}",
            run.code,
            run.stdout,
            run.stderr
        );
        assert!(!file.exists(), "a log that {what}: a report was written");
    };
    // The access (right after the grant and its commitment) is the entry
    // lied about; the log is one partial bundle.
    let access = (w.in_range["grant"][0] + 2) as usize;
    let omit = lying_bundles(&w.d, move |e| {
        e.remove(access);
    });
    refused(&omit, 2, "entry bundle", "omits an entry");
    let reorder = lying_bundles(&w.d, move |e| e.swap(access, access - 1));
    refused(&reorder, 2, "found a violation at entry", "reorders two entries");
    // Backdated by a day: the receive time in the leaf header.
    let alter = lying_bundles(&w.d, move |e| {
        let ms = u64::from_be_bytes(e[access][8..16].try_into().unwrap()) - 86_400_000;
        e[access][8..16].copy_from_slice(&ms.to_be_bytes());
    });
    refused(&alter, 2, "found a violation at entry", "alters an entry");

    // A fork: a checkpoint of another tree, signed by the log's key and
    // cosigned by two of the three witnesses (keys compromised). A client
    // that remembers the honest checkpoint proves the fork (exit 3,
    // evidence); one that never saw the log finds the honest tiles do not
    // rebuild the forged root (exit 2). No report either way.
    let size = tree_size(&http(), &w.d.log.url);
    let forged = forged_checkpoint(&w.d, size, Hash([7; 32]));
    let fork = proxy(
        w.d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path == "/checkpoint" {
                r.status = 200;
                r.body = forged.clone();
            }
            r
        }),
    );
    refused(&fork, 3, "inconsistent", "forks what the client remembers");
    let fresh = w.d.user("auditor");
    let run =
        fresh.cli(&["--log", &fork, "report", "--from", &w.from, "--to", TO, "-o", file.to_str().unwrap()]);
    assert!(
        run.code == 2 && run.stderr.contains("do not rebuild the checkpoint root"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(!file.exists());

    // The honest log through a proxy that edits nothing still reports.
    let honest = lying_bundles(&w.d, |_| {});
    w.alice.ok(&["--log", &honest, "report", "--from", &w.from, "--to", TO, "-o", file.to_str().unwrap()]);
    assert!(file.exists());
    let _ = &w.dave;
}

#[test]
fn an_integrity_violation_the_log_signed_is_in_every_report_and_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    let bytes = b"weights that will rot ".repeat(300);
    let publish = logged_index(&alice.ok(&[
        "publish",
        &write_file(tmp.path(), "m.bin", &bytes),
        "--name",
        "demo/model",
        "--version",
        "1",
    ]));
    // The stored file changes behind the server's back; the next read is
    // refused and the log appends an entry it signs itself.
    let hex = custody_standards::hash::sha256(&bytes).to_hex();
    rot(&stored_artifact(&d.dir.join("log"), &bytes), |n| n / 2, 0x40);
    let bad = tmp.path().join("bad.bin");
    assert_ne!(dave.cli(&["pull", "demo/model@1", "-o", bad.to_str().unwrap()]).code, 0);
    let c = http();
    let violation = eventually("the integrity entry in a checkpoint", 30, || {
        let size = published(&c, &d)?.0.size;
        (publish + 2..size).find(|&i| {
            let e = get_bytes(&c, &format!("{}/entries/{i}", d.log.url)).unwrap_or_default();
            matches!(
                custody_registry::leaf::LogLeaf::decode(&e),
                Ok(custody_registry::leaf::LogLeaf::LogEvent(_))
            )
        })
    });
    eventually("a checkpoint covering it", 30, || {
        published(&c, &d).and_then(|(cp, ..)| (cp.size >= tree_size(&c, &d.log.url)).then_some(()))
    });

    let from = "2000-01-01T00:00:00Z";
    for (who, args) in
        [(&alice, vec!["--from", from, "--to", TO]), (&dave, vec!["demo/model", "--from", from, "--to", TO])]
    {
        let r = report_json(who, &args);
        assert_eq!(r["integrity_violations"], serde_json::json!([violation]), "{r}");
        let row = events(&r).iter().find(|e| e["index"] == violation).unwrap();
        assert_eq!(row["event"], "integrity_violation");
        assert_eq!((row["name"].as_str(), row["version"].as_str()), (Some("demo/model"), Some("1")), "{row}");
        assert!(row["actor"].as_str().unwrap().starts_with("log "), "{row}");
        assert!(row["detail"].as_str().unwrap().contains(&hex), "{row}");
        assert_eq!(r["events_by_type"]["integrity_violation"], 1);
        // The name's chain counts it among its entries.
        if r["scope"] == "name" {
            assert_eq!(r["completeness"]["entries"], indexes(&r).len() as u64, "{r}");
        }
    }
    let md = alice.ok(&["report", "--from", from, "--to", TO]);
    assert!(
        md.contains(&format!(
            "> **INTEGRITY VIOLATIONS: the log recorded 1 in this period** (entries {violation})"
        )),
        "{md}"
    );
    let page = tmp.path().join("r.html");
    alice.ok(&[
        "report",
        "demo/model",
        "--from",
        from,
        "--to",
        TO,
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    let page = std::fs::read_to_string(page).unwrap();
    assert!(
        page.contains(
            "<div class=\"alert\" id=\"integrity-violations\">INTEGRITY VIOLATIONS: the log recorded 1"
        ),
        "{page}"
    );
}
