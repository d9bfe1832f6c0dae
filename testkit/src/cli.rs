//! The `custody` client as a user runs it: one home directory per user
//! (config, key, state), and the client's environment cleared of anything
//! that would let the developer's own settings leak into a test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bins::bin;
use crate::process::text;

/// One user of the CLI.
pub struct User {
    pub home: PathBuf,
}

/// What a `custody` run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Requires `needle` on stderr.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}: {}", self.stderr);
        self
    }

    /// Requires exit 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "custody failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Requires exit `code` and `needle` in stderr.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, code, "wrong exit code:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}: {}", self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run { code: out.status.code().unwrap_or(-1), stdout: text(&out.stdout), stderr: text(&out.stderr) }
    }
}

impl User {
    /// A user with an empty home `root/home-NAME`.
    pub fn new(root: &Path, name: &str) -> User {
        let home = root.join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        User { home }
    }

    /// `custody init` in a fresh home `dir/home-NAME`, trusting `policy`
    /// and talking to the log at `url`.
    pub fn init(dir: &Path, name: &str, policy: &Path, url: &str) -> User {
        let u = User::new(dir, name);
        u.configure(policy, url);
        u
    }

    /// `custody init` against `url` trusting `policy`.
    pub fn configure(&self, policy: &Path, url: &str) {
        self.ok(&["init", "--policy", policy.to_str().unwrap(), "--log", url]);
    }

    /// The `custody` command with this user's home and a clean environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin("custody"));
        cmd.env("CUSTODY_HOME", &self.home)
            .env("CUSTODY_WAIT_SECS", "30")
            .env_remove("CUSTODY_LOG_URL")
            .env_remove("CUSTODY_POLICY")
            .env_remove("CUSTODY_KEY");
        cmd
    }

    /// Runs `custody ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs `custody ARGS`; exit code and output as text.
    pub fn cli(&self, args: &[&str]) -> Run {
        self.run(args).into()
    }

    /// Runs and requires exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "custody {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// `custody keygen`; returns the public key line.
    pub fn keygen(&self, actor: &str) -> String {
        self.ok(&["keygen", actor]).trim().to_owned()
    }

    /// Installs an existing key file (e.g. the log's admin key).
    pub fn use_key(&self, file: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        let dst = self.home.join("key");
        std::fs::copy(file, &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// The key this user's home holds.
    pub fn signer(&self) -> custody_registry::actor_key::ActorSigner {
        read_signer(&self.home.join("key"))
    }
}

/// An actor key file as `custody keygen` or `custody-log init` wrote it.
pub fn read_signer(path: &Path) -> custody_registry::actor_key::ActorSigner {
    let text = std::fs::read_to_string(path).unwrap();
    custody_registry::actor_key::ActorSigner::parse(text.trim_end()).unwrap()
}

/// The entry index in `custody`'s `logged ... at entry N` line.
pub fn logged_index(stdout: &str) -> u64 {
    let line =
        stdout.lines().find(|l| l.contains("at entry ")).unwrap_or_else(|| panic!("no receipt: {stdout}"));
    let n = line.split("at entry ").nth(1).unwrap_or_else(|| panic!("{line}"));
    n.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}
