//! The shared service plumbing on the real `custody-log` binary: HTTPS with
//! a certificate reloaded on SIGHUP, `/metrics` content negotiation,
//! `X-Request-Id`, and `/healthz` apart from `/readyz`.

use std::path::Path;
use std::time::{Duration, Instant};

use custody_testkit::aio::client;
use custody_testkit::logserver::{init_generic, serve};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType, SerialNumber};

/// A CA and the means to issue server certificates under it.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A server certificate for `localhost` and 127.0.0.1 with `serial`,
    /// written as PEM to `cert`/`key`; returns its DER.
    fn issue(&self, serial: u64, cert: &Path, key: &Path) -> Vec<u8> {
        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.serial_number = Some(SerialNumber::from(serial));
        let issued = params.signed_by(&server_key, &self.cert, &self.key).unwrap();
        // Written beside and renamed over, as a certificate manager does.
        let tmp = cert.with_extension("new");
        std::fs::write(&tmp, issued.pem()).unwrap();
        std::fs::rename(&tmp, cert).unwrap();
        std::fs::write(&tmp, server_key.serialize_pem()).unwrap();
        std::fs::rename(&tmp, key).unwrap();
        issued.der().to_vec()
    }
}

/// GET `url` over HTTPS trusting only `ca`, on a fresh connection; returns
/// the status, the body and the leaf certificate the server presented.
async fn fetch_tls(ca: &Ca, url: &str) -> (u16, String, Vec<u8>) {
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = c.get(url).send().await.unwrap();
    let served = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("a TLS connection reports its peer certificate")
        .to_vec();
    (resp.status().as_u16(), resp.text().await.unwrap(), served)
}

#[tokio::test]
async fn https_serves_the_certificate_and_reloads_it_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init_generic(&data, "tls.custody.example/log");
    let ca = Ca::new();
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    let first = ca.issue(1, &cert, &key);
    let mut server =
        serve(&data, &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let base = server.url.clone();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let (status, body, served) = fetch_tls(&ca, &format!("{base}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(served, first, "the configured certificate is served");

    // Plain HTTP on the TLS port gets no answer.
    let plain = base.replacen("https://", "http://", 1);
    assert!(client().get(format!("{plain}/healthz")).send().await.is_err());

    // A renewed certificate is served after SIGHUP, without a restart.
    let second = ca.issue(2, &cert, &key);
    assert_ne!(first, second);
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, served) = fetch_tls(&ca, &format!("{base}/healthz")).await;
        assert_eq!(status, 200);
        if served == second {
            break;
        }
        assert!(Instant::now() < deadline, "the renewed certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken renewal (truncated certificate, key of another one) is
    // refused and the current certificate stays.
    std::fs::write(&cert, b"-----BEGIN CERTIFICATE-----\nMIIB").unwrap();
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, served) = fetch_tls(&ca, &format!("{base}/healthz")).await;
    assert_eq!((status, served == second), (200, true));
    assert!(server.child.try_wait().unwrap().is_none(), "a bad renewal must not stop the server");
    assert!(server.stop_gracefully(), "server did not exit cleanly on SIGTERM");
}

/// Checks an exposition text: every sample has a TYPE for its family and a
/// numeric value; returns the samples by series.
fn parse_exposition(text: &str, openmetrics: bool) -> std::collections::HashMap<String, f64> {
    let mut types = std::collections::HashMap::new();
    let mut values = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        assert!(!line.is_empty(), "empty line in\n{text}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        let kind =
            types.get(family).or_else(|| types.get(name)).unwrap_or_else(|| panic!("no TYPE for {line:?}"));
        if kind == "counter" {
            // OpenMetrics types the family `x` and names the sample
            // `x_total`; Prometheus 0.0.4 types the sample name itself.
            assert!(name.ends_with("_total"), "{line:?}");
            assert_eq!(types.contains_key(name), !openmetrics, "{line:?}");
        }
        values.insert(series.to_owned(), value);
    }
    values
}

#[tokio::test]
async fn metrics_speak_openmetrics_when_asked_and_prometheus_text_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    init_generic(dir.path(), "metrics.custody.example/log");
    let mut server = serve(dir.path(), &["--allow-raw-append"]);
    let c = client();
    let base = &server.url;
    assert_eq!(c.post(format!("{base}/entries")).body("x").send().await.unwrap().status(), 200);

    let resp = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = resp.text().await.unwrap();
    assert!(!text.contains("# EOF"), "{text}");
    let prom = parse_exposition(&text, false);

    let resp = c
        .get(format!("{base}/metrics"))
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let om = parse_exposition(&text, true);

    for values in [&prom, &om] {
        assert_eq!(values["custody_entries_total"], 1.0);
        assert!(values["custody_http_requests_total{status=\"200\"}"] >= 1.0);
        assert!(values["process_resident_memory_bytes"] > 1e6);
        assert!(values["process_open_fds"] >= 3.0);
        assert!(values["process_start_time_seconds"] > 1e9);
        assert!(values.contains_key("process_cpu_seconds_total"));
    }
    assert!(server.stop_gracefully());
}

#[tokio::test]
async fn request_ids_are_echoed_and_hostile_ones_replaced() {
    let dir = tempfile::tempdir().unwrap();
    init_generic(dir.path(), "ids.custody.example/log");
    let mut server = serve(dir.path(), &[]);
    let c = client();
    let url = format!("{}/checkpoint", server.url);
    let id_of = |resp: &reqwest::Response| {
        resp.headers()
            .get("x-request-id")
            .expect("every answer names its request")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let given = "req-42_a.b:c";
    let resp = c.get(&url).header("X-Request-Id", given).send().await.unwrap();
    assert_eq!(id_of(&resp), given);
    // Also on errors (404 on an unknown route).
    let resp = c.get(format!("{}/nope", server.url)).header("X-Request-Id", given).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), id_of(&resp)), (404, given.to_owned()));

    let generated = id_of(&c.get(&url).send().await.unwrap());
    let other = id_of(&c.get(&url).send().await.unwrap());
    for id in [&generated, &other] {
        assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(generated, other, "each request gets its own id");

    let oversize = "a".repeat(65);
    let hostile: Vec<reqwest::header::HeaderValue> = vec![
        reqwest::header::HeaderValue::from_str(&oversize).unwrap(),
        reqwest::header::HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        reqwest::header::HeaderValue::from_static("a b\"} injected=\"1"),
        reqwest::header::HeaderValue::from_static(""),
    ];
    for value in hostile {
        let resp = c.get(&url).header("X-Request-Id", value.clone()).send().await.unwrap();
        let id = id_of(&resp);
        assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{value:?} became {id:?}");
    }
    // The longest acceptable id is kept whole.
    let longest = "b".repeat(64);
    assert_eq!(id_of(&c.get(&url).header("X-Request-Id", &longest).send().await.unwrap()), longest);
    assert!(server.stop_gracefully());
}

#[tokio::test]
async fn readyz_fails_without_the_witness_quorum_while_healthz_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vkey = init_generic(&data, "ready.custody.example/log");
    // One required witness on a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = closed.local_addr().unwrap();
    drop(closed);
    let witness =
        custody_standards::cosignature::CosignatureSigner::from_seed("w.example", &[9; 32]).unwrap();
    let policy = dir.path().join("policy");
    std::fs::write(
        &policy,
        format!("log {vkey}\nwitness w1 {} http://{gone}\nquorum w1\n", witness.verifier()),
    )
    .unwrap();
    let mut server = serve(
        &data,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--witness-timeout",
            "200",
            "--witness-retries",
            "0",
            "--allow-raw-append",
        ],
    );
    let c = client();
    let base = &server.url;
    // An entry to checkpoint, so a cosignature is asked for.
    assert_eq!(c.post(format!("{base}/entries")).body("x").send().await.unwrap().status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let resp = c.get(format!("{base}/readyz")).send().await.unwrap();
        if resp.status().as_u16() == 503 {
            break resp.json::<serde_json::Value>().await.unwrap();
        }
        assert!(Instant::now() < deadline, "readyz never reported the missing quorum");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["status"], "not_ready");
    assert!(body["reason"].as_str().unwrap().starts_with("witness_quorum: "), "{body}");
    assert_eq!(body["checks"]["storage"], "ok");
    assert_eq!(body["checks"]["sequencer"], "ok");
    let live = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200, "liveness does not depend on the witnesses");
    assert!(server.stop_gracefully());

    // Without a policy the same log is ready.
    let mut server = serve(&data, &[]);
    let resp = c.get(format!("{}/readyz", server.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert!(server.stop_gracefully());
}
