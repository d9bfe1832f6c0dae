//! The dashboard in a real browser: headless Chromium (Debian's package,
//! `scripts/chromium-install`) runs the browser verifier against the vectors
//! core generates, and the pages of a real deployment, honest and hostile:
//! every row proven, one altered entry (its bytes, or only its displayed
//! text) failing alone, a pinned policy catching a server that swaps its key,
//! the keyboard and a phone's width.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use custody_standards::checkpoint::Checkpoint;
use custody_standards::encoding::{decode_base64_strict, encode_base64};
use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
use custody_standards::note::{sign_note, NoteSigner};
use custody_testkit::browser::{screenshot_dir, Browser, Viewport};
use custody_testkit::hostile::{proxy, serve, Request, Response};
use custody_testkit::scenario::*;
use custody_testkit::TempDir;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);
const MODEL: &str = "/ui/models/demo/model";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Serves verify.js, leaf.js, the vector runner and the vector files from
/// the source tree, as files of one origin, with an empty page to run them.
fn serve_vectors() -> String {
    let root = repo();
    serve(Arc::new(move |req: Request| {
        let file = match req.path.as_str() {
            "/" => {
                return Response::new(200, "<!doctype html><title>vectors</title>")
                    .with_header("Content-Type", "text/html")
            }
            "/js/verify.js" => root.join("log-server/ui/js/verify.js"),
            "/js/leaf.js" => root.join("log-server/ui/js/leaf.js"),
            "/vectors.js" => root.join("tests/browser/vectors.js"),
            p => match p.strip_prefix("/vectors/") {
                Some(name) if !name.contains('/') && name.ends_with(".json") => {
                    let s = root.join("standards/tests/vectors").join(name);
                    if s.exists() {
                        s
                    } else {
                        root.join("registry/tests/vectors").join(name)
                    }
                }
                _ => return Response::new(404, "not found"),
            },
        };
        let ty =
            if file.extension().is_some_and(|e| e == "js") { "text/javascript" } else { "application/json" };
        match std::fs::read(&file) {
            Ok(body) => Response::new(200, body).with_header("Content-Type", ty),
            Err(_) => Response::new(404, "not found"),
        }
    }))
}

#[test]
fn the_browser_verifier_agrees_with_core_on_every_vector() {
    let base = serve_vectors();
    let b = Browser::start();
    b.goto(&format!("{base}/"));
    let result = b.run(
        "const v = await import('/js/verify.js');\
         const { runVectors } = await import('/vectors.js');\
         return await runVectors(async (n) => (await fetch('/vectors/' + n)).json(), v);",
        vec![],
    );
    let failures = result["failures"].as_array().expect("the runner reports");
    assert!(
        failures.is_empty(),
        "verify.js disagrees with core:\n{}",
        serde_json::to_string_pretty(failures).unwrap()
    );
    // Every file was read: keys, notes, checkpoints, policies (with quorum
    // tables), 136 valid inclusion proofs and the tampered ones, leaves.
    assert!(result["checked"].as_u64().unwrap() > 600, "{result}");
}

/// A deployment with a model's whole life on it: two publishes, staging,
/// an approval, production, tag moves and reads.
struct Seeded {
    d: Deployment,
    dir: TempDir,
    /// A publisher and maintainer of `demo/*`.
    alice: User,
    /// The entry index of the publish of version 2.
    publish_v2: u64,
}

fn seeded() -> Seeded {
    let dir = custody_testkit::tempdir().unwrap();
    let (d, admin, alice, dave, _) = demo_team(dir.path());
    let ann = d.user("ann");
    admin.ok(&["grant", &ann.keygen("ann"), "--role", "approver", "--pattern", "demo/*"]);
    let v1 = write_file(dir.path(), "v1.bin", b"weights, version one");
    let v2 = write_file(dir.path(), "v2.bin", b"weights, version two");
    let ctx = ["--reason", "weekly retrain", "--environment", "prod-eu", "--pipeline", "train#41"];
    alice.ok(&[&["publish", &v1, "--name", "demo/model", "--version", "1"][..], &ctx].concat());
    alice.ok(&["promote", "demo/model@1", "--to", "staging"]);
    ann.ok(&["approve", "demo/model@1", "--reason", "eval report signed off"]);
    alice.ok(&["promote", "demo/model@1", "--to", "production"]);
    alice.ok(&["tag", "demo/model@1", "production"]);
    alice.ok(&["tag", "demo/model@1", "stable"]);
    let out = alice.ok(&[&["publish", &v2, "--name", "demo/model", "--version", "2"][..], &ctx].concat());
    let publish_v2 = logged_index(&out);
    alice.ok(&["tag", "demo/model@2", "stable"]);
    let o = dir.path().join("pulled.bin");
    dave.ok(&["pull", "demo/model:production", "-o", o.to_str().unwrap(), "--reason", "nightly evaluation"]);
    dave.ok(&["pull", "demo/model@2", "-o", o.to_str().unwrap(), "--environment", "staging-us"]);
    Seeded { d, dir, alice, publish_v2 }
}

/// What the page ended with: the checkpoint and trust states, and each
/// row's verdict by entry index.
fn settle(b: &Browser) -> Value {
    b.wait_for(
        "document.querySelector('#checkpoint-status').dataset.state !== 'pending' && \
         !document.querySelector('td.verdict[data-verdict=pending]') && \
         document.querySelector('#trust-status').dataset.state !== 'unverified'",
        WAIT,
    );
    b.run(
        "return {checkpoint: document.querySelector('#checkpoint-status').dataset.state, \
         trust: document.querySelector('#trust-status').dataset.state, \
         trustText: document.querySelector('#trust-status').textContent, \
         rows: [...document.querySelectorAll('tr[data-entry-index]')].map(tr => [Number(tr.dataset.entryIndex), \
             tr.querySelector('td.verdict').dataset.verdict, tr.querySelector('td.verdict').textContent])};",
        vec![],
    )
}

fn verdicts(state: &Value) -> Vec<(u64, String, String)> {
    state["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r[0].as_u64().unwrap(), r[1].as_str().unwrap().to_owned(), r[2].as_str().unwrap().to_owned())
        })
        .collect()
}

fn pin(b: &Browser, policy: &str) {
    b.run(
        "localStorage.setItem('custody.pinned-policy.' + document.body.dataset.origin, arguments[0]);",
        vec![json!(policy)],
    );
}

#[test]
fn every_page_of_a_real_deployment_ends_with_every_row_verified() {
    let s = seeded();
    let base = s.d.log.url.clone();
    let b = Browser::start();
    let shots = screenshot_dir();
    for (page, path, min_rows) in [
        ("overview", "/ui/", 0),
        ("model", MODEL, 10),
        ("witnesses", "/ui/witnesses", 0),
        ("entries", "/ui/entries", 10),
    ] {
        b.goto(&format!("{base}{path}"));
        let state = settle(&b);
        assert_eq!(state["checkpoint"], "verified", "{page}: {state}");
        assert_eq!(state["trust"], "server-policy", "{page}: {state}");
        let rows = verdicts(&state);
        assert!(rows.len() >= min_rows, "{page}: {} rows", rows.len());
        for (i, verdict, text) in &rows {
            assert_eq!(verdict, "verified", "{page}: entry {i}: {text}");
        }
        b.screenshot(&shots.join(format!("dashboard-{page}.png")));
    }
    // No policy pinned: the page says plainly whose keys it trusts.
    b.goto(&format!("{base}{MODEL}"));
    let state = settle(&b);
    let text = state["trustText"].as_str().unwrap();
    assert!(text.contains("server's own policy, because you have not pinned one"), "{text}");
    let shown = b.run("return document.querySelectorAll('#keys-in-use code.fingerprint').length", vec![]);
    assert_eq!(shown, json!(4), "the log key and three witness keys in use are listed");

    // The user pins the deployment's own policy: verified, and said so.
    pin(&b, &std::fs::read_to_string(&s.d.policy).unwrap());
    b.goto(&format!("{base}{MODEL}"));
    let state = settle(&b);
    assert_eq!(state["trust"], "pinned", "{state}");
    assert!(verdicts(&state).iter().all(|r| r.1 == "verified"), "{state}");

    // Keyboard: Tab from the top reaches the navigation links and the pin
    // controls' summary.
    let focused = b.tab_through(60);
    assert!(focused.iter().any(|f| f.contains("/ui/witnesses")), "{focused:?}");
    assert!(focused.iter().any(|f| f.starts_with("summary")), "{focused:?}");

    // The live view: an entry logged after /ui/entries was served appears
    // at the top, verified, with the values decoded from its proven leaf.
    b.goto(&format!("{base}/ui/entries"));
    settle(&b);
    let v3 = write_file(s.dir.path(), "v3.bin", b"weights, version three");
    let out = s.alice.ok(&["publish", &v3, "--name", "demo/model", "--version", "3", "--reason", "hotfix"]);
    let i = logged_index(&out);
    let row = format!("document.querySelector('#live tr[data-entry-index=\"{i}\"]')");
    b.wait_for(
        &format!(
            "document.querySelector('#live tbody tr').dataset.entryIndex === '{i}' && \
             {row}.querySelector('td.verdict').dataset.verdict === 'verified' && \
             {row}.querySelector('td[data-field=reason]').textContent === 'hotfix' && \
             {row}.querySelector('td[data-field=version]').textContent === '3'"
        ),
        WAIT,
    );
    b.screenshot(&shots.join("dashboard-entries-live.png"));
}

#[test]
fn a_phone_width_page_does_not_scroll_sideways() {
    let s = seeded();
    let b = Browser::with_viewport(Viewport::Phone { width: 390, height: 844 });
    for path in ["/ui/", MODEL, "/ui/witnesses", "/ui/entries"] {
        b.goto(&format!("{}{path}", s.d.log.url));
        settle(&b);
        let (scroll, inner) = {
            let v = b.run("return [document.documentElement.scrollWidth, window.innerWidth];", vec![]);
            (v[0].as_u64().unwrap(), v[1].as_u64().unwrap())
        };
        assert_eq!(inner, 390, "{path}: the viewport is a phone's");
        assert!(scroll <= inner, "{path}: the page is {scroll} px wide on a {inner} px screen");
    }
    b.screenshot(&screenshot_dir().join("dashboard-model-phone.png"));
}

/// The model page through a proxy that rewrites what `rewrite` chooses.
fn through_proxy(
    s: &Seeded,
    rewrite: impl Fn(&Request, Response) -> Response + Send + Sync + 'static,
) -> Value {
    let url = proxy(s.d.log.url.clone(), Arc::new(rewrite));
    let b = Browser::start();
    b.goto(&format!("{url}{MODEL}"));
    settle(&b)
}

/// Asserts exactly `count` rows failed, all of entry `bad` with `why` in
/// their text, and every other row verified.
fn only_failed(state: &Value, bad: u64, count: usize, why: &str) {
    assert_eq!(state["checkpoint"], "verified", "{state}");
    let rows = verdicts(state);
    let failed: Vec<_> = rows.iter().filter(|r| r.1 != "verified").collect();
    assert_eq!(failed.len(), count, "{failed:?}");
    for (i, verdict, text) in failed {
        assert_eq!((*i, verdict.as_str()), (bad, "failed"), "entry {i}: {text}");
        assert!(text.contains(why), "entry {i}: {text}");
    }
}

#[test]
fn a_server_altering_one_entry_makes_exactly_that_row_fail() {
    let s = seeded();
    let bad = s.publish_v2;
    // The leaf bytes of one entry, in every proofs answer: its proof no
    // longer leads to the checkpoint's root.
    let state = through_proxy(&s, move |req, mut resp| {
        if req.path.starts_with("/ui/api/proofs") {
            let mut v: Value = serde_json::from_slice(&resp.body).unwrap();
            for e in v["entries"].as_array_mut().unwrap() {
                if e["index"] == json!(bad) {
                    let mut leaf = decode_base64_strict(e["leaf"].as_str().unwrap()).unwrap();
                    let at = leaf.len() - 10;
                    leaf[at] ^= 1;
                    e["leaf"] = json!(encode_base64(&leaf));
                }
            }
            resp.body = v.to_string().into_bytes();
        }
        resp
    });
    // Every row showing that entry fails (the model page may show it in
    // more than one table).
    let rows_of_bad = verdicts(&state).iter().filter(|r| r.0 == bad).count();
    assert!(rows_of_bad >= 1, "entry {bad} is on the page: {state}");
    only_failed(&state, bad, rows_of_bad, "inclusion proof does not lead to the tree root");

    // Only the text the page shows for that entry: its proof holds, its
    // displayed reason is not the logged one.
    let state = through_proxy(&s, move |req, mut resp| {
        if req.path == MODEL {
            let html = String::from_utf8(resp.body).unwrap();
            let row = format!("<tr data-entry-index=\"{bad}\"");
            let start = html.find(&row).expect("the row is on the page");
            let end = start + html[start..].find("</tr>").unwrap();
            // The first value cell of the row gets one more character.
            let row = &html[start..end];
            let cell = row.find("data-field=").expect("the row shows values from its entry");
            let at = cell + row[cell..].find('>').unwrap() + 1;
            let altered = format!("{}X{}", &row[..at], &row[at..]);
            resp.body = format!("{}{altered}{}", &html[..start], &html[end..]).into_bytes();
        }
        resp
    });
    // Only the altered row: another row of the same entry still verifies.
    only_failed(&state, bad, 1, "the page shows ");
}

#[test]
fn a_pinned_policy_catches_a_server_that_swaps_its_key() {
    let s = seeded();
    let policy = std::fs::read_to_string(&s.d.policy).unwrap();
    let impostor = SignerKey::from_seed(&s.d.origin, SIG_TYPE_ED25519, &[66; 32]).unwrap();
    let swapped = impostor.verifier().to_string();

    // 1. The server names another log key in /ui/api/trust.
    let url = proxy(
        s.d.log.url.clone(),
        Arc::new(move |req: &Request, mut resp: Response| {
            if req.path == "/ui/api/trust" {
                let mut v: Value = serde_json::from_slice(&resp.body).unwrap();
                v["log_vkey"] = json!(swapped);
                v["policy"] = Value::Null;
                resp.body = v.to_string().into_bytes();
            }
            resp
        }),
    );
    let b = Browser::start();
    b.goto(&format!("{url}{MODEL}"));
    // Unpinned, the page trusts the key the server names, and that key
    // did not sign the checkpoint: failed even so.
    let state = settle(&b);
    assert_eq!(state["checkpoint"], "failed", "{state}");
    pin(&b, &policy);
    b.goto(&format!("{url}{MODEL}"));
    let state = settle(&b);
    assert_eq!(state["trust"], "failed", "{state}");
    assert!(state["trustText"].as_str().unwrap().contains("does not name"), "{state}");
    assert!(verdicts(&state).iter().all(|r| r.1 == "failed"), "{state}");

    // 2. The server signs its checkpoint with another key (and says so in
    // /ui/api/trust): the pinned policy refuses the checkpoint.
    let signed_by_impostor = move |req: &Request, mut resp: Response| {
        if req.path == "/checkpoint" {
            let text = String::from_utf8(resp.body.clone()).unwrap();
            let body = &text[..text.find("\n\n").unwrap() + 1];
            Checkpoint::parse(body).unwrap();
            resp.body = sign_note(body, &[&impostor as &dyn NoteSigner]).unwrap();
        }
        resp
    };
    let url = proxy(s.d.log.url.clone(), Arc::new(signed_by_impostor));
    b.goto(&format!("{url}{MODEL}"));
    pin(&b, &policy);
    b.goto(&format!("{url}{MODEL}"));
    let state = settle(&b);
    assert_eq!(state["checkpoint"], "failed", "{state}");
    assert_eq!(state["trust"], "failed", "{state}");
    assert!(verdicts(&state).iter().all(|r| r.1 == "failed"), "{state}");
}
