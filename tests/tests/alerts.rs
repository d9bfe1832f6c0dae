//! `custody monitor --rules` on the real binaries, with real webhook
//! receivers (testkit::webhook): each rule fires exactly once for its event
//! and never for the legitimate baseline; the webhook, Slack and stdout
//! sinks get the documented bodies; deliveries are retried until a
//! receiver comes back while a dead sink holds no other back; neither a
//! restart nor a `kill -9` of the monitor loses or repeats an alert; a log
//! that lies about an entry raises no alert for it (exit 2).

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use custody_testkit::hostile::proxy;
use custody_testkit::scenario::*;
use custody_testkit::webhook::Receiver;
use serde_json::Value;

/// The rules under test; `{hook}`, `{slack}` and `{dead}` are receiver URLs,
/// `{from}`/`{to}` a window that excludes this hour and the next.
const RULES: &str = r#"
[[sink]]
name = "hook"
type = "webhook"
url = "{hook}"
backoff_initial_ms = 50
backoff_max_secs = 1

[[sink]]
name = "chat"
type = "slack"
url = "{slack}"
backoff_initial_ms = 50
backoff_max_secs = 1

[[sink]]
name = "out"
type = "stdout"

[[rules.outside_hours]]
names = ["demo/night"]
from = {from}
to = {to}

[[rules.outside_hours]]
names = ["demo/model"]
from = 0
to = 24

[rules.new_environment]
names = ["demo/*"]

[rules.new_pipeline]

[rules.access_volume]
factor = 3.0
warmup_hours = 0
min_count = 6

[rules.unknown_client]
allow = ["laptop-*", "admin-*"]

[rules.admin_grant]

[rules.protected_tag_move]
names = ["demo/*"]

[rules.key_revocation]

[rules.break_glass]
"#;

fn hours_away() -> (u64, u64) {
    let hour = (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 86_400) / 3_600;
    ((hour + 2) % 24, (hour + 3) % 24)
}

fn rules_file(dir: &Path, name: &str, hook: &str, slack: &str) -> String {
    let (from, to) = hours_away();
    let text = RULES
        .replace("{hook}", hook)
        .replace("{slack}", slack)
        .replace("{from}", &from.to_string())
        .replace("{to}", &to.to_string());
    write_file(dir, name, text.as_bytes())
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// A `custody` command of `u` with `--source` set.
fn by<'a>(u: &'a User, source: &'a str) -> impl Fn(&[&str]) -> String + 'a {
    move |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--source", source, "--environment", "prod"]);
        u.ok(&a)
    }
}

#[test]
fn each_rule_fires_once_for_its_event_and_never_for_the_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, admin, alice, dave, _) = demo_team(dir);
    let (hook, slack) = (Receiver::start(), Receiver::start());
    let rules = rules_file(dir, "rules.toml", &hook.url, &slack.url);
    let watcher = d.user("watcher");
    let monitor = || watcher.ok(&["monitor", "--rules", &rules, "--once"]);
    let out = dir.join("pulled.bin");
    let out = out.to_str().unwrap();

    // History before the monitor's first start: learned, never alerted.
    let m = write_file(dir, "m.bin", b"model weights");
    let night = write_file(dir, "n.bin", b"night weights");
    let m3 = write_file(dir, "m3.bin", b"model weights 3");
    let m2 = write_file(dir, "m2.bin", b"model weights 2");
    let (alice_, dave_, admin_) =
        (by(&alice, "laptop-alice"), by(&dave, "laptop-dave"), by(&admin, "admin-cli"));
    alice_(&["publish", &m, "--name", "demo/model", "--version", "1", "--pipeline", "train#1"]);
    alice_(&["publish", &night, "--name", "demo/night", "--version", "1"]);
    dave_(&["pull", "demo/model@1", "-o", out]);
    assert_eq!(monitor(), "", "the history is the baseline");
    assert!(hook.accepted().is_empty() && slack.accepted().is_empty());

    // Legitimate activity after the baseline: nothing alerts.
    dave_(&["pull", "demo/model@1", "-o", out]);
    alice_(&["publish", &m2, "--name", "demo/model", "--version", "2", "--pipeline", "train#2"]);
    alice_(&["tag", "demo/model@1", "latest"]);
    let eve = d.user("eve");
    admin_(&["grant", &eve.keygen("eve"), "--role", "reader", "--pattern", "demo/*"]);
    assert_eq!(monitor(), "", "legitimate activity alerted");
    assert!(hook.accepted().is_empty());

    // One event per rule.
    let mut expected = Vec::new();
    dave_(&["pull", "demo/night@1", "-o", out]);
    expected.push("outside_hours");
    dave.ok(&["pull", "demo/model@1", "-o", out, "--source", "laptop-dave", "--environment", "staging"]);
    expected.push("new_environment");
    alice_(&["publish", &m3, "--name", "demo/model", "--version", "3", "--pipeline", "deploy#7"]);
    expected.push("new_pipeline");
    let eve_ = by(&eve, "laptop-eve");
    for _ in 0..7 {
        eve_(&["pull", "demo/model@1", "-o", out]);
    }
    expected.push("access_volume");
    dave.ok(&["pull", "demo/model@1", "-o", out, "--source", "curl/8.5", "--environment", "prod"]);
    expected.push("unknown_client");
    let frank = d.user("frank");
    let kf = frank.keygen("frank");
    admin_(&["grant", &kf, "--role", "admin", "--pattern", "demo/*"]);
    expected.push("admin_grant");
    admin_(&["protect", "demo/model", "stable", "--statuses", "development,staging,production"]);
    alice_(&["tag", "demo/model@1", "stable"]);
    expected.push("protected_tag_move");
    admin_(&["revoke-key", &kf]);
    expected.push("key_revocation");
    alice_(&["promote", "demo/model@1", "--to", "staging"]);
    admin_(&["promote", "demo/model@1", "--to", "production", "--break-glass", "--reason", "incident 42"]);
    expected.push("break_glass");

    let stdout = monitor();
    let printed = lines(&stdout);
    let mut rules_seen: Vec<&str> = printed.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    rules_seen.sort();
    expected.sort();
    assert_eq!(rules_seen, expected, "{stdout}");

    // The webhook got the same alerts, each once, with its id in a header.
    let got = hook.accepted();
    assert_eq!(got.len(), expected.len());
    for (d, p) in got.iter().zip(&printed) {
        assert_eq!(&d.body, p, "webhook body and stdout line differ");
        let id = format!("{}:{}", p["rule"].as_str().unwrap(), p["index"]);
        assert_eq!(d.body["id"], Value::from(id.clone()));
        assert_eq!(d.header("custody-alert-id"), Some(id.as_str()));
        assert_eq!(d.header("idempotency-key"), Some(id.as_str()));
        assert_eq!(d.header("content-type"), Some("application/json"));
        // The fields `--watch` lines have, for existing consumers.
        for f in ["rule", "index", "checkpoint_size", "time", "actor", "key_id", "event"] {
            assert!(p.get(f).is_some(), "{f} missing: {p}");
        }
    }
    // Slack: only a text, naming the rule and the entry.
    let chat = slack.accepted();
    assert_eq!(chat.len(), expected.len());
    for (c, p) in chat.iter().zip(&printed) {
        let obj = c.body.as_object().unwrap();
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["text"], "{}", c.body);
        let text = obj["text"].as_str().unwrap();
        assert!(
            text.contains(p["rule"].as_str().unwrap()) && text.contains(&format!("entry {}", p["index"])),
            "{text}"
        );
    }
    // What the alerts say matches the statements.
    let by_rule = |r: &str| printed.iter().find(|a| a["rule"] == r).unwrap().clone();
    assert_eq!(by_rule("outside_hours")["name"], "demo/night");
    assert_eq!(by_rule("new_environment")["context"]["environment"], "staging");
    assert_eq!(by_rule("new_pipeline")["context"]["pipeline"], "deploy#7");
    assert_eq!(by_rule("access_volume")["actor"], "eve");
    assert_eq!(by_rule("unknown_client")["context"]["source"], "curl/8.5");
    assert_eq!(by_rule("admin_grant")["event"]["grant"]["actor"], "frank");
    assert_eq!(by_rule("protected_tag_move")["event"]["tag"]["tag"], "stable");
    assert_eq!(by_rule("key_revocation")["event"]["revoke_key"]["actor"], "frank");
    assert_eq!(by_rule("break_glass")["context"]["reason"], "incident 42");
    assert_eq!(by_rule("break_glass")["event"]["break_glass"]["promote"]["to"], "production");

    // A restart raises nothing again.
    assert_eq!(monitor(), "");
    assert_eq!(hook.accepted().len(), expected.len());
    assert_eq!(slack.accepted().len(), expected.len());
}

#[test]
fn a_bad_rules_file_is_refused_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start_with(tmp.path(), Setup { witnesses: 1, quorum: 1, gossip_ms: None });
    let w = d.user("watcher");
    let good = rules_file(tmp.path(), "good.toml", "http://127.0.0.1:9/x", "http://127.0.0.1:9/y");
    let text = std::fs::read_to_string(&good).unwrap();
    for (bad, line, needle) in [
        (text.replace("min_count = 6", "min_count = 6\nmax_count = 9"), 39, "unknown field `max_count`"),
        (text.replace("[rules.key_revocation]", "[rules.key_revocations]"), 48, "unknown field"),
        (text.replace("to = 24", "to = 25"), 28, "not within 0..=24"),
    ] {
        let f = write_file(tmp.path(), "bad.toml", bad.as_bytes());
        w.cli(&["monitor", "--rules", &f, "--once"]).fails(64, &format!("line {line}")).stderr_has(needle);
    }
}

/// `custody monitor --rules` running until killed, stdout to a file.
struct Running(Child);

impl Running {
    fn start(u: &User, rules: &str, stdout: &Path) -> Running {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(stdout).unwrap();
        let child = u
            .command()
            .args(["monitor", "--rules", rules, "--interval", "1"])
            .stdout(Stdio::from(f))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Running(child)
    }

    fn kill9(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deliveries_retry_until_the_receiver_is_back_and_a_dead_sink_holds_no_other_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, admin, _, _, _) = demo_team(dir);
    // "hook" refuses its first three attempts; "chat" is down throughout.
    let (hook, slack) = (Receiver::failing_first(3), Receiver::start());
    slack.set_down(true);
    let rules = rules_file(dir, "rules.toml", &hook.url, &slack.url);
    let watcher = d.user("watcher");
    assert_eq!(watcher.ok(&["monitor", "--rules", &rules, "--once"]), "");
    let stdout = dir.join("monitor.out");
    let mut running = Running::start(&watcher, &rules, &stdout);
    let frank = d.user("frank");
    let grant = admin.ok(&[
        "grant",
        &frank.keygen("frank"),
        "--role",
        "admin",
        "--pattern",
        "demo/*",
        "--source",
        "admin-cli",
    ]);
    let index = logged_index(&grant);
    let id = format!("admin_grant:{index}");
    let got = hook.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "the webhook never got the alert after {} attempts", hook.attempts());
    assert_eq!(got[0].header("custody-alert-id"), Some(id.as_str()));
    assert!(hook.attempts() >= 4, "{} attempts", hook.attempts());
    // The stdout sink was not held back by the dead one either.
    let printed = eventually("the stdout alert", 30, || {
        let text = std::fs::read_to_string(&stdout).unwrap_or_default();
        (!text.is_empty()).then_some(text)
    });
    assert_eq!(lines(&printed)[0]["id"], Value::from(id.clone()));
    // The dead sink was tried again and again.
    eventually("retries of the dead sink", 30, || (slack.attempts() >= 3).then_some(()));
    assert!(slack.accepted().is_empty());
    running.kill9();

    // The alert waits in the dead sink's queue across the restart; once the
    // receiver is back it arrives, once, and nothing goes to the others again.
    slack.set_down(false);
    let out = watcher.ok(&["monitor", "--rules", &rules, "--once"]);
    assert_eq!(out, "");
    let chat = slack.accepted();
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0].header("custody-alert-id"), Some(id.as_str()));
    assert_eq!(hook.accepted().len(), 1);
}

#[test]
fn kill_9_of_the_monitor_loses_no_alert_and_a_receiver_dedupes_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, _, alice, dave, _) = demo_team(dir);
    let (hook, slack) = (Receiver::start(), Receiver::start());
    hook.set_delay(Duration::from_millis(40));
    let rules = rules_file(dir, "rules.toml", &hook.url, &slack.url);
    let m = write_file(dir, "m.bin", b"weights");
    alice.ok(&["publish", &m, "--name", "demo/model", "--version", "1", "--source", "laptop-alice"]);
    let watcher = d.user("watcher");
    watcher.ok(&["monitor", "--rules", &rules, "--once"]);

    // Forty reads from an unknown client (no source): forty alerts.
    let c = http();
    let signer = dave.signer();
    let mut ids = Vec::new();
    for _ in 0..40 {
        let env = signed(&signer, access("demo/model", "1", digest_of(b"weights")));
        let (status, body) = download(&c, &d.log.url, digest_of(b"weights"), &env);
        assert_eq!(status, 200, "{body}");
    }
    let size = tree_size(&c, &d.log.url);
    let stdout = dir.join("monitor.out");
    // Kill the monitor twice while it delivers, then let it finish.
    for _ in 0..2 {
        let mut running = Running::start(&watcher, &rules, &stdout);
        let before = hook.accepted().len();
        eventually("some deliveries", 60, || (hook.accepted().len() >= before + 5).then_some(()));
        running.kill9();
    }
    let running = Running::start(&watcher, &rules, &stdout);
    let got = eventually("every alert", 60, || {
        let mut ids: Vec<String> = hook.ids();
        ids.sort();
        ids.dedup();
        (ids.len() >= 41).then_some(ids)
    });
    drop(running);
    ids.extend(got);
    // Forty reads from an unknown client, and dave's seventh read in the
    // hour crossed his access volume floor.
    let count = |rule: &str| ids.iter().filter(|i| i.starts_with(&format!("{rule}:"))).count();
    assert_eq!((ids.len(), count("unknown_client"), count("access_volume")), (41, 40, 1), "{ids:?}");
    let indexes: Vec<u64> = ids.iter().map(|i| i.rsplit(':').next().unwrap().parse().unwrap()).collect();
    assert!(indexes.iter().all(|&i| i < size));
    // At most the delivery in flight at each kill is repeated, with its id.
    let all = hook.ids();
    assert!(all.len() <= 43, "{} deliveries for 41 alerts", all.len());
    let mut chat: Vec<String> = slack.ids();
    let n = chat.len();
    chat.sort();
    chat.dedup();
    assert_eq!(chat, ids, "the Slack sink lost or invented an alert");
    assert!(n <= 43, "{n} Slack deliveries for 41 alerts");
}

#[test]
fn a_log_that_lies_about_an_entry_raises_no_alert_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, admin, _, _, _) = demo_team(dir);
    let (hook, slack) = (Receiver::start(), Receiver::start());
    let rules = rules_file(dir, "rules.toml", &hook.url, &slack.url);
    let watcher = d.user("watcher");
    watcher.ok(&["monitor", "--rules", &rules, "--once"]);
    // A legitimate reader grant, which the proxy swaps for an admin grant
    // to mallory (signed by the real admin key, never logged).
    let eve = d.user("eve");
    let real = logged_index(&admin.ok(&[
        "grant",
        &eve.keygen("eve"),
        "--role",
        "reader",
        "--pattern",
        "demo/*",
        "--source",
        "admin-cli",
    ]));
    let forged =
        leaf_now(&admin_signer(&d), grant(&signer("mallory"), custody_registry::registry::Role::Admin, "*"));
    let forged_b64 = custody_standards::encoding::encode_base64(&forged);
    let lying = proxy(
        d.log.url.clone(),
        std::sync::Arc::new(move |req, mut r| {
            if req.path.starts_with("/entries?") && r.status == 200 {
                let start: u64 =
                    req.path.split("start=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
                let mut page: Value = serde_json::from_slice(&r.body).unwrap();
                let at = real.checked_sub(start).map(|i| i as usize);
                if let Some(e) = at.and_then(|i| page["entries"].as_array_mut().unwrap().get_mut(i)) {
                    *e = Value::from(forged_b64.clone());
                }
                r.body = serde_json::to_vec(&page).unwrap();
            }
            r
        }),
    );
    let run = watcher.cli(&["monitor", &lying, "--rules", &rules, "--once"]);
    run.fails(2, &format!("entry {real} does not match its leaf hash"));
    assert_eq!(run.stdout, "");
    assert!(hook.accepted().is_empty() && slack.accepted().is_empty(), "alerted on a forged entry");
    // The honest log: the real grant (reader) raises nothing, and nothing
    // was queued by the refused pass.
    assert_eq!(watcher.ok(&["monitor", "--rules", &rules, "--once"]), "");
    assert!(hook.accepted().is_empty());
}

#[test]
fn a_rule_puts_a_logged_hold_that_blocks_pulls_until_a_release() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, admin, alice, dave, _) = demo_team(dir);
    let guard = d.user("guard");
    admin.ok(&["grant", &guard.keygen("guard"), "--role", "approver", "--pattern", "demo/*"]);
    let m = write_file(dir, "m.bin", b"weights to hold");
    alice.ok(&["publish", &m, "--name", "demo/model", "--version", "1", "--source", "laptop-alice"]);
    let hook = Receiver::start();
    let rules = format!(
        r#"
[[sink]]
name = "hook"
type = "webhook"
url = "{}"

[rules.unknown_client]
allow = ["laptop-*", "admin-*", "custody-monitor"]
hold = true

[rules.break_glass]

[hold]
key = "{}"
reason = "suspicious client"
"#,
        hook.url,
        guard.home.join("key").display()
    );
    let rules = write_file(dir, "rules.toml", rules.as_bytes());
    let watcher = d.user("watcher");
    assert_eq!(watcher.ok(&["monitor", "--rules", &rules, "--once"]), "");
    let out = dir.join("pulled.bin");
    let out = out.to_str().unwrap();

    // The read is the next entry; `pull` does not wait for a checkpoint
    // covering it, so the monitor runs until one does.
    let read = tree_size(&http(), &d.log.url);
    dave.ok(&["pull", "demo/model@1", "-o", out, "--source", "curl/8.5"]);
    let got = eventually("the alert", 30, || {
        watcher.ok(&["monitor", "--rules", &rules, "--once"]);
        let got = hook.accepted();
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["id"], Value::from(format!("unknown_client:{read}")));
    assert_eq!(got[0].body["hold"], Value::Bool(true));

    // The hold is logged, signed by the guard, naming the alert; the log
    // and `pull` refuse the held version, even from a known client.
    let history = dave.ok(&["history", "demo/model", "--output", "json"]);
    let history: Value = serde_json::from_str(&history).unwrap();
    let holds: Vec<&Value> =
        history["rows"].as_array().unwrap().iter().filter(|r| r["event"] == "hold").collect();
    assert_eq!(holds.len(), 1, "{history}");
    assert_eq!(holds[0]["actor"], "guard");
    assert!(holds[0]["reason"].as_str().unwrap().contains(&format!("unknown_client:{read}")), "{}", holds[0]);
    dave.cli(&["pull", "demo/model@1", "-o", out, "--source", "laptop-dave"]).fails(2, "held");

    // A second pass asks for no second hold, and the monitor's own hold
    // raises nothing; a release lifts the hold.
    assert_eq!(watcher.ok(&["monitor", "--rules", &rules, "--once"]), "");
    assert_eq!(hook.accepted().len(), 1);
    admin.ok(&["release", "demo/model@1", "--reason", "client checked", "--source", "admin-cli"]);
    dave.ok(&["pull", "demo/model@1", "-o", out, "--source", "laptop-dave"]);
}

#[test]
fn an_integrity_violation_the_log_signs_alerts_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, _, alice, dave, _) = demo_team(dir);
    let bytes = b"weights that rot on disk ".repeat(300);
    alice.ok(&["publish", &write_file(dir, "m.bin", &bytes), "--name", "demo/model", "--version", "1"]);
    let hook = Receiver::start();
    let rules = write_file(
        dir,
        "rules.toml",
        format!(
            "[[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\n[rules.integrity_violation]\n",
            hook.url
        )
        .as_bytes(),
    );
    let watcher = d.user("watcher");
    assert_eq!(watcher.ok(&["monitor", "--rules", &rules, "--once"]), "");

    // The stored file changes behind the server's back; reads are refused
    // and the log appends one entry signed by its own key.
    let hex = custody_standards::hash::sha256(&bytes).to_hex();
    rot(&stored_artifact(&d.dir.join("log"), &bytes), |n| n / 2, 0x40);
    let bad = dir.join("bad.bin");
    assert_ne!(dave.cli(&["pull", "demo/model@1", "-o", bad.to_str().unwrap()]).code, 0);
    let got = eventually("the integrity alert", 30, || {
        watcher.ok(&["monitor", "--rules", &rules, "--once"]);
        let got = hook.accepted();
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(got.len(), 1);
    let a = &got[0].body;
    assert_eq!(a["rule"], "integrity_violation");
    assert!(a["actor"].as_str().unwrap().starts_with("log "), "{a}");
    assert_eq!(a["event"]["integrity_violation"]["digest"], Value::from(format!("sha256:{hex}")));
    assert_eq!(watcher.ok(&["monitor", "--rules", &rules, "--once"]), "");
    assert_eq!(hook.accepted().len(), 1);
}
