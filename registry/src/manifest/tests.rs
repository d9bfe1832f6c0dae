use proptest::prelude::*;

use super::*;

fn file(p: &str, size: u64, b: u8) -> FileEntry {
    FileEntry { path: ManifestPath::new(p).unwrap(), size, digest: Digest(Hash([b; 32])) }
}

fn hex(b: u8) -> String {
    format!("{b:02x}").repeat(32)
}

#[test]
fn the_encoding_is_the_documented_bytes() {
    let m = Manifest::new(vec![file("b/w.bin", 7, 1), file("a.json", 2, 2)], None).unwrap();
    let want = format!(
        r#"{{"schema":1,"files":[{{"path":"a.json","size":2,"digest":"sha256:{}"}},{{"path":"b/w.bin","size":7,"digest":"sha256:{}"}}]}}"#,
        hex(2),
        hex(1)
    );
    assert_eq!(String::from_utf8(m.encode()).unwrap(), want);
    assert_eq!(m.digest(), Digest(Hash(Sha256::digest(want.as_bytes()).into())));
    assert_eq!(Manifest::parse(want.as_bytes()).unwrap(), m);
    assert_eq!(m.total_size(), 9);
    assert_eq!(m.member_size(&Digest(Hash([1; 32]))), Some(7));
    assert_eq!(m.member_size(&Digest(Hash([3; 32]))), None);
}

#[test]
fn a_signature_entry_comes_last_and_counts_as_a_member() {
    let sig = SignatureFile {
        format: SignatureFormat::Oms,
        path: ManifestPath::new("model.sig").unwrap(),
        size: 5,
        digest: Digest(Hash([9; 32])),
        public_key: "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n".into(),
    };
    let m = Manifest::new(vec![file("a", 1, 1)], Some(sig.clone())).unwrap();
    let text = String::from_utf8(m.encode()).unwrap();
    assert!(
        text.ends_with(r#""public_key":"-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"}}"#),
        "{text}"
    );
    assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    assert_eq!(m.member_size(&sig.digest), Some(5));
    // The signature's path takes part in the collision rules.
    let clash = SignatureFile { path: ManifestPath::new("A").unwrap(), ..sig.clone() };
    assert!(matches!(
        Manifest::new(vec![file("a", 1, 1)], Some(clash)),
        Err(ManifestError::CaseCollision(..))
    ));
    let long = SignatureFile { public_key: "k".repeat(MAX_PUBLIC_KEY_BYTES + 1), ..sig };
    assert_eq!(Manifest::new(vec![file("a", 1, 1)], Some(long)), Err(ManifestError::PublicKeyTooLong));
}

#[test]
fn anything_but_the_canonical_bytes_is_refused() {
    let canonical = String::from_utf8(Manifest::new(vec![file("é", 1, 1)], None).unwrap().encode()).unwrap();
    assert!(canonical.contains("\"path\":\"é\""), "raw UTF-8: {canonical}");
    let variants = [
        canonical.replace("\"path\":\"é\"", "\"path\":\"\\u00e9\""),
        canonical.replace(",\"size\"", ", \"size\""),
        format!("{canonical}\n"),
        canonical.replace(r#"{"path":"é","size":1,"#, r#"{"size":1,"path":"é","#),
    ];
    for v in variants {
        assert_eq!(Manifest::parse(v.as_bytes()), Err(ManifestError::NotCanonical), "{v}");
    }
    let unsorted = format!(
        r#"{{"schema":1,"files":[{{"path":"b","size":1,"digest":"sha256:{0}"}},{{"path":"a","size":1,"digest":"sha256:{0}"}}]}}"#,
        hex(1)
    );
    assert_eq!(Manifest::parse(unsorted.as_bytes()), Err(ManifestError::NotCanonical));
}

#[test]
fn hostile_manifests_are_refused_with_their_reason() {
    let h = hex(0xab);
    let entry = |p: &str| format!(r#"{{"path":{p},"size":1,"digest":"sha256:{h}"}}"#);
    let doc = |files: &[&str]| {
        let list: Vec<String> = files.iter().map(|p| entry(&format!("{p:?}"))).collect();
        format!(r#"{{"schema":1,"files":[{}]}}"#, list.join(","))
    };
    type Case = (String, fn(&ManifestError) -> bool);
    let cases: Vec<Case> = vec![
        (doc(&["/etc/passwd"]), |e| matches!(e, ManifestError::Invalid(m) if m.contains("absolute"))),
        (doc(&["a/../../b"]), |e| matches!(e, ManifestError::Invalid(_))),
        (doc(&[""]), |e| matches!(e, ManifestError::Invalid(_))),
        (doc(&["a", "a"]), |e| matches!(e, ManifestError::Duplicate(p) if p == "a")),
        (doc(&["A", "a"]), |e| matches!(e, ManifestError::CaseCollision(..))),
        (doc(&["a", "a/b"]), |e| matches!(e, ManifestError::FileIsDirectory(p) if p == "a")),
        (doc(&["A", "a/b"]), |e| matches!(e, ManifestError::FileIsDirectory(p) if p == "A")),
        (doc(&[]), |e| matches!(e, ManifestError::NoFiles)),
        (r#"{"schema":2,"files":[]}"#.into(), |e| matches!(e, ManifestError::Schema(2))),
        (r#"{"schema":1,"files":[],"extra":1}"#.into(), |e| matches!(e, ManifestError::Invalid(_))),
        (r#"{"schema":1,"schema":1,"files":[]}"#.into(), |e| matches!(e, ManifestError::Invalid(_))),
        (
            format!(
                r#"{{"schema":1,"files":[{{"path":"a","size":1,"digest":"sha256:{}"}}]}}"#,
                h.to_uppercase()
            ),
            |e| matches!(e, ManifestError::Invalid(_)),
        ),
        (
            format!(
                r#"{{"schema":1,"files":[{{"path":"a","size":1,"digest":"sha256:{h}"}},{{"path":"b","size":2,"digest":"sha256:{h}"}}]}}"#
            ),
            |e| matches!(e, ManifestError::InconsistentSize(_)),
        ),
        (
            format!(
                r#"{{"schema":1,"files":[{{"path":"a","size":18446744073709551615,"digest":"sha256:{h}"}},{{"path":"b","size":1,"digest":"sha256:{}"}}]}}"#,
                hex(2)
            ),
            |e| matches!(e, ManifestError::TotalOverflow),
        ),
    ];
    for (text, want) in cases {
        let e = Manifest::parse(text.as_bytes()).unwrap_err();
        assert!(want(&e), "{text}: {e:?}");
    }
    let huge = vec![b' '; (MAX_MANIFEST_BYTES + 1) as usize];
    assert_eq!(Manifest::parse(&huge), Err(ManifestError::TooLarge(MAX_MANIFEST_BYTES + 1)));
    let many: Vec<FileEntry> = (0..=MAX_FILES).map(|i| file(&format!("f{i}"), 1, 1)).collect();
    assert_eq!(Manifest::new(many, None), Err(ManifestError::TooManyFiles(MAX_FILES + 1)));
}

fn component() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "B", "c.bin", "é", "ß", "SS", "x y", "model.safetensors", "Ω"])
        .prop_map(str::to_owned)
}

fn any_path() -> impl Strategy<Value = String> {
    prop::collection::vec(component(), 1..4).prop_map(|c| c.join("/"))
}

proptest! {
    /// Whatever set of paths is offered, a manifest is either refused or
    /// round-trips byte for byte, and then no two of its paths fold alike
    /// and none is another's directory.
    #[test]
    fn built_manifests_round_trip_and_keep_every_rule(paths in prop::collection::vec(any_path(), 1..12)) {
        let files: Vec<FileEntry> =
            paths.iter().enumerate().map(|(i, p)| file(p, i as u64, i as u8)).collect();
        if let Ok(m) = Manifest::new(files, None) {
            prop_assert_eq!(Manifest::parse(&m.encode()).unwrap(), m.clone());
            let keys: HashSet<String> = m.files().iter().map(|f| f.path.fold_key()).collect();
            prop_assert_eq!(keys.len(), m.files().len());
            for f in m.files() {
                for parent in f.path.parent_keys() {
                    prop_assert!(!keys.contains(&parent));
                }
            }
        }
    }

    /// Parsing arbitrary bytes, or a valid manifest with one byte changed,
    /// never panics, and a changed byte is never taken for the original.
    #[test]
    fn parsing_mutated_manifests_never_panics(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let m = Manifest::new(vec![file("a/b.bin", 3, 1), file("c", 4, 2)], None).unwrap();
        let mut bytes = m.encode();
        let i = at.index(bytes.len());
        let changed = bytes[i] != byte;
        bytes[i] = byte;
        if let Ok(parsed) = Manifest::parse(&bytes) {
            prop_assert!(!changed || parsed != m);
        }
    }
}

#[test]
fn the_protocol_test_vector_holds() {
    let f = |p: &str, bytes: &[u8]| FileEntry {
        path: ManifestPath::new(p).unwrap(),
        size: bytes.len() as u64,
        digest: Digest(custody_standards::hash::sha256(bytes)),
    };
    let m = Manifest::new(
        vec![
            f("tokenizer/vocab.txt", b"a\nb\n"),
            f("config.json", b"{}"),
            f("model.safetensors", b"weights"),
        ],
        None,
    )
    .unwrap();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md")).unwrap();
    let text = String::from_utf8(m.encode()).unwrap();
    assert!(doc.contains(&format!("\n{text}\n")), "docs/protocol.md section 10 lists: {text}");
    assert_eq!(
        m.digest().to_string(),
        "sha256:c752a7df0dfce6784575c0a21c92dceb9ed502b9d986f71b6a439ea34943c1e1"
    );
}
