//! Actor keys: how a person's or a pipeline's Ed25519 public key is written,
//! and the key ID that names it in DSSE envelopes and statements.
//!
//! - **Actor key** (public): the signed-note verifier-key format of
//!   [`custody_standards::keys`] with signature type `0x01` and the actor name as key
//!   name: `<actor>+<hex8>+<base64(0x01 || 32-byte public key)>`, for example
//!   `alice+1d0f4e6c+AcqK...`. Reusing the vkey format gives a checksum (the
//!   hex8), weak-key rejection and a parser we already trust.
//! - **Actor key ID**: `hex(SHA-256(32-byte public key))`, 64 lowercase hex
//!   digits. It does not depend on the actor name, so one key has one ID
//!   everywhere (DSSE `keyid`, statement `key_id`, registry index). It is
//!   *not* the 4-byte signed-note key ID inside the vkey string.
//! - **Actor secret**: the signed-note signer-key string
//!   (`PRIVATE+KEY+<actor>+<hex8>+<base64(0x01 || seed)>`), held by the client.

use std::fmt;

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::names::ActorName;
use custody_standards::encoding::encode_base64;
use custody_standards::hash::{sha256, Hash};
use custody_standards::keys::{
    key_id as note_key_id, KeyError, SignerKey, VerifierKey, ED25519_KEY_SIZE, ED25519_SIGNATURE_SIZE,
    SIG_TYPE_ED25519,
};

/// Why an actor key or key ID was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorKeyError {
    /// Not a valid `0x01` vkey.
    #[error("invalid actor key: {0}")]
    Key(#[from] KeyError),
    /// The vkey's name is not a valid actor name.
    #[error("actor key name {0:?} is not a valid actor name")]
    Name(String),
    /// Not 64 lowercase hex digits.
    #[error("invalid key ID: expected 64 lowercase hex digits")]
    KeyId,
}

/// `hex(SHA-256(public key))`: the identity of an actor key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(pub Hash);

impl KeyId {
    /// The key ID of a raw Ed25519 public key.
    pub fn of(public_key: &[u8; ED25519_KEY_SIZE]) -> Self {
        KeyId(sha256(public_key))
    }

    /// Parses 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, ActorKeyError> {
        Hash::from_hex(s).map(KeyId).map_err(|_| ActorKeyError::KeyId)
    }
}

impl TryFrom<String> for KeyId {
    type Error = ActorKeyError;
    fn try_from(s: String) -> Result<Self, ActorKeyError> {
        KeyId::parse(&s)
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0.to_hex()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0.to_hex())
    }
}

/// An actor's public key, bound to the actor's name. Holds the
/// decompressed Ed25519 point, so verifying (singly or in a batch) never
/// decompresses again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActorKey {
    actor: ActorName,
    id: KeyId,
    ed: VerifyingKey,
}

impl ActorKey {
    /// Parses `<actor>+<hex8>+<base64(0x01 || key)>`.
    pub fn parse(s: &str) -> Result<Self, ActorKeyError> {
        let key = VerifierKey::parse(s)?;
        ActorKey::from_verifier(&key)
    }

    fn from_verifier(key: &VerifierKey) -> Result<Self, ActorKeyError> {
        key.require_type(SIG_TYPE_ED25519)?;
        let actor = ActorName::new(key.name()).map_err(|_| ActorKeyError::Name(key.name().to_owned()))?;
        let id = KeyId::of(&key.public_key());
        let ed = VerifyingKey::from_bytes(&key.public_key()).map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(ActorKey { actor, id, ed })
    }

    /// The actor this key is written for.
    pub fn actor(&self) -> &ActorName {
        &self.actor
    }

    /// The key ID, `hex(SHA-256(public key))`.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.ed.to_bytes()
    }

    /// The same key as a signed-note verifier key.
    pub fn to_verifier(&self) -> VerifierKey {
        VerifierKey::new(self.actor.as_str(), SIG_TYPE_ED25519, self.public_key())
            .expect("an actor key is a valid 0x01 verifier key")
    }

    /// The decompressed Ed25519 key (for batch verification).
    pub fn ed25519(&self) -> &VerifyingKey {
        &self.ed
    }

    /// Ed25519 check of `sig` over `msg`. Deliberately dalek's `verify`, not
    /// `verify_strict`, like [`VerifierKey::verify_ed25519`]: it matches Go's
    /// `ed25519.Verify`; weak keys were refused when the key was parsed.
    pub fn verify(&self, msg: &[u8], sig: &[u8; ED25519_SIGNATURE_SIZE]) -> bool {
        self.ed.verify(msg, &Signature::from_bytes(sig)).is_ok()
    }
}

impl TryFrom<String> for ActorKey {
    type Error = ActorKeyError;
    fn try_from(s: String) -> Result<Self, ActorKeyError> {
        ActorKey::parse(&s)
    }
}

impl From<ActorKey> for String {
    fn from(k: ActorKey) -> String {
        k.to_string()
    }
}

impl fmt::Display for ActorKey {
    /// The vkey string, `<actor>+<hex8>+<base64(0x01 || key)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pk = self.public_key();
        let mut material = [0u8; 1 + ED25519_KEY_SIZE];
        material[0] = SIG_TYPE_ED25519;
        material[1..].copy_from_slice(&pk);
        let hex8 = note_key_id(self.actor.as_str(), SIG_TYPE_ED25519, &pk);
        write!(f, "{}+{hex8:08x}+{}", self.actor, encode_base64(&material))
    }
}

impl fmt::Debug for ActorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorKey({self}, {})", self.id)
    }
}

/// A client's signing key: the actor name plus an Ed25519 seed. `Debug`
/// never prints the seed.
#[derive(Clone, Debug)]
pub struct ActorSigner {
    signer: SignerKey,
    public: ActorKey,
}

impl ActorSigner {
    /// Derives the signer from a 32-byte seed the caller generated (this
    /// crate has no randomness).
    pub fn from_seed(actor: &ActorName, seed: &[u8; ED25519_KEY_SIZE]) -> Self {
        // An ActorName is always a valid key name and 0x01 is supported,
        // so neither call can fail.
        let signer = SignerKey::from_seed(actor.as_str(), SIG_TYPE_ED25519, seed)
            .expect("actor names are valid key names");
        let public = ActorKey::from_verifier(&signer.verifier()).expect("actor names are valid actor keys");
        ActorSigner { signer, public }
    }

    /// Parses the secret key string (`PRIVATE+KEY+<actor>+...`).
    pub fn parse(s: &str) -> Result<Self, ActorKeyError> {
        let signer = SignerKey::parse(s)?;
        let public = ActorKey::from_verifier(&signer.verifier())?;
        Ok(ActorSigner { signer, public })
    }

    /// The secret key string; whoever holds it can sign as the actor.
    pub fn to_private_string(&self) -> String {
        self.signer.to_private_string()
    }

    /// The public half.
    pub fn public(&self) -> &ActorKey {
        &self.public
    }

    /// The actor name.
    pub fn actor(&self) -> &ActorName {
        self.public.actor()
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.public.id()
    }

    /// Raw Ed25519 signature over `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signer.sign_ed25519(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_strings_round_trip_and_ids_are_sha256_of_the_key() {
        let alice = ActorName::new("alice").unwrap();
        let s = ActorSigner::from_seed(&alice, &[1; 32]);
        let text = s.public().to_string();
        assert!(text.starts_with("alice+"));
        let k = ActorKey::parse(&text).unwrap();
        assert_eq!(&k, s.public());
        assert_eq!(k.to_verifier().to_string(), text);
        assert_eq!(k.id(), KeyId::of(&k.public_key()));
        assert_eq!(k.id().to_string(), sha256(&k.public_key()).to_hex());
        assert_eq!(KeyId::parse(&k.id().to_string()).unwrap(), k.id());
        let back = ActorSigner::parse(&s.to_private_string()).unwrap();
        assert_eq!(back.key_id(), s.key_id());
        assert!(!format!("{s:?}").contains(&s.to_private_string()[12..]));
    }

    #[test]
    fn rejections() {
        // A valid vkey whose name is not an actor name.
        let upper = SignerKey::from_seed("Alice", SIG_TYPE_ED25519, &[1; 32]).unwrap().verifier();
        assert_eq!(ActorKey::parse(&upper.to_string()), Err(ActorKeyError::Name("Alice".into())));
        // A cosignature (0x04) key is not an actor key.
        let cosig = SignerKey::from_seed("alice", 0x04, &[1; 32]).unwrap().verifier();
        assert!(matches!(
            ActorKey::parse(&cosig.to_string()),
            Err(ActorKeyError::Key(KeyError::WrongType { .. }))
        ));
        assert!(matches!(ActorKey::parse("alice+00000000+AAAA"), Err(ActorKeyError::Key(_))));
        for bad in ["", "AB".repeat(32).as_str(), &"a".repeat(63), &"a".repeat(65)] {
            assert_eq!(KeyId::parse(bad), Err(ActorKeyError::KeyId), "{bad:?}");
        }
    }
}
