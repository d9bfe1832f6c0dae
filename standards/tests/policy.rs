//! C2SP tlog-policy parsing and checkpoint verification against quorums.

use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::cosignature::{cosign, CosignatureSigner};
use custody_standards::hash::Hash;
use custody_standards::keys::{KeyError, SignerKey, SIG_TYPE_ED25519};
use custody_standards::note::NoteError;
use custody_standards::policy::{Member, Policy, PolicyError};

const ORIGIN: &str = "example.com/log";

fn log_key(seed: u8) -> SignerKey {
    SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[seed; 32]).unwrap()
}

fn witness(i: u8) -> CosignatureSigner {
    CosignatureSigner::from_seed(&format!("witness.example/w{i}"), &[100 + i; 32]).unwrap()
}

fn checkpoint() -> Checkpoint {
    Checkpoint { origin: ORIGIN.into(), size: 10, root: Hash([3; 32]), extensions: vec![] }
}

/// The log's signed checkpoint cosigned by witnesses `ids` at time 1000 + id.
fn signed_by(ids: &[u8]) -> Vec<u8> {
    let cp = checkpoint();
    let mut msg = sign_checkpoint(&cp, &log_key(1)).unwrap();
    for &i in ids {
        msg.extend_from_slice(cosign(&witness(i), &cp, 1000 + i as u64).unwrap().as_bytes());
    }
    msg
}

/// The spec's example structure with real keys: X1..X3 are witnesses 1..3,
/// Y1..Y3 are witnesses 4..6.
fn spec_example() -> String {
    let w = |i: u8| witness(i).verifier().to_string();
    format!(
        "log {}\n\nwitness X1 {}\nwitness X2 {}\nwitness X3 {}\ngroup X-witnesses 2 X1 X2 X3\n\n\
         witness Y1 {}\nwitness Y2 {}\nwitness Y3 {}\ngroup Y-witnesses any Y1 Y2 Y3\n\n\
         group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n",
        log_key(1).verifier(),
        w(1),
        w(2),
        w(3),
        w(4),
        w(5),
        w(6)
    )
}

#[test]
fn spec_example_structure() {
    let p = Policy::parse(spec_example().as_bytes()).unwrap();
    assert_eq!(p.logs().len(), 1);
    assert_eq!(p.logs()[0].key.name(), ORIGIN);
    assert_eq!(
        p.witnesses().iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    );
    let g: Vec<(&str, usize, usize)> =
        p.groups().iter().map(|g| (g.name.as_str(), g.threshold, g.members.len())).collect();
    assert_eq!(g, [("X-witnesses", 2, 3), ("Y-witnesses", 1, 3), ("X-and-Y", 2, 2)]);
    assert_eq!(p.groups()[2].members, [Member::Group(0), Member::Group(1)]);
    assert_eq!(p.quorum(), Some(Member::Group(2)));
    assert_eq!(p.member_name(Member::Group(2)), "X-and-Y");
}

#[test]
fn spec_example_quorum_evaluation() {
    let p = Policy::parse(spec_example().as_bytes()).unwrap();
    // Two X and one Y: met.
    let v = p.verify_checkpoint(&signed_by(&[1, 3, 5])).unwrap();
    assert_eq!(v.checkpoint, checkpoint());
    assert_eq!(v.log_key_name, ORIGIN);
    assert_eq!(v.cosigners, [("X1".to_string(), 1001), ("X3".to_string(), 1003), ("Y2".to_string(), 1005)]);
    assert_eq!(v.satisfied, ["X1", "X3", "Y2", "X-witnesses", "Y-witnesses", "X-and-Y"]);
    // One X only, or Xs without Y, or Ys only: not met.
    for ids in [&[1, 4][..], &[1, 2, 3], &[4, 5, 6], &[]] {
        assert_eq!(p.verify_checkpoint(&signed_by(ids)), Err(PolicyError::QuorumNotMet), "{ids:?}");
    }
    // Cosignatures from witnesses outside the policy are ignored.
    assert_eq!(p.verify_checkpoint(&signed_by(&[7, 8, 9])), Err(PolicyError::QuorumNotMet));
    assert!(p.verify_checkpoint(&signed_by(&[9, 2, 1, 6])).is_ok());
    // Direct evaluation of every subset agrees with the rule.
    for mask in 0u32..64 {
        let cosigned: Vec<bool> = (0..6).map(|i| mask & (1 << i) != 0).collect();
        let xs = cosigned[..3].iter().filter(|b| **b).count();
        let ys = cosigned[3..].iter().filter(|b| **b).count();
        assert_eq!(p.evaluate(&cosigned).0, xs >= 2 && ys >= 1, "{mask:b}");
    }
}

#[test]
fn quorum_none_single_witness_and_failures() {
    let log = log_key(1).verifier();
    let none =
        Policy::parse(format!("# no witnesses\nlog {log} https://log.example/\nquorum none\n").as_bytes())
            .unwrap();
    assert_eq!(none.logs()[0].url.as_deref(), Some("https://log.example/"));
    let v = none.verify_checkpoint(&signed_by(&[])).unwrap();
    assert!(v.cosigners.is_empty() && v.satisfied.is_empty());

    let w1 = witness(1).verifier();
    let single =
        Policy::parse(format!("log {log}\nwitness W1 {w1} https://w1.example/\nquorum W1\n").as_bytes())
            .unwrap();
    assert_eq!(single.witnesses()[0].url.as_deref(), Some("https://w1.example/"));
    assert!(single.verify_checkpoint(&signed_by(&[1])).is_ok());
    assert_eq!(single.verify_checkpoint(&signed_by(&[2])), Err(PolicyError::QuorumNotMet));

    // Not signed by the policy log (other key, same origin): no known log
    // signature, only the witness verifies.
    let other =
        Policy::parse(format!("log {}\nwitness W1 {w1}\nquorum W1\n", log_key(2).verifier()).as_bytes())
            .unwrap();
    assert_eq!(other.verify_checkpoint(&signed_by(&[1])), Err(PolicyError::NoLogSignature));
    assert_eq!(other.verify_checkpoint(&signed_by(&[])), Err(PolicyError::Note(NoteError::UnverifiedNote)));
    // Origin unknown to the policy.
    let foreign = SignerKey::from_seed("example.com/foreign", SIG_TYPE_ED25519, &[1; 32]).unwrap();
    let p = Policy::parse(format!("log {}\nquorum none\n", foreign.verifier()).as_bytes()).unwrap();
    assert_eq!(p.verify_checkpoint(&signed_by(&[])), Err(PolicyError::UnknownLog(ORIGIN.into())));
    // A bad cosignature from a policy witness rejects the whole note.
    let mut msg = signed_by(&[1]);
    let n = msg.len();
    msg[n - 5] = if msg[n - 5] == b'A' { b'B' } else { b'A' };
    assert!(matches!(
        single.verify_checkpoint(&msg),
        Err(PolicyError::Note(NoteError::InvalidSignature { .. }))
    ));
}

#[test]
fn k_of_n_and_nested_groups() {
    let log = log_key(1).verifier();
    let w = |i: u8| witness(i).verifier();
    let text = format!(
        "log {log}\nwitness a {}\nwitness b {}\nwitness c {}\nwitness d {}\n\
         group ab any a b\ngroup three 3 a b c d\ngroup top 2 ab three d\nquorum top\n",
        w(1),
        w(2),
        w(3),
        w(4)
    );
    let p = Policy::parse(text.as_bytes()).unwrap();
    let cases: [(&[u8], bool); 6] = [
        (&[1, 4], true),
        (&[1, 2, 3], true),
        (&[2], false),
        (&[4], false),
        (&[3, 4], false),
        (&[1, 2, 3, 4], true),
    ];
    for (ids, want) in cases {
        assert_eq!(p.verify_checkpoint(&signed_by(ids)).is_ok(), want, "{ids:?}");
    }
}

#[test]
fn policy_parse_rejections() {
    let log = log_key(1).verifier().to_string();
    let log2 = log_key(2).verifier().to_string();
    let w1 = witness(1).verifier().to_string();
    let w2 = witness(2).verifier().to_string();
    // Same public key as w1 under another name (duplicate underlying key).
    let w1_renamed =
        CosignatureSigner::from_seed("other.example/name", &[101; 32]).unwrap().verifier().to_string();
    let log_same_key_other_name =
        SignerKey::from_seed("example.com/b", SIG_TYPE_ED25519, &[1; 32]).unwrap().verifier().to_string();
    let cases: Vec<(&str, String)> = vec![
        ("no quorum", format!("log {log}\n")),
        ("two quorums", "quorum none\nquorum none\n".into()),
        ("forward reference", format!("quorum W1\nwitness W1 {w1}\n")),
        ("group forward reference", format!("witness a {w1}\ngroup g any a b\nwitness b {w2}\nquorum g\n")),
        ("undefined quorum", "quorum nobody\n".into()),
        ("none as member", format!("witness a {w1}\ngroup g any a none\nquorum g\n")),
        ("none as name", format!("witness none {w1}\nquorum none\n")),
        ("group named none", format!("witness a {w1}\ngroup none any a\nquorum none\n")),
        ("member twice", format!("witness a {w1}\ngroup g 1 a a\nquorum g\n")),
        ("k zero", format!("witness a {w1}\ngroup g 0 a\nquorum g\n")),
        ("k above n", format!("witness a {w1}\ngroup g 2 a\nquorum g\n")),
        ("k leading zero", format!("witness a {w1}\ngroup g 01 a\nquorum g\n")),
        ("k plus", format!("witness a {w1}\ngroup g +1 a\nquorum g\n")),
        ("empty group", format!("witness a {w1}\ngroup g any\nquorum none\n")),
        ("duplicate name", format!("witness a {w1}\nwitness a {w2}\nquorum a\n")),
        ("group reuses witness name", format!("witness a {w1}\ngroup a any a\nquorum a\n")),
        ("duplicate witness key", format!("witness a {w1}\nwitness b {w1_renamed}\nquorum a\n")),
        ("duplicate log key", format!("log {log}\nlog {log_same_key_other_name}\nquorum none\n")),
        ("witness key as log", format!("log {w1}\nquorum none\n")),
        ("log key as witness", format!("witness a {log2}\nquorum a\n")),
        ("bad vkey", "log example.com+00000000+AAAA\nquorum none\n".into()),
        ("unknown keyword", "logs x\nquorum none\n".into()),
        ("extra field", format!("log {log} https://x/ extra\nquorum none\n")),
        ("trailing comment", format!("log {log} https://x/ # c\nquorum none\n")),
        ("quorum extra", "quorum none none\n".into()),
        ("carriage return", "quorum none\r\n".into()),
        ("vertical tab", "quorum\x0bnone\n".into()),
        ("DEL", "quorum none\x7f\n".into()),
        ("no final newline", "quorum none".into()),
        ("uppercase keyword", "QUORUM none\n".into()),
    ];
    for (what, text) in &cases {
        assert!(Policy::parse(text.as_bytes()).is_err(), "{what}: accepted");
    }
    assert!(matches!(
        Policy::parse(format!("log {w1}\nquorum none\n").as_bytes()),
        Err(PolicyError::Key { line: 1, source: KeyError::WrongType { .. } })
    ));
    assert_eq!(Policy::parse(b"\n\n"), Err(PolicyError::MissingQuorum));
    assert_eq!(Policy::parse(&vec![b'#'; 70 * 1024]), Err(PolicyError::TooLarge));
}

#[test]
fn policy_syntax_accepted() {
    let w1 = witness(1).verifier().to_string();
    // Tabs and spaces, leading/trailing whitespace, indented comments,
    // non-ASCII octets in comments and names (names compared as octets),
    // definitions after the quorum line.
    let text =
        format!("\t# comment \u{e9}\n  witness \tK {w1}  \n   \ngroup \u{212a} any K\t\nquorum \u{212a}\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"# latin-1 \xe9 in a comment\n");
    bytes.extend_from_slice(format!("witness late {}\n", witness(2).verifier()).as_bytes());
    let p = Policy::parse(&bytes).unwrap();
    assert_eq!(p.groups()[0].name, "\u{212a}");
    assert_ne!(p.groups()[0].name, "K");
    assert_eq!(p.witnesses().len(), 2);
    assert_eq!(p.quorum(), Some(Member::Group(0)));
    // 64 witnesses, 64 groups: supported (spec recommends at least 32).
    let mut big = String::new();
    for i in 0..64u8 {
        let w = CosignatureSigner::from_seed(&format!("w{i}.example"), &[i; 32]).unwrap();
        big.push_str(&format!("witness w{i} {}\ngroup g{i} any w{i}\n", w.verifier()));
    }
    big.push_str("quorum g63\n");
    assert_eq!(Policy::parse(big.as_bytes()).unwrap().groups().len(), 64);
}
