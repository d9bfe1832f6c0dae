//! Per-client-address limits of the real `custody-log` over loopback: a
//! flood from one address is answered 429 with `Retry-After` before its
//! body is read or its signature checked, while another address is served
//! as before. The attacker is `127.0.0.1`, the honest client `127.0.0.2`,
//! and `127.0.0.4` an exempt monitor (`--rate-limit-exempt`).
//!
//! Honest throughput under a flood is measured by the bench suite's
//! under-attack rows, not timed here.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use custody_registry::actor_key::ActorSigner;
use custody_registry::registry::Role;
use serde_json::Value;

use custody_testkit::scenario as kit;
use custody_testkit::scenario::dos::{addr_of, init_log, serve_alone};
use custody_testkit::scenario::eventually;

/// A client whose connections come from `source`.
fn client_from(source: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Status, `Retry-After` and JSON body of a response.
fn answer(r: reqwest::blocking::Response) -> (u16, Option<u64>, Value) {
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    (status, retry, r.json().unwrap_or(Value::Null))
}

fn post(c: &reqwest::blocking::Client, base: &str, envelope: Vec<u8>) -> (u16, Option<u64>, Value) {
    answer(c.post(format!("{base}/statements")).body(envelope).send().unwrap())
}

/// The sum of the samples of metric `name` with `label` in `metrics`.
fn metric(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Statements signed by a key the log does not know, from one address:
/// the first `--auth-failure-budget` are checked and refused 401, then
/// every signed request from that address gets 429 with `Retry-After`,
/// even one whose body never comes (it is not waited for). Another
/// address still writes, and still gets its own 401s; the flooding
/// address still reads.
#[test]
fn a_bad_signature_flood_is_refused_before_its_body_while_others_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let admin =
        ActorSigner::parse(std::fs::read_to_string(data.join("admin.key")).unwrap().trim_end()).unwrap();
    let server =
        serve_alone(&data, &["--auth-failure-budget", "5", "--rate-limit-exempt", "127.0.0.4"], None, &[]);
    let base = server.proc.url.clone();
    let attacker = client_from("127.0.0.1");
    let honest = client_from("127.0.0.2");
    let mallory = kit::signer("mallory");
    let forged = || kit::signed(&mallory, kit::grant(&mallory, Role::Admin, "*"));

    let answers: Vec<_> = (0..20).map(|_| post(&attacker, &base, forged())).collect();
    for (i, (status, retry, body)) in answers.iter().enumerate() {
        if i < 5 {
            assert_eq!(*status, 401, "{i}: {body}");
        } else {
            assert_eq!(*status, 429, "{i}: {body}");
            assert_eq!(body["error"], "too_many_auth_failures", "{body}");
            assert!(retry.is_some_and(|s| s >= 1), "{i}: Retry-After {retry:?}");
        }
    }

    // A head announcing a body that never comes is answered at once, not
    // after the body deadline (10 s) with a 408.
    let addr = addr_of(&base);
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /statements HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
    )
    .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let began = Instant::now();
    let mut head = vec![0u8; 1024];
    let n = conn.read(&mut head).expect("an answer before the body arrived");
    let head = String::from_utf8_lossy(&head[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 429"), "{head}");
    assert!(head.contains("retry-after:"), "{head}");
    assert!(began.elapsed() < Duration::from_secs(2), "{:?}", began.elapsed());

    // Another address: its own budget, untouched.
    let grantee = kit::signer("grantee");
    let (status, _, body) =
        post(&honest, &base, kit::signed(&admin, kit::grant(&grantee, Role::Publisher, "acme/*")));
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post(&honest, &base, forged());
    assert_eq!(status, 401, "{body}");
    // The flooding address still reads.
    let r = attacker.get(format!("{base}/checkpoint")).send().unwrap();
    assert_eq!(r.status(), 200);

    let metrics = client_from("127.0.0.4").get(format!("{base}/metrics")).send().unwrap().text().unwrap();
    let refused = metric(&metrics, "custody_client_limit_refusals", "reason=\"too_many_auth_failures\"");
    assert!(refused >= 16.0, "{metrics}");
}

/// Reads have a per-address budget too, tiles and proofs included: past
/// `--read-burst` one address gets 429 with `Retry-After` on every read
/// route, while its writes (another class), another address and an exempt
/// address are served.
#[test]
fn tiles_and_proofs_have_a_per_address_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let args = ["--read-rate", "1", "--read-burst", "5", "--rate-limit-exempt", "127.0.0.4"];
    let server = serve_alone(&data, &args, None, &[]);
    let base = server.proc.url.clone();
    let monitor = client_from("127.0.0.4");
    eventually("a first checkpoint", 30, || {
        monitor.get(format!("{base}/checkpoint")).send().ok().filter(|r| r.status() == 200)
    });
    let reader = client_from("127.0.0.1");
    let tile = format!("{base}/tile/0/000.p/1");
    let proof = format!("{base}/proof/inclusion?index=0&size=1");
    for i in 0..5 {
        let url = if i % 2 == 0 { &tile } else { &proof };
        let r = reader.get(url).send().unwrap();
        assert_eq!(r.status(), 200, "{i}: {url}");
    }
    for url in [&tile, &proof, &format!("{base}/checkpoint"), &format!("{base}/entries?start=0&end=1")] {
        let (status, retry, body) = answer(reader.get(url).send().unwrap());
        assert_eq!(status, 429, "{url}: {body}");
        assert_eq!(body["error"], "rate_limited", "{body}");
        assert!(retry.is_some_and(|s| s >= 1), "{url}: Retry-After {retry:?}");
    }
    // Writes are another class: this one reaches authentication.
    let mallory = kit::signer("mallory");
    let (status, _, body) =
        post(&reader, &base, kit::signed(&mallory, kit::grant(&mallory, Role::Admin, "*")));
    assert_eq!(status, 401, "{body}");
    // Another address, and an exempt one, are served.
    let honest = client_from("127.0.0.2");
    for url in [&tile, &proof] {
        assert_eq!(honest.get(url).send().unwrap().status(), 200, "{url}");
    }
    for _ in 0..20 {
        assert_eq!(monitor.get(&tile).send().unwrap().status(), 200);
    }
    // The budget refills: one request a second.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(reader.get(&tile).send().unwrap().status(), 200);
}

/// Pages of entries are charged to a per-address byte budget: once it is
/// spent the page ends early (its `end` says where) and the address's reads
/// get 429 until the debt is paid; another address has its own budget and
/// an exempt one none.
#[test]
fn entry_pages_are_charged_to_a_per_address_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, true);
    let args = [
        "--allow-raw-append",
        "--read-kib-rate",
        "16",
        "--read-kib-burst",
        "64",
        "--rate-limit-exempt",
        "127.0.0.4",
    ];
    let server = serve_alone(&data, &args, None, &[]);
    let base = server.proc.url.clone();
    let monitor = client_from("127.0.0.4");
    for i in 0..100u32 {
        let mut entry = vec![7u8; 4000];
        entry[..4].copy_from_slice(&i.to_be_bytes());
        assert_eq!(monitor.post(format!("{base}/entries")).body(entry).send().unwrap().status(), 200);
    }
    let page = |c: &reqwest::blocking::Client| {
        answer(c.get(format!("{base}/entries?start=0&end=100")).send().unwrap())
    };
    let (status, _, full) = page(&monitor);
    assert_eq!(status, 200);
    assert_eq!(full["end"], 100, "an exempt reader gets the whole page");

    let reader = client_from("127.0.0.1");
    let (status, _, cut) = page(&reader);
    assert_eq!(status, 200);
    let end = cut["end"].as_u64().unwrap();
    assert!((1..100).contains(&end), "a page past a 64 KiB budget ends early: end {end}");
    assert_eq!(cut["entries"].as_array().unwrap().len() as u64, end);
    assert_eq!(cut["entries"][0], full["entries"][0]);
    let (status, retry, body) = page(&reader);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "too_many_bytes", "{body}");
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After {retry:?}");

    let (status, _, other) = page(&client_from("127.0.0.2"));
    assert_eq!(status, 200);
    assert_eq!(other["end"], end, "another address has its own budget");
}

/// The per-address state is kept only for addresses seen recently: after
/// 200 addresses send one request each, the tracked count falls back to
/// zero once their budgets have refilled (the periodic maintenance).
#[test]
fn per_address_state_is_forgotten_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    init_log(&data, false);
    let server = serve_alone(&data, &["--rate-limit-exempt", "127.0.0.4"], None, &[]);
    let base = server.proc.url.clone();
    let monitor = client_from("127.0.0.4");
    let tracked = || {
        let metrics = monitor.get(format!("{base}/metrics")).send().unwrap().text().unwrap();
        metric(&metrics, "custody_client_addresses_tracked", "")
    };
    for i in 1..=200 {
        let c = client_from(&format!("127.0.1.{i}"));
        assert_ne!(c.get(format!("{base}/checkpoint")).send().unwrap().status(), 429);
    }
    let seen = tracked();
    assert!(seen >= 200.0, "tracked {seen}");
    eventually("idle addresses forgotten", 30, || (tracked() == 0.0).then_some(()));
}
