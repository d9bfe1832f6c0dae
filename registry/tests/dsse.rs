//! DSSE envelopes: the spec's PAE example, known-answer Ed25519 vectors,
//! and every rejection of the strict envelope parser.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use custody_registry::actor_key::{ActorSigner, KeyId};
use custody_registry::dsse::{
    pae, verify_batch, verify_each, BatchItem, DsseError, Envelope, MAX_ENVELOPE_SIZE, MAX_SIGNATURES,
};
use custody_registry::names::ActorName;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// secure-systems-lab/dsse protocol.md, "Test Vectors".
#[test]
fn pae_matches_the_spec_example() {
    assert_eq!(
        pae(b"http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
}

/// secure-systems-lab/dsse testvectors/vectors.json: PAE bytes for the
/// in-toto statement, a non-ASCII payload type (LEN counts bytes) and an
/// empty body (trailing space), and the Ed25519 signatures of key "A"
/// (RFC 8032 test 1 seed) over them. Ed25519 is deterministic, so signing
/// must reproduce the vector's signature bytes exactly.
#[test]
fn pae_and_ed25519_vectors() {
    let seed: [u8; 32] =
        unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().unwrap();
    let a = ActorSigner::from_seed(&ActorName::new("a").unwrap(), &seed);
    assert_eq!(
        a.public().public_key().to_vec(),
        unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    );
    let body = STANDARD.decode("eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==").unwrap();
    let cases: [(&str, &[u8], &str, &str); 3] = [
        (
            "application/vnd.in-toto+json",
            &body,
            "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203433207b225f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d",
            "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA==",
        ),
        (
            "application/vnd.exämple+json",
            &body,
            "445353457631203239206170706c69636174696f6e2f766e642e6578c3a46d706c652b6a736f6e203433207b225f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d",
            "xmSk/ug66ysT7ayhkCIjhAq42zgZXSsEWuzUaNL7w2eGAdF/NU6/fRXPtmfN+5DNSAs5/i2lUnHjbbjPsu0tAw==",
        ),
        (
            "application/vnd.in-toto+json",
            b"",
            "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203020",
            "gSggCAaTLTYyRH6FIDBem6meyIynsYy8RTHVzwx9tnTb7Bg/1jMWnuVgI/gffqmbsC2VX5/jHfkkDqsj7CDbDg==",
        ),
    ];
    for (ptype, body, pae_hex, sig) in cases {
        let m = pae(ptype.as_bytes(), body);
        assert_eq!(m, unhex(pae_hex), "{ptype}");
        assert_eq!(STANDARD.encode(a.sign(&m)), sig, "{ptype}");
        // The same signature in a Custody envelope verifies, and only for
        // the type it was made for.
        let env = Envelope {
            payload_type: ptype.to_owned(),
            payload: body.to_vec(),
            signatures: vec![custody_registry::dsse::EnvelopeSignature {
                keyid: a.key_id(),
                sig: STANDARD.decode(sig).unwrap().try_into().unwrap(),
            }],
        };
        let parsed = Envelope::parse(&env.to_json()).unwrap();
        assert_eq!(parsed, env);
        parsed.verify(a.public()).unwrap();
        let mut swapped = parsed.clone();
        swapped.payload_type = "application/vnd.example.other+json".into();
        assert_eq!(swapped.verify(a.public()), Err(DsseError::BadSignature(a.key_id())));
    }
}

fn signer(n: &str) -> ActorSigner {
    ActorSigner::from_seed(&ActorName::new(n).unwrap(), &[n.len() as u8; 32])
}

fn good() -> (ActorSigner, Vec<u8>) {
    let s = signer("alice");
    let env = Envelope::sign("application/x.test", b"payload".to_vec(), &s);
    (s, env.to_json())
}

#[test]
fn sign_serialize_parse_verify() {
    let (s, bytes) = good();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with(
        "{\"payloadType\":\"application/x.test\",\"payload\":\"cGF5bG9hZA==\",\"signatures\":[{\"keyid\":\""
    ));
    let env = Envelope::parse(&bytes).unwrap();
    env.verify(s.public()).unwrap();
    assert_eq!(env.to_json(), bytes);
    let other = signer("bob");
    assert_eq!(env.verify(other.public()), Err(DsseError::NoSignatureForKey(other.key_id())));
    let mut tampered = env.clone();
    tampered.payload[0] ^= 1;
    assert_eq!(tampered.verify(s.public()), Err(DsseError::BadSignature(s.key_id())));
    // JSON escapes inside base64 strings are legal JSON and mean the same.
    let escaped = text.replacen("cGF5bG9hZA==", "cGF5bG9\\u0068ZA==", 1);
    assert_eq!(Envelope::parse(escaped.as_bytes()).unwrap(), env);
    // Whitespace and field order are free (the log keeps the bytes).
    let spaced =
        text.replace("{\"payloadType\"", "{ \"payloadType\" ").replace(",\"payload\":", ",\n \"payload\" : ");
    Envelope::parse(spaced.as_bytes()).unwrap().verify(s.public()).unwrap();
}

fn with(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let t = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(t.contains(from), "{from}");
    t.replacen(from, to, 1).into_bytes()
}

#[test]
fn every_rejection() {
    let (s, bytes) = good();
    let sig_b64 = STANDARD.encode(Envelope::parse(&bytes).unwrap().signatures[0].sig);
    let keyid = s.key_id().to_string();
    let malformed = |b: &[u8]| matches!(Envelope::parse(b), Err(DsseError::Malformed(_)));
    // Size cap before parsing.
    let big = vec![b' '; MAX_ENVELOPE_SIZE + 1];
    assert_eq!(Envelope::parse(&big), Err(DsseError::TooLarge { size: MAX_ENVELOPE_SIZE + 1 }));
    // JSON shape.
    assert!(malformed(b""));
    assert!(malformed(b"[]"));
    assert!(malformed(&with(&bytes, "\"payloadType\"", "\"payloadtype\"")), "unknown field");
    assert!(malformed(&with(&bytes, "{\"payloadType\"", "{\"extra\":1,\"payloadType\"")), "unknown field");
    assert!(malformed(&with(&bytes, "\"payload\":", "\"payload\":\"AA==\",\"payload\":")), "duplicate field");
    assert!(malformed(&with(&bytes, "\"keyid\":", "\"name\":\"x\",\"keyid\":")), "unknown signature field");
    assert!(malformed(&with(&bytes, ",\"payload\":\"cGF5bG9hZA==\"", "")), "missing payload");
    assert!(malformed(&[bytes.clone(), b"x".to_vec()].concat()), "trailing data");
    assert!(malformed(&with(&bytes, "\"cGF5bG9hZA==\"", "null")));
    // payloadType.
    assert_eq!(Envelope::parse(&with(&bytes, "application/x.test", "")), Err(DsseError::PayloadType));
    let long = "t".repeat(257);
    assert_eq!(Envelope::parse(&with(&bytes, "application/x.test", &long)), Err(DsseError::PayloadType));
    // Base64: stray bits, missing padding, URL alphabet.
    assert_eq!(
        Envelope::parse(&with(&bytes, "cGF5bG9hZA==", "cGF5bG9hZB==")),
        Err(DsseError::Base64("payload"))
    );
    assert_eq!(
        Envelope::parse(&with(&bytes, "cGF5bG9hZA==", "cGF5bG9hZA")),
        Err(DsseError::Base64("payload"))
    );
    assert_eq!(Envelope::parse(&with(&bytes, "cGF5bG9hZA==", "-_-_Pj8=")), Err(DsseError::Base64("payload")));
    let url_sig = sig_b64.replace('+', "-").replace('/', "_");
    if url_sig != sig_b64 {
        assert_eq!(Envelope::parse(&with(&bytes, &sig_b64, &url_sig)), Err(DsseError::Base64("sig")));
    }
    assert_eq!(
        Envelope::parse(&with(&bytes, &sig_b64, &format!("{}A", &sig_b64[..87]))),
        Err(DsseError::Base64("sig"))
    );
    // Signature length and count.
    assert_eq!(Envelope::parse(&with(&bytes, &sig_b64, "AAAA")), Err(DsseError::SignatureLength(3)));
    assert_eq!(Envelope::parse(&with(&bytes, &sig_b64, "AAAA!")), Err(DsseError::Base64("sig")));
    let sig65 = STANDARD.encode([0u8; 65]);
    assert_eq!(Envelope::parse(&with(&bytes, &sig_b64, &sig65)), Err(DsseError::SignatureLength(65)));
    let start = bytes.windows(14).position(|w| w == b"\"signatures\":[").unwrap() + 14;
    let one = String::from_utf8(bytes[start..bytes.len() - 2].to_vec()).unwrap();
    let n_sigs = |n: usize| with(&bytes, &one, &vec![one.clone(); n].join(","));
    assert_eq!(Envelope::parse(&n_sigs(0)), Err(DsseError::SignatureCount(0)));
    assert_eq!(Envelope::parse(&n_sigs(MAX_SIGNATURES)).unwrap().signatures.len(), MAX_SIGNATURES);
    assert_eq!(
        Envelope::parse(&n_sigs(MAX_SIGNATURES + 1)),
        Err(DsseError::SignatureCount(MAX_SIGNATURES + 1))
    );
    // Key ID.
    assert_eq!(Envelope::parse(&with(&bytes, &keyid, "A")), Err(DsseError::KeyId));
    assert_eq!(Envelope::parse(&with(&bytes, &keyid, &keyid.to_uppercase())), Err(DsseError::KeyId));
}

#[test]
fn batch_verification_agrees_with_single() {
    let signers: Vec<ActorSigner> =
        (0..8).map(|i| ActorSigner::from_seed(&ActorName::new("x").unwrap(), &[i + 1; 32])).collect();
    let envs: Vec<Envelope> =
        signers.iter().enumerate().map(|(i, s)| Envelope::sign("t/x", vec![i as u8; i + 1], s)).collect();
    let paes: Vec<Vec<u8>> = envs.iter().map(Envelope::pae).collect();
    let items: Vec<BatchItem> = envs
        .iter()
        .zip(&paes)
        .zip(&signers)
        .map(|((e, m), s)| BatchItem { message: m, sig: &e.signatures[0].sig, key: s.public() })
        .collect();
    assert!(verify_batch(&items));
    assert!(verify_batch(&[]));
    assert_eq!(verify_each(&items), vec![true; 8]);
    let mut bad_sig = envs[3].signatures[0].sig;
    bad_sig[5] ^= 1;
    let mut bad = items.clone();
    bad[3].sig = &bad_sig;
    assert!(!verify_batch(&bad));
    let each = verify_each(&bad);
    assert_eq!(each.iter().filter(|&&ok| !ok).count(), 1);
    assert!(!each[3]);
    let _: KeyId = signers[0].key_id();
}
