//! Signed notes, keys, checkpoints and cosignatures against known-answer
//! vectors from independent implementations, plus rejection tables.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use custody_standards::checkpoint::{
    open_checkpoint, open_checkpoint_with, sign_checkpoint, Checkpoint, CheckpointError,
};
use custody_standards::cosignature::{
    cosign, cosignature_timestamp, signed_message, CosignatureError, CosignatureSigner, CosignatureVerifier,
};
use custody_standards::hash::Hash;
use custody_standards::keys::{
    key_id, KeyError, SignerKey, VerifierKey, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519,
};
use custody_standards::note::{
    add_signatures, open_note, sign_note, Note, NoteError, NoteSigner, NoteVerifier, MAX_NOTE_SIZE,
    MAX_SIGNATURES,
};
use proptest::prelude::*;

// golang.org/x/mod sumdb/note/note_test.go.
const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn vk(s: &str) -> VerifierKey {
    VerifierKey::parse(s).unwrap()
}

#[test]
fn go_peter_neumann_sign_is_byte_exact() {
    let signer = SignerKey::parse(PETER_SKEY).unwrap();
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.verifier().to_string(), PETER_VKEY);
    let pk = vk(PETER_VKEY).public_key();
    assert_eq!(key_id("PeterNeumann", SIG_TYPE_ED25519, &pk), 0xc74f20a3);
    let msg = sign_note(TEXT, &[&signer]).unwrap();
    assert_eq!(String::from_utf8(msg).unwrap(), format!("{TEXT}\n{PETER_SIG}"));
    // Re-signing replaces the existing line from the same key (Go TestSign).
    let mut note = Note::parse(format!("{TEXT}\n{PETER_SIG}").as_bytes()).unwrap();
    note.signatures[0].signature = vec![1, 2, 3];
    let resigned = add_signatures(note, &[&signer]).unwrap().to_bytes().unwrap();
    assert_eq!(String::from_utf8(resigned).unwrap(), format!("{TEXT}\n{PETER_SIG}"));
    assert!(matches!(sign_note("abc", &[&signer]), Err(NoteError::Malformed(_))));
}

#[test]
fn go_open_known_and_unknown_keys() {
    let peter = vk(PETER_VKEY);
    let enoch = vk(ENOCH_VKEY);
    let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    // One known, one unknown: the unknown line is ignored.
    let n = open_note(msg.as_bytes(), &[&peter]).unwrap();
    assert_eq!(n.note.text, TEXT);
    assert_eq!(n.verified.len(), 1);
    assert_eq!(
        (n.verified[0].name.as_str(), n.verified[0].key_id, n.verified[0].timestamp),
        ("PeterNeumann", 0xc74f20a3, None)
    );
    assert_eq!(n.unknown.len(), 1);
    assert_eq!((n.unknown[0].name.as_str(), n.unknown[0].key_id), ("EnochRoot", 0xaf0cfe78));
    // Both known.
    let n = open_note(msg.as_bytes(), &[&enoch, &peter]).unwrap();
    assert_eq!(n.verified.iter().map(|v| v.verifier).collect::<Vec<_>>(), vec![1, 0]);
    // None known.
    assert_eq!(open_note(msg.as_bytes(), &[]), Err(NoteError::UnverifiedNote));
    // Ambiguous configuration, only when a line actually matches.
    assert!(matches!(
        open_note(msg.as_bytes(), &[&enoch, &peter, &enoch]),
        Err(NoteError::AmbiguousVerifier { .. })
    ));
    assert!(open_note(format!("{TEXT}\n{PETER_SIG}").as_bytes(), &[&enoch, &peter, &enoch]).is_ok());
}

#[test]
fn unknown_keys_need_both_name_and_id_to_match() {
    let peter = vk(PETER_VKEY);
    // Same name, different ID; same ID, different name: both are unknown keys
    // and ignored even though their signature bytes are garbage.
    let raw = STANDARD
        .decode(
            "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        )
        .unwrap();
    let mut other_id = raw.clone();
    other_id[3] ^= 1;
    other_id[10] ^= 1;
    let mut bad = raw.clone();
    bad[10] ^= 1;
    let lines = format!(
        "— PeterNeumann {}\n— PeterNeumanm {}\n{PETER_SIG}",
        STANDARD.encode(&other_id),
        STANDARD.encode(&bad)
    );
    let n = open_note(format!("{TEXT}\n{lines}").as_bytes(), &[&peter]).unwrap();
    assert_eq!(n.verified.len(), 1);
    assert_eq!(n.unknown.len(), 2);
    // A known key's bad signature rejects the note, even next to a good one
    // from the same key (Go would skip the repeat; the spec says MUST verify).
    let msg = format!("{TEXT}\n{PETER_SIG}— PeterNeumann {}\n", STANDARD.encode(&bad));
    assert_eq!(
        open_note(msg.as_bytes(), &[&peter]),
        Err(NoteError::InvalidSignature { name: "PeterNeumann".into(), key_id: 0xc74f20a3 })
    );
    // Go's TestOpen: a signature with "ABCD" spliced in.
    let spliced = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(matches!(open_note(spliced.as_bytes(), &[&peter]), Err(NoteError::InvalidSignature { .. })));
}

#[test]
fn sixteen_signatures_accepted_cap_enforced() {
    let peter = vk(PETER_VKEY);
    let signers: Vec<SignerKey> = (0..16)
        .map(|i| {
            SignerKey::from_seed(&format!("example.com/s{i}"), SIG_TYPE_ED25519, &[i as u8; 32]).unwrap()
        })
        .collect();
    let refs: Vec<&dyn NoteSigner> = signers.iter().map(|s| s as &dyn NoteSigner).collect();
    let msg = sign_note(TEXT, &refs).unwrap();
    let vks: Vec<VerifierKey> = signers.iter().map(|s| s.verifier()).collect();
    let vrefs: Vec<&dyn NoteVerifier> = vks.iter().map(|v| v as &dyn NoteVerifier).collect();
    assert_eq!(open_note(&msg, &vrefs).unwrap().verified.len(), 16);
    // 16 unknown signatures plus one known.
    let mut with_peter = msg.clone();
    with_peter.extend_from_slice(PETER_SIG.as_bytes());
    let n = open_note(&with_peter, &[&peter]).unwrap();
    assert_eq!((n.verified.len(), n.unknown.len()), (1, 16));
    // MAX_SIGNATURES accepted, one more rejected (count checked first).
    let at_cap = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
    assert!(open_note(at_cap.as_bytes(), &[&peter]).is_ok());
    let over = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
    assert_eq!(Note::parse(over.as_bytes()), Err(NoteError::TooManySignatures));
    let over_garbage = format!("{TEXT}\n{}", "— a !!!\n".repeat(MAX_SIGNATURES + 1));
    assert_eq!(Note::parse(over_garbage.as_bytes()), Err(NoteError::TooManySignatures));
}

#[test]
fn malformed_notes_rejected() {
    let peter = vk(PETER_VKEY);
    let good_b64 = &PETER_SIG["— PeterNeumann ".len()..PETER_SIG.len() - 1];
    // Same bytes but the last data character has non-zero trailing bits.
    let noncanonical = {
        let mut s = good_b64.to_string();
        let last = s.len() - 2; // before the single '='
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let pos = alphabet.iter().position(|&c| c == s.as_bytes()[last]).unwrap();
        assert_eq!(pos & 3, 0, "canonical encoding has zero trailing bits");
        let c = alphabet[pos | 1] as char;
        s.replace_range(last..last + 1, &c.to_string());
        s
    };
    let oversize = format!("{}\n\n{PETER_SIG}", "a".repeat(MAX_NOTE_SIZE));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text only", TEXT.into()),
        ("blank line, no signatures", format!("{TEXT}\n").into()),
        ("no final newline", format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]).into()),
        ("leading control char", format!("\x01{TEXT}\n{PETER_SIG}").into()),
        ("carriage return", format!("{}\r\n\n{PETER_SIG}", &TEXT[..TEXT.len() - 1]).into()),
        ("tab in text", format!("a\tb\n\n{PETER_SIG}").into()),
        ("invalid UTF-8", [b"\xff".as_slice(), format!("{TEXT}\n{PETER_SIG}").as_bytes()].concat()),
        ("space in name", format!("{TEXT}\n— Bad Name {good_b64}\n").into()),
        ("plus in name", format!("{TEXT}\n— Peter+Neumann {good_b64}\n").into()),
        ("NBSP in name", format!("{TEXT}\n— Peter\u{a0}Neumann {good_b64}\n").into()),
        ("empty name", format!("{TEXT}\n—  {good_b64}\n").into()),
        ("unexpected line", format!("{TEXT}\n{PETER_SIG}Unexpected line.\n").into()),
        ("hyphen not em dash", format!("{TEXT}\n- PeterNeumann {good_b64}\n").into()),
        ("en dash", format!("{TEXT}\n– PeterNeumann {good_b64}\n").into()),
        ("no space after dash", format!("{TEXT}\n—PeterNeumann {good_b64}\n").into()),
        ("bad base64", format!("{TEXT}\n— PeterNeumann {good_b64}!\n").into()),
        ("missing padding", format!("{TEXT}\n— PeterNeumann {}\n", good_b64.trim_end_matches('=')).into()),
        ("non-canonical base64", format!("{TEXT}\n— PeterNeumann {noncanonical}\n").into()),
        ("url-safe base64", format!("{TEXT}\n— PeterNeumann {}\n", good_b64.replace('/', "_")).into()),
        ("signature too short", format!("{TEXT}\n— PeterNeumann AAAAAA==\n").into()),
        ("empty signature", format!("{TEXT}\n— PeterNeumann \n").into()),
        ("double space", format!("{TEXT}\n— PeterNeumann  {good_b64}\n").into()),
        ("trailing space", format!("{TEXT}\n— PeterNeumann {good_b64} \n").into()),
        ("two blank lines, no signatures", format!("{TEXT}\n\n").into()),
        ("oversize", oversize.into()),
    ];
    for (what, msg) in &cases {
        let err = open_note(msg, &[&peter]).expect_err(what);
        assert!(matches!(err, NoteError::Malformed(_) | NoteError::TooLarge { .. }), "{what}: {err:?}");
    }
    // A blank line between signature lines moves the split: the first line
    // becomes part of the text, so the remaining signature no longer verifies.
    let moved = format!("{TEXT}\n{PETER_SIG}\n{PETER_SIG}");
    assert_eq!(Note::parse(moved.as_bytes()).unwrap().text, format!("{TEXT}\n{PETER_SIG}"));
    assert!(matches!(open_note(moved.as_bytes(), &[&peter]), Err(NoteError::InvalidSignature { .. })));
    // The non-canonical spelling decodes (leniently) to the same bytes.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    assert_eq!(lenient.decode(&noncanonical).unwrap(), STANDARD.decode(good_b64).unwrap());
}

#[test]
fn c2sp_signed_note_examples() {
    // signed-note.md example (no key published): parses, text keeps its
    // inner empty line, split is at the last blank line.
    let msg = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
    let n = Note::parse(msg.as_bytes()).unwrap();
    assert_eq!(
        n.text,
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    );
    assert_eq!(n.signatures[0].name, "quasimodo.example/salvatore");
    assert_eq!(n.signatures[0].key_id, 0x367ba04b);
    assert_eq!(n.signatures[0].signature.len(), 64);
    assert_eq!(n.to_bytes().unwrap(), msg.as_bytes());
    // Verifier-key test vector quoted by tlog_scales as the signed-note test
    // vector: key, parsed fields, signature.
    let v = vk("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k");
    assert_eq!(v.sig_type(), SIG_TYPE_ED25519);
    assert_eq!(
        hex::encode(v.public_key()),
        "e932791ae6e7a840a46164c904786426d5e7821dd8b29a00d61cae72afdd4da4"
    );
    let signed = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    assert_eq!(open_note(signed.as_bytes(), &[&v]).unwrap().note.text, "This is an example message.\n");
}

const ARCHE: &str = "arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n\n\
— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n\
— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n\
— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n\
— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n\
— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n\
— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n";
const ARCHE_LOG: &str =
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f";
const REMORA: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";

#[test]
fn real_checkpoint_with_independent_cosignatures() {
    // A production static-ct checkpoint (Go log, Go witnesses), as quoted by
    // the tlog_scales tests: log Ed25519 signature and a cosignature/v1 by
    // the remora witness (litewitness).
    let log = vk(ARCHE_LOG);
    let remora = vk(REMORA);
    assert_eq!(remora.sig_type(), SIG_TYPE_COSIGNATURE_V1);
    let opened = open_checkpoint(ARCHE.as_bytes(), &log).unwrap();
    assert_eq!(opened.checkpoint.size, 1432088532);
    let n = open_note(ARCHE.as_bytes(), &[&log, &remora]).unwrap();
    assert_eq!(n.verified.len(), 2);
    assert_eq!(n.verified[1].name, "remora.n621.de");
    assert_eq!(n.verified[1].timestamp, Some(0x6a12_2120));
    let cv = CosignatureVerifier::new(remora.clone()).unwrap();
    let via_wrapper = open_note(ARCHE.as_bytes(), &[&cv]).unwrap();
    assert_eq!(via_wrapper.verified[0].timestamp, Some(0x6a12_2120));
    // Clobbering the size breaks both.
    let clobbered = ARCHE.replacen("1432088532", "42", 1);
    assert!(matches!(open_note(clobbered.as_bytes(), &[&remora]), Err(NoteError::InvalidSignature { .. })));
    assert!(open_checkpoint(clobbered.as_bytes(), &log).is_err());
    // A 0x04 key never verifies as 0x01 and vice versa: same bytes, other ID.
    let as_plain = VerifierKey::new("remora.n621.de", SIG_TYPE_ED25519, remora.public_key()).unwrap();
    assert_ne!(as_plain.key_id(), remora.key_id());
    assert_eq!(open_note(ARCHE.as_bytes(), &[&as_plain]), Err(NoteError::UnverifiedNote));
}

#[test]
fn cosignature_spec_example_and_timestamps() {
    // tlog-cosignature.md example: the witness line's timestamp is the
    // "time 1679315147" of the spec's signed-message example.
    let line = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";
    let sig = custody_standards::note::NoteSignature::from_line(line).unwrap();
    assert_eq!(sig.key_id, 0x8d66cf3f);
    assert_eq!(cosignature_timestamp(&sig.signature), Some(1679315147));
    // transparency-dev/formats note_cosigv1_test.go TestCoSigV1Timestamp.
    let raw = STANDARD.decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==").unwrap();
    assert_eq!(cosignature_timestamp(&raw[4..]), Some(1727964367));
    let plain = STANDARD
        .decode(
            "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=",
        )
        .unwrap();
    assert_eq!(cosignature_timestamp(&plain[4..]), None);
    // The exact message of the spec.
    let cp = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    assert_eq!(
        signed_message(cp, 1679315147).unwrap(),
        format!("cosignature/v1\ntime 1679315147\n{cp}").into_bytes()
    );
    assert_eq!(signed_message(cp, 0).unwrap(), format!("cosignature/v1\ntime 0\n{cp}").into_bytes());
    let c = Checkpoint::parse(cp).unwrap();
    assert_eq!((c.origin.as_str(), c.size), ("example.com/behind-the-sofa", 20852163));
}

#[test]
fn cosign_round_trip_and_timestamp_bounds() {
    let log = SignerKey::from_seed("example.com/log", SIG_TYPE_ED25519, &[1; 32]).unwrap();
    let w = CosignatureSigner::from_seed("witness.example/w1", &[2; 32]).unwrap();
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size: 5,
        root: Hash([9; 32]),
        extensions: vec!["ext one".into()],
    };
    let mut msg = sign_checkpoint(&cp, &log).unwrap();
    let max = i64::MAX as u64;
    msg.extend_from_slice(cosign(&w, &cp, max).unwrap().as_bytes());
    let wv = w.verifier();
    let n = open_note(&msg, &[&log.verifier(), &wv]).unwrap();
    assert_eq!(n.verified[1].timestamp, Some(max));
    assert_eq!(cosign(&w, &cp, max + 1), Err(CosignatureError::Timestamp(max + 1)));
    assert!(w.at(max + 1).is_err());
    // Hand-made signature with timestamp 2^63 that is otherwise well signed:
    // rejected on verify.
    let text = cp.to_text().unwrap();
    let mut m = format!("cosignature/v1\ntime {}\n", max + 1).into_bytes();
    m.extend_from_slice(text.as_bytes());
    let mut sig = (max + 1).to_be_bytes().to_vec();
    sig.extend_from_slice(&w.key().sign_ed25519(&m));
    assert!(!wv.verify(text.as_bytes(), &sig));
    // The cosignature covers extension lines.
    let tampered = String::from_utf8(msg.clone()).unwrap().replacen("ext one", "ext two", 1);
    assert!(open_note(tampered.as_bytes(), &[&wv]).is_err());
    // Through the NoteSigner adapter, same bytes as `cosign`.
    let at = w.at(77).unwrap();
    let via_note = sign_note(&text, &[&at]).unwrap();
    assert_eq!(via_note, format!("{text}\n{}", cosign(&w, &cp, 77).unwrap()).into_bytes());
    // A cosigner refuses non-checkpoints; a 0x04 key cannot sign plain notes.
    assert!(matches!(sign_note("hello\n", &[&at]), Err(NoteError::Signer { .. })));
    assert!(matches!(sign_note(&text, &[w.key()]), Err(NoteError::Signer { .. })));
    assert!(matches!(
        CosignatureSigner::new(log.clone()),
        Err(CosignatureError::Key(KeyError::WrongType { .. }))
    ));
}

#[test]
fn checkpoint_origin_rule() {
    let log = SignerKey::from_seed("example.com/log", SIG_TYPE_ED25519, &[1; 32]).unwrap();
    let other = SignerKey::from_seed("example.com/other", SIG_TYPE_ED25519, &[1; 32]).unwrap();
    let cp =
        Checkpoint { origin: "example.com/log".into(), size: 0, root: Hash([0; 32]), extensions: vec![] };
    assert!(matches!(sign_checkpoint(&cp, &other), Err(CheckpointError::OriginMismatch { .. })));
    let msg = sign_note(&cp.to_text().unwrap(), &[&other]).unwrap();
    assert!(matches!(open_checkpoint(&msg, &other.verifier()), Err(CheckpointError::OriginMismatch { .. })));
    // The relaxed form accepts it.
    assert_eq!(open_checkpoint_with(&msg, &[&other.verifier()]).unwrap().checkpoint, cp);
    let good = sign_checkpoint(&cp, &log).unwrap();
    assert_eq!(open_checkpoint(&good, &log.verifier()).unwrap().checkpoint, cp);
}

#[test]
fn checkpoint_strict_parsing() {
    let root = Hash([7; 32]).to_base64();
    let ok = format!("o\n1\n{root}\n");
    assert_eq!(Checkpoint::parse(&ok).unwrap().size, 1);
    assert_eq!(Checkpoint::parse(&format!("o\n0\n{root}\n")).unwrap().size, 0);
    assert_eq!(Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n")).unwrap().size, u64::MAX);
    let c = Checkpoint::parse(&format!("a b+c\n2\n{root}\nx\ny y\n")).unwrap();
    assert_eq!(c.extensions, vec!["x", "y y"]);
    let noncanonical_root = {
        let mut r = root.clone();
        r.replace_range(42..43, "x");
        r
    };
    let bad = [
        format!("o\n01\n{root}\n"),
        format!("o\n00\n{root}\n"),
        format!("o\n+1\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n 1\n{root}\n"),
        format!("o\n1 \n{root}\n"),
        format!("o\n0x1\n{root}\n"),
        format!("o\n\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        format!("\n1\n{root}\n"),
        "o\n1\nAAAA\n".to_string(),
        format!("o\n1\n{}\n", root.trim_end_matches('=')),
        format!("o\n1\n{noncanonical_root}\n"),
        format!("o\n1\n{root} \n"),
        format!("o\n1\n{root}\n\n"),
        format!("o\n1\n{root}\next\n\nmore\n"),
        format!("o\n1\n{root}"),
        "o\n1\n".to_string(),
        String::new(),
        format!("o\r\n1\n{root}\n"),
    ];
    for b in &bad {
        assert!(Checkpoint::parse(b).is_err(), "{b:?}");
    }
    let empty_origin = Checkpoint { origin: String::new(), size: 1, root: Hash([0; 32]), extensions: vec![] };
    assert!(empty_origin.to_text().is_err());
    let newline_ext =
        Checkpoint { origin: "o".into(), size: 1, root: Hash([0; 32]), extensions: vec!["a\nb".into()] };
    assert!(newline_ext.to_text().is_err());
}

proptest! {
    #[test]
    fn checkpoint_round_trips(
        origin in "[a-z./+ é]{1,30}",
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        extensions in proptest::collection::vec("[ -~]{1,20}", 0..4),
    ) {
        let cp = Checkpoint { origin, size, root: Hash(root), extensions };
        let text = cp.to_text().unwrap();
        prop_assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
    }

    #[test]
    fn note_round_trips(
        lines in proptest::collection::vec("[^\\x00-\\x1f]{0,30}", 1..5),
        sigs in proptest::collection::vec(("[a-z0-9./—]{1,12}", any::<u32>(), proptest::collection::vec(any::<u8>(), 1..80)), 1..20),
    ) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let signatures = sigs
            .into_iter()
            .map(|(name, key_id, signature)| custody_standards::note::NoteSignature { name, key_id, signature })
            .collect();
        let note = Note { text, signatures };
        let bytes = note.to_bytes().unwrap();
        prop_assert_eq!(Note::parse(&bytes).unwrap(), note);
    }
}
