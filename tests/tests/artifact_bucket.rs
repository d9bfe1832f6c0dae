//! Artifacts in object storage (`custody-log serve --store`), on the real
//! binaries:
//!
//! - on a real 3-node Garage cluster (S3, SigV4, path-style), artifacts and
//!   a model directory are published into the bucket and pulled verified;
//!   node 2 killed with SIGKILL during concurrent publishes and pulls
//!   changes nothing a client sees, nothing acknowledged is lost, and the
//!   restarted node serves what was written while it was down;
//! - artifacts are sealed in the bucket: no object holds a window of a
//!   published artifact's plaintext;
//! - with `--presign-downloads` (and `--plaintext-artifacts`, which it
//!   needs), `GET /blobs` answers 307 to a presigned
//!   URL only after the access is logged, the client follows it and still
//!   verifies: bytes altered in the bucket are refused by the client;
//! - without presigning, bytes altered in the bucket are refused by the log
//!   (`integrity_violation`), an upload whose bytes do not match its digest
//!   leaves no object, `custody-log fsck --store` names the altered blob
//!   and `custody-log gc --store` removes an orphan from the bucket.
//!
//! The Garage tests need `./scripts/garage-install` (scripts/test runs it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use custody_standards::encoding::encode_base64;
use custody_testkit::garage::GarageCluster;
use custody_testkit::scenario::*;
use custody_testkit::statements::{access, digest_of, noise, publish, signed};
use futures_util::TryStreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use tokio::runtime::Runtime;

/// The prefix of the log's tree in the bucket.
const PREFIX: &str = "custody";

/// `--store` on the cluster's bucket with the cluster's `AWS_*` settings,
/// through node 1 (the node these tests never kill), plus `extra` flags.
fn garage_log(cluster: &GarageCluster, extra: &[&str]) -> LogExtra {
    let mut args = vec!["--store".to_owned(), format!("s3://{}/{PREFIX}", cluster.bucket)];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    LogExtra { args, env: cluster.s3_env() }
}

/// An S3 client of the cluster's bucket through `node`.
fn s3(cluster: &GarageCluster, node: usize) -> Arc<dyn ObjectStore> {
    let store = AmazonS3Builder::new()
        .with_endpoint(cluster.endpoint(node))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region(&cluster.region)
        .with_bucket_name(&cluster.bucket)
        .with_access_key_id(&cluster.access_key_id)
        .with_secret_access_key(&cluster.secret_access_key)
        .build()
        .expect("S3 client");
    Arc::new(store)
}

fn object(hex: &str) -> ObjectPath {
    ObjectPath::from(format!("{PREFIX}/artifacts/sha256/{hex}"))
}

/// A deployment whose log runs with `extra`, alice publishing and dave
/// reading `demo/*`.
fn team(dir: &Path, extra: LogExtra) -> (Deployment, User, User) {
    let d = Deployment::start_with_log(dir, Setup::default(), extra);
    let admin = d.admin();
    let (alice, dave) = (d.user("alice"), d.user("dave"));
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &dave.keygen("dave"), "--role", "reader", "--pattern", "demo/*"]);
    (d, alice, dave)
}

fn publish_file(u: &User, dir: &Path, name: &str, version: &str, bytes: &[u8]) -> Run {
    let path = write_file(dir, &format!("{}-{version}.bin", name.replace('/', "_")), bytes);
    u.cli(&["publish", &path, "--name", name, "--version", version])
}

fn pull(u: &User, dir: &Path, what: &str) -> Option<Vec<u8>> {
    let out = dir.join(format!("pulled-{}-{}", what.replace(['/', '@'], "_"), nonce_suffix()));
    let run = u.run(&["pull", what, "-o", out.to_str().unwrap()]);
    // A directory pull: its largest file stands for it.
    let file = if out.is_dir() { out.join("model.safetensors") } else { out };
    run.status.success().then(|| std::fs::read(&file).unwrap())
}

fn nonce_suffix() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn artifacts_in_garage_survive_a_node_kill9_during_publishes_and_pulls() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = GarageCluster::start(&tmp.path().join("garage"));
    let (d, alice, dave) = team(&tmp.path().join("dep"), garage_log(&cluster, &[]));
    let rt = Runtime::new().unwrap();
    let node1 = s3(&cluster, 1);

    // 12 MiB goes up as a multipart upload; it lands in the bucket only.
    let big = noise(12 << 20, 7);
    publish_file(&alice, tmp.path(), "demo/model", "1", &big).ok();
    let meta =
        rt.block_on(node1.head(&object(&digest_of(&big).0.to_hex()))).expect("the artifact is in the bucket");
    // Sealed: a 48-byte header, then 192 chunks of 64 KiB, each with a tag.
    assert_eq!(meta.size, 48 + big.len() as u64 + 192 * 16);
    let window = &big[5 << 20..(5 << 20) + 32];
    let objects: Vec<_> = rt.block_on(node1.list(None).try_collect::<Vec<_>>()).expect("listing");
    assert!(objects.len() > 2, "artifact, key record, check record and the log's tiles");
    for o in &objects {
        let bytes = rt.block_on(async { node1.get(&o.location).await?.bytes().await }).expect("object");
        assert!(!bytes.windows(32).any(|w| w == window), "plaintext in the bucket at {}", o.location);
    }
    assert!(!d.dir.join("log/blobs/sha256").exists(), "nothing stored on the log's disk");
    assert!(pull(&dave, tmp.path(), "demo/model@1") == Some(big.clone()), "verified pull of the big model");

    // A model directory: manifest and files all in the bucket.
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("tokenizer")).unwrap();
    std::fs::write(src.join("config.json"), br#"{"model_type":"llama"}"#).unwrap();
    std::fs::write(src.join("tokenizer/tokenizer.json"), noise(5_000, 1)).unwrap();
    std::fs::write(src.join("model.safetensors"), noise(300_000, 2)).unwrap();
    alice
        .cli(&["publish", src.to_str().unwrap(), "--name", "demo/dir", "--version", "1", "--kind", "model"])
        .ok();
    let out = tmp.path().join("dir-out");
    dave.ok(&["pull", "demo/dir@1", "-o", out.to_str().unwrap()]);
    for f in ["config.json", "tokenizer/tokenizer.json", "model.safetensors"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }

    // Concurrent publishes and pulls; node 2 is killed while they run.
    let stop = Arc::new(AtomicBool::new(false));
    let pulls = {
        let (stop, dir) = (Arc::clone(&stop), tmp.path().to_owned());
        let reader = User { home: dave.home.clone() };
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            for round in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let what = if round % 2 == 0 { "demo/dir@1" } else { "demo/model@1" };
                match pull(&reader, &dir, what) {
                    Some(_) => ok += 1,
                    None => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    let mut published = Vec::new();
    for i in 0..8u64 {
        if i == 2 {
            cluster.kill9(2);
            assert!(!cluster.is_running(2), "node 2 still runs after SIGKILL");
        }
        let bytes = noise(if i % 3 == 0 { 6 << 20 } else { 200_000 }, 100 + i);
        let run = publish_file(&alice, tmp.path(), "demo/c", &i.to_string(), &bytes);
        assert_eq!(run.code, 0, "publish {i} with node 2 down: {}", run.stderr);
        published.push(bytes);
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = pulls.join().unwrap();
    assert!(ok > 0 && failed == 0, "pulls during the outage: {ok} verified, {failed} failed");

    // Nothing acknowledged is lost.
    for (i, bytes) in published.iter().enumerate() {
        assert!(pull(&dave, tmp.path(), &format!("demo/c@{i}")).as_ref() == Some(bytes), "demo/c@{i}");
    }
    // The restarted node rejoins and serves what was written while it was down.
    cluster.restart(2);
    let node2 = s3(&cluster, 2);
    let last = published.last().unwrap();
    let key = object(&digest_of(last).0.to_hex());
    let got = eventually("node 2 to serve an artifact written while it was down", 60, || {
        rt.block_on(async { node2.get(&key).await.ok()?.bytes().await.ok() })
    });
    // The object is the sealed copy: the same bytes node 1 holds.
    let on_node1 = rt.block_on(async { node1.get(&key).await?.bytes().await }).expect("node 1");
    assert!(got == on_node1 && got.len() as u64 > last.len() as u64);
}

#[test]
fn presigned_downloads_redirect_after_the_access_and_the_client_still_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = GarageCluster::start(&tmp.path().join("garage"));
    let (d, alice, dave) = team(
        &tmp.path().join("dep"),
        garage_log(&cluster, &["--presign-downloads", "60", "--plaintext-artifacts"]),
    );
    let bytes = noise(3 << 20, 9);
    let digest = digest_of(&bytes);
    publish_file(&alice, tmp.path(), "demo/model", "1", &bytes).ok();
    assert!(pull(&dave, tmp.path(), "demo/model@1") == Some(bytes.clone()), "pull through the presigned URL");

    // The raw answer: 307 to the bucket, naming the access entry just logged.
    let before = tree_size(&http(), &d.log.url);
    let no_redirects = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let envelope = signed(&user_signer(&dave), access("demo/model", "1", digest));
    let r = no_redirects
        .get(format!("{}/blobs/{digest}", d.log.url))
        .header("Custody-Statement", encode_base64(&envelope))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    let index: u64 = r.headers()["custody-leaf-index"].to_str().unwrap().parse().unwrap();
    assert!(index >= before, "the access entry is logged before the redirect");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(cluster.endpoint(1)) && location.contains("X-Amz-Signature"), "{location}");
    assert!(get_bytes(&http(), &location) == Some(bytes.clone()), "the presigned URL serves the object");

    // Bytes altered in the bucket: the client refuses what the URL serves.
    let mut evil = bytes.clone();
    evil[1234] ^= 1;
    let rt = Runtime::new().unwrap();
    rt.block_on(s3(&cluster, 1).put(&object(&digest.0.to_hex()), PutPayload::from(evil))).unwrap();
    let target = tmp.path().join("never.bin");
    let out = dave.run(&["pull", "demo/model@1", "-o", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "altered bytes fail verification: {}", text(&out.stderr));
    assert!(!target.exists(), "a refused pull leaves nothing at the destination");
}

#[test]
fn bytes_altered_in_the_bucket_are_refused_and_a_lying_upload_leaves_no_object() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let extra = LogExtra { args: vec!["--store".into(), store.clone()], env: Vec::new() };
    let (mut d, alice, dave) = team(&tmp.path().join("dep"), extra);

    // An upload whose bytes are not the declared digest leaves nothing.
    let claimed = noise(2 << 20, 1);
    let sent = noise(2 << 20, 2);
    let envelope =
        signed(&user_signer(&alice), publish("demo/lie", "1", digest_of(&claimed), claimed.len() as u64));
    let r = http()
        .put(format!("{}/blobs/{}", d.log.url, digest_of(&claimed)))
        .header("Custody-Statement", encode_base64(&envelope))
        .body(sent)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let artifacts = bucket.join("artifacts/sha256");
    let listed = || std::fs::read_dir(&artifacts).map(|d| d.count()).unwrap_or(0);
    assert_eq!(listed(), 0, "no object under any digest after a lying upload");

    // Published small and large, then altered in the bucket (same size).
    let small = b"honest weights ".repeat(1000);
    let large = noise(3 << 20, 3);
    publish_file(&alice, tmp.path(), "demo/small", "1", &small).ok();
    publish_file(&alice, tmp.path(), "demo/large", "1", &large).ok();
    assert_eq!(listed(), 2);
    // Pulled once, the small one is in the log's verified cache: altering
    // the object changes its stamp, so the next read is hashed again.
    assert!(pull(&dave, tmp.path(), "demo/small@1") == Some(small.clone()));
    for bytes in [&small, &large] {
        let path = artifacts.join(digest_of(bytes).0.to_hex());
        let mut evil = bytes.to_vec();
        evil[bytes.len() - 1] ^= 1;
        std::fs::write(&path, evil).unwrap();
    }
    // The log re-checks a cached object's stamp at least once a second
    // (docs/operations.md): past that, the rewrite is seen.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let target = tmp.path().join("never.bin");
    let out = dave.run(&["pull", "demo/small@1", "-o", target.to_str().unwrap()]);
    assert!(text(&out.stderr).contains("integrity_violation"), "{}", text(&out.stderr));
    let out = dave.run(&["pull", "demo/large@1", "-o", target.to_str().unwrap()]);
    assert!(!out.status.success(), "the log must not complete an altered download");
    assert!(!target.exists(), "a refused pull leaves nothing at the destination");
    let metrics = get_bytes(&http(), &format!("{}/metrics", d.log.url)).unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    let violations = metrics
        .lines()
        .find_map(|l| l.strip_prefix("custody_integrity_violations_total "))
        .unwrap_or_else(|| panic!("no integrity metric in {metrics}"));
    assert_eq!(violations.trim(), "2");

    // fsck of the stopped server reads the bucket and names the blob.
    d.log.stop();
    let out = std::process::Command::new(bin("custody-log"))
        .args(["fsck", "--store", &store, "--data-dir"])
        .arg(d.dir.join("log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("blob sha256:"), "{}", text(&out.stdout));

    // gc lists the bucket: an object no publish names goes, the rest stay.
    let orphan = noise(1000, 4);
    std::fs::write(artifacts.join(digest_of(&orphan).0.to_hex()), &orphan).unwrap();
    assert_eq!(listed(), 3);
    let out = std::process::Command::new(bin("custody-log"))
        .args(["gc", "--upload-grace", "0", "--store", &store, "--data-dir"])
        .arg(d.dir.join("log"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("1 orphan blobs removed"), "{}", text(&out.stdout));
    assert_eq!(listed(), 2);
    assert!(!artifacts.join(digest_of(&orphan).0.to_hex()).exists());
}
