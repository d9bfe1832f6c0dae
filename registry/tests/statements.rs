//! Statement payloads and leaves: a property round trip through the whole
//! client-to-log path, every parse rejection, and the worked example that
//! docs/protocol.md shows byte for byte.

use custody_registry::actor_key::ActorSigner;
use custody_registry::dsse::{DsseError, Envelope, MAX_ENVELOPE_SIZE};
use custody_registry::leaf::Leaf;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::events::*;
use custody_registry::statement::metadata::{Lineage, LineageRef, Metadata, StrictMap};
use custody_registry::statement::{
    Context, Event, Nonce, SignedStatement, Statement, StatementError, Text, PAYLOAD_TYPE,
};
use custody_registry::timestamp::{Timestamp, MAX_TIMESTAMP_SECS};
use custody_standards::hash::Hash;
use proptest::prelude::*;

fn alice() -> ActorSigner {
    ActorSigner::from_seed(&ActorName::new("alice").unwrap(), &[0x42; 32])
}

// ---- property round trip ------------------------------------------------

/// Printable text: no control or format characters, and no line or
/// paragraph separators, all of which free text refuses.
fn text() -> impl Strategy<Value = Text> {
    prop_oneof!["[ -~]{1,40}", "[^\\p{C}\\p{Zl}\\p{Zp}]{1,12}"].prop_map(|s: String| Text::new(&s).unwrap())
}
fn opt_text() -> impl Strategy<Value = Option<Text>> {
    proptest::option::of(text())
}
fn model() -> impl Strategy<Value = ModelName> {
    "[a-z0-9]{1,8}/[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?".prop_map(|s| ModelName::new(&s).unwrap())
}
fn version() -> impl Strategy<Value = Version> {
    "[A-Za-z0-9_][A-Za-z0-9._+-]{0,12}".prop_map(|s| Version::new(&s).unwrap())
}
fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(|b| Digest(Hash(b)))
}
fn actor() -> impl Strategy<Value = ActorName> {
    "[a-z0-9][a-z0-9._@-]{0,15}".prop_map(|s| ActorName::new(&s).unwrap())
}
fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![Just("*".to_owned()), "[a-z0-9]{1,6}/\\*", "[a-z0-9]{1,6}/[a-z0-9]{1,6}"]
        .prop_map(|s| Pattern::new(&s).unwrap())
}
fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Reader),
        Just(Role::Publisher),
        Just(Role::Maintainer),
        Just(Role::Approver),
        Just(Role::Admin)
    ]
}
fn lifecycle() -> impl Strategy<Value = Lifecycle> {
    prop_oneof![
        Just(Lifecycle::Development),
        Just(Lifecycle::Staging),
        Just(Lifecycle::Production),
        Just(Lifecycle::Deprecated),
        Just(Lifecycle::Archived)
    ]
}
fn lineage_refs() -> impl Strategy<Value = Vec<LineageRef>> {
    proptest::collection::btree_map(any::<[u8; 32]>(), any::<bool>(), 0..4).prop_map(|m| {
        m.into_iter().map(|(d, external)| LineageRef { digest: Digest(Hash(d)), external }).collect()
    })
}
fn metadata() -> impl Strategy<Value = Metadata> {
    (
        opt_text(),
        opt_text(),
        proptest::collection::btree_map(
            "[a-z0-9._/-]{1,10}",
            (-4000i32..4000).prop_map(|k| f64::from(k) / 4.0),
            0..4,
        ),
        proptest::collection::btree_map("[A-Za-z0-9]{1,10}", text(), 0..4),
    )
        .prop_map(|(framework, description, metrics, labels)| Metadata {
            framework,
            description,
            metrics: StrictMap(metrics),
            labels: StrictMap(labels),
        })
}
fn key_for(a: &ActorName, seed: u8) -> custody_registry::actor_key::ActorKey {
    ActorSigner::from_seed(a, &[seed; 32]).public().clone()
}

fn event() -> impl Strategy<Value = Event> {
    let publish =
        (model(), version(), digest(), any::<u64>(), metadata(), lineage_refs(), lineage_refs(), opt_text())
            .prop_map(|(name, version, digest, size, metadata, parents, datasets, pipeline)| {
                Event::Publish(Publish {
                    name,
                    version,
                    kind: [Kind::Model, Kind::Dataset, Kind::Other][(size % 3) as usize],
                    digest,
                    size,
                    media_type: MediaType::new("application/vnd.onnx+protobuf").unwrap(),
                    metadata,
                    lineage: Lineage { parents, datasets, pipeline, source_commit: None },
                })
            });
    prop_oneof![
        publish,
        (model(), version(), digest()).prop_map(|(name, version, digest)| Event::Access(Access {
            name,
            version,
            digest
        })),
        (model(), "[a-z]{1,8}", digest(), proptest::option::of(any::<u64>())).prop_map(
            |(name, t, digest, previous)| {
                Event::Tag(TagMove { name, tag: TagName::new(&t).unwrap(), digest, previous })
            }
        ),
        (model(), version(), lifecycle()).prop_map(|(name, version, to)| Event::Promote(Promote {
            name,
            version,
            to
        })),
        (model(), version()).prop_map(|(name, version)| Event::Approve(Approve { name, version })),
        (model(), version()).prop_map(|(name, version)| Event::Rollback(Rollback { name, version })),
        (actor(), any::<u8>(), role(), pattern()).prop_map(|(a, seed, role, pattern)| {
            Event::Grant(GrantRole { key: key_for(&a, seed), actor: a, role, pattern })
        }),
        (actor(), role(), pattern()).prop_map(|(actor, role, pattern)| Event::Revoke(RevokeRole {
            actor,
            role,
            pattern
        })),
        (actor(), any::<u8>())
            .prop_map(|(a, seed)| Event::RevokeKey(RevokeKey { key_id: key_for(&a, seed).id(), actor: a })),
        any::<u8>().prop_map(|seed| Event::Rotate(Rotate {
            new_key: key_for(&ActorName::new("alice").unwrap(), seed)
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// statement -> signed envelope -> leaf -> decode -> parse -> verify gives
    /// back the same statement, envelope bytes and receive time.
    #[test]
    fn statement_envelope_leaf_round_trip(
        secs in 0..=MAX_TIMESTAMP_SECS,
        nonce in any::<[u8; 16]>(),
        reason in text(),
        env in opt_text(),
        source in opt_text(),
        ev in event(),
        received in any::<u64>(),
    ) {
        let signer = alice();
        let ctx = Context { reason, environment: env, pipeline: None, source };
        let stmt = Statement::new(&signer, Timestamp::from_unix_secs(secs).unwrap(), Nonce(nonce), ctx, ev);
        let bytes = stmt.sign(&signer).unwrap();
        let leaf = Leaf::new(received, &bytes).unwrap().encode();
        let decoded = Leaf::decode(&leaf).unwrap();
        prop_assert_eq!(decoded.receive_time_ms, received);
        prop_assert_eq!(decoded.envelope, &bytes[..]);
        let signed = SignedStatement::parse(decoded.envelope).unwrap();
        prop_assert_eq!(&signed.statement, &stmt);
        signed.verify(signer.public()).unwrap();
        // Re-serialising reproduces the signed payload byte for byte.
        prop_assert_eq!(signed.statement.to_json(), signed.envelope.payload.clone());
        prop_assert_eq!(signed.envelope.to_json(), bytes);
    }
}

// ---- rejections ----------------------------------------------------------

const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn payload(event: &str) -> String {
    format!(
        r#"{{"schema":1,"actor":"alice","key_id":"{}","time":"2026-11-23T07:00:00Z","nonce":"00112233445566778899aabbccddeeff","context":{{"reason":"test"}},"event":{event}}}"#,
        alice().key_id()
    )
}

fn parse(p: &str) -> Result<Statement, StatementError> {
    Statement::parse(p.as_bytes())
}

fn invalid(p: &str, why: &str) {
    match parse(p) {
        Err(StatementError::Invalid(m)) => assert!(m.contains(why), "{why:?} not in {m:?}"),
        other => panic!("expected Invalid({why}), got {other:?} for {p}"),
    }
}

#[test]
fn valid_payloads_parse() {
    let access = format!(r#"{{"access":{{"name":"acme/m","version":"1","digest":"{D}"}}}}"#);
    let s = parse(&payload(&access)).unwrap();
    assert_eq!(s.event.action(), "access");
    // Key order and whitespace are free.
    let reordered = format!(
        "{{ \"event\" : {access},\n \"nonce\":\"00112233445566778899aabbccddeeff\", \"schema\":1, \"actor\":\"alice\", \"key_id\":\"{}\", \"time\":\"2026-11-23T07:00:00Z\", \"context\":{{\"reason\":\"test\"}} }}",
        alice().key_id()
    );
    assert_eq!(parse(&reordered).unwrap(), s);
    let tag = format!(r#"{{"tag":{{"name":"acme/m","tag":"latest","digest":"{D}","previous":null}}}}"#);
    assert_eq!(parse(&payload(&tag)).unwrap().event.name().unwrap().as_str(), "acme/m");
    let tag = format!(r#"{{"tag":{{"name":"acme/m","tag":"latest","digest":"{D}"}}}}"#);
    parse(&payload(&tag)).unwrap();
}

#[test]
fn every_payload_rejection() {
    let access = format!(r#"{{"access":{{"name":"acme/m","version":"1","digest":"{D}"}}}}"#);
    let good = payload(&access);
    invalid(&good.replace("\"schema\":1", "\"schema\":2"), "schema 2");
    invalid(&good.replace("\"schema\":1", "\"schema\":1.0"), "");
    invalid(&good.replace("{\"schema\":1,", "{\"schema\":1,\"extra\":true,"), "unknown field");
    invalid(&good.replace("{\"schema\":1,", "{\"schema\":1,\"schema\":1,"), "duplicate field");
    invalid(
        &good.replace(
            "\"context\":{\"reason\":\"test\"}",
            "\"context\":{\"reason\":\"test\",\"reason\":\"x\"}",
        ),
        "duplicate field",
    );
    invalid(
        &good.replace("\"context\":{\"reason\":\"test\"}", "\"context\":{\"why\":\"test\"}"),
        "unknown field",
    );
    invalid(&good.replace("\"context\":{\"reason\":\"test\"}", "\"context\":{}"), "missing field `reason`");
    invalid(&good.replace("\"reason\":\"test\"", "\"reason\":\"\""), "control characters");
    invalid(&good.replace("\"reason\":\"test\"", "\"reason\":\"a\\nb\""), "control characters");
    // Lone surrogates cannot become Rust strings: refused, whatever the wording.
    invalid(&good.replace("\"reason\":\"test\"", "\"reason\":\"\\ud800\""), "escape");
    invalid(&good.replace("\"reason\":\"test\"", "\"reason\":\"\\udc00x\""), "surrogate");
    invalid(&good.replace("\"actor\":\"alice\"", "\"actor\":\"Alice\""), "invalid actor name");
    invalid(
        &good.replace("\"time\":\"2026-11-23T07:00:00Z\"", "\"time\":\"2026-11-23T07:00:00.000Z\""),
        "invalid timestamp",
    );
    invalid(&good.replace("00112233445566778899aabbccddeeff", "00112233"), "nonce");
    invalid(&good.replace(&alice().key_id().to_string(), "ab"), "key ID");
    invalid(&format!("{good} x"), "trailing");
    invalid(&good[..good.len() - 1], "EOF");
    invalid(
        &payload(&format!(r#"{{"access":{{"name":"acme/m","version":"1","digest":"{D}","size":1}}}}"#)),
        "unknown field",
    );
    invalid(&payload(&format!(r#"{{"access":{{"digest":"{D}"}}}}"#)), "missing field `name`");
    invalid(
        &payload(&format!(
            r#"{{"access":{{"name":"acme/m","version":"1","digest":"{}"}}}}"#,
            D.to_uppercase()
        )),
        "invalid digest",
    );
    invalid(&payload(&format!(r#"{{"read":{{"digest":"{D}"}}}}"#)), "unknown variant");
    invalid(
        &payload(&format!(
            r#"{{"access":{{"name":"acme/m","version":"1","digest":"{D}"}},"approve":{{"name":"acme/m","version":"1"}}}}"#
        )),
        "",
    );
    invalid(&payload(r#"{"promote":{"name":"acme/m","version":"1","to":"prod"}}"#), "unknown variant");
    invalid(&payload(r#"{"approve":{"name":"acme","version":"1"}}"#), "invalid model name");
    invalid(&payload(r#"{"approve":{"name":"acme/m","version":"-1"}}"#), "invalid version");
    invalid(&payload(&format!(r#"{{"tag":{{"name":"acme/m","tag":"a+b","digest":"{D}"}}}}"#)), "invalid tag");
    invalid(
        &payload(&format!(r#"{{"tag":{{"name":"acme/m","tag":"t","digest":"{D}","previous":-1}}}}"#)),
        "",
    );
    invalid(&payload(r#"{"revoke":{"actor":"bob","role":"owner","pattern":"acme/*"}}"#), "unknown variant");
    invalid(&payload(r#"{"revoke":{"actor":"bob","role":"reader","pattern":"acme*"}}"#), "invalid pattern");

    let publish = |extra: &str| {
        payload(&format!(
            r#"{{"publish":{{"name":"acme/m","version":"1","kind":"model","digest":"{D}","size":10,"media_type":"application/octet-stream"{extra}}}}}"#
        ))
    };
    parse(&publish("")).unwrap();
    invalid(&publish("").replace("\"size\":10", "\"size\":1e1"), "");
    invalid(&publish("").replace("\"size\":10", "\"size\":-1"), "");
    invalid(&publish("").replace("\"kind\":\"model\"", "\"kind\":\"weights\""), "unknown variant");
    invalid(
        &publish("").replace("application/octet-stream", "text/plain; charset=utf-8"),
        "invalid media type",
    );
    invalid(&publish(r#","metadata":{"metrics":{"acc":1,"acc":2}}"#), "duplicate key");
    invalid(&publish(r#","metadata":{"owner":"x"}"#), "unknown field");
    let huge = (0..17).map(|i| format!("\"k{i}\":\"{}\"", "x".repeat(1000))).collect::<Vec<_>>().join(",");
    invalid(&publish(&format!(r#","metadata":{{"labels":{{{huge}}}}}"#)), "metadata exceeds 16384 bytes");
    invalid(
        &publish(&format!(r#","lineage":{{"parents":[{{"digest":"{D}"}},{{"digest":"{D}"}}]}}"#)),
        "one digest twice",
    );
    invalid(&publish(&format!(r#","lineage":{{"parents":[{{"digest":"{D}","external":"yes"}}]}}"#)), "");

    // A key in a body written for another actor.
    let bob_key = ActorSigner::from_seed(&ActorName::new("bob").unwrap(), &[1; 32]).public().to_string();
    invalid(
        &payload(&format!(
            r#"{{"grant":{{"actor":"carol","key":"{bob_key}","role":"reader","pattern":"*"}}}}"#
        )),
        "another actor",
    );
    invalid(&payload(&format!(r#"{{"rotate":{{"new_key":"{bob_key}"}}}}"#)), "another actor");
    invalid(&payload(r#"{"rotate":{"new_key":"bob+00000000+AAAA"}}"#), "invalid actor key");
}

#[test]
fn envelope_level_rejections_and_statuses() {
    let s = alice();
    let stmt = Statement::parse(
        payload(&format!(r#"{{"access":{{"name":"acme/m","version":"1","digest":"{D}"}}}}"#)).as_bytes(),
    )
    .unwrap();
    let good = Envelope::sign(PAYLOAD_TYPE, stmt.to_json(), &s);
    SignedStatement::from_envelope(good.clone()).unwrap();
    let mut e = good.clone();
    e.payload_type = "application/vnd.in-toto+json".into();
    assert_eq!(SignedStatement::from_envelope(e), Err(StatementError::PayloadType));
    let mut e = good.clone();
    e.signatures.push(e.signatures[0].clone());
    assert_eq!(SignedStatement::from_envelope(e), Err(StatementError::SignatureCount(2)));
    let other = ActorSigner::from_seed(&ActorName::new("alice").unwrap(), &[7; 32]);
    let e = Envelope::sign(PAYLOAD_TYPE, stmt.to_json(), &other);
    assert_eq!(SignedStatement::from_envelope(e), Err(StatementError::KeyIdMismatch));
    let mut e = good.clone();
    e.payload = b"{}".to_vec();
    assert_eq!(SignedStatement::from_envelope(e).unwrap_err().http_status(), 400);
    let big = vec![b' '; MAX_ENVELOPE_SIZE + 1];
    let err = SignedStatement::parse(&big).unwrap_err();
    assert_eq!(err, StatementError::Envelope(DsseError::TooLarge { size: MAX_ENVELOPE_SIZE + 1 }));
    assert_eq!(err.http_status(), 413);
    assert_eq!(SignedStatement::parse(b"nope").unwrap_err().http_status(), 400);
    // Signing refuses what parsing would refuse.
    assert_eq!(stmt.sign(&other), Err(StatementError::KeyIdMismatch));
    let mut nan = stmt.clone();
    let mut metrics = std::collections::BTreeMap::new();
    metrics.insert("acc".to_owned(), f64::NAN);
    nan.event = Event::Publish(Publish {
        name: ModelName::new("acme/m").unwrap(),
        version: Version::new("1").unwrap(),
        kind: Kind::Model,
        digest: Digest::new(D).unwrap(),
        size: 1,
        media_type: MediaType::new("a/b").unwrap(),
        metadata: Metadata { metrics: StrictMap(metrics), ..Metadata::default() },
        lineage: Lineage::default(),
    });
    assert_eq!(nan.sign(&s), Err(StatementError::Invalid("metrics must be finite numbers".into())));
    let mut big_desc = nan.clone();
    if let Event::Publish(p) = &mut big_desc.event {
        p.metadata = Metadata::default();
        p.lineage.parents =
            (0..33u8).map(|i| LineageRef { digest: Digest(Hash([i; 32])), external: true }).collect();
    }
    assert!(matches!(big_desc.sign(&s), Err(StatementError::Invalid(_))));
}

// ---- the worked example in docs/protocol.md --------------------------------

/// The example leaf: alice (seed 32 x 0x42) reads an artifact; the log
/// receives it at 2026-11-23T07:00:01.500Z.
fn example_leaf() -> (Vec<u8>, Vec<u8>) {
    let s = alice();
    let ctx = Context {
        reason: Text::new("nightly evaluation").unwrap(),
        environment: Some(Text::new("prod-eu").unwrap()),
        pipeline: Some(Text::new("eval#812").unwrap()),
        source: Some(Text::new("10.0.0.7").unwrap()),
    };
    let digest = Digest(custody_standards::hash::sha256(b"model weights"));
    let stmt = Statement::new(
        &s,
        Timestamp::parse("2026-11-23T07:00:00Z").unwrap(),
        Nonce::parse("00112233445566778899aabbccddeeff").unwrap(),
        ctx,
        Event::Access(Access {
            name: ModelName::new("acme/model").unwrap(),
            version: Version::new("1.0").unwrap(),
            digest,
        }),
    );
    let envelope = stmt.sign(&s).unwrap();
    let leaf = Leaf::new(1_795_417_201_500, &envelope).unwrap().encode();
    (envelope, leaf)
}

fn hex_lines(bytes: &[u8]) -> String {
    bytes.chunks(32).map(|c| format!("{}\n", hex::encode(c))).collect()
}

#[test]
fn docs_protocol_md_shows_the_example_exactly() {
    let (envelope, leaf) = example_leaf();
    let doc = include_str!("../../docs/protocol.md");
    let key = alice().public().to_string();
    let payload = SignedStatement::parse(&envelope).unwrap().envelope.payload;
    let expected = [
        ("actor key", key),
        ("payload", String::from_utf8(payload).unwrap()),
        ("envelope", String::from_utf8(envelope).unwrap()),
        ("leaf hex", hex_lines(&leaf)),
        ("leaf hash", custody_standards::hash::leaf_hash(&leaf).to_hex()),
    ];
    let mut missing = String::new();
    for (what, text) in &expected {
        if !doc.contains(text.as_str()) {
            missing.push_str(&format!("--- {what} ---\n{text}\n"));
        }
    }
    assert!(missing.is_empty(), "docs/protocol.md is out of date; expected:\n{missing}");
}
