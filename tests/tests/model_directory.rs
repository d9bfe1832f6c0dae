//! Model directories on the real binaries: a Hugging Face style tree is
//! published as its manifest, a new version with one changed shard uploads
//! one shard, an interrupted publish resumes with only what is missing, a
//! pull writes the tree only when every file verified, `--verify-only`
//! names every difference, the log refuses hostile manifests and serves
//! no file without a logged access naming its manifest, and a client
//! refuses a hostile manifest a lying log serves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use custody_testkit::hostile::{proxy, Response};
use custody_testkit::scenario::*;
use custody_testkit::statements::{access, digest_of, noise, signed};

/// A model directory: config, tokenizer, three shards and `small` small
/// files under `extra/`.
fn model_dir(root: &Path, name: &str, small: usize) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("tokenizer")).unwrap();
    std::fs::create_dir_all(dir.join("extra")).unwrap();
    std::fs::write(dir.join("config.json"), br#"{"model_type":"llama"}"#).unwrap();
    std::fs::write(dir.join("tokenizer/tokenizer.json"), noise(5_000, 1)).unwrap();
    for i in 1..=3u64 {
        std::fs::write(dir.join(format!("model-0000{i}-of-00003.safetensors")), noise(200_000, 10 + i))
            .unwrap();
    }
    for i in 0..small {
        std::fs::write(dir.join(format!("extra/f{i:04}.txt")), format!("small file {i}\n")).unwrap();
    }
    dir
}

/// Every file under `dir`, as (relative path, bytes), sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The "uploaded N files" count a directory publish reports.
fn uploaded(stderr: &str) -> usize {
    let at = stderr.find("uploaded ").unwrap_or_else(|| panic!("no upload count in: {stderr}"));
    stderr[at + 9..].split(' ').next().unwrap().parse().unwrap()
}

fn staging_left(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".custody-pull-"))
        .collect()
}

#[test]
fn a_directory_round_trips_and_a_new_version_uploads_only_the_changed_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let (_d, _admin, alice, dave, _) = demo_team(tmp.path());
    let src = model_dir(tmp.path(), "src", 1000);
    let p = src.to_str().unwrap();
    let run = alice.cli(&["publish", p, "--name", "demo/model", "--version", "1", "--kind", "model"]);
    run.ok();
    assert_eq!(uploaded(&run.stderr), 1005, "{}", run.stderr);

    let out = tmp.path().join("pulled");
    dave.ok(&["pull", "demo/model@1", "-o", out.to_str().unwrap()]);
    assert_eq!(tree(&out), tree(&src));

    // One shard changes: version 2 uploads that shard and nothing else.
    std::fs::write(src.join("model-00002-of-00003.safetensors"), noise(200_000, 99)).unwrap();
    let run = alice.cli(&["publish", p, "--name", "demo/model", "--version", "2"]);
    run.ok();
    assert_eq!(uploaded(&run.stderr), 1, "{}", run.stderr);
    assert!(run.stderr.contains("(200000 bytes)"), "only the shard's bytes: {}", run.stderr);
    let out2 = tmp.path().join("pulled2");
    dave.ok(&["pull", "demo/model@2", "-o", out2.to_str().unwrap()]);
    assert_eq!(tree(&out2), tree(&src));

    // The auditor reads each published manifest once and checks it.
    dave.cli(&["audit", "--directories"]).ok().stderr_has("2 manifests checked, 0 checked by");
    dave.cli(&["audit", "--directories"]).ok().stderr_has("0 manifests checked, 2 checked by");

    // A pull never replaces a non-empty directory.
    dave.cli(&["pull", "demo/model@2", "-o", out.to_str().unwrap()]).fails(64, "not empty");

    // --verify-only: identical, then every kind of difference by path.
    dave.ok(&["pull", "demo/model@1", "--verify-only", "-o", out.to_str().unwrap()]);
    std::fs::remove_file(out.join("extra/f0007.txt")).unwrap();
    std::fs::write(out.join("extra/new.txt"), b"not published").unwrap();
    let mut shard = std::fs::read(out.join("model-00001-of-00003.safetensors")).unwrap();
    shard[1234] ^= 1;
    std::fs::write(out.join("model-00001-of-00003.safetensors"), shard).unwrap();
    let run = dave.cli(&["pull", "demo/model@1", "--verify-only", "-o", out.to_str().unwrap()]);
    run.fails(2, "missing: extra/f0007.txt");
    for needle in [
        "extra: extra/new.txt",
        "modified: model-00001-of-00003.safetensors",
        "1 missing, 1 extra, 1 modified",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }

    // A Hugging Face cache snapshot: every file a link into a blob store.
    let (blobs, snap) = (tmp.path().join("hf/blobs"), tmp.path().join("hf/snapshots/abc"));
    std::fs::create_dir_all(&blobs).unwrap();
    for (rel, bytes) in tree(&out2) {
        let blob = blobs.join(digest_of(&bytes).0.to_hex());
        std::fs::write(&blob, &bytes).unwrap();
        let link = snap.join(&rel);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&blob, &link).unwrap();
    }
    dave.ok(&["pull", "demo/model@2", "--verify-only", "-o", snap.to_str().unwrap()]);
    // ... but a published directory holds its own bytes.
    alice
        .cli(&["publish", snap.to_str().unwrap(), "--name", "demo/model", "--version", "3"])
        .fails(64, "symbolic links are refused");
}

#[test]
fn an_interrupted_publish_resumes_and_a_lying_pull_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    let src = model_dir(tmp.path(), "src", 20);
    let p = src.to_str().unwrap();

    // The connection fails after a few file uploads went through.
    let through = Arc::new(AtomicUsize::new(0));
    let seen = through.clone();
    let flaky = proxy(
        d.log.url.clone(),
        Arc::new(move |req, r| {
            let file_upload = req.method == "PUT" && r.status != 202 && r.status < 300;
            if file_upload && seen.fetch_add(1, Ordering::SeqCst) >= 5 {
                return Response::new(500, "connection lost");
            }
            r
        }),
    );
    alice
        .cli(&["--log", &flaky, "publish", p, "--name", "demo/model", "--version", "1", "--jobs", "1"])
        .fails(1, "");
    // Every upload the proxy saw was stored by the log, the failed one too.
    let stored = through.load(Ordering::SeqCst);
    assert!(stored >= 6, "the failure came after a few uploads: {stored}");
    let run = alice.cli(&["publish", p, "--name", "demo/model", "--version", "1"]);
    run.ok();
    assert_eq!(uploaded(&run.stderr), 25 - stored, "only what is missing: {}", run.stderr);

    // A log that corrupts one file of the download: exit 2, nothing at the
    // destination, no staging left behind.
    let victim = digest_of(&std::fs::read(src.join("model-00003-of-00003.safetensors")).unwrap()).to_string();
    let lying = proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path.ends_with(&victim) && r.status == 200 {
                r.body[100] ^= 0xff;
            }
            r
        }),
    );
    let out = tmp.path().join("pulled");
    let run = dave.cli(&["--log", &lying, "pull", "demo/model@1", "-o", out.to_str().unwrap()]);
    run.fails(2, "model-00003-of-00003.safetensors");
    assert!(!out.exists(), "a refused pull left {}", out.display());
    assert_eq!(staging_left(tmp.path()), Vec::<String>::new());

    // A log that serves a hostile manifest (a path climbing out of the
    // destination) in place of the published one: refused before any
    // file is fetched or written.
    let (status, resolved) = get_json(&http(), &format!("{}/registry/resolve?ref=demo/model@1", d.log.url));
    assert_eq!(status, 200, "{resolved}");
    let manifest = resolved["digest"].as_str().unwrap().to_owned();
    let file = noise(7, 5);
    let hostile = format!(
        r#"{{"schema":1,"files":[{{"path":"../../escaped.bin","size":7,"digest":"{}"}}]}}"#,
        digest_of(&file)
    );
    let fetched = Arc::new(AtomicUsize::new(0));
    let seen = fetched.clone();
    let evil = proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.method == "GET" && req.path.starts_with("/blobs/") {
                if req.path.ends_with(&manifest) {
                    r.body = hostile.clone().into_bytes();
                } else {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            }
            r
        }),
    );
    let run = dave.cli(&["--log", &evil, "pull", "demo/model@1", "-o", out.to_str().unwrap()]);
    run.fails(2, "other than the published");
    // The auditor's check of the manifests catches the same log.
    let run = dave.cli(&["--log", &evil, "audit", "--directories"]);
    run.fails(2, "demo/model@1: the log sent a manifest other than the published");
    assert_eq!(fetched.load(Ordering::SeqCst), 0, "files were fetched under a hostile manifest");
    assert!(!out.exists() && !tmp.path().join("escaped.bin").exists());
    assert!(!tmp.path().parent().unwrap().join("escaped.bin").exists());
}

#[test]
fn the_log_refuses_hostile_manifests_and_serves_files_only_under_a_logged_access() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _admin, alice, dave, _) = demo_team(tmp.path());
    let (c, url) = (http(), d.log.url.clone());
    let (a, r) = (user_signer(&alice), user_signer(&dave));
    let publish_of =
        |version: &str, manifest: &[u8]| signed(&a, publish_directory("demo/model", version, manifest));
    let file = b"weights".to_vec();
    let entry = |path: &str| format!(r#"{{"path":"{path}","size":7,"digest":"{}"}}"#, digest_of(&file));
    for (files, why) in [
        (vec![entry("Model.bin"), entry("model.bin")], "case-insensitive"),
        (vec![entry("../escape.bin")], "`..`"),
        (vec![entry("/etc/passwd")], "absolute"),
        (vec![entry("a"), entry("a/b")], "both a file and the directory"),
    ] {
        let m = format!(r#"{{"schema":1,"files":[{}]}}"#, files.join(","));
        let (status, body) = upload(&c, &url, m.as_bytes(), &publish_of("9", m.as_bytes()));
        assert_eq!((status, body["error"].as_str()), (422, Some("bad_manifest")), "{m}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
        let hex = digest_of(m.as_bytes()).0.to_hex();
        let stored = d.dir.join("log/blobs/sha256").join(&hex[..2]).join(&hex);
        assert!(!stored.exists(), "a refused manifest is not kept: {}", stored.display());
    }

    // A good manifest; its file is refused before the manifest, and a file
    // it does not list is refused after.
    let m = format!(r#"{{"schema":1,"files":[{}]}}"#, entry("model.bin"));
    let stmt = publish_of("1", m.as_bytes());
    let (status, body) = upload(&c, &url, &file, &stmt);
    assert_eq!((status, body["error"].as_str()), (409, Some("manifest_required")), "{body}");
    let (status, body) = upload(&c, &url, m.as_bytes(), &stmt);
    assert_eq!((status, body["reason"].as_str()), (202, Some("files_missing")), "{body}");
    assert_eq!(body["missing"], serde_json::json!([digest_of(&file).to_string()]));
    let (status, body) = upload(&c, &url, b"not listed", &stmt);
    assert_eq!((status, body["error"].as_str()), (422, Some("not_in_manifest")), "{body}");
    let (status, body) = post_statement(&c, &url, publish_of("1", m.as_bytes()));
    assert_eq!((status, body["error"].as_str()), (409, Some("files_missing")), "{body}");
    let (status, body) = upload(&c, &url, &file, &stmt);
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_statement(&c, &url, publish_of("1", m.as_bytes()));
    assert_eq!(status, 200, "{body}");

    // Reading: the file needs the logged access of its manifest.
    let grant = signed(&r, access("demo/model", "1", digest_of(m.as_bytes())));
    let get_file = |envelope: &[u8], index: Option<u64>| {
        let mut req = c
            .get(format!("{url}/blobs/{}", digest_of(&file)))
            .header("Custody-Statement", custody_standards::encoding::encode_base64(envelope));
        if let Some(i) = index {
            req = req.header("Custody-Access-Index", i.to_string());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().unwrap().to_vec())
    };
    let size = tree_size(&c, &url);
    let (status, _) = get_file(&grant, Some(size - 1));
    assert_eq!(status, 403, "an access never logged serves nothing");
    let (status, _) = get_file(&grant, None);
    assert_eq!(status, 422);
    assert_eq!(tree_size(&c, &url), size, "refused reads log nothing");
    let resp = c
        .get(format!("{url}/blobs/{}", digest_of(m.as_bytes())))
        .header("Custody-Statement", custody_standards::encoding::encode_base64(&grant))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let index: u64 = resp.headers()["custody-leaf-index"].to_str().unwrap().parse().unwrap();
    assert_eq!(resp.bytes().unwrap().as_ref(), m.as_bytes());
    assert_eq!(get_file(&grant, Some(index)), (200, file.clone()));
    let after = tree_size(&c, &url);
    assert_eq!(get_file(&grant, Some(index)), (200, file.clone()));
    assert_eq!(tree_size(&c, &url), after, "the files of a logged access log nothing more");
    // The grant names one manifest: not another artifact.
    let other = alice_publishes_a_file(&alice, tmp.path());
    let resp = c
        .get(format!("{url}/blobs/{other}"))
        .header("Custody-Statement", custody_standards::encoding::encode_base64(&grant))
        .header("Custody-Access-Index", index.to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"], "not_in_manifest", "{body}");
    let _ = dave;
}

fn alice_publishes_a_file(alice: &User, dir: &Path) -> String {
    let bytes = b"a single-file artifact".to_vec();
    alice.ok(&["publish", &write_file(dir, "single.bin", &bytes), "--name", "demo/single", "--version", "1"]);
    digest_of(&bytes).to_string()
}
