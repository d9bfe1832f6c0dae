//! `custody pull` killed with `kill -9` in the middle of a download, on the
//! real binaries: nothing unverified is left at or beside the destination
//! that could be mistaken for the artifact (the partial bytes sit in a
//! private `.custody-pull-*` directory), and the next pull puts the
//! verified file in place.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use custody_testkit::scenario::*;

/// A TCP proxy to `target` that passes answers on slowly (64 KiB every
/// 20 ms), so a download takes seconds on loopback. Returns its URL.
fn slow_proxy(target: &str) -> String {
    let target = target.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(&target) else { continue };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    url
}

/// `custody pull REFERENCE --out DEST` as `reader`, in the background.
fn spawn_pull(reader: &User, reference: &str, dest: &Path) -> std::process::Child {
    Command::new(bin("custody"))
        .args(["pull", reference, "--out"])
        .arg(dest)
        .env("CUSTODY_HOME", &reader.home)
        .env("CUSTODY_WAIT_SECS", "30")
        .env_remove("CUSTODY_LOG_URL")
        .env_remove("CUSTODY_POLICY")
        .env_remove("CUSTODY_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Regular files (not directories) directly in `dir`.
fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Bytes downloaded so far into a `.custody-pull-*` directory of `dir`.
fn staged_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().map_while(Result::ok) {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            for f in std::fs::read_dir(e.path()).into_iter().flatten().map_while(Result::ok) {
                total += f.metadata().map(|m| m.len()).unwrap_or(0);
            }
        } else {
            // Any other file beside the destination counts too, so the
            // kill happens mid-download whatever the staging layout is.
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

#[test]
fn a_pull_killed_mid_download_leaves_nothing_that_looks_like_the_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let admin = d.admin();
    let alice = d.user("alice");
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    let weights: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let artifact = write_file(tmp.path(), "big.bin", &weights);
    alice.ok(&["publish", &artifact, "--name", "demo/big", "--version", "1"]);

    let reader = d.user_at("reader", &slow_proxy(&d.log.url));
    let kr = reader.keygen("reader");
    admin.ok(&["grant", &kr, "--role", "reader", "--pattern", "demo/*"]);
    let out_dir = tmp.path().join("models");
    std::fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("big.bin");

    let mut child = spawn_pull(&reader, "demo/big@1", &dest);
    eventually("part of the download on disk", 60, || (staged_bytes(&out_dir) > 0).then_some(()));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = staged_bytes(&out_dir);
    assert!(partial < weights.len() as u64, "the pull finished before the kill ({partial} bytes)");

    assert!(!dest.exists(), "an unverified file is at the destination");
    assert_eq!(files_in(&out_dir), Vec::<String>::new(), "unverified files beside the destination");
    for e in std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap()) {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(name.starts_with(".custody-pull-"), "unexpected entry {name}");
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{name} is readable by others");
    }

    // The next pull completes and leaves exactly the verified file.
    reader.ok(&["pull", "demo/big@1", "--out", dest.to_str().unwrap()]);
    assert_eq!(std::fs::read(&dest).unwrap(), weights);
    let names = files_in(&out_dir);
    assert_eq!(names, vec!["big.bin".to_owned()]);
}

/// Bytes of every regular file below `dir`, at any depth.
fn file_bytes_below(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().map_while(Result::ok) {
        match e.file_type() {
            Ok(t) if t.is_dir() => total += file_bytes_below(&e.path()),
            Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => {}
        }
    }
    total
}

#[test]
fn a_directory_pull_killed_mid_download_leaves_nothing_at_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, admin, alice, _dave, _) = demo_team(tmp.path());
    let model = tmp.path().join("src");
    std::fs::create_dir_all(model.join("tokenizer")).unwrap();
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    for i in 1..=3u64 {
        std::fs::write(model.join(format!("model-0000{i}-of-00003.safetensors")), noise(4 << 20, i)).unwrap();
    }
    std::fs::write(model.join("tokenizer/tokenizer.json"), noise(10_000, 9)).unwrap();
    alice.ok(&["publish", model.to_str().unwrap(), "--name", "demo/dir", "--version", "1"]);

    let reader = d.user_at("reader", &slow_proxy(&d.log.url));
    admin.ok(&["grant", &reader.keygen("reader"), "--role", "reader", "--pattern", "demo/*"]);
    let out_dir = tmp.path().join("models");
    std::fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("dir-model");
    let mut child = spawn_pull(&reader, "demo/dir@1", &dest);
    eventually("part of the files on disk", 60, || (file_bytes_below(&out_dir) > 1 << 20).then_some(()));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(file_bytes_below(&out_dir) < 12 << 20, "the pull finished before the kill");
    assert!(!dest.exists(), "a partial tree is at the destination");
    for e in std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap()) {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(name.starts_with(".custody-pull-"), "unexpected entry {name}");
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o700, "{name} is readable by others");
    }

    // The next pull puts the whole verified tree in place.
    reader.ok(&["pull", "demo/dir@1", "--out", dest.to_str().unwrap()]);
    for (rel, _) in
        [("config.json", 0), ("tokenizer/tokenizer.json", 0), ("model-00002-of-00003.safetensors", 0)]
    {
        assert_eq!(std::fs::read(dest.join(rel)).unwrap(), std::fs::read(model.join(rel)).unwrap(), "{rel}");
    }
}
