//! Every hop over HTTPS: a log and three witnesses serving TLS with
//! certificates from an in-process test CA, the log reaching its witnesses
//! over HTTPS, the witnesses gossiping over HTTPS, and `custody` users
//! publishing, approving, pulling and auditing against an `https://` log.
//! A client that trusts another CA fails, with an error naming the
//! certificate problem, and writes nothing.

use std::path::Path;
use std::process::Command;

use custody_standards::checkpoint::open_checkpoint;
use custody_standards::VerifierKey;
use custody_testkit::pki::TestPki;
use custody_testkit::scenario::*;

const ORIGIN: &str = "https.custody.example/log";

/// A log, three gossiping witnesses and a 2-of-3 policy, all over HTTPS.
struct TlsDeployment {
    log: Proc,
    log_vkey: String,
    witnesses: Vec<Proc>,
    policy: std::path::PathBuf,
}

fn start(dir: &Path, pki: &TestPki) -> TlsDeployment {
    let origin = ORIGIN;
    let log_vkey = run_ok(
        Command::new(bin("custody-log"))
            .args(["init", "--origin", origin, "--admin", "admin", "--data-dir"])
            .arg(dir.join("log")),
    )
    .trim()
    .to_owned();
    let logs = dir.join("logs.txt");
    std::fs::write(&logs, format!("logs/v0\n\nvkey {log_vkey}\norigin none\nqpd 86400\n")).unwrap();
    let mut witnesses = Vec::new();
    let mut ids = Vec::new();
    for i in 1..=3 {
        let name = format!("w{i}.https.example");
        let data = dir.join(format!("w{i}"));
        let vkey = run_ok(
            Command::new(bin("custody-witness")).args(["init", "--name", &name, "--data-dir"]).arg(&data),
        );
        let peers = dir.join(format!("w{i}.peers"));
        std::fs::write(&peers, "peers/v0\n").unwrap();
        let w = spawn(
            Command::new(bin("custody-witness"))
                .args(["serve", "--listen", "127.0.0.1:0", "--gossip-interval", "200", "--data-dir"])
                .arg(&data)
                .arg("--logs")
                .arg(&logs)
                .arg("--peers")
                .arg(&peers)
                .args(tls_args(pki)),
        );
        assert!(w.url.starts_with("https://"), "witness must announce an https URL: {}", w.url);
        ids.push((name, vkey.trim().to_owned(), peers));
        witnesses.push(w);
    }
    // Gossip over HTTPS: every witness learns the others' https URLs.
    for (i, (_, _, peers)) in ids.iter().enumerate() {
        let mut s = String::from("peers/v0\n");
        for (j, (name, vkey, _)) in ids.iter().enumerate().filter(|(j, _)| *j != i) {
            s += &format!("\nwitness {name}\nvkey {vkey}\nurl {}\n", witnesses[j].url);
        }
        std::fs::write(peers, s).unwrap();
        witnesses[i].signal("HUP");
    }
    let mut policy_text = format!("log {log_vkey}\n");
    for (i, (name, vkey, _)) in ids.iter().enumerate() {
        policy_text += &format!("witness {name} {vkey} {}\n", witnesses[i].url);
    }
    let names: Vec<&str> = ids.iter().map(|(n, _, _)| n.as_str()).collect();
    policy_text += &format!("group witnesses 2 {}\nquorum witnesses\n", names.join(" "));
    let policy = dir.join("policy.txt");
    std::fs::write(&policy, policy_text).unwrap();
    let log = spawn(
        Command::new(bin("custody-log"))
            .args(["serve", "--listen", "127.0.0.1:0", "--checkpoint-interval", "200", "--data-dir"])
            .arg(dir.join("log"))
            .arg("--policy")
            .arg(&policy)
            .args(tls_args(pki)),
    );
    assert!(log.url.starts_with("https://"), "log must announce an https URL: {}", log.url);
    TlsDeployment { log, log_vkey, witnesses, policy }
}

/// The flags that make a server serve the test CA's certificate and trust
/// that CA for its own outgoing requests.
fn tls_args(pki: &TestPki) -> [&std::ffi::OsStr; 6] {
    [
        "--tls-cert".as_ref(),
        pki.server.cert.as_os_str(),
        "--tls-key".as_ref(),
        pki.server.key.as_os_str(),
        "--ca-cert".as_ref(),
        pki.ca_cert().as_os_str(),
    ]
}

/// A user whose home trusts `ca` for the log at `url` (`custody init
/// --ca-cert`).
fn user(dir: &Path, name: &str, policy: &Path, url: &str, ca: &Path) -> User {
    let u = User::new(dir, name);
    u.ok(&["init", "--policy", policy.to_str().unwrap(), "--log", url, "--ca-cert", ca.to_str().unwrap()]);
    u
}

#[test]
fn publish_approve_pull_and_audit_entirely_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new().unwrap();
    let d = start(tmp.path(), &pki);
    let ca = pki.ca_cert();

    let admin = user(tmp.path(), "admin", &d.policy, &d.log.url, ca);
    admin.use_key(&tmp.path().join("log/admin.key"));
    let alice = user(tmp.path(), "alice", &d.policy, &d.log.url, ca);
    let carol = user(tmp.path(), "carol", &d.policy, &d.log.url, ca);
    let (ka, kc) = (alice.keygen("alice"), carol.keygen("carol"));
    for (key, role) in [(&ka, "publisher"), (&ka, "maintainer"), (&ka, "reader"), (&kc, "approver")] {
        admin.ok(&["grant", key, "--role", role, "--pattern", "demo/*"]);
    }

    let model = tmp.path().join("model.bin");
    std::fs::write(&model, b"weights over tls ".repeat(20_000)).unwrap();
    let out = alice.ok(&["publish", model.to_str().unwrap(), "--name", "demo/model", "--version", "1.0"]);
    assert!(out.contains("cosigned by"), "the log reached its witnesses over HTTPS: {out}");
    alice.ok(&["promote", "demo/model@1.0", "--to", "staging"]);
    carol.ok(&["approve", "demo/model@1.0"]);
    alice.ok(&["promote", "demo/model@1.0", "--to", "production"]);

    let pulled = tmp.path().join("pulled.bin");
    alice.ok(&["pull", "demo/model@1.0", "--out", pulled.to_str().unwrap()]);
    assert_eq!(std::fs::read(&pulled).unwrap(), std::fs::read(&model).unwrap());
    let audit = alice.ok(&["audit"]);
    assert!(audit.contains("audit OK"), "audit over HTTPS: {audit}");

    // Every witness serves the log's settled checkpoint over HTTPS, read
    // here by a client that trusts only the test CA.
    let ca_pem = std::fs::read(ca).unwrap();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .build()
        .unwrap();
    let get = |url: String| -> Option<Vec<u8>> {
        let r = http.get(url).send().ok()?;
        r.status().is_success().then(|| r.bytes().ok().map(|b| b.to_vec()))?
    };
    let vkey = VerifierKey::parse(&d.log_vkey).unwrap();
    let open = |bytes: Option<Vec<u8>>| open_checkpoint(&bytes?, &vkey).ok().map(|o| o.checkpoint);
    let origin_hex = custody_standards::hash::sha256(ORIGIN.as_bytes()).to_hex();
    let settled = eventually("all three witnesses to show the log's checkpoint over https", 30, || {
        let log_cp = open(get(format!("{}/checkpoint", d.log.url)))?;
        let all = d.witnesses.iter().all(|w| {
            open(get(format!("{}/{origin_hex}/checkpoint", w.url)))
                .is_some_and(|cp| cp.size == log_cp.size && cp.root == log_cp.root)
        });
        all.then_some(log_cp)
    });
    assert!(settled.size >= 8, "genesis, 4 grants, a publish, 3 lifecycle steps: {}", settled.size);
    // The plain-HTTP port is gone: the same address refuses plain HTTP.
    let plain = d.log.url.replacen("https://", "http://", 1);
    let refused = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{plain}/checkpoint"))
        .send();
    assert!(
        refused.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );
}

#[test]
fn a_client_trusting_another_ca_is_refused_with_the_certificate_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new().unwrap();
    let d = start(tmp.path(), &pki);

    // `custody init` itself fetches nothing; the first command that talks
    // to the log must fail on the handshake, name the problem, and change
    // nothing on disk.
    let mallory = user(tmp.path(), "mallory", &d.policy, &d.log.url, pki.wrong_ca_cert());
    let key = mallory.keygen("mallory");
    let before = list_files(&mallory.home);
    let run = mallory.cli(&["history", "demo/model"]);
    assert_ne!(run.code, 0, "a wrong CA must fail: {}", run.stdout);
    let err = run.stderr.to_lowercase();
    assert!(
        err.contains("certificate") && (err.contains("unknown") || err.contains("issuer")),
        "the error names the certificate problem: {}",
        run.stderr
    );
    assert_eq!(list_files(&mallory.home), before, "a refused handshake writes nothing");
    assert!(!key.is_empty());

    // No CA file at all: the system roots do not know the test CA either.
    let plain = User::new(tmp.path(), "plain");
    plain.ok(&["init", "--policy", d.policy.to_str().unwrap(), "--log", &d.log.url]);
    let run = plain.cli(&["history", "demo/model"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.to_lowercase().contains("certificate"), "{}", run.stderr);

    // The same client with the right CA on the command line (overriding
    // the saved one) gets through.
    let ok = mallory.cli(&["--ca-cert", pki.ca_cert().to_str().unwrap(), "history", "demo/model"]);
    assert!(
        !ok.stderr.to_lowercase().contains("certificate"),
        "with the right CA the handshake succeeds: {}",
        ok.stderr
    );
}

fn list_files(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = files_under(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p.strip_prefix(dir).unwrap().display().to_string(), len)
        })
        .collect();
    out.sort();
    out
}
