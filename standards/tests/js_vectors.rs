//! Test vectors shared with the dashboard's browser verifier
//! (log-server/ui/js/verify.js): verifier keys, signed notes with good and bad
//! signatures and cosignatures, checkpoints, tlog-policy files with quorum
//! outcomes, and RFC 6962 inclusion proofs for every (index, size) up to 16
//! plus tampered ones. Each file is generated here from core, with the
//! expected outcome core computes; this test fails when a file no longer
//! matches core, and tests/tests/dashboard_browser.rs runs the same files
//! through verify.js in Chromium.

#[path = "support/vectors_file.rs"]
mod vectors_file;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use custody_standards::checkpoint::{Checkpoint, CheckpointError};
use custody_standards::cosignature::CosignatureSigner;
use custody_standards::keys::{key_id, KeyError, SignerKey, VerifierKey, SIG_TYPE_ED25519};
use custody_standards::note::{
    add_signatures, open_note, sign_note, Note, NoteError, NoteSigner, NoteVerifier,
};
use custody_standards::policy::{Policy, PolicyError};
use custody_standards::verify::{verify_inclusion, VerifyError};
use custody_standards::{inclusion_proof, leaf_hash, proof::tree_hash, Hash, MemoryHashStore};
use serde_json::{json, Value};

const DIR: &str = env!("CARGO_MANIFEST_DIR");
const ORIGIN: &str = "log.example/custody";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn log_key(seed: u8) -> SignerKey {
    SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[seed; 32]).unwrap()
}

fn witness(n: u8) -> CosignatureSigner {
    CosignatureSigner::from_seed(&format!("witness.example/w{n}"), &[10 + n; 32]).unwrap()
}

/// A vkey string over arbitrary key material, with the key ID derived from
/// it (so parsing gets past the key ID check to the material checks).
fn vkey_of(name: &str, material: &[u8]) -> String {
    format!("{name}+{:08x}+{}", key_id(name, material[0], &material[1..]), b64(material))
}

fn key_code(e: &KeyError) -> &'static str {
    match e {
        KeyError::Malformed(_) => "malformed",
        KeyError::InvalidName(_) => "invalid_name",
        KeyError::KeyIdMismatch { .. } => "key_id_mismatch",
        KeyError::UnsupportedType(_) => "unsupported_type",
        KeyError::KeyLength { .. } => "key_length",
        KeyError::InvalidPublicKey => "invalid_public_key",
        KeyError::WrongType { .. } => "wrong_type",
        _ => "other",
    }
}

fn note_code(e: &NoteError) -> &'static str {
    match e {
        NoteError::TooLarge { .. } => "too_large",
        NoteError::TooManySignatures => "too_many_signatures",
        NoteError::Malformed(_) => "malformed",
        NoteError::UnverifiedNote => "unverified_note",
        NoteError::InvalidSignature { .. } => "invalid_signature",
        NoteError::AmbiguousVerifier { .. } => "ambiguous_verifier",
        _ => "other",
    }
}

fn keys() -> Value {
    let mut cases = Vec::new();
    let mut case = |desc: &str, vkey: String| {
        let c = match VerifierKey::parse(&vkey) {
            Ok(k) => json!({"desc": desc, "vkey": vkey, "ok": true, "name": k.name(),
                "key_id": format!("{:08x}", k.key_id()), "type": k.sig_type(),
                "public_key": hex::encode(k.public_key()),
                "fingerprint": hex::encode(custody_standards::hash::sha256(&k.public_key()).0)}),
            Err(e) => json!({"desc": desc, "vkey": vkey, "ok": false, "error": key_code(&e)}),
        };
        cases.push(c);
    };
    let log = log_key(1).verifier().to_string();
    case("log key, type 0x01", log.clone());
    case("witness key, type 0x04", witness(1).verifier().to_string());
    case("golang.org/x/mod sumdb/note example key", PETER_VKEY.into());
    case("key ID off by one", PETER_VKEY.replace("c74f20a3", "c74f20a4"));
    case("key ID in upper case", PETER_VKEY.replace("c74f20a3", "C74F20A3"));
    case("no separators", "PeterNeumann".into());
    case("name with a space", PETER_VKEY.replace("PeterNeumann", "Peter Neumann"));
    case("empty name", PETER_VKEY.replace("PeterNeumann", ""));
    case("key material changed", PETER_VKEY.replace("10TW", "10TX"));
    let mut material = vec![0x02];
    material.extend_from_slice(&log_key(1).verifier().public_key());
    case("unsupported type 0x02", vkey_of("k", &material));
    material[0] = SIG_TYPE_ED25519;
    material.pop();
    case("31-byte key", vkey_of("k", &material));
    let mut weak = vec![SIG_TYPE_ED25519];
    weak.extend_from_slice(&[0; 32]);
    case("small-order (weak) key", vkey_of("k", &weak));
    weak[1] = 1;
    case("identity point", vkey_of("k", &weak));
    // The first small y whose point is not on the curve.
    let off_curve = (2u8..=255)
        .map(|y| {
            let mut m = vec![SIG_TYPE_ED25519, y];
            m.extend_from_slice(&[0; 31]);
            m
        })
        .find(|m| VerifierKey::parse(&vkey_of("k", m)) == Err(KeyError::InvalidPublicKey) && m[1] > 1)
        .expect("some small y is off the curve");
    case("not a curve point", vkey_of("k", &off_curve));
    json!({ "cases": cases })
}

fn note_case(desc: &str, note: &[u8], verifiers: &[String]) -> Value {
    let keys: Vec<VerifierKey> = verifiers.iter().map(|v| VerifierKey::parse(v).unwrap()).collect();
    let dyns: Vec<&dyn NoteVerifier> = keys.iter().map(|k| k as &dyn NoteVerifier).collect();
    let mut c = json!({"desc": desc, "note": b64(note), "verifiers": verifiers});
    match open_note(note, &dyns) {
        Ok(v) => {
            c["ok"] = json!(true);
            c["verified"] = v
                .verified
                .iter()
                .map(|s| {
                    json!({"name": s.name, "key_id": format!("{:08x}", s.key_id),
                    "timestamp": s.timestamp.map(|t| t.to_string())})
                })
                .collect();
            c["unknown"] = json!(v.unknown.len());
        }
        Err(e) => {
            c["ok"] = json!(false);
            c["error"] = json!(note_code(&e));
        }
    }
    c
}

/// A checkpoint signed by the log key of `seed` and cosigned by witnesses
/// `ws` at times 1_790_000_000 + n.
fn signed_checkpoint(seed: u8, size: u64, ws: &[u8]) -> Vec<u8> {
    let cp = Checkpoint { origin: ORIGIN.into(), size, root: leaf_hash(b"root"), extensions: vec![] };
    let text = cp.to_text().unwrap();
    let signed = sign_note(&text, &[&log_key(seed) as &dyn NoteSigner]).unwrap();
    let note = Note::parse(&signed).unwrap();
    let cosigners: Vec<_> = ws.iter().map(|&n| witness(n)).collect();
    let timed: Vec<_> =
        cosigners.iter().zip(ws).map(|(w, &n)| w.at(1_790_000_000 + u64::from(n)).unwrap()).collect();
    let dyns: Vec<&dyn NoteSigner> = timed.iter().map(|t| t as &dyn NoteSigner).collect();
    add_signatures(note, &dyns).unwrap().to_bytes().unwrap()
}

fn notes() -> Value {
    let peter = vec![PETER_VKEY.to_string()];
    let log = log_key(1).verifier().to_string();
    let ws: Vec<String> = (1..=3).map(|n| witness(n).verifier().to_string()).collect();
    let all = [vec![log.clone()], ws.clone()].concat();
    let cosigned = signed_checkpoint(1, 7, &[1, 2]);
    let text = String::from_utf8(cosigned.clone()).unwrap();
    let mut bad_cosig = cosigned.clone();
    let at = text.rfind("— witness.example/w2 ").unwrap() + "— witness.example/w2 ".len() + 20;
    bad_cosig[at] = if bad_cosig[at] == b'A' { b'B' } else { b'A' };
    let mut cases = vec![
        note_case("sumdb/note example", PETER_NOTE.as_bytes(), &peter),
        note_case("one byte of text changed", PETER_NOTE.replace("problem,", "problem;").as_bytes(), &peter),
        note_case("no known key", PETER_NOTE.as_bytes(), std::slice::from_ref(&log)),
        note_case("CRLF line endings", PETER_NOTE.replace('\n', "\r\n").as_bytes(), &peter),
        note_case("hyphen for em dash", PETER_NOTE.replace('—', "-").as_bytes(), &peter),
        note_case("no blank line", PETER_NOTE.replace(".\n\n", ".\n").as_bytes(), &peter),
        note_case("no final newline", PETER_NOTE.trim_end().as_bytes(), &peter),
        note_case("stray base64 bits", PETER_NOTE.replace("AM=\n", "AN=\n").as_bytes(), &peter),
        note_case("same key twice", PETER_NOTE.as_bytes(), &[PETER_VKEY.into(), PETER_VKEY.into()]),
        note_case("not UTF-8", &[PETER_NOTE.as_bytes(), b"\xff\n"].concat(), &peter),
        note_case("log and two cosignatures", &cosigned, &all),
        note_case("cosignatures only known", &cosigned, &ws),
        note_case("a cosignature that does not verify", &bad_cosig, &all),
        note_case(
            "cosigned by an unknown witness",
            &signed_checkpoint(1, 7, &[3]),
            std::slice::from_ref(&log),
        ),
        note_case(
            "log key of the same name, other key",
            &signed_checkpoint(2, 7, &[]),
            std::slice::from_ref(&log),
        ),
    ];
    let dup = format!("{PETER_NOTE}{}", PETER_NOTE.lines().last().unwrap()) + "\n";
    cases.push(note_case("the same good line twice", dup.as_bytes(), &peter));
    let sig_line = PETER_NOTE.lines().last().unwrap().to_string() + "\n";
    let many = format!("{PETER_NOTE}{}", sig_line.repeat(100));
    cases.push(note_case("101 signature lines", many.as_bytes(), &peter));
    let short = PETER_NOTE.replace(PETER_NOTE.lines().last().unwrap(), "— PeterNeumann x08go/Y=");
    cases.push(note_case("signature of one byte", short.as_bytes(), &peter));
    json!({ "cases": cases })
}

fn checkpoints() -> Value {
    let good = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let texts = [
        ("tlog-checkpoint example", good.to_string()),
        ("extension lines", format!("{good}ext one\next two\n")),
        ("largest size", good.replace("20852163", "18446744073709551615")),
        ("size 0", good.replace("20852163", "0")),
        ("leading zero", good.replace("20852163", "020852163")),
        ("size above u64", good.replace("20852163", "18446744073709551616")),
        ("empty origin", good.replace("example.com/behind-the-sofa", "")),
        ("two lines", "origin\n5\n".into()),
        ("root of 31 bytes", good.replace("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", &b64(&[1; 31]))),
        ("root with stray base64 bits", good.replace("xq2I=", "xq2J=")),
        ("empty extension line", format!("{good}\n")),
        ("no final newline", good.trim_end().into()),
        ("tab in origin", good.replace("example.com", "example\t.com")),
    ];
    let cases: Vec<Value> = texts
        .iter()
        .map(|(desc, text)| match Checkpoint::parse(text) {
            Ok(cp) => json!({"desc": desc, "text": text, "ok": true, "origin": cp.origin,
                "size": cp.size.to_string(), "root": cp.root.to_base64(), "extensions": cp.extensions}),
            Err(e) => json!({"desc": desc, "text": text, "ok": false, "error": match e {
                CheckpointError::Malformed(_) => "malformed",
                _ => "other",
            }}),
        })
        .collect();
    json!({ "cases": cases })
}

fn policy_code(e: &PolicyError) -> (&'static str, Option<usize>) {
    match e {
        PolicyError::TooLarge => ("too_large", None),
        PolicyError::Syntax { line, .. } => ("syntax", Some(*line)),
        PolicyError::Key { line, .. } => ("key", Some(*line)),
        PolicyError::MissingQuorum => ("missing_quorum", None),
        PolicyError::Note(n) => (note_code(n), None),
        PolicyError::Checkpoint(_) => ("malformed", None),
        PolicyError::UnknownLog(_) => ("unknown_log", None),
        PolicyError::NoLogSignature => ("no_log_signature", None),
        PolicyError::QuorumNotMet => ("quorum_not_met", None),
        _ => ("other", None),
    }
}

fn policy_case(desc: &str, text: &str, checks: &[(&str, Vec<u8>)]) -> Value {
    let mut c = json!({"desc": desc, "policy": text});
    let policy = match Policy::parse(text.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            let (code, line) = policy_code(&e);
            c["ok"] = json!(false);
            c["error"] = json!(code);
            c["line"] = json!(line);
            return c;
        }
    };
    c["ok"] = json!(true);
    let n = policy.witnesses().len();
    c["quorum"] = (0u32..1 << n)
        .map(|bits| {
            let cosigned: Vec<bool> = (0..n).map(|i| bits & (1 << i) != 0).collect();
            let (met, satisfied) = policy.evaluate(&cosigned);
            json!({"cosigned": cosigned, "met": met, "satisfied": satisfied})
        })
        .collect();
    c["checks"] = checks
        .iter()
        .map(|(desc, note)| match policy.verify_checkpoint(note) {
            Ok(v) => {
                json!({"desc": desc, "note": b64(note), "ok": true, "size": v.checkpoint.size.to_string(),
                "cosigners": v.cosigners.iter().map(|(w, t)| json!([w, t.to_string()])).collect::<Vec<_>>(),
                "satisfied": v.satisfied})
            }
            Err(e) => json!({"desc": desc, "note": b64(note), "ok": false, "error": policy_code(&e).0}),
        })
        .collect();
    c
}

fn policies() -> Value {
    let log = log_key(1).verifier().to_string();
    let [w1, w2, w3] = [1, 2, 3].map(|n| witness(n).verifier().to_string());
    let main = format!(
        "# a log and three witnesses, two of them needed\n\nlog {log} https://log.example/\n\
         witness w1 {w1} https://w1.example/\nwitness\tw2 {w2}\nwitness w3 {w3}\n\
         group two 2 w1 w2 w3\nquorum two\n"
    );
    let nested =
        format!("log {log}\nwitness a {w1}\nwitness b {w2}\nwitness c {w3}\ngroup ab all a b\ngroup top any ab c\nquorum top\n");
    let mut other_origin = signed_checkpoint(1, 3, &[1, 2]);
    let text = String::from_utf8(other_origin.clone()).unwrap().replacen(ORIGIN, "log.example/other", 1);
    other_origin = text.into_bytes();
    let cases = vec![
        policy_case(
            "2 of 3 witnesses",
            &main,
            &[
                ("log and two cosignatures", signed_checkpoint(1, 9, &[1, 2])),
                ("log and three cosignatures", signed_checkpoint(1, 9, &[1, 2, 3])),
                ("log and one cosignature", signed_checkpoint(1, 9, &[3])),
                ("no cosignature", signed_checkpoint(1, 9, &[])),
                ("signed by another key of the log's name", signed_checkpoint(2, 9, &[1, 2])),
                ("another origin", other_origin),
            ],
        ),
        policy_case("nested groups", &nested, &[("a and b", signed_checkpoint(1, 4, &[1, 2]))]),
        policy_case(
            "quorum none",
            &format!("log {log}\nquorum none\n"),
            &[("log only", signed_checkpoint(1, 2, &[])), ("other log key", signed_checkpoint(2, 2, &[]))],
        ),
        policy_case("threshold above n", &main.replace("two 2 w1", "two 4 w1"), &[]),
        policy_case("threshold 0", &main.replace("two 2 w1", "two 0 w1"), &[]),
        policy_case("member not defined", &main.replace("w2 w3\n", "w2 w9\n"), &[]),
        policy_case("member twice", &main.replace("w2 w3\n", "w2 w2\n"), &[]),
        policy_case("name none", &main.replace("witness w3", "witness none"), &[]),
        policy_case("duplicate witness key", &main.replace(&w3, &w1), &[]),
        policy_case("witness key on a log line", &main.replace(&log, &w3), &[]),
        policy_case("no quorum", &main.replace("quorum two\n", ""), &[]),
        policy_case("two quorum lines", &format!("{main}quorum w1\n"), &[]),
        policy_case("unknown keyword", &main.replace("group two", "grupo two"), &[]),
        policy_case("no final newline", main.trim_end(), &[]),
        policy_case("carriage return", &main.replace("quorum two\n", "quorum two\r\n"), &[]),
    ];
    json!({ "cases": cases })
}

fn inclusion() -> Value {
    const N: u64 = 16;
    let leaves: Vec<Vec<u8>> = (0..N).map(|i| format!("leaf {i}").into_bytes()).collect();
    let mut tree = MemoryHashStore::new();
    for l in &leaves {
        tree.append(leaf_hash(l));
    }
    let code = |e: VerifyError| match e {
        VerifyError::IndexOutOfRange { .. } => "index_out_of_range",
        VerifyError::ProofTooLong { .. } => "proof_too_long",
        VerifyError::WrongProofLength { .. } => "wrong_proof_length",
        VerifyError::RootMismatch => "root_mismatch",
        _ => "other",
    };
    let mut cases = Vec::new();
    let mut case = |desc: &str, index: u64, size: u64, proof: &[Hash], root: &Hash| {
        let leaf = &leaves[(index % N) as usize];
        let result = verify_inclusion(&leaf_hash(leaf), index, size, proof, root);
        cases.push(json!({"desc": desc, "leaf": b64(leaf), "index": index, "size": size,
            "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(), "root": root.to_base64(),
            "ok": result.is_ok(), "error": result.err().map(code)}));
    };
    for size in 1..=N {
        let root = tree_hash(size, &tree).unwrap();
        for index in 0..size {
            let proof = inclusion_proof(index, size, &tree).unwrap();
            case("valid", index, size, &proof, &root);
            if index != 0 && index != size - 1 && index != size / 2 {
                continue;
            }
            if let Some(first) = proof.first() {
                let mut p = proof.clone();
                p[0].0[31] ^= 1;
                case("one bit of the first hash flipped", index, size, &p, &root);
                let mut p = proof.clone();
                p.pop();
                case("last hash dropped", index, size, &p, &root);
                let mut p = proof.clone();
                p.swap(0, proof.len() - 1);
                if proof.len() > 1 && p != proof {
                    case("hashes reordered", index, size, &p, &root);
                }
                let _ = first;
            }
            let mut p = proof.clone();
            p.push(root);
            case("one hash too many", index, size, &p, &root);
            let mut r = root;
            r.0[0] ^= 0x80;
            case("another root", index, size, &proof, &r);
            if index + 1 < size {
                case("the next index", index + 1, size, &proof, &root);
            }
            case("size plus one", index, size + 1, &proof, &root);
            case("index equal to size", size, size, &proof, &root);
        }
    }
    let root = tree_hash(N, &tree).unwrap();
    case("65 hashes", 0, N, &vec![root; 65], &root);
    json!({ "leaf_hashes": leaves.iter().map(|l| json!([b64(l), leaf_hash(l).to_base64()])).collect::<Vec<_>>(),
        "node_hashes": [[leaf_hash(b"a").to_base64(), leaf_hash(b"b").to_base64(),
            custody_standards::node_hash(&leaf_hash(b"a"), &leaf_hash(b"b")).to_base64()]],
        "cases": cases })
}

#[test]
fn key_vectors_match_core() {
    vectors_file::check_or_write(DIR, "keys.json", &keys());
}

#[test]
fn note_vectors_match_core() {
    vectors_file::check_or_write(DIR, "notes.json", &notes());
}

#[test]
fn checkpoint_vectors_match_core() {
    vectors_file::check_or_write(DIR, "checkpoints.json", &checkpoints());
}

#[test]
fn policy_vectors_match_core() {
    vectors_file::check_or_write(DIR, "policies.json", &policies());
}

#[test]
fn inclusion_vectors_match_core() {
    vectors_file::check_or_write(DIR, "inclusion.json", &inclusion());
}
