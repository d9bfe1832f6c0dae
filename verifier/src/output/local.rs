//! Results of the commands that only touch local files: `init`, `keygen`,
//! `whoami`.

use serde::Serialize;

use custody_registry::actor_key::ActorSigner;

use super::Render;

/// `custody init`.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutput {
    /// The configuration file written (`config.json`).
    pub config_file: String,
    /// The trusted policy copied in.
    pub policy_file: String,
    /// Where checkpoints, evidence and audit state are kept.
    pub state_dir: String,
    /// The log URL saved (normalized).
    pub log_url: String,
    /// The CA certificate file saved, if any.
    pub ca_cert: Option<String>,
}

impl Render for InitOutput {
    fn text(&self) -> String {
        format!(
            "configured {} with policy {}\nstate directory: {}\n",
            self.config_file, self.policy_file, self.state_dir
        )
    }
}

/// An actor key: `custody whoami`, and `keygen` with the file it wrote.
#[derive(Debug, Clone, Serialize)]
pub struct WhoamiOutput {
    /// Actor name.
    pub actor: String,
    /// Key ID (hex), as statements and `revoke-key` name it.
    pub key_id: String,
    /// Public key `actor+hex8+base64`, as `grant` and `--signer` take it.
    pub public_key: String,
}

impl WhoamiOutput {
    /// The public side of `s`.
    pub fn of(s: &ActorSigner) -> Self {
        WhoamiOutput {
            actor: s.actor().as_str().to_owned(),
            key_id: s.key_id().to_string(),
            public_key: s.public().to_string(),
        }
    }
}

impl Render for WhoamiOutput {
    fn text(&self) -> String {
        format!("actor: {}\nkey id: {}\npublic key: {}\n", self.actor, self.key_id, self.public_key)
    }
}

/// `custody keygen`.
#[derive(Debug, Clone, Serialize)]
pub struct KeygenOutput {
    /// The new key.
    #[serde(flatten)]
    pub key: WhoamiOutput,
    /// The key file written (mode 0600).
    pub key_file: String,
}

impl Render for KeygenOutput {
    /// Only the public key: the note about the file goes to stderr.
    fn text(&self) -> String {
        format!("{}\n", self.key.public_key)
    }
}
