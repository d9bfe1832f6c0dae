//! Actor key files: `custody keygen` and loading a signer.
//!
//! A key file holds one line, the actor secret
//! `PRIVATE+KEY+<actor>+<hex8>+<base64(0x01 || seed)>` (docs/protocol.md
//! section 1), written with mode 0600 and never overwritten silently.

use std::path::Path;

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::ActorName;

use crate::error::{Error, Result};
use crate::home::{read_capped, write_atomic};

/// Creates a new random key for `actor` at `path` (mode 0600). Refuses to
/// replace an existing file unless `force`: losing a key bound in the log
/// means asking an admin for a new grant.
pub fn keygen(actor: &str, path: &Path, force: bool) -> Result<ActorSigner> {
    let name = ActorName::new(actor).map_err(|e| Error::Usage(format!("actor name {actor:?}: {e}")))?;
    if !force && path.exists() {
        return Err(Error::Usage(format!("{} already exists (use --force to replace it)", path.display())));
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
    let signer = ActorSigner::from_seed(&name, &seed);
    let mut text = signer.to_private_string();
    text.push('\n');
    write_atomic(path, text.as_bytes(), 0o600)?;
    Ok(signer)
}

/// Loads the signer in a key file, refusing a file others can read.
pub fn load_signer(path: &Path) -> Result<ActorSigner> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Config(format!("{}: no key (create one with `custody keygen ACTOR`)", path.display()))
        }
        _ => Error::io(path, e),
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Config(format!(
            "{}: key file is readable by others (chmod 600 it)",
            path.display()
        )));
    }
    let bytes = read_capped(path, 4096)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| Error::Config(format!("{}: not UTF-8", path.display())))?;
    ActorSigner::parse(text.trim_end()).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// A fresh random statement nonce.
pub fn random_nonce() -> Result<custody_registry::statement::Nonce> {
    let mut n = [0u8; 16];
    getrandom::getrandom(&mut n).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
    Ok(custody_registry::statement::Nonce(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn keygen_writes_a_private_key_that_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let s = keygen("alice", &path, false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_signer(&path).unwrap().key_id(), s.key_id());
        assert!(keygen("alice", &path, false).is_err(), "never overwrites silently");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_signer(&path).is_err(), "refuses a world-readable key");
        assert!(keygen("Bad Name", &dir.path().join("x"), false).is_err());
    }
}
