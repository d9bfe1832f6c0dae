//! Offline receipts under attack, on the real `custody` binary: a bundle is
//! only as good as the signature on the statement it proves. A log operator
//! (or anyone holding its key) can include a publish signed by a random key
//! in the name of a trusted publisher; `custody verify bundle --artifact`
//! must refuse it, must refuse to vouch for an artifact when nobody said
//! whom it is expected from, and must say what it cannot know offline.

use std::path::Path;
use std::process::{Command, Output};

use custody_registry::actor_key::ActorSigner;
use custody_registry::dsse::Envelope;
use custody_registry::leaf::Leaf;
use custody_registry::names::ActorName;
use custody_registry::statement::PAYLOAD_TYPE;
use custody_standards::bundle::ProofBundle;
use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::{leaf_hash, SignerKey};
use custody_testkit::scenario::*;

const ORIGIN: &str = "offline.custody.example/log";

/// `custody --policy POLICY verify bundle ARGS...` with an empty home.
fn verify_bundle(home: &Path, policy: &Path, args: &[&str]) -> Output {
    Command::new(bin("custody"))
        .env("CUSTODY_HOME", home)
        .env_remove("CUSTODY_SIGNER")
        .env_remove("CUSTODY_ARTIFACT")
        .env_remove("CUSTODY_POLICY")
        .arg("--policy")
        .arg(policy)
        .args(["verify", "bundle"])
        .args(args)
        .output()
        .unwrap()
}

/// A one-leaf log holding `envelope`, signed by a log key the policy at
/// `dir/policy` trusts (no witnesses: the attacker is the log itself).
/// Returns the bundle's path.
fn one_leaf_bundle(dir: &Path, file: &str, envelope: &[u8]) -> String {
    let log = SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[9; 32]).unwrap();
    std::fs::write(dir.join("policy"), format!("log {}\nquorum none\n", log.verifier())).unwrap();
    let leaf = Leaf::new(now_secs() * 1000, envelope).unwrap().encode();
    let cp = Checkpoint { origin: ORIGIN.into(), size: 1, root: leaf_hash(&leaf), extensions: vec![] };
    let bundle = ProofBundle {
        extra: Some(leaf),
        index: 0,
        proof: vec![],
        checkpoint: sign_checkpoint(&cp, &log).unwrap(),
    };
    write_file(dir, file, &bundle.to_bytes())
}

fn assert_refused(out: &Output, what: &str, needle: &str) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{what}: exit 2 expected\n{stdout}{stderr}");
    assert!(!stdout.contains("artifact OK"), "{what}: vouched for the artifact\n{stdout}");
    assert!(stderr.contains(needle), "{what}: stderr lacks {needle:?}\n{stderr}");
}

#[test]
fn a_publish_with_a_random_key_and_signature_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, home) = (tmp.path(), tmp.path().join("home"));
    let policy = dir.join("policy");
    let alice = signer("alice");
    let alice_key = alice.public().to_string();
    let weights = b"forged weights ".repeat(500);
    let artifact = write_file(dir, "model.bin", &weights);
    let event = || publish("acme/model", "1", digest_of(&weights), weights.len() as u64);

    // 1. A random key that calls itself alice, signing its own statement.
    let random = ActorSigner::from_seed(&ActorName::new("alice").unwrap(), &[0x5a; 32]);
    let forged = one_leaf_bundle(dir, "random.tlog-proof", &signed(&random, event()));
    let out = verify_bundle(&home, &policy, &[&forged, "--artifact", &artifact, "--signer", &alice_key]);
    assert_refused(&out, "random key", "not the expected signer's key");

    // 2. Alice's key ID in the statement and the envelope, a random
    //    signature over it.
    let mut env = Envelope::parse(&signed(&alice, event())).unwrap();
    env.signatures[0].sig = Envelope::sign(PAYLOAD_TYPE, env.payload.clone(), &random).signatures[0].sig;
    let forged = one_leaf_bundle(dir, "resigned.tlog-proof", &env.to_json());
    let out = verify_bundle(&home, &policy, &[&forged, "--artifact", &artifact, "--signer", &alice_key]);
    assert_refused(&out, "random signature", "signature");

    // 3. Without saying whom the artifact is expected from: refused before
    //    anything is read, whatever the bundle holds.
    let out = verify_bundle(&home, &policy, &[&forged, "--artifact", &artifact]);
    assert_refused(&out, "no signer", "--artifact needs --signer");

    // 4. Another actor's genuine statement is not alice's.
    let bob = signer("bob");
    let bobs = one_leaf_bundle(dir, "bob.tlog-proof", &signed(&bob, event()));
    let out = verify_bundle(&home, &policy, &[&bobs, "--artifact", &artifact, "--signer", &alice_key]);
    assert_refused(&out, "another actor", "not of the expected signer alice");

    // 5. Alice's genuine statement passes, with the limits spelled out; the
    //    key also works from a file and from CUSTODY_SIGNER.
    let genuine = one_leaf_bundle(dir, "alice.tlog-proof", &signed(&alice, event()));
    let key_file = write_file(dir, "alice.pub", format!("{alice_key}\n").as_bytes());
    for signer_arg in [alice_key.as_str(), key_file.as_str()] {
        let out = verify_bundle(&home, &policy, &[&genuine, "--artifact", &artifact, "--signer", signer_arg]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("artifact OK"), "{stdout}");
        assert!(stdout.contains("not established offline"), "{stdout}");
        assert!(!stdout.contains("  "), "the caveat is one clean line: {stdout}");
    }
    let out = Command::new(bin("custody"))
        .env("CUSTODY_HOME", &home)
        .env("CUSTODY_SIGNER", &alice_key)
        .env("CUSTODY_ARTIFACT", &artifact)
        .arg("--policy")
        .arg(&policy)
        .args(["verify", "bundle", &genuine])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("artifact OK"), "{}{}", text(&out.stdout), text(&out.stderr));
}

/// The receipt `custody publish` writes verifies offline with its
/// publisher's key, and only with it.
#[test]
fn a_real_receipt_verifies_with_its_publishers_key_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let admin = d.admin();
    let (alice, bob) = (d.user("alice"), d.user("bob"));
    let (ka, kb) = (alice.keygen("alice"), bob.keygen("bob"));
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &kb, "--role", "publisher", "--pattern", "demo/*"]);
    let artifact = write_file(tmp.path(), "m.bin", &b"real weights ".repeat(1000));
    let receipt = tmp.path().join("m.tlog-proof");
    alice.ok(&[
        "publish",
        &artifact,
        "--name",
        "demo/m",
        "--version",
        "1",
        "--bundle",
        receipt.to_str().unwrap(),
    ]);
    let receipt = receipt.to_str().unwrap();
    let home = tmp.path().join("offline-home");
    let out = verify_bundle(&home, &d.policy, &[receipt, "--artifact", &artifact, "--signer", &ka]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("artifact OK"));
    let out = verify_bundle(&home, &d.policy, &[receipt, "--artifact", &artifact, "--signer", &kb]);
    assert_refused(&out, "bob's key for alice's receipt", "not of the expected signer bob");
}
