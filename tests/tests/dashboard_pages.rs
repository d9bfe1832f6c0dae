//! The dashboard's server side on the real binaries, read as a browser
//! with JavaScript off would (plain HTTP GET): every page has its content,
//! right after a publish, approvals, a promotion, tag moves, accesses with
//! context and a hold; every row's `data-field` cell is exactly the value
//! in the signed statement of its entry (what the browser checks against
//! the proven leaf); hostile strings are escaped; the headers are the
//! contract's; `/ui/api/proofs` answers proofs that verify with the Rust
//! verifier and refuses bad input with 400; `/ui/api/trust` is the log's
//! key and policy; the witness panel raises a split-view alarm from a
//! witness that is ahead of the log.

use std::collections::BTreeMap;

use custody_registry::dsse::Envelope;
use custody_registry::registry::Role;
use custody_standards::{leaf_hash, verify_inclusion, Hash};
use custody_testkit::fake_witness::Witness;
use custody_testkit::scenario::dos::init_log;
use custody_testkit::scenario::*;
use reqwest::blocking::{Client, Response};
use serde_json::Value;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// A reason no page may show unescaped.
const HOSTILE_REASON: &str = "<script>alert('x')</script> \"quoted\" & <img src=x onerror=alert(1)>";

fn get(c: &Client, url: &str) -> Response {
    c.get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A page: status, body, and the three security headers checked.
fn page(c: &Client, url: &str, want: u16) -> String {
    let r = get(c, url);
    assert_eq!(r.status().as_u16(), want, "{url}");
    let h = r.headers();
    assert_eq!(h["content-security-policy"], CSP, "{url}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"), "{url}");
    r.text().unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every `<tr data-entry-index="I">` of `html` with its `data-field` cells
/// (unescaped).
fn entry_rows(html: &str) -> Vec<(u64, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for chunk in html.split("<tr data-entry-index=\"").skip(1) {
        let row = &chunk[..chunk.find("</tr>").expect("a closed row")];
        let index = row[..row.find('"').unwrap()].parse().unwrap();
        let mut fields = BTreeMap::new();
        for cell in row.split("data-field=\"").skip(1) {
            let name = &cell[..cell.find('"').unwrap()];
            let text = &cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()];
            fields.insert(name.to_owned(), unescape(text));
        }
        assert!(row.contains("data-verdict=\"pending\">not verified</td>"), "no pending verdict: {row}");
        out.push((index, fields));
    }
    out
}

/// The values of entry `index` as its signed statement has them, read
/// from the statement's JSON (not with the server's code).
fn statement_values(c: &Client, base: &str, index: u64) -> BTreeMap<String, String> {
    let entry = get_bytes(c, &format!("{base}/entries/{index}")).unwrap();
    let payload: Value =
        serde_json::from_slice(&Envelope::parse(&envelope_of(&entry)).unwrap().payload).unwrap();
    let (kind, mut body) =
        payload["event"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v)).unwrap();
    if kind == "break_glass" {
        body = body.as_object().unwrap().values().next().unwrap();
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let ctx = &payload["context"];
    // The sentence is core's wording of the statement core parses.
    let signed = custody_registry::statement::SignedStatement::parse(&envelope_of(&entry)).unwrap();
    let detail = custody_registry::describe::statement(&signed.statement);
    [
        ("detail", detail),
        ("kind", kind.clone()),
        ("actor", s(&payload["actor"])),
        ("name", s(&body["name"])),
        ("version", s(&body["version"])),
        ("digest", s(&body["digest"])),
        ("tag", s(&body["tag"])),
        ("environment", s(&ctx["environment"])),
        ("pipeline", s(&ctx["pipeline"])),
        ("reason", s(&ctx["reason"])),
        ("time", s(&payload["time"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Every row's fields equal its statement's values; returns the rows.
fn rows_match_statements(c: &Client, base: &str, html: &str) -> Vec<(u64, BTreeMap<String, String>)> {
    let rows = entry_rows(html);
    for (index, fields) in &rows {
        let want = statement_values(c, base, *index);
        for (f, v) in fields {
            assert_eq!(Some(v), want.get(f), "entry {index}, field {f}");
        }
    }
    rows
}

/// Waits until the published checkpoint covers the whole tree.
fn settled(c: &Client, d: &Deployment) -> u64 {
    let size = tree_size(c, &d.log.url);
    eventually("a checkpoint covering every entry", 30, || {
        published(c, d).filter(|(cp, _, _)| cp.size >= size).map(|(cp, _, _)| cp.size)
    })
}

#[test]
fn pages_show_the_custody_story_and_escape_what_actors_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, admin, alice, dave, _) = demo_team(tmp.path());
    let erin = d.user("erin");
    admin.ok(&["grant", &erin.keygen("erin"), "--role", "approver", "--pattern", "demo/*"]);
    let v1 = write_file(tmp.path(), "v1.bin", &b"weights one ".repeat(300));
    alice.ok(&["publish", &v1, "--name", "demo/model", "--version", "1"]);
    alice.ok(&[
        "publish",
        &write_file(tmp.path(), "v2.bin", b"weights two"),
        "--name",
        "demo/model",
        "--version",
        "2",
    ]);
    alice.ok(&["promote", "demo/model@1", "--to", "staging"]);
    erin.ok(&["approve", "demo/model@1"]);
    alice.ok(&["promote", "demo/model@1", "--to", "production"]);
    alice.ok(&["tag", "demo/model@2", "latest"]);
    alice.ok(&["tag", "demo/model@1", "latest"]);
    let out = tmp.path().join("pulled.bin");
    dave.ok(&[
        "--environment",
        "prod-eu",
        "--pipeline",
        "eval#812",
        "--reason",
        HOSTILE_REASON,
        "pull",
        "demo/model@1",
        "-o",
        out.to_str().unwrap(),
    ]);
    // Version 2 goes to production past the two-person rule, on the
    // record, and is then held.
    alice.ok(&["promote", "demo/model@2", "--to", "staging"]);
    admin.ok(&[
        "promote",
        "demo/model@2",
        "--to",
        "production",
        "--break-glass",
        "--reason",
        "outage: ship the fix",
    ]);
    erin.ok(&["hold", "demo/model@2", "--reason", "incident <b>7</b>"]);
    let size = settled(&http(), &d);
    let (c, base) = (http(), d.log.url.clone());

    // Overview: the log, the model with its latest version and status,
    // production, the tag, the hold in words.
    let html = page(&c, &format!("{base}/ui/"), 200);
    assert!(html.contains("data-page=\"overview\""), "{html}");
    assert!(html.contains(&format!("data-origin=\"{}\"", d.origin)));
    assert!(html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    assert!(html.contains("<script type=\"module\" src=\"/ui/assets/js/dashboard.js\"></script>"));
    assert!(html.contains("<a href=\"/ui/models/demo/model\">demo/model</a>"), "{html}");
    assert!(html.contains(&format!("data-size=\"{size}\"")), "the checkpoint line names size {size}");
    assert!(html.contains("<td data-label=\"In production\">2</td>"), "{html}");
    assert!(html.contains("<strong class=\"held\">HELD: version 2</strong>"), "{html}");
    assert!(html.contains("<span class=\"tag\">latest</span> → 1"), "{html}");
    assert!(!rows_match_statements(&c, &base, &html).is_empty(), "recent entries are listed");

    // The model page: every entry about the name, each row exactly its
    // statement, grouped into the tables a person reads.
    let html = page(&c, &format!("{base}/ui/models/demo/model"), 200);
    let rows = rows_match_statements(&c, &base, &html);
    let kinds = |k: &str| rows.iter().filter(|(_, f)| f.get("kind").map(String::as_str) == Some(k)).count();
    assert_eq!(kinds("publish"), 2, "{rows:?}");
    assert_eq!(kinds("approve"), 1);
    assert_eq!(kinds("promote"), 3);
    assert_eq!(kinds("break_glass"), 1, "{rows:?}");
    let bg = rows.iter().find(|(_, f)| f.get("kind").map(String::as_str) == Some("break_glass")).unwrap();
    assert_eq!((bg.1["actor"].as_str(), bg.1["version"].as_str()), ("admin", "2"));
    assert!(
        html.contains(&format!("<tr data-entry-index=\"{}\" id=\"entry-{}\" class=\"flagged\">", bg.0, bg.0))
    );
    assert!(html.contains("BREAK-GLASS: promoted to production without the two-person approval"), "{html}");
    assert_eq!(kinds("tag"), 2, "both moves of `latest` are in the tag history");
    assert_eq!(kinds("hold"), 1);
    for id in ["lifecycle", "tag-history", "access-log", "custody"] {
        assert!(html.contains(&format!("<table class=\"entries\" id=\"{id}\">")), "no table {id}");
    }
    let access = rows
        .iter()
        .find(|(_, f)| f.get("environment").map(String::as_str) == Some("prod-eu"))
        .expect("the access with its context");
    assert_eq!(access.1["pipeline"], "eval#812");
    assert_eq!(access.1["reason"], HOSTILE_REASON);
    assert_eq!(access.1["actor"], "dave");
    // Versions: status in words, the approval, the hold; the version rows
    // are the publish entries.
    assert!(html.contains("<strong>production</strong>"), "{html}");
    assert!(html.contains("erin (<a href=\"#entry-"), "the approval names its approver and entry");
    assert!(html.contains("<strong class=\"held\"> HELD</strong>"), "{html}");
    assert!(html.contains("HOLD on this version"), "{html}");
    // Nothing an actor wrote is markup.
    for page_html in [&html, &page(&c, &format!("{base}/ui/entries"), 200)] {
        assert!(!page_html.contains("<script>alert") && !page_html.contains("<img src=x"), "unescaped");
        assert!(!page_html.contains("<b>7</b>"), "unescaped hold reason");
        assert!(
            page_html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;quoted&quot; &amp;")
        );
    }

    // Entries: the live table at the checkpoint's size, newest first.
    let html = page(&c, &format!("{base}/ui/entries"), 200);
    assert!(html.contains(&format!("<table class=\"entries\" id=\"live\" data-size=\"{size}\">")), "{html}");
    let rows = rows_match_statements(&c, &base, &html);
    assert!(rows.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    assert_eq!(rows[0].1["kind"], "hold");

    // The trust panel: the log's and each witness's key fingerprint, the
    // pin controls hidden until JavaScript shows them.
    let trust = page(&c, &format!("{base}/ui/witnesses"), 200);
    assert!(trust
        .contains("<p id=\"trust-status\" data-state=\"unverified\">Not verified: JavaScript is off.</p>"));
    assert!(trust.contains("<details id=\"pin\" hidden>"));
    let fp = |vkey: &str| {
        let key = custody_standards::VerifierKey::parse(vkey).unwrap();
        let hex = custody_standards::hash::sha256(&key.public_key()).to_hex();
        hex.as_bytes().chunks(4).map(|g| std::str::from_utf8(g).unwrap()).collect::<Vec<_>>().join(" ")
    };
    assert!(trust.contains(&fp(&d.log_vkey)), "log key fingerprint");
    for w in &d.witness_ids {
        assert!(trust.contains(&format!("<tr data-witness=\"{}\">", w.name)), "{trust}");
        assert!(trust.contains(&fp(&w.vkey)), "fingerprint of {}", w.name);
    }
    assert!(trust.contains("data-quorum=\"met\""), "{trust}");
    assert!(trust.contains("data-alarms=\"0\""), "{trust}");
}

#[test]
fn proofs_verify_for_every_index_and_bad_requests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, _dave, _) = demo_team(tmp.path());
    alice.ok(&[
        "publish",
        &write_file(tmp.path(), "m.bin", b"model"),
        "--name",
        "demo/model",
        "--version",
        "1",
    ]);
    let c = http();
    settled(&c, &d);
    let (cp, _, _) = published(&c, &d).unwrap();
    let base = &d.log.url;
    let indexes = [0, cp.size - 1, 1, 0, cp.size / 2];
    let query: String = indexes.iter().map(|i| format!("&index={i}")).collect();
    let r = get(&c, &format!("{base}/ui/api/proofs?size={}{query}", cp.size));
    assert_eq!(r.headers()["content-security-policy"], CSP);
    let (status, body) = json(r);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["size"], cp.size);
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), indexes.len());
    for (e, &index) in entries.iter().zip(&indexes) {
        assert_eq!(e["index"], index, "request order");
        let leaf = custody_standards::encoding::decode_base64_strict(e["leaf"].as_str().unwrap()).unwrap();
        assert_eq!(
            Some(&leaf),
            get_bytes(&c, &format!("{base}/entries/{index}")).as_ref(),
            "exact leaf bytes"
        );
        let proof: Vec<Hash> = e["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
            .collect();
        verify_inclusion(&leaf_hash(&leaf), index, cp.size, &proof, &cp.root)
            .unwrap_or_else(|err| panic!("entry {index}: {err}"));
    }

    let too_many: String = (0..1001).map(|_| "&index=0").collect();
    for (what, q) in [
        ("1001 indexes", format!("size={}{too_many}", cp.size)),
        ("index = size", format!("size={}&index={}", cp.size, cp.size)),
        ("size beyond the published checkpoint", format!("size={}&index=0", cp.size + 1)),
        ("no index", format!("size={}", cp.size)),
        ("no size", "index=0".to_owned()),
        ("garbage size", "size=abc&index=0".to_owned()),
        ("negative index", format!("size={}&index=-1", cp.size)),
        ("unknown parameter", format!("size={}&index=0&leaf_hash=x", cp.size)),
        ("two sizes", format!("size={0}&size={0}&index=0", cp.size)),
        ("binary", "size=%00%ff&index=%ff".to_owned()),
    ] {
        let (status, body) = get_json(&c, &format!("{base}/ui/api/proofs?{q}"));
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "bad_request", "{what}: {body}");
    }
    let (status, _) = get_json(&c, &format!("{base}/health"));
    assert_eq!(status, 200, "the log is still healthy");

    // The trust endpoint is the log's key and the policy it runs with.
    let (status, trust) = get_json(&c, &format!("{base}/ui/api/trust"));
    assert_eq!(status, 200);
    assert_eq!(trust["origin"], d.origin);
    assert_eq!(trust["log_vkey"], d.log_vkey);
    assert_eq!(trust["policy"], std::fs::read_to_string(&d.policy).unwrap());
}

#[test]
fn assets_have_their_types_and_etags_and_unknown_paths_are_html_404() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let (c, base) = (http(), d.log.url.clone());
    for (path, ty) in [
        ("dashboard.css", "text/css"),
        ("js/verify.js", "text/javascript"),
        ("js/leaf.js", "text/javascript"),
        ("js/dashboard.js", "text/javascript"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let url = format!("{base}/ui/assets/{path}");
        let r = get(&c, &url);
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(ty), "{path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert!(!r.bytes().unwrap().is_empty(), "{path}");
        let again = c.get(&url).header("If-None-Match", &etag).send().unwrap();
        assert_eq!(again.status().as_u16(), 304, "{path}");
    }
    let css = get(&c, &format!("{base}/ui/assets/dashboard.css")).text().unwrap();
    assert!(css.contains("max-width: 48rem") && css.contains("prefers-color-scheme: dark"));
    for path in ["/ui/nope", "/ui/assets/verify.js", "/ui/assets/js/other.js", "/ui/models/demo"] {
        let body = page(&c, &format!("{base}{path}"), 404);
        assert!(body.starts_with("<!DOCTYPE html>"), "{path}: {body}");
    }
    let body = page(&c, &format!("{base}/ui/models/demo/missing"), 404);
    assert!(body.contains("no model demo/missing"), "{body}");
    let r = c.get(format!("{base}/ui")).send().unwrap();
    assert_eq!(r.url().path(), "/ui/", "/ui redirects to /ui/");
    // The JSON API keeps its JSON 404.
    assert_eq!(get_json(&c, &format!("{base}/nope")).1["error"], "not_found");
}

#[test]
fn a_generic_log_has_no_dashboard_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("log");
    init_log(&data, true);
    let log = dos::serve_alone(&data, &["--allow-raw-append"], None, &[]);
    let c = http();
    let base = log.proc.url.clone();
    append_raw(&c, &base, &[b"a raw entry".to_vec()]);
    for path in ["/ui/", "/ui/entries", "/ui/witnesses", "/ui/models/demo/model"] {
        let body = page(&c, &format!("{base}{path}"), 404);
        assert!(body.contains("not a model registry"), "{path}: {body}");
    }
}

#[test]
fn the_witness_panel_raises_the_alarm_of_a_witness_ahead_of_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("log");
    let vkey = init_log(&data, false);
    let w = Witness::start("ahead.witness.example", 9, &vkey);
    let policy = tmp.path().join("policy.txt");
    let text = format!(
        "log {vkey}\nwitness ahead.witness.example {} {}\nquorum ahead.witness.example\n",
        w.vkey, w.url
    );
    std::fs::write(&policy, text).unwrap();
    let log = serve_log(&data, &policy);
    let (c, base) = (http(), log.url.clone());
    let admin = read_signer(&data.join("admin.key"));
    let grant_to = |name: &str| {
        let (status, body) =
            post_statement(&c, &base, signed(&admin, grant(&signer(name), Role::Reader, "demo/*")));
        assert_eq!(status, 200, "{body}");
    };
    let panel = |want: &str| {
        eventually(want, 30, || {
            let html = page(&c, &format!("{base}/ui/witnesses"), 200);
            html.contains(want).then_some(html)
        })
    };
    grant_to("bob");
    let html = panel("data-quorum=\"met\"");
    assert!(html.contains("<td data-label=\"Alarm\" data-alarm=\"no\">none</td>"), "{html}");
    assert!(html.contains("OK: cosigned the last checkpoint"), "{html}");

    // The witness claims a tree far bigger than the log's: a split view
    // or a rollback of this log. The next round raises the alarm.
    w.set_latest(1_000_000, Hash([7; 32]));
    grant_to("carol");
    let html = panel("data-alarm=\"yes\"");
    assert!(html.contains("ALARM: </strong>witness has cosigned size 1000000"), "{html}");
    assert!(html.contains("data-alarms=\"1\""), "{html}");
    assert!(html.contains("data-quorum=\"not-met\""), "{html}");
}
