//! The log's static read path and disaster recovery through `--store`, on
//! a local directory served by a plain static file server (Python's
//! `http.server`) and on a real 3-node Garage cluster served by Garage's
//! own web endpoint:
//!
//! - the bucket alone, behind a static server, passes `custody audit
//!   --tiles-url` with the log itself unreachable;
//! - a tile or checkpoint altered in the bucket fails that audit (exit 2);
//! - after `kill -9` and the loss of the data directory, `custody-log
//!   restore` rebuilds every entry up to the bucket's checkpoint at its
//!   index with the same bytes, and the log serves (artifacts published
//!   before the loss included, from the bucket) and grows again;
//! - with `--recovery-point-zero`, every acknowledged entry comes back,
//!   including those no checkpoint covered.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use custody_registry::registry::Role;
use custody_testkit::garage::GarageCluster;
use custody_testkit::http::{get_bytes, http, post_statement, tree_size};
use custody_testkit::logserver::{init_log, log_only_policy, ORIGIN};
use custody_testkit::scenario::write_file;
use custody_testkit::statements::{grant, noise, signed, signer};
use custody_testkit::witness::{self, origin_hex, write_log_list};
use custody_testkit::{bin, cli::read_signer, cli::User, eventually, run_ok, spawn_logged, tempdir, Proc};

/// Where the log writes and how its read path is served.
struct Backend {
    store: String,
    env: Vec<(String, String)>,
    /// Base URL of the read path as a static site.
    web: String,
}

/// `python3 -m http.server` over `root`, killed when dropped.
struct StaticServer {
    child: Child,
    url: String,
}

impl StaticServer {
    fn start(root: &Path) -> StaticServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line.split(" port ").nth(1).and_then(|r| r.split_whitespace().next()).expect(&line);
        StaticServer { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, b: &Backend, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("custody-log"));
    cmd.args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--batch-wait", "5", "--store", &b.store])
        .args(extra)
        .env("CUSTODY_LOG", "warn")
        .env_remove("CUSTODY_POLICY");
    for (k, v) in &b.env {
        cmd.env(k, v);
    }
    spawn_logged(&mut cmd, Some(&data.with_extension("stderr")))
}

fn restore(data: &Path, key: &Path, b: &Backend) -> String {
    let mut cmd = Command::new(bin("custody-log"));
    cmd.args(["restore", "--store", &b.store, "--key"]).arg(key).arg("--data-dir").arg(data);
    for (k, v) in &b.env {
        cmd.env(k, v);
    }
    run_ok(&mut cmd)
}

/// The size in the read path's checkpoint note, once it is `at_least`.
fn static_size(web: &str, at_least: u64) -> u64 {
    let c = http();
    eventually("the bucket's checkpoint", 60, || {
        let note = get_bytes(&c, &format!("{web}/checkpoint"))?;
        let size: u64 = String::from_utf8(note).ok()?.lines().nth(1)?.parse().ok()?;
        (size >= at_least).then_some(size)
    })
}

/// Every entry below `size`, read from the log.
fn entries(base: &str, size: u64) -> Vec<Vec<u8>> {
    let c = http();
    (0..size).map(|i| get_bytes(&c, &format!("{base}/entries/{i}")).expect("entry")).collect()
}

/// Publishes `n` artifacts through the CLI to the log at `url`.
fn publish_some(dir: &Path, admin: &User, url: &str, n: usize, tag: &str) {
    for i in 0..n {
        let file = write_file(dir, &format!("{tag}-{i}.bin"), &noise(3000 + i, i as u64));
        admin.ok(&[
            "publish",
            &file,
            "--log",
            url,
            "--name",
            &format!("acme/{tag}"),
            "--version",
            &i.to_string(),
        ]);
    }
}

/// Kills the log with SIGKILL and loses its data directory, keeping only
/// the key's backup.
fn lose_the_disk(server: &mut Proc, data: &Path) {
    server.kill9();
    std::fs::remove_dir_all(data).unwrap();
}

/// The whole story on one backend, in the default mode.
fn static_audit_and_restore(dir: &Path, b: &Backend, web_root: Option<&Path>) {
    let data = dir.join("log");
    let vkey = init_log(&data);
    let backup = dir.join("log.key.backup");
    std::fs::copy(data.join("log.key"), &backup).unwrap();
    // The artifacts' KEK is backed up apart from the data, like the key.
    let kek = dir.join("artifacts.kek.backup");
    std::fs::copy(data.join("artifacts.kek"), &kek).unwrap();
    let mut server = serve(&data, b, &["--checkpoint-interval", "100"]);
    let policy = log_only_policy(dir, &vkey);
    let admin = User::new(dir, "root");
    admin.configure(&policy, &server.url);
    admin.use_key(&data.join("admin.key"));
    publish_some(dir, &admin, &server.url, 3, "m");

    // The bucket alone: the log's own address is dead for this audit.
    let size = static_size(&b.web, tree_size(&http(), &server.url));
    let metrics = String::from_utf8(get_bytes(&http(), &format!("{}/metrics", server.url)).unwrap()).unwrap();
    assert!(metrics.contains(&format!("custody_bucket_checkpoint_size {size}\n")), "{metrics}");
    let auditor = User::new(dir, "auditor");
    auditor.configure(&policy, &server.url);
    for name in ["fresh", "fresh2", "fresh3"] {
        User::new(dir, name).configure(&policy, &server.url);
    }
    let out = auditor.ok(&["audit", "--log", "http://127.0.0.1:9", "--tiles-url", &b.web]);
    assert!(out.contains(&size.to_string()), "{out}");
    // A witness in pull mode cosigns from the static read path alone.
    let wdata = dir.join("witness");
    let wkey = witness::init(&wdata, "witness.example/w1");
    let list = dir.join("logs.txt");
    write_log_list(&list, &[format!("vkey {vkey}\norigin none\nqpd 86400000\nurl {}\n", b.web)]);
    let mut w = witness::serve(&wdata, &list, None, &["--poll-interval", "50"]);
    let cosigned = eventually("the witness to cosign the bucket's checkpoint", 60, || {
        let url = format!("{}/{}/checkpoint", w.url, origin_hex(ORIGIN));
        let note = String::from_utf8(get_bytes(&http(), &url)?).ok()?;
        (note.lines().nth(1) == Some(&size.to_string()) && note.contains(&format!("— {}", wkey.name())))
            .then_some(note)
    });
    assert!(cosigned.starts_with(ORIGIN), "{cosigned}");
    w.stop();

    // Lose the disk; restore from the bucket.
    let before = entries(&server.url, size);
    lose_the_disk(&mut server, &data);
    let said = restore(&data, &backup, b);
    assert!(said.contains(&format!("checkpoint of size {size}")), "{said}");
    let server = serve(&data, b, &["--checkpoint-interval", "100", "--kek-file", kek.to_str().unwrap()]);
    assert_eq!(entries(&server.url, size), before, "every checkpointed entry, same bytes, same index");
    // It takes statements again, and the auditor's remembered checkpoint
    // is extended consistently.
    // The artifacts were in the bucket all along: a model published
    // before the loss pulls and verifies from the restored log.
    let pulled = dir.join("pulled-after-restore.bin");
    admin.ok(&["pull", "acme/m@1", "--log", &server.url, "--out", pulled.to_str().unwrap()]);
    assert_eq!(std::fs::read(&pulled).unwrap(), noise(3001, 1));
    publish_some(dir, &admin, &server.url, 1, "after");
    let grown = static_size(&b.web, size + 1);
    auditor.ok(&["audit", "--log", &server.url, "--tiles-url", &b.web]);
    assert!(grown > size);

    // A lying bucket (only a local directory can be edited by the test):
    // every level-0 tile altered, then a checkpoint with another size.
    let Some(root) = web_root else { return };
    let mut tiles = Vec::new();
    for e in std::fs::read_dir(root.join("tile/0")).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            tiles.extend(std::fs::read_dir(&p).unwrap().flatten().map(|f| f.path()));
        } else {
            tiles.push(p);
        }
    }
    let kept: Vec<(PathBuf, Vec<u8>)> =
        tiles.iter().map(|p| (p.clone(), std::fs::read(p).unwrap())).collect();
    for (p, bytes) in &kept {
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        std::fs::write(p, bad).unwrap();
    }
    let static_only = ["audit", "--log", "http://127.0.0.1:9", "--tiles-url", &b.web];
    User::new(dir, "fresh").cli(&static_only).fails(2, "");
    for (p, bytes) in &kept {
        std::fs::write(p, bytes).unwrap();
    }
    User::new(dir, "fresh2").cli(&static_only).ok();
    let note = root.join("checkpoint");
    let good = String::from_utf8(std::fs::read(&note).unwrap()).unwrap();
    let forged = good.replacen(&format!("\n{grown}\n"), &format!("\n{}\n", grown + 1), 1);
    assert_ne!(forged, good);
    std::fs::write(&note, forged).unwrap();
    User::new(dir, "fresh3").cli(&static_only).fails(2, "");
}

#[test]
fn a_local_bucket_behind_a_static_server_audits_and_restores() {
    let dir = tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(bucket.join("log")).unwrap();
    let web = StaticServer::start(&bucket.join("log"));
    let b = Backend { store: format!("file://{}", bucket.display()), env: Vec::new(), web: web.url.clone() };
    static_audit_and_restore(dir.path(), &b, Some(&bucket.join("log")));
}

#[test]
fn a_garage_bucket_behind_its_web_endpoint_audits_and_restores() {
    let dir = tempdir().unwrap();
    let cluster = GarageCluster::start(&dir.path().join("garage"));
    let b = Backend {
        store: format!("s3://{}/registry", cluster.bucket),
        env: cluster.s3_env(),
        web: format!("{}/registry/log", cluster.web_url),
    };
    static_audit_and_restore(dir.path(), &b, None);
}

/// With recovery point zero, statements acknowledged after the last
/// checkpoint in the bucket survive the loss of the disk.
#[test]
fn recovery_point_zero_keeps_every_acknowledged_entry() {
    let dir = tempdir().unwrap();
    let bucket: PathBuf = dir.path().join("bucket");
    let b = Backend { store: format!("file://{}", bucket.display()), env: Vec::new(), web: String::new() };
    let data = dir.path().join("log");
    init_log(&data);
    let backup = dir.path().join("log.key.backup");
    std::fs::copy(data.join("log.key"), &backup).unwrap();
    let kek = dir.path().join("artifacts.kek.backup");
    std::fs::copy(data.join("artifacts.kek"), &kek).unwrap();
    // One checkpoint at start-up, then none for an hour.
    let once =
        ["--checkpoint-interval", "3600000", "--checkpoint-min-interval", "3600000", "--recovery-point-zero"];
    let mut server = serve(&data, &b, &once);
    let root = read_signer(&data.join("admin.key"));
    let c = http();
    let mut acked = 0;
    for i in 0..12 {
        let (status, body) = post_statement(
            &c,
            &server.url,
            signed(&root, grant(&signer(&format!("u{i}")), Role::Reader, "acme/*")),
        );
        assert_eq!(status, 200, "{body}");
        acked = acked.max(body["index"].as_u64().unwrap());
    }
    let size = tree_size(&c, &server.url);
    assert!(size > acked);
    let before = entries(&server.url, size);
    lose_the_disk(&mut server, &data);
    let said = restore(&data, &backup, &b);
    assert!(said.contains(&format!("restored {size} entries")), "{said}");
    let checkpointed: u64 = said.rsplit(' ').next().unwrap().trim().parse().expect(&said);
    assert!(checkpointed < size, "some entries came from the write-ahead segments alone: {said}");
    let server = serve(&data, &b, &["--checkpoint-interval", "100", "--kek-file", kek.to_str().unwrap()]);
    assert_eq!(entries(&server.url, size), before);
    // The registry replayed them, takes new statements, and a checkpoint
    // covering everything reaches the bucket.
    let (status, body) =
        post_statement(&c, &server.url, signed(&root, grant(&signer("late"), Role::Reader, "acme/*")));
    assert_eq!(status, 200, "{body}");
    let web = StaticServer::start(&bucket.join("log"));
    assert!(static_size(&web.url, size + 1) > size);
    // Segments the bucket's bundles now cover are removed.
    eventually("write-ahead segments below the checkpoint removed", 30, || {
        (std::fs::read_dir(bucket.join("wal")).map(|d| d.count()).unwrap_or(0) <= 1).then_some(())
    });
}
