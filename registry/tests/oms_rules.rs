//! The parsing rules of model-signing bundles: each hostile bundle is
//! refused with its own error even when validly signed, the path rules
//! agree with an independent model on every short name, and no input makes
//! the parser or verifier panic.

mod oms_support;

use std::mem::discriminant;

use custody_registry::manifest::path::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use custody_registry::manifest::{ManifestPath, PathError};
use custody_registry::oms::{
    OmsBundle, OmsError, OmsFiles, OmsMismatch, OmsPublicKey, MAX_BUNDLE_BYTES, MAX_FILES,
};
use oms_support::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn key() -> OmsPublicKey {
    OmsPublicKey::from_pem(KEY_PUB).unwrap()
}

fn verify(bundle: &[u8]) -> Result<OmsFiles, OmsError> {
    OmsBundle::parse(bundle)?.verify(&key())
}

/// The KAT statement with the resource at `i` renamed, made consistent
/// and signed.
fn with_name(i: usize, name: &str) -> Vec<u8> {
    let mut st = statement();
    st["predicate"]["resources"][i]["name"] = Value::String(name.into());
    resigned(&consistent(st))
}

fn with_bundle(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut b = bundle_value();
    edit(&mut b);
    serde_json::to_vec(&b).unwrap()
}

fn with_statement(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut st = statement();
    edit(&mut st);
    resigned(&consistent(st))
}

/// The path rules resource names are held to: a model directory's
/// (`ManifestPath`), so a signed list can equal a manifest's.
fn check_path(name: &str) -> Result<(), PathError> {
    ManifestPath::new(name).map(|_| ())
}

#[test]
fn path_rules_refuse_each_non_canonical_name() {
    let cases: &[(&str, PathError)] = &[
        ("", PathError::Empty),
        ("/etc/passwd", PathError::Absolute(String::new())),
        ("../outside.bin", PathError::DotComponent(String::new())),
        ("a/../../b", PathError::DotComponent(String::new())),
        ("weights/..", PathError::DotComponent(String::new())),
        ("./config.json", PathError::DotComponent(String::new())),
        ("a/./b", PathError::DotComponent(String::new())),
        ("a//b", PathError::EmptyComponent(String::new())),
        ("dir/", PathError::EmptyComponent(String::new())),
        ("a\\..\\b", PathError::Character(String::new())),
        ("a\nb", PathError::Character(String::new())),
        ("nul\0", PathError::Character(String::new())),
    ];
    for (name, rule) in cases {
        assert_eq!(check_path(name).map_err(|e| discriminant(&e)), Err(discriminant(rule)), "{name:?}");
        // And through a validly signed bundle: refused at parse.
        match OmsBundle::parse(&with_name(0, name)) {
            Err(OmsError::Path { rule: r, .. }) => {
                assert_eq!(discriminant(&r), discriminant(rule), "{name:?}")
            }
            other => panic!("{name:?}: expected a Path error, got {other:?}"),
        }
    }
    let long = "a/".repeat(MAX_PATH_BYTES / 2) + "b";
    assert!(matches!(check_path(&long), Err(PathError::TooLong(_))));
    assert!(matches!(check_path(&"c".repeat(MAX_COMPONENT_BYTES + 1)), Err(PathError::ComponentTooLong(_))));
    for ok in ["a", "a/b", "..a", "a..", "...", ".hidden/x", "a b/ü.bin", &"c".repeat(MAX_COMPONENT_BYTES)] {
        assert_eq!(check_path(ok), Ok(()), "{ok:?}");
    }
}

/// An independent model of the rules: a name is accepted iff it is
/// non-empty, is its own PurePosixPath normalisation (no leading `/`, no
/// empty or `.` component), has no `..` component and no control character
/// or backslash.
fn model_accepts(name: &str) -> bool {
    let normalised: Vec<&str> = name.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    !name.is_empty()
        && normalised.join("/") == name
        && !normalised.contains(&"..")
        && !name.chars().any(|c| c.is_control() || c == '\\')
}

#[test]
fn path_rules_match_the_model_on_every_short_name() {
    let alphabet = ['a', '.', '/', '\\', '\n', 'é'];
    let mut names = vec![String::new()];
    let mut checked = 0;
    for _ in 0..6 {
        let mut next = Vec::with_capacity(names.len() * alphabet.len());
        for n in &names {
            for c in alphabet {
                let mut m = n.clone();
                m.push(c);
                next.push(m);
            }
        }
        for n in &next {
            assert_eq!(check_path(n).is_ok(), model_accepts(n), "{n:?}");
            checked += 1;
        }
        names = next;
    }
    assert_eq!(check_path("").is_ok(), model_accepts(""));
    assert!(checked > 55_000);
}

#[test]
fn duplicate_names_are_refused_even_when_signed() {
    let st = statement();
    let first = st["predicate"]["resources"][0]["name"].as_str().unwrap().to_owned();
    match OmsBundle::parse(&with_name(1, &first)) {
        Err(OmsError::DuplicatePath(p)) => assert_eq!(p, first),
        other => panic!("expected DuplicatePath, got {other:?}"),
    }
}

#[test]
fn each_hostile_bundle_is_refused_with_its_own_error() {
    type Case = (&'static str, Vec<u8>, fn(&OmsError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "sha512 resource",
            with_statement(|s| s["predicate"]["resources"][0]["algorithm"] = json!("sha512")),
            |e| matches!(e, OmsError::UnsupportedAlgorithm { algorithm, .. } if algorithm == "sha512"),
        ),
        (
            "uppercase digest",
            with_statement(|s| {
                let d = s["predicate"]["resources"][0]["digest"].as_str().unwrap().to_uppercase();
                s["predicate"]["resources"][0]["digest"] = json!(d);
            }),
            |e| matches!(e, OmsError::Digest { .. }),
        ),
        ("short digest", with_statement(|s| s["predicate"]["resources"][0]["digest"] = json!("abcd")), |e| {
            matches!(e, OmsError::Digest { .. })
        }),
        (
            "shards serialization",
            with_statement(|s| s["predicate"]["serialization"]["method"] = json!("shards")),
            |e| matches!(e, OmsError::UnsupportedSerialization(m) if m == "shards"),
        ),
        (
            "blake2 hash_type",
            with_statement(|s| s["predicate"]["serialization"]["hash_type"] = json!("blake2")),
            |e| matches!(e, OmsError::UnsupportedHashType(_)),
        ),
        (
            "v0.1 predicate",
            with_statement(|s| s["predicateType"] = json!("https://model_signing/Digests/v0.1")),
            |e| matches!(e, OmsError::PredicateType(_)),
        ),
        (
            "statement v0.1",
            with_statement(|s| s["_type"] = json!("https://in-toto.io/Statement/v0.1")),
            |e| matches!(e, OmsError::StatementType(_)),
        ),
        (
            "two subjects",
            with_statement(|s| {
                let sub = s["subject"][0].clone();
                s["subject"].as_array_mut().unwrap().push(sub);
            }),
            |e| matches!(e, OmsError::SubjectCount(2)),
        ),
        (
            "no subject",
            {
                let mut st = statement();
                st["subject"] = json!([]);
                resigned(&st)
            },
            |e| matches!(e, OmsError::SubjectCount(0)),
        ),
        (
            "resource without digest",
            with_statement(|s| {
                s["predicate"]["resources"][0].as_object_mut().unwrap().remove("digest");
            }),
            |e| matches!(e, OmsError::Malformed { layer: "statement", .. }),
        ),
        (
            "resource name not a string",
            with_statement(|s| s["predicate"]["resources"][0]["name"] = json!(7)),
            |e| matches!(e, OmsError::Malformed { layer: "statement", .. }),
        ),
        (
            "other payloadType",
            with_bundle(|b| b["dsseEnvelope"]["payloadType"] = json!("application/json")),
            |e| matches!(e, OmsError::PayloadType(_)),
        ),
        (
            "other mediaType",
            with_bundle(|b| b["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v0.2+json")),
            |e| matches!(e, OmsError::MediaType(_)),
        ),
        (
            "two signatures",
            with_bundle(|b| {
                let s = b["dsseEnvelope"]["signatures"][0].clone();
                b["dsseEnvelope"]["signatures"].as_array_mut().unwrap().push(s);
            }),
            |e| matches!(e, OmsError::SignatureCount(2)),
        ),
        ("no signature", with_bundle(|b| b["dsseEnvelope"]["signatures"] = json!([])), |e| {
            matches!(e, OmsError::SignatureCount(0))
        }),
        (
            "raw r||s signature",
            with_bundle(|b| b["dsseEnvelope"]["signatures"][0]["sig"] = json!("A".repeat(86) + "==")),
            |e| matches!(e, OmsError::SignatureEncoding(_)),
        ),
        (
            "url-safe base64 payload",
            {
                // "??????" holds an aligned "???", which is "Pz8/" in base64:
                // the standard encoding has a '/' to swap for '_'.
                let signed = with_statement(|s| s["pad"] = json!("??????"));
                let mut b: Value = serde_json::from_slice(&signed).unwrap();
                let p = b["dsseEnvelope"]["payload"].as_str().unwrap().to_owned();
                assert!(p.contains('/'));
                b["dsseEnvelope"]["payload"] = json!(p.replace('+', "-").replace('/', "_"));
                serde_json::to_vec(&b).unwrap()
            },
            |e| matches!(e, OmsError::Base64("payload")),
        ),
        (
            "certificate material",
            with_bundle(|b| b["verificationMaterial"]["certificate"] = json!({"rawBytes": "AAAA"})),
            |e| matches!(e, OmsError::UnsupportedMaterial(_)),
        ),
        (
            "tlog entry",
            with_bundle(|b| b["verificationMaterial"]["tlogEntries"] = json!([{"logIndex": "1"}])),
            |e| matches!(e, OmsError::UnsupportedMaterial(_)),
        ),
        (
            "timestamp",
            with_bundle(|b| b["verificationMaterial"]["timestampVerificationData"] = json!({})),
            |e| matches!(e, OmsError::UnsupportedMaterial(_)),
        ),
        ("no key hint", with_bundle(|b| b["verificationMaterial"] = json!({"tlogEntries": []})), |e| {
            matches!(e, OmsError::UnsupportedMaterial(_))
        }),
        (
            "short key hint",
            with_bundle(|b| b["verificationMaterial"]["publicKey"]["hint"] = json!("abc")),
            |e| matches!(e, OmsError::KeyHint(_)),
        ),
        ("unknown bundle field", with_bundle(|b| b["extra"] = json!(1)), |e| {
            matches!(e, OmsError::Malformed { layer: "bundle", .. })
        }),
        (
            "message signature bundle",
            with_bundle(|b| {
                b.as_object_mut().unwrap().remove("dsseEnvelope");
                b["messageSignature"] = json!({});
            }),
            |e| matches!(e, OmsError::Malformed { layer: "bundle", .. }),
        ),
        ("not json", b"{\"mediaType\":".to_vec(), |e| {
            matches!(e, OmsError::Malformed { layer: "bundle", .. })
        }),
        ("too large", vec![b' '; MAX_BUNDLE_BYTES + 1], |e| matches!(e, OmsError::TooLarge { .. })),
    ];
    for (what, bytes, expected) in cases {
        match OmsBundle::parse(&bytes) {
            Err(e) => assert!(expected(&e), "{what}: wrong error {e:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
}

#[test]
fn duplicate_json_keys_are_refused_in_every_layer() {
    let text = String::from_utf8(payload()).unwrap();
    // A second `_type` / `predicateType`: the statement would mean two
    // things to two parsers.
    for key in ["\"_type\"", "\"predicateType\""] {
        let start = text.find(key).unwrap();
        let end = start + text[start..].find('\n').unwrap();
        let line = &text[start..end];
        assert!(line.ends_with(','), "{line}");
        let dup = format!("{}{line} {}", &text[..start], &text[start..]);
        match OmsBundle::parse(&resigned_raw(dup.as_bytes())) {
            Err(OmsError::Malformed { layer: "statement", reason }) => {
                assert!(reason.contains("duplicate field"), "{key}: {reason}")
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    let bundle = String::from_utf8(BUNDLE.to_vec()).unwrap();
    let dup = bundle.replacen("\"mediaType\"", "\"mediaType\": \"x\", \"mediaType\"", 1);
    match OmsBundle::parse(dup.as_bytes()) {
        Err(OmsError::Malformed { layer: "bundle", reason }) => {
            assert!(reason.contains("duplicate field"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_statement_fields_are_ignored_as_in_toto_requires() {
    // "Consumers MUST ignore unrecognized fields" (in-toto parsing rules):
    // a future predicate field does not break verification.
    let b = with_statement(|s| {
        s["predicate"]["model_card"] = json!({"license": "apache-2.0"});
        s["predicate"]["resources"][0]["annotations"] = json!({"x": 1});
        s["extension"] = json!(true);
    });
    assert_eq!(verify(&b).unwrap().files, verify(BUNDLE).unwrap().files);
}

#[test]
fn too_many_files_is_refused() {
    let b = with_statement(|s| {
        let r: Vec<Value> = (0..=MAX_FILES)
            .map(|i| json!({"name": format!("f{i}"), "algorithm": "sha256", "digest": "00".repeat(32)}))
            .collect();
        s["predicate"]["resources"] = Value::Array(r);
    });
    assert!(matches!(OmsBundle::parse(&b), Err(OmsError::TooManyFiles(n)) if n == MAX_FILES + 1));
}

fn mutate(bytes: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, op, byte) in edits {
        if out.is_empty() {
            out.push(byte);
            continue;
        }
        let i = at % out.len();
        match op % 3 {
            0 => out[i] = byte,
            1 => out.insert(i, byte),
            _ => {
                out.remove(i);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes: parse and verify never panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(b) = OmsBundle::parse(&bytes) {
            let _ = b.verify(&key());
        }
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = OmsPublicKey::from_pem(s);
        }
    }

    /// Edits of the tool's bundle: never a panic, and whatever still
    /// verifies lists exactly the signed files (only unsigned whitespace
    /// and the like can change).
    #[test]
    fn edited_bundles_never_verify_other_files(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4)
    ) {
        let bytes = mutate(BUNDLE, &edits);
        if let Ok(files) = verify(&bytes) {
            prop_assert_eq!(files, verify(BUNDLE).unwrap());
        }
    }

    /// Edits of the statement, re-signed: never a panic; whatever parses
    /// has only rule-abiding, distinct paths, and whatever verifies has a
    /// subject digest that matches its resources.
    #[test]
    fn edited_signed_statements_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4)
    ) {
        let bytes = resigned_raw(&mutate(&payload(), &edits));
        if let Ok(b) = OmsBundle::parse(&bytes) {
            let paths: Vec<&str> = b.statement().resources.iter().map(|r| r.path.as_str()).collect();
            let mut unique = paths.clone();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(unique.len(), paths.len());
            for p in paths {
                prop_assert!(model_accepts(p), "{:?}", p);
            }
            if b.verify(&key()).is_ok() {
                let st = b.statement();
                prop_assert_eq!(st.recompute_subject_digest(), st.subject_sha256);
            }
        }
    }

    /// Any resource name, signed: accepted exactly when the model accepts it.
    #[test]
    fn signed_names_follow_the_model(name in "[a./\\\\\n]{0,8}") {
        let parsed = OmsBundle::parse(&with_name(3, &name));
        let dup = statement()["predicate"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .any(|(i, r)| i != 3 && r["name"] == name.as_str());
        prop_assert_eq!(parsed.is_ok(), model_accepts(&name) && !dup, "{:?}: {:?}", name, parsed);
    }
}

/// The first path, in byte order, on which two `(path, digest)` lists
/// disagree: an independent model of `OmsFiles::compare`.
fn first_difference(signed: &[(String, [u8; 32])], present: &[(String, [u8; 32])]) -> Option<String> {
    use std::collections::BTreeMap;
    type Digests = Vec<[u8; 32]>;
    let mut counts: BTreeMap<&str, (Digests, Digests)> = BTreeMap::new();
    for (p, d) in signed {
        counts.entry(p).or_default().0.push(*d);
    }
    for (p, d) in present {
        counts.entry(p).or_default().1.push(*d);
    }
    counts.into_iter().find(|(_, (s, p))| s != p).map(|(path, _)| path.to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `compare` on the KAT's files against a list with files dropped,
    /// duplicated, changed or added: Ok exactly when nothing changed, else
    /// it names the first path on which they disagree.
    #[test]
    fn compare_names_the_first_disagreement(
        ops in proptest::collection::vec((0u8..4, 0usize..8, any::<u8>()), 0..5)
    ) {
        let files = verify(BUNDLE).unwrap();
        let mut present = hashed(&model_files());
        for (op, i, b) in ops {
            let i = i % present.len().max(1);
            match op {
                0 if !present.is_empty() => { present.remove(i); }
                1 if !present.is_empty() => { let f = present[i].clone(); present.push(f); }
                2 if !present.is_empty() => present[i].1[0] ^= b | 1,
                _ => present.push((format!("extra/{b}"), [b; 32])),
            }
        }
        let r = files.compare(&present);
        match first_difference(&files.files, &present) {
            None => prop_assert_eq!(r, Ok(())),
            Some(path) => {
                let named = match r {
                    Err(OmsMismatch::Missing { path }) | Err(OmsMismatch::Extra { path }) => path,
                    Err(OmsMismatch::Different { path, .. }) => path,
                    Ok(()) => String::from("<accepted>"),
                };
                prop_assert_eq!(named, path);
            }
        }
    }
}
