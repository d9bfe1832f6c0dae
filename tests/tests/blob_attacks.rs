//! Attacks on artifact transfers, on the real binaries over loopback:
//! clients that stop reading downloads, uploads that outlast the statement
//! window or race each other, claims of stored bytes by someone who never
//! uploaded them, orphaned bytes, and a stored artifact changed on disk
//! while it is being served.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::Digest;
use custody_registry::registry::Role;
use custody_standards::encoding::encode_base64;
use custody_testkit::scenario::lone::{self, LoneLog, RawRequest};
use custody_testkit::scenario::*;
use custody_testkit::scenario::{bin, text};

fn grant_ok(c: &reqwest::blocking::Client, log: &LoneLog, to: &ActorSigner, role: Role, pattern: &str) {
    let (status, body) = post_statement(c, log.url(), signed(&log.admin_signer(), grant(to, role, pattern)));
    assert_eq!(status, 200, "grant {pattern}: {body}");
}

/// An access statement for `big/model@1`, the version every test here
/// publishes with [`publish_bytes`].
fn access_header(who: &ActorSigner, digest: Digest) -> (&'static str, String) {
    ("Custody-Statement", encode_base64(&signed(who, access("big/model", "1", digest))))
}

/// Publishes `bytes` as `name@1` by `who` through `PUT /blobs`.
fn publish_bytes(c: &reqwest::blocking::Client, log: &LoneLog, who: &ActorSigner, name: &str, bytes: &[u8]) {
    let d = digest_of(bytes);
    let (status, body) = upload(c, log.url(), bytes, &signed(who, publish(name, "1", d, bytes.len() as u64)));
    assert_eq!(status, 201, "{body}");
}

/// Seconds the slowest of a round of honest reads took: the checkpoint,
/// an entry and an inclusion proof, each of which must answer 200.
fn honest_round(c: &reqwest::blocking::Client, url: &str, index: u64, size: u64) -> f64 {
    let mut slowest = 0f64;
    for path in [
        "/checkpoint".to_owned(),
        format!("/entries/{index}"),
        format!("/proof/inclusion?index={index}&size={size}"),
    ] {
        let start = Instant::now();
        let r = c.get(format!("{url}{path}")).send();
        let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(status, 200, "{path} did not answer within the client timeout ({secs:.1} s)");
        slowest = slowest.max(secs);
    }
    slowest
}

#[test]
fn stalled_downloads_neither_stall_the_log_nor_grow_its_memory() {
    const READERS: usize = 40;
    const ATTEMPTS: usize = 600;
    const IDLE_SECS: u64 = 10;
    let tmp = tempfile::tempdir().unwrap();
    // Every client here shares 127.0.0.1: lift the per-address connection
    // cap so that the download caps are what the test meets.
    let log = LoneLog::start(
        tmp.path(),
        &[("CUSTODY_DOWNLOAD_IDLE_TIMEOUT_SECS", "10"), ("CUSTODY_MAX_CONNECTIONS_PER_IP", "0")],
    );
    let c = http();
    let alice = signer("alice");
    grant_ok(&c, &log, &alice, Role::Publisher, "big/*");
    let readers: Vec<_> = (0..READERS).map(|i| signer(&format!("reader{i}"))).collect();
    for r in &readers {
        grant_ok(&c, &log, r, Role::Reader, "big/*");
    }
    let bytes = noise(8 << 20, 1);
    let digest = digest_of(&bytes);
    publish_bytes(&c, &log, &alice, "big/model", &bytes);
    let size = tree_size(&c, log.url());
    honest_round(&c, log.url(), 0, size);
    let (rss_before, fds_before) = log.rss_kib_and_fds();

    // 600 downloads of an 8 MiB artifact whose clients read the status line
    // and nothing more, opened by 8 threads at once.
    let stalled = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..8 {
            let (stalled, refused, readers, url) = (&stalled, &refused, &readers, log.url());
            s.spawn(move || {
                for i in (t..ATTEMPTS).step_by(8) {
                    let header = access_header(&readers[i % READERS], digest);
                    let mut req = RawRequest::start(url, "GET", &format!("/blobs/{digest}"), &[header]);
                    match req.status_only(4096) {
                        200 => stalled.lock().unwrap().push(req),
                        429 => refused.lock().unwrap().push(i),
                        0 => panic!("download {i} got no answer within 30 s: the server is stalled"),
                        other => panic!("download {i} answered {other}"),
                    }
                }
            });
        }
    });
    let stalled = std::mem::take(&mut *stalled.lock().unwrap());
    let refused = refused.lock().unwrap().len();
    eprintln!("{} downloads stalled, {refused} refused", stalled.len());
    assert!(stalled.len() <= 512, "{} downloads run at once, over the default cap of 512", stalled.len());
    assert_eq!(stalled.len() + refused, ATTEMPTS);

    // The log keeps answering honest readers quickly, and memory stays flat.
    let size = tree_size(&c, log.url());
    let mut slowest = 0f64;
    for i in 0..20 {
        slowest = slowest.max(honest_round(&c, log.url(), i * (size / 20), size));
    }
    let (rss, fds) = log.rss_kib_and_fds();
    eprintln!(
        "under attack: slowest honest read {slowest:.3} s, RSS {} -> {} MiB, {fds_before} -> {fds} descriptors",
        rss_before / 1024,
        rss / 1024
    );
    assert!(
        slowest < 2.0,
        "honest reads took up to {slowest:.2} s under {} stalled downloads",
        stalled.len()
    );
    assert!(rss < rss_before + 256 * 1024, "RSS grew from {rss_before} KiB to {rss} KiB");

    // Past the idle timeout every stalled connection has been reset, and a
    // download that reads runs again.
    let deadline = Instant::now() + Duration::from_secs(IDLE_SECS + 15);
    loop {
        let (_, fds) = log.rss_kib_and_fds();
        if fds < fds_before + 50 {
            break;
        }
        assert!(Instant::now() < deadline, "{fds} descriptors open ({fds_before} before the attack)");
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(stalled);
    let header = access_header(&readers[0], digest);
    let got = c.get(format!("{}/blobs/{digest}", log.url())).header(header.0, header.1).send().unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert!(got.bytes().unwrap() == bytes, "a reading client gets the whole artifact");
}

#[test]
fn download_caps_answer_429_too_many_downloads_until_an_idle_one_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let log = LoneLog::start(
        tmp.path(),
        &[
            ("CUSTODY_MAX_DOWNLOADS", "6"),
            ("CUSTODY_MAX_DOWNLOADS_PER_ACTOR", "2"),
            ("CUSTODY_DOWNLOAD_IDLE_TIMEOUT_SECS", "3"),
        ],
    );
    let c = http();
    let alice = signer("alice");
    grant_ok(&c, &log, &alice, Role::Publisher, "big/*");
    let readers: Vec<_> = ["bob", "carol", "dave", "erin"].iter().map(|n| signer(n)).collect();
    for r in &readers {
        grant_ok(&c, &log, r, Role::Reader, "big/*");
    }
    let bytes = noise(8 << 20, 2);
    let digest = digest_of(&bytes);
    publish_bytes(&c, &log, &alice, "big/model", &bytes);
    let get = |who: &ActorSigner| {
        let h = access_header(who, digest);
        RawRequest::start(log.url(), "GET", &format!("/blobs/{digest}"), &[h])
    };
    let mut held = Vec::new();
    for who in &readers[..3] {
        for _ in 0..2 {
            let mut r = get(who);
            assert_eq!(r.status_only(4096), 200);
            held.push(r);
        }
    }
    let size = tree_size(&c, log.url());
    let (status, body) = {
        let h = access_header(&readers[0], digest);
        json(c.get(format!("{}/blobs/{digest}", log.url())).header(h.0, h.1).send().unwrap())
    };
    assert_eq!((status, body["error"].as_str()), (429, Some("too_many_downloads")), "per actor: {body}");
    let h = access_header(&readers[3], digest);
    let r = c.get(format!("{}/blobs/{digest}", log.url())).header(h.0, h.1).send().unwrap();
    assert_eq!(r.status().as_u16(), 429, "in total");
    assert!(r.headers().get("Retry-After").is_some(), "429 says when to retry");
    assert_eq!(tree_size(&c, log.url()), size, "a refused download logs no access");

    // The held downloads go idle and are cut; then a download runs again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = access_header(&readers[3], digest);
        let r = c.get(format!("{}/blobs/{digest}", log.url())).header(h.0, h.1).send().unwrap();
        if r.status().as_u16() == 200 {
            assert!(r.bytes().unwrap() == bytes);
            break;
        }
        assert_eq!(r.status().as_u16(), 429);
        assert!(Instant::now() < deadline, "idle downloads were never cut");
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(held);
}

/// A trickled upload of `bytes` as `name@1` by `who` that takes about
/// `secs` seconds; returns the status and JSON body.
fn slow_upload(
    log: &LoneLog,
    who: &ActorSigner,
    name: &str,
    bytes: &[u8],
    secs: u64,
) -> (u16, serde_json::Value) {
    let d = digest_of(bytes);
    let mut req = RawRequest::upload(
        log.url(),
        &d,
        bytes.len(),
        &signed(who, publish(name, "1", d, bytes.len() as u64)),
    );
    req.trickle(bytes, 20, Duration::from_secs(secs));
    let (status, body) = req.answer();
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn an_upload_longer_than_the_window_is_kept_and_published_by_a_fresh_statement() {
    let tmp = tempfile::tempdir().unwrap();
    let log = LoneLog::start(tmp.path(), &[("CUSTODY_STATEMENT_WINDOW_SECS", "2")]);
    let c = http();
    let alice = signer("alice");
    grant_ok(&c, &log, &alice, Role::Publisher, "slow/*");
    let bytes = noise(200_000, 3);
    let d = digest_of(&bytes);
    let (status, body) = slow_upload(&log, &alice, "slow/model", &bytes, 4);
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["published"].as_bool(), body["stored"].as_bool()), (Some(false), Some(true)), "{body}");
    assert_eq!(log.stored_blobs(), vec![d.0.to_hex()]);
    let (status, body) =
        post_statement(&c, log.url(), signed(&alice, publish("slow/model", "1", d, 200_000)));
    assert_eq!(status, 200, "the uploader's fresh publish of the stored bytes: {body}");
    let (_, resolved) = get_json(&c, &format!("{}/registry/resolve?ref=slow/model@1", log.url()));
    assert_eq!(resolved["digest"].as_str(), Some(d.to_string().as_str()), "{resolved}");

    // `custody publish` does the same by itself, here through a proxy that
    // passes its upload at 64 KiB/s (about 5 s for the file).
    let admin = log.user("admin");
    std::fs::copy(log.data.join("admin.key"), admin.home.join("key")).unwrap();
    std::fs::set_permissions(admin.home.join("key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let bob = log.user_at("bob", &lone::slow_upstream_proxy(log.url(), 64 * 1024));
    let kb = bob.keygen("bob");
    admin.ok(&["grant", &kb, "--role", "publisher", "--pattern", "slow/*"]);
    let model = noise(300_000, 4);
    let file = write_file(tmp.path(), "model.bin", &model);
    let out = bob.run(&["publish", &file, "--name", "slow/cli", "--version", "1"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let (_, resolved) = get_json(&c, &format!("{}/registry/resolve?ref=slow/cli@1", log.url()));
    assert_eq!(resolved["digest"].as_str(), Some(digest_of(&model).to_string().as_str()), "{resolved}");
}

#[test]
fn racing_uploads_of_one_version_get_409_and_a_refused_upload_keeps_no_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let log = LoneLog::start(tmp.path(), &[]);
    let c = http();
    let (alice, bob, carol) = (signer("alice"), signer("bob"), signer("carol"));
    for who in [&alice, &bob, &carol] {
        grant_ok(&c, &log, who, Role::Publisher, "race/*");
    }
    let (a, b) = (noise(100_000, 5), noise(100_000, 6));
    let (da, db) = (digest_of(&a), digest_of(&b));
    let mut first =
        RawRequest::upload(log.url(), &da, a.len(), &signed(&alice, publish("race/model", "1", da, 100_000)));
    first.trickle(&a[..50_000], 5, Duration::from_secs(1));
    let (status, body) = upload(&c, log.url(), &b, &signed(&bob, publish("race/model", "1", db, 100_000)));
    assert_eq!((status, body["error"].as_str()), (409, Some("upload_in_progress")), "{body}");
    first.trickle(&a[50_000..], 5, Duration::from_secs(1));
    let (status, body) = first.answer();
    assert_eq!(status, 201, "{body}");
    assert_eq!(log.stored_blobs(), vec![da.0.to_hex()], "one version, one blob");

    // Carol's key is revoked while her upload runs: the publish is refused
    // after the bytes arrived, and they are not kept.
    let cbytes = noise(100_000, 7);
    let dc = digest_of(&cbytes);
    let mut req = RawRequest::upload(
        log.url(),
        &dc,
        cbytes.len(),
        &signed(&carol, publish("race/other", "1", dc, 100_000)),
    );
    req.trickle(&cbytes[..50_000], 5, Duration::from_millis(500));
    let (status, body) = post_statement(&c, log.url(), signed(&log.admin_signer(), revoke_key(&carol)));
    assert_eq!(status, 200, "{body}");
    req.trickle(&cbytes[50_000..], 5, Duration::from_millis(500));
    let (status, body) = req.answer();
    assert_eq!(status, 401, "{body}");
    assert_eq!(log.stored_blobs(), vec![da.0.to_hex()], "the refused upload's bytes are gone");
}

#[test]
fn an_orphan_digest_is_claimed_only_by_its_uploader_and_fsck_and_gc_find_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = LoneLog::start(tmp.path(), &[("CUSTODY_STATEMENT_WINDOW_SECS", "2")]);
    let c = http();
    let (alice, mallory) = (signer("alice"), signer("mallory"));
    grant_ok(&c, &log, &alice, Role::Publisher, "secret/*");
    grant_ok(&c, &log, &mallory, Role::Publisher, "sandbox/*");
    let bytes = noise(150_000, 8);
    let d = digest_of(&bytes);
    let (status, body) = slow_upload(&log, &alice, "secret/model", &bytes, 4);
    assert_eq!(status, 202, "{body}");

    // Mallory knows the digest and size but never uploaded the bytes.
    let (status, body) =
        post_statement(&c, log.url(), signed(&mallory, publish("sandbox/x", "1", d, 150_000)));
    assert_eq!((status, body["error"].as_str()), (403, Some("upload_required")), "{body}");
    let (status, resolved) = get_json(&c, &format!("{}/registry/resolve?ref={d}", log.url()));
    assert_eq!(status, 404, "nothing published it: {resolved}");

    // Stopped, the orphan is reported by fsck, kept by gc within the grace
    // period and removed after it.
    log.stop();
    let fsck = || {
        let out =
            Command::new(bin("custody-log")).args(["fsck", "--data-dir"]).arg(&log.data).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    };
    let report = fsck();
    assert!(report.contains(&format!("orphan blob sha256:{}", d.0.to_hex())), "{report}");
    let gc = |grace: &str| {
        let out = Command::new(bin("custody-log"))
            .args(["gc", "--upload-grace", grace, "--data-dir"])
            .arg(&log.data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    };
    let kept = gc("3600");
    assert!(kept.contains("kept orphan blob"), "{kept}");
    assert!(log.blob_path(&d).exists());
    let removed = gc("0");
    assert!(removed.contains(&format!("removed orphan blob sha256:{}", d.0.to_hex())), "{removed}");
    assert!(!log.blob_path(&d).exists());
    assert!(!fsck().contains("orphan"), "fsck after gc");
}

#[test]
fn an_artifact_changed_on_disk_while_served_is_cut_short() {
    let tmp = tempfile::tempdir().unwrap();
    let log = LoneLog::start(tmp.path(), &[]);
    let c = http();
    let (alice, bob) = (signer("alice"), signer("bob"));
    grant_ok(&c, &log, &alice, Role::Publisher, "big/*");
    grant_ok(&c, &log, &bob, Role::Reader, "big/*");
    let bytes = noise(24 << 20, 9);
    let digest = digest_of(&bytes);
    publish_bytes(&c, &log, &alice, "big/model", &bytes);

    let h = access_header(&bob, digest);
    let mut r = c.get(format!("{}/blobs/{digest}", log.url())).header(h.0, h.1).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut head = vec![0u8; 1 << 20];
    r.read_exact(&mut head).unwrap();
    assert!(head[..] == bytes[..1 << 20]);

    // The tail of the stored file is rewritten in place (same inode, same
    // size) while the client is still reading.
    let path = log.blob_path(&digest);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::End(-4096)).unwrap();
    f.write_all(&[0x5a; 1024]).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let mut rest = Vec::new();
    let read = r.read_to_end(&mut rest);
    let served = head.len() + rest.len();
    assert!(
        read.is_err() || served < bytes.len(),
        "the changed artifact was served to a clean end ({served} bytes)"
    );
    let metrics = c.get(format!("{}/metrics", log.url())).send().unwrap().text().unwrap();
    assert!(metrics.contains("custody_integrity_violations_total 1"), "{metrics}");
}

#[test]
fn the_pre_upload_check_is_rate_limited_per_actor() {
    let tmp = tempfile::tempdir().unwrap();
    let log = LoneLog::start(tmp.path(), &[("CUSTODY_UPLOAD_RATE_LIMIT", "2")]);
    let c = http();
    let (alice, bob) = (signer("alice"), signer("bob"));
    grant_ok(&c, &log, &alice, Role::Publisher, "flood/*");
    grant_ok(&c, &log, &bob, Role::Publisher, "flood/*");
    let bytes = noise(1000, 10);
    publish_bytes(&c, &log, &alice, "flood/model", &bytes);
    // Uploads of a version that exists: each costs the server a signature
    // check and a registry check before it refuses, and reads no body.
    let other = noise(1000, 11);
    let mut limited = 0;
    for _ in 0..30 {
        let env = signed(&alice, publish("flood/model", "1", digest_of(&other), 1000));
        let (status, body) = upload(&c, log.url(), &other, &env);
        match status {
            409 => {}
            429 => {
                assert_eq!(body["error"].as_str(), Some("rate_limited"), "{body}");
                limited += 1;
            }
            _ => panic!("{status} {body}"),
        }
    }
    assert!(limited >= 20, "only {limited} of 30 pre-upload checks were rate limited");
    let env = signed(&bob, publish("flood/model", "1", digest_of(&other), 1000));
    let (status, body) = upload(&c, log.url(), &other, &env);
    assert_eq!(status, 409, "another actor has its own budget: {body}");
}
