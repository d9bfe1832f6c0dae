//! Encryption at rest, on the real binaries:
//!
//! - no 32-byte window of a published artifact's plaintext appears in any
//!   file under the log's data directory (RocksDB included), while the
//!   same scan finds it in a `--plaintext-artifacts` log;
//! - a wrong, loosely-permissioned or missing KEK stops `custody-log serve`
//!   at start-up with exit 3 and a clear message, before anything is served;
//! - sealed files altered on disk (chunks swapped, a bit flipped, the header
//!   changed, truncated, extended) are refused: 500 `integrity_violation`
//!   before any byte for a small artifact, a download cut short after only
//!   authentic bytes for a large one;
//! - a KEK rotation (`custody-log rekey`) killed with SIGKILL again and
//!   again leaves every artifact readable by a server holding both KEKs,
//!   finishes when run again, and pulls work across it; afterwards the old
//!   KEK alone is refused at start-up;
//! - `custody-log fsck` opens every artifact and names one whose key
//!   record is missing.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::Digest;
use custody_registry::registry::Role;
use custody_standards::encoding::encode_base64;
use custody_testkit::scenario::lone::{self, LoneLog};
use custody_testkit::scenario::*;
use custody_testkit::scenario::{bin, text};

/// Sealed layout (docs/operations.md, "Encryption at rest").
const HEADER: usize = 48;
const CHUNK: usize = 64 * 1024;
const SEALED_CHUNK: usize = CHUNK + 16;

fn grant_ok(c: &reqwest::blocking::Client, log: &LoneLog, to: &ActorSigner, role: Role, pattern: &str) {
    let (status, body) = post_statement(c, log.url(), signed(&log.admin_signer(), grant(to, role, pattern)));
    assert_eq!(status, 200, "grant {pattern}: {body}");
}

fn publish_bytes(c: &reqwest::blocking::Client, url: &str, who: &ActorSigner, name: &str, bytes: &[u8]) {
    let d = digest_of(bytes);
    let (status, body) = upload(c, url, bytes, &signed(who, publish(name, "1", d, bytes.len() as u64)));
    assert_eq!(status, 201, "{body}");
}

/// `GET /blobs` of `name@1` by `who`: the status and every byte received
/// before the body ended or failed, and whether it ended cleanly.
fn get(
    c: &reqwest::blocking::Client,
    url: &str,
    who: &ActorSigner,
    name: &str,
    d: Digest,
) -> (u16, Vec<u8>, bool) {
    let st = encode_base64(&signed(who, access(name, "1", d)));
    let mut r = c.get(format!("{url}/blobs/{d}")).header("Custody-Statement", st).send().unwrap();
    let status = r.status().as_u16();
    let mut body = Vec::new();
    let clean = r.read_to_end(&mut body).is_ok();
    (status, body, clean)
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    assert!(dir.is_dir(), "no directory {}", dir.display());
    files_under(dir)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)))
        .collect()
}

/// A log with alice publishing and bob reading `enc/*`.
fn team(dir: &Path, env: &[(&str, &str)]) -> (LoneLog, ActorSigner, ActorSigner) {
    let log = LoneLog::start(dir, env);
    let c = http();
    let (alice, bob) = (signer("alice"), signer("bob"));
    grant_ok(&c, &log, &alice, Role::Publisher, "enc/*");
    grant_ok(&c, &log, &bob, Role::Reader, "enc/*");
    (log, alice, bob)
}

/// Runs `custody-log serve` on `log`'s data directory with `env` and
/// expects it to exit on its own: its exit code and stderr.
fn serve_refused(log: &LoneLog, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(bin("custody-log"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&log.data)
        .arg("--policy")
        .arg(&log.policy)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("custody-log serve started with {env:?}: it must refuse to");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), err)
}

/// Writes a fresh KEK file (64 hex digits, mode 0600) at `path`.
fn write_kek(path: &Path, byte: u8) -> String {
    let hex = format!("{byte:02x}").repeat(32);
    std::fs::write(path, format!("{hex}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    hex
}

#[test]
fn no_plaintext_of_a_published_artifact_is_stored_under_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let c = http();
    let artifacts = [noise(40_000, 1), noise(3 << 20, 2)];
    let scan = |env: &[(&str, &str)], dir: &str| {
        let (mut log, alice, bob) = team(&tmp.path().join(dir), env);
        for (i, a) in artifacts.iter().enumerate() {
            publish_bytes(&c, log.url(), &alice, &format!("enc/m{i}"), a);
            let (status, body, clean) = get(&c, log.url(), &bob, &format!("enc/m{i}"), digest_of(a));
            assert!(status == 200 && clean && body == *a, "verified download {i}: {status}");
        }
        log.proc.stop();
        let found: Vec<PathBuf> = artifacts
            .iter()
            .flat_map(|a| files_containing(&log.data, &a[a.len() / 2..a.len() / 2 + 32]))
            .collect();
        (log, found)
    };
    let (log, found) = scan(&[], "sealed");
    assert!(found.is_empty(), "plaintext found under the data directory: {found:?}");
    let stored = std::fs::read(log.blob_path(&digest_of(&artifacts[1]))).unwrap();
    assert_eq!(&stored[..8], b"CSTDSEAL");
    assert_eq!(stored.len(), HEADER + (3 << 20) + 48 * 16, "48 chunks of 64 KiB, each with its tag");
    // The same scan of a plaintext store finds both: it can fail.
    let (_, found) = scan(&[("CUSTODY_PLAINTEXT_ARTIFACTS", "true")], "plain");
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn a_wrong_loose_or_missing_kek_stops_the_server_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let c = http();
    let (mut log, alice, bob) = team(tmp.path(), &[]);
    let bytes = noise(100_000, 3);
    publish_bytes(&c, log.url(), &alice, "enc/model", &bytes);
    log.proc.stop();

    let other = tmp.path().join("other.kek");
    let other_hex = write_kek(&other, 0x42);
    let other_path = other.to_str().unwrap();
    for env in [vec![("CUSTODY_KEK_FILE", other_path)], vec![("CUSTODY_KEK", other_hex.as_str())]] {
        let (code, err) = serve_refused(&log, &env);
        assert_eq!(code, Some(3), "{err}");
        assert!(err.contains("wrong KEK: the artifact store is sealed under KEK file:"), "{err}");
    }
    let kek = log.data.join("artifacts.kek");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = serve_refused(&log, &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("has mode 644") && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let moved = tmp.path().join("kept-elsewhere.kek");
    std::fs::rename(&kek, &moved).unwrap();
    let (code, err) = serve_refused(&log, &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no KEK configured"), "{err}");
    // A sealed store is not served as plaintext either.
    let (code, err) = serve_refused(&log, &[("CUSTODY_PLAINTEXT_ARTIFACTS", "true")]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("the artifact store is sealed"), "{err}");

    // The right KEK from outside the data directory serves it.
    let server =
        lone::serve(&log.data, &log.policy, &[("CUSTODY_KEK_FILE".into(), moved.display().to_string())]);
    let (status, body, clean) = get(&c, &server.url, &bob, "enc/model", digest_of(&bytes));
    assert!(status == 200 && clean && body == bytes, "{status}");
}

#[test]
fn altered_sealed_files_are_refused_and_no_altered_byte_reaches_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let c = http();
    let (log, alice, bob) = team(tmp.path(), &[]);
    let small = noise(200_000, 4); // 4 chunks: served whole after opening
    let big = noise(4 << 20, 5); // 64 chunks: opened while served
    publish_bytes(&c, log.url(), &alice, "enc/small", &small);
    publish_bytes(&c, log.url(), &alice, "enc/big", &big);
    let (ds, db) = (digest_of(&small), digest_of(&big));
    assert_eq!(get(&c, log.url(), &bob, "enc/small", ds).1, small, "served before the tampering");

    let swap = |v: &mut Vec<u8>, i: usize| {
        let a = HEADER + i * SEALED_CHUNK;
        let first = v[a..a + SEALED_CHUNK].to_vec();
        v.copy_within(a + SEALED_CHUNK..a + 2 * SEALED_CHUNK, a);
        v[a + SEALED_CHUNK..a + 2 * SEALED_CHUNK].copy_from_slice(&first);
    };
    type Alter = fn(&mut Vec<u8>);
    let flip: Alter = |v| v[HEADER + SEALED_CHUNK + 7] ^= 1;
    let header: Alter = |v| v[19] ^= 1; // the plaintext length's last byte
    let truncate: Alter = |v| v.truncate(v.len() - SEALED_CHUNK);
    let extend: Alter = |v| v.extend_from_slice(&[0u8; 16]);
    for (what, d, name, honest_plain) in [("small", ds, "enc/small", &small), ("big", db, "enc/big", &big)] {
        let path = log.blob_path(&d);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let honest = std::fs::read(&path).unwrap();
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut swapped = honest.clone();
        swap(&mut swapped, 1);
        cases.push(("chunks swapped", swapped));
        for (label, f) in
            [("bit flipped", flip), ("header changed", header), ("truncated", truncate), ("extended", extend)]
        {
            let mut v = honest.clone();
            f(&mut v);
            cases.push((label, v));
        }
        for (label, evil) in cases {
            std::fs::write(&path, &evil).unwrap();
            let (status, body, clean) = get(&c, log.url(), &bob, name, d);
            if status == 200 {
                // Only a large artifact, altered past its first chunk, gets
                // this far: the body is cut short after authentic bytes.
                assert_eq!(what, "big", "{label}: a small artifact is checked before it is served");
                assert!(!clean || body.len() < honest_plain.len(), "{what} {label}: served to a clean end");
                assert!(body.len() <= CHUNK, "{what} {label}: nothing past the first bad chunk");
                assert!(body[..] == honest_plain[..body.len()], "{what} {label}: an altered byte was served");
            } else {
                assert_eq!(status, 500, "{what} {label}: {}", text(&body));
                assert!(text(&body).contains("integrity_violation"), "{what} {label}: {}", text(&body));
            }
        }
        std::fs::write(&path, &honest).unwrap();
        let (status, body, clean) = get(&c, log.url(), &bob, name, d);
        assert!(status == 200 && clean && body == *honest_plain, "{what}: the honest copy serves again");
    }
    let metrics = c.get(format!("{}/metrics", log.url())).send().unwrap().text().unwrap();
    assert!(metrics.contains("custody_integrity_violations_total 10"), "{metrics}");
}

/// The KEK id of every key record under `data`.
fn record_keks(data: &Path) -> Vec<String> {
    let keys = data.join("blobs/keys");
    assert!(keys.is_dir(), "no directory {}", keys.display());
    files_under(&keys)
        .into_iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["kek"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_rotation_killed_mid_way_keeps_every_artifact_readable_and_pulls_work_across_it() {
    let tmp = tempfile::tempdir().unwrap();
    let c = http();
    // 60 uploads in a row by one publisher: past the default per-actor
    // upload rate.
    let (mut log, alice, bob) = team(tmp.path(), &[("CUSTODY_UPLOAD_RATE_LIMIT", "0")]);
    let arts: Vec<Vec<u8>> = (0..60).map(|i| noise(3_000 + i * 100, 100 + i as u64)).collect();
    for (i, a) in arts.iter().enumerate() {
        publish_bytes(&c, log.url(), &alice, &format!("enc/m{i}"), a);
    }
    let old = log.data.join("artifacts.kek");
    let new = tmp.path().join("new.kek");
    write_kek(&new, 0x77);
    let both = [
        ("CUSTODY_KEK_FILE".to_owned(), new.display().to_string()),
        ("CUSTODY_UPLOAD_RATE_LIMIT".to_owned(), "0".to_owned()),
        ("CUSTODY_PREVIOUS_KEK_FILE".to_owned(), old.display().to_string()),
    ];
    log.proc.stop();
    log.proc = lone::serve(&log.data, &log.policy, &both);
    let readable = |url: &str| {
        for (i, a) in arts.iter().enumerate() {
            let (status, body, clean) = get(&c, url, &bob, &format!("enc/m{i}"), digest_of(a));
            assert!(status == 200 && clean && body == *a, "artifact {i}: {status} {}", text(&body));
        }
    };
    // A reader with the command-line client pulls before the rotation.
    let carol = log.user("carol");
    carol.keygen("carol");
    grant_ok(&c, &log, &carol.signer(), Role::Reader, "enc/*");
    let pulled = tmp.path().join("pulled.bin");
    carol.ok(&["pull", "enc/m7@1", "-o", pulled.to_str().unwrap()]);
    assert_eq!(std::fs::read(&pulled).unwrap(), arts[7]);
    // Published during the rotation: wrapped by the new KEK.
    let during = noise(10_000, 999);
    publish_bytes(&c, log.url(), &alice, "enc/during", &during);

    let rekey = || {
        let mut cmd = Command::new(bin("custody-log"));
        cmd.args(["rekey", "--data-dir"])
            .arg(&log.data)
            .arg("--kek-file")
            .arg(&new)
            .arg("--previous-kek-file")
            .arg(&old);
        cmd
    };
    // The old KEK's id: the one most records name before the rotation.
    let before = record_keks(&log.data);
    assert_eq!(before.len(), 61);
    let old_id = before.iter().max_by_key(|k| before.iter().filter(|x| x == k).count()).unwrap().clone();
    let under_old = || record_keks(&log.data).iter().filter(|k| **k == old_id).count();
    assert_eq!(under_old(), 60);
    let mut mixed_seen = 0;
    let mut delay_ms = 0;
    loop {
        let mut child = rekey().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let left = under_old();
        if (1..60).contains(&left) {
            mixed_seen += 1;
            readable(log.url());
        }
        if status.success() || left == 0 {
            break;
        }
        delay_ms += 2;
        assert!(delay_ms < 3000, "the rotation never finished");
    }
    assert!(mixed_seen > 0, "no SIGKILL landed mid-rotation (records never under both KEKs)");
    // Run again: it finishes (idempotent) and moves the check record.
    let out = rekey().output().unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("rewrapped"), "{}", text(&out.stdout));
    readable(log.url());

    // The new KEK alone serves everything, the one published during the
    // rotation included; the old one alone is a start-up error.
    log.proc.stop();
    log.proc = lone::serve(&log.data, &log.policy, &both[..2]);
    readable(log.url());
    let (status, body, _) = get(&c, log.url(), &bob, "enc/during", digest_of(&during));
    assert!(status == 200 && body == during);
    carol.configure(&log.policy, log.url());
    let after = tmp.path().join("pulled-after.bin");
    carol.ok(&["pull", "enc/m7@1", "-o", after.to_str().unwrap()]);
    assert_eq!(std::fs::read(&after).unwrap(), arts[7], "pull across the rotation");
    log.proc.stop();
    let (code, err) = serve_refused(&log, &[("CUSTODY_KEK_FILE", old.to_str().unwrap())]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("wrong KEK"), "{err}");
}

#[test]
fn fsck_opens_every_artifact_and_names_a_missing_key_record() {
    let tmp = tempfile::tempdir().unwrap();
    let c = http();
    let (mut log, alice, _) = team(tmp.path(), &[]);
    let bytes = noise(150_000, 6);
    publish_bytes(&c, log.url(), &alice, "enc/model", &bytes);
    log.proc.stop();
    let fsck = |env: &[(&str, &str)]| {
        let out = Command::new(bin("custody-log"))
            .args(["fsck", "--data-dir"])
            .arg(&log.data)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let (code, report) = fsck(&[]);
    assert_eq!(code, Some(0), "{report}");
    let other = tmp.path().join("other.kek");
    write_kek(&other, 9);
    let (code, report) = fsck(&[("CUSTODY_KEK_FILE", other.to_str().unwrap())]);
    assert_eq!(code, Some(2), "{report}");
    assert!(report.contains("wrong KEK"), "{report}");
    let hex = digest_of(&bytes).0.to_hex();
    let keys = log.data.join("blobs/keys").join(&hex[..2]).join(&hex);
    for f in std::fs::read_dir(&keys).unwrap().flatten() {
        std::fs::remove_file(f.path()).unwrap();
    }
    let (code, report) = fsck(&[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains(&format!("blob sha256:{hex}")) && report.contains("no key record"), "{report}");
}

#[test]
fn a_plaintext_data_dir_is_refused_then_sealed_in_place_by_seal_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let c = http();
    // A log as written before encryption at rest: plaintext artifacts.
    let (mut log, alice, bob) = team(tmp.path(), &[("CUSTODY_PLAINTEXT_ARTIFACTS", "true")]);
    let arts = [noise(70_000, 21), noise(2 << 20, 22)];
    for (i, a) in arts.iter().enumerate() {
        publish_bytes(&c, log.url(), &alice, &format!("enc/p{i}"), a);
    }
    log.proc.stop();
    let window = |a: &Vec<u8>| a[a.len() / 2..a.len() / 2 + 32].to_vec();
    assert_eq!(files_containing(&log.data, &window(&arts[1])).len(), 1, "stored in plaintext");
    let (code, err) = serve_refused(&log, &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("unencrypted artifacts") && err.contains("custody-log seal-artifacts"), "{err}");

    let seal = || {
        let out = Command::new(bin("custody-log"))
            .args(["seal-artifacts", "--data-dir"])
            .arg(&log.data)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let (code, said) = seal();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("sealed 2 artifacts; 0 already sealed; the store is sealed"), "{said}");
    let (code, said) = seal();
    assert_eq!(code, Some(0), "idempotent: {said}");
    for a in &arts {
        assert!(files_containing(&log.data, &window(a)).is_empty(), "plaintext left after sealing");
    }
    // Served encrypted now; the plaintext mode is refused on it.
    log.proc = lone::serve(&log.data, &log.policy, &[]);
    for (i, a) in arts.iter().enumerate() {
        let (status, body, clean) = get(&c, log.url(), &bob, &format!("enc/p{i}"), digest_of(a));
        assert!(status == 200 && clean && body == *a, "artifact {i}: {status}");
    }
    log.proc.stop();
    let (code, err) = serve_refused(&log, &[("CUSTODY_PLAINTEXT_ARTIFACTS", "true")]);
    assert_eq!(code, Some(3), "{err}");
}
