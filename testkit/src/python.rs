//! The real Python tools, run from the virtualenv `scripts/python-env`
//! makes: OpenSSF `model_signing` for interop tests, plus OpenSSL for the
//! keys it signs with, and helpers to lay out and hash a model directory.
//!
//! Nothing is installed or downloaded here: a test that needs the venv and
//! does not find it fails with a message that says to run
//! `./scripts/python-env` (CI's `.ci/run` does it before the tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use custody_standards::hash::sha256;

use crate::process::{run_ok, text};

/// The venv: `$CUSTODY_VENV`, else `~/.cache/custody/venv` (the same
/// default as `scripts/python-env`). Panics, saying what to run, when it
/// is missing or was not completed (no pin marker).
pub fn venv() -> PathBuf {
    let dir = match std::env::var_os("CUSTODY_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/custody/venv")
        }
    };
    let ready = dir.join("bin/model_signing").is_file() && dir.join("custody-pins.txt").is_file();
    assert!(
        ready,
        "no Python venv with model_signing at {}: run ./scripts/python-env first \
         (it installs the pinned model-signing once; .ci/run calls it before the tests)",
        dir.display()
    );
    dir
}

/// `model_signing` from the venv, ready for arguments.
pub fn model_signing() -> Command {
    Command::new(venv().join("bin/model_signing"))
}

/// A P-256 key pair as PEM files, made by OpenSSL the way model_signing's
/// documentation makes one.
pub struct EcKeyPair {
    /// `openssl ecparam -name prime256v1 -genkey` (SEC1 `EC PRIVATE KEY`).
    pub private: PathBuf,
    /// `openssl ec -pubout` (SubjectPublicKeyInfo `PUBLIC KEY`).
    pub public: PathBuf,
}

/// Generates `<name>.pem` and `<name>.pub.pem` in `dir`.
pub fn openssl_p256_keypair(dir: &Path, name: &str) -> EcKeyPair {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    run_ok(
        Command::new("openssl")
            .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out"])
            .arg(&private),
    );
    run_ok(Command::new("openssl").args(["ec", "-pubout", "-in"]).arg(&private).arg("-out").arg(&public));
    EcKeyPair { private, public }
}

/// `model_signing sign key --private_key KEY --signature SIG MODEL`;
/// panics with the tool's output if it fails.
pub fn sign_key(model: &Path, private_key: &Path, signature: &Path) {
    run_ok(
        model_signing()
            .args(["sign", "key", "--private_key"])
            .arg(private_key)
            .arg("--signature")
            .arg(signature)
            .arg(model),
    );
}

/// `model_signing verify key --public_key KEY --signature SIG MODEL`, its
/// output returned whatever the exit status.
pub fn verify_key(model: &Path, public_key: &Path, signature: &Path) -> Output {
    model_signing()
        .args(["verify", "key", "--public_key"])
        .arg(public_key)
        .arg("--signature")
        .arg(signature)
        .arg(model)
        .output()
        .unwrap()
}

/// The combined stdout and stderr of a tool run, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Writes `files` (`/`-separated relative path, content) under `root`,
/// creating directories as needed.
pub fn write_files(root: &Path, files: &[(String, Vec<u8>)]) {
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Every regular file under `root`, `(relative '/'-separated path,
/// SHA-256)`, sorted by path. Symbolic links are not followed.
pub fn hash_dir(root: &Path) -> Vec<(String, [u8; 32])> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
                let rel: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push((rel.join("/"), sha256(&std::fs::read(entry.path()).unwrap()).0));
            }
        }
    }
    out.sort();
    out
}
