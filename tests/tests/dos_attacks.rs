//! Resource-exhaustion and hygiene attacks on the real `custody-log`
//! binary over loopback: slowloris request bodies, big-entry page
//! amplification, raw append on a registry, log flooding with
//! unauthenticated statements, and 500 bodies leaking server paths.
//! Every attack is bounded in connections, bytes and time.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custody_registry::actor_key::ActorSigner;
use serde_json::Value;

use custody_testkit::scenario as kit;
use custody_testkit::scenario::dos;
use custody_testkit::scenario::{bin, eventually, rss_kib};
use dos::{addr_of, honest_client, init_log, serve_alone, Slowloris};

/// 1,100 connections trickling `POST /statements` bodies from one address
/// (the attack that ran the server out of descriptors at the usual limit of
/// 1024) while a visitor from another address keeps fetching the
/// checkpoint and a proof on fresh connections: every answer comes, and
/// quickly; the connections that were admitted are cut at the body
/// deadline.
#[test]
fn slowloris_bodies_cannot_starve_checkpoints_and_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    // Set through the environment so that a server without the setting
    // still starts (and shows the attack working).
    let server = serve_alone(&data, &[], Some(1024), &[("CUSTODY_BODY_TIMEOUT_MS", "3000")]);
    let base = server.proc.url.clone();
    let honest = honest_client(Duration::from_secs(3));
    eventually("a first checkpoint", 30, || {
        honest.get(format!("{base}/checkpoint")).send().ok().filter(|r| r.status() == 200)
    });

    let mut attack = Slowloris::open(addr_of(&base), 1100, Duration::from_secs(20));
    assert!(attack.len() >= 1000, "only {} attack connections opened", attack.len());
    let began = Instant::now();
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    while began.elapsed() < Duration::from_secs(8) {
        for path in ["checkpoint", "proof/inclusion?index=0&size=1"] {
            let t = Instant::now();
            let r = honest.get(format!("{base}/{path}")).send();
            let status = r.as_ref().map(|r| r.status().as_u16()).map_err(|e| e.to_string());
            assert_eq!(
                status,
                Ok(200),
                "GET /{path} under the slowloris ({} attack connections still open)",
                attack.trickle()
            );
            slowest = slowest.max(t.elapsed());
            answered += 1;
        }
        attack.trickle();
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(slowest < Duration::from_secs(1), "slowest honest answer took {slowest:?}");
    assert!(answered >= 20, "{answered}");
    // The body deadline (3 s) has passed for every admitted connection.
    let open = attack.trickle();
    assert_eq!(open, 0, "{open} trickling connections are still held after the body deadline");
    let metrics = honest.get(format!("{base}/metrics")).send().unwrap().text().unwrap();
    let refused: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("custody_connections_refused_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused >= 800.0, "refused connections: {refused}\n{metrics}");
}

/// 16 concurrent readers of `GET /entries?start=0&end=1000` over 64 KB
/// entries, each reading slowly: the server's memory stays bounded (the
/// page is capped at 1 MiB and streamed), and a page says where it
/// stopped.
#[test]
fn slow_readers_of_big_entry_pages_keep_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init_log(&data, true);
    let server = serve_alone(&data, &["--allow-raw-append"], None, &[]);
    let base = server.proc.url.clone();
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let base = &base;
            s.spawn(move || {
                let c = kit::http();
                for i in 0..125u32 {
                    let mut entry = vec![t; 64_000];
                    entry[..4].copy_from_slice(&i.to_be_bytes());
                    let r = c.post(format!("{base}/entries")).body(entry).send().unwrap();
                    assert_eq!(r.status(), 200);
                }
            });
        }
    });
    let baseline = rss_kib(server.pid());
    let addr = addr_of(&base);
    let peak = std::thread::scope(|s| {
        let readers: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(move || {
                    let mut conn = std::net::TcpStream::connect(addr).unwrap();
                    write!(conn, "GET /entries?start=0&end=1000 HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut buf = [0u8; 4096];
                    let until = Instant::now() + Duration::from_secs(5);
                    let mut read = 0;
                    while Instant::now() < until {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => read += k,
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    read
                })
            })
            .collect();
        let mut peak = baseline;
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            peak = peak.max(rss_kib(server.pid()));
            std::thread::sleep(Duration::from_millis(50));
        }
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        peak
    });
    let grown_mib = peak.saturating_sub(baseline) / 1024;
    assert!(grown_mib < 128, "16 slow readers grew the server by {grown_mib} MiB (baseline {baseline} KiB)");
    let c = kit::http();
    let page: Value = c.get(format!("{base}/entries?start=0&end=1000")).send().unwrap().json().unwrap();
    let n = page["entries"].as_array().unwrap().len() as u64;
    assert!((1..1000).contains(&n), "a page of 64 KB entries holds {n} entries");
    assert_eq!(page["start"], 0);
    assert_eq!(page["end"], n, "end says where the page stopped");
    let next: Value = c.get(format!("{base}/entries?start={n}&end=1000")).send().unwrap().json().unwrap();
    assert_eq!(next["start"], n);

    // `custody monitor` pages through the capped pages to the end.
    let home = dir.path().join("monitor-home");
    std::fs::create_dir_all(&home).unwrap();
    let policy = dir.path().join("policy");
    std::fs::write(&policy, format!("log {vkey}\nquorum none\n")).unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, r#"{"grants": true}"#).unwrap();
    let (ok, out) = dos::custody(&home, &["init", "--policy", policy.to_str().unwrap(), "--log", &base]);
    assert!(ok, "{out}");
    eventually("a checkpoint of all 1000 entries", 30, || {
        let note = c.get(format!("{base}/checkpoint")).send().ok()?.text().ok()?;
        (note.lines().nth(1)? == "1000").then_some(())
    });
    let (ok, out) =
        dos::custody(&home, &["monitor", "--watch", rules.to_str().unwrap(), "--once", "--from-start"]);
    assert!(ok, "custody monitor over capped pages: {out}");
}

/// `--allow-raw-append` on a registry would let anyone post a leaf with its
/// own receive time: the server refuses to start with it.
#[test]
fn raw_append_on_a_registry_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let mut child = Command::new(bin("custody-log"))
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-raw-append", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = eventually("custody-log to exit", 30, || child.try_wait().unwrap());
    let mut out = String::new();
    let mut err = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success(), "started: {out}");
    assert!(!out.contains("listening on"), "{out}");
    assert!(err.contains("--allow-raw-append") && err.contains("registry"), "{err}");
    // The same flag on a generic log is still fine.
    let generic = dir.path().join("generic");
    init_log(&generic, true);
    let server = serve_alone(&generic, &["--allow-raw-append"], None, &[]);
    let r = kit::http().post(format!("{}/entries", server.proc.url)).body("x").send().unwrap();
    assert_eq!(r.status(), 200);
}

/// A flood of statements nobody can be held to (unknown key, garbage)
/// writes no info line per statement, only a summary with the counts.
#[test]
fn unauthenticated_refusals_are_summarised_not_logged_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let env = [("CUSTODY_LOG", "info"), ("CUSTODY_REFUSAL_SUMMARY_INTERVAL_MS", "500")];
    let server = serve_alone(&data, &[], None, &env);
    let base = server.proc.url.clone();
    let c = kit::http();
    let mallory = kit::signer("mallory");
    for i in 0..200 {
        let (status, body) = kit::post_statement(
            &c,
            &base,
            kit::signed(&mallory, kit::grant(&mallory, custody_registry::registry::Role::Admin, "*")),
        );
        assert_eq!(status, 401, "{i}: {body}");
    }
    for _ in 0..50 {
        let (status, _) = kit::post_statement(&c, &base, b"{not an envelope".to_vec());
        assert_eq!(status, 400);
    }
    let summed = |log: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains("unauthenticated statements refused"))
            .filter_map(|l| l.split("total=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let log = eventually("summary lines counting every refusal", 10, || {
        let log = plain(&server.log_text());
        (summed(&log) >= 250).then_some(log)
    });
    assert_eq!(summed(&log), 250);
    let per_statement = log
        .lines()
        .filter(|l| l.contains("statement refused") && !l.contains("unauthenticated statements refused"))
        .count();
    assert_eq!(per_statement, 0, "one info line per refused statement:\n{}", &log[..log.len().min(2000)]);
    let summaries: Vec<&str> =
        log.lines().filter(|l| l.contains("unauthenticated statements refused")).collect();
    assert!(summaries.iter().any(|l| l.contains("unknown_key=")), "{summaries:?}");
}

/// A storage failure answers 500 with an opaque reference; the path that
/// failed is in the server's log under that reference, not in the body.
#[test]
fn a_500_names_no_server_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let admin =
        ActorSigner::parse(std::fs::read_to_string(data.join("admin.key")).unwrap().trim_end()).unwrap();
    let server = serve_alone(&data, &[], None, &[]);
    std::fs::remove_dir_all(data.join("blobs/tmp")).unwrap();
    let bytes = b"weights that cannot be stored".to_vec();
    let publish = kit::publish("acme/model", "1", kit::digest_of(&bytes), bytes.len() as u64);
    let (status, body) = kit::upload(&kit::http(), &server.proc.url, &bytes, &kit::signed(&admin, publish));
    assert_eq!(status, 500, "{body}");
    let shown = body.to_string();
    let root = dir.path().to_str().unwrap();
    assert!(!shown.contains(root) && !shown.contains("blobs"), "the 500 body names server files: {shown}");
    let reference = body["reference"].as_str().unwrap_or_else(|| panic!("no reference: {shown}")).to_owned();
    let log = eventually("the logged detail", 10, || {
        let log = plain(&server.log_text());
        log.contains(&reference).then_some(log)
    });
    let line = log.lines().find(|l| l.contains(&reference)).unwrap();
    assert!(line.contains("blobs"), "{line}");
}

/// `text` without ANSI colour sequences (the server colours its log).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `custody-attackgen` (the bench suite's attacker) runs every mode
/// briefly against a real server, which keeps answering.
#[test]
fn attackgen_runs_every_mode_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let server = serve_alone(&data, &[], None, &[]);
    let base = server.proc.url.clone();
    for mode in ["slow-bodies", "slow-downloads", "big-entries", "bad-signatures"] {
        let out = Command::new(bin("custody-attackgen"))
            .args(["--log", &base, "--mode", mode, "--connections", "4", "--seconds", "2"])
            .args(["--interval", "100", "--admin-key"])
            .arg(data.join("admin.key"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert!(report["opened"].as_u64().unwrap() >= 4, "{mode}: {report}");
        match mode {
            "bad-signatures" => assert!(report["answered"].as_u64().unwrap() > 0, "{report}"),
            "slow-downloads" | "big-entries" => {
                assert!(report["bytes_read"].as_u64().unwrap() > 0, "{report}")
            }
            _ => {}
        }
        let r = honest_client(Duration::from_secs(5)).get(format!("{base}/checkpoint")).send().unwrap();
        assert_eq!(r.status(), 200, "after {mode}");
    }
    // Only loopback targets.
    let out = Command::new(bin("custody-attackgen"))
        .args(["--log", "http://192.0.2.1:80", "--mode", "slow-bodies", "--seconds", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// An artifact upload has no total deadline, but one that stalls for
/// `--body-timeout` is answered 408 and its connection closed.
#[test]
fn a_stalled_upload_is_cut_at_the_idle_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let admin =
        ActorSigner::parse(std::fs::read_to_string(data.join("admin.key")).unwrap().trim_end()).unwrap();
    let server = serve_alone(&data, &[], None, &[("CUSTODY_BODY_TIMEOUT_MS", "1000")]);
    let bytes = vec![9u8; 100_000];
    let digest = kit::digest_of(&bytes);
    let envelope = kit::signed(&admin, kit::publish("acme/stalled", "1", digest, bytes.len() as u64));
    let addr = addr_of(&server.proc.url);
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "PUT /blobs/{digest} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nCustody-Statement: {}\r\n\r\n",
        bytes.len(),
        custody_standards::encoding::encode_base64(&envelope)
    )
    .unwrap();
    // Pieces within the idle deadline keep it going for longer than the
    // deadline in total.
    for piece in bytes[..3000].chunks(1000) {
        conn.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let stalled = Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(stalled.elapsed() < Duration::from_secs(10), "cut after {:?}", stalled.elapsed());
}
