//! Custody leaf vectors shared with the dashboard's browser verifier
//! (log-server/ui/js/leaf.js): real signed statements of every action, a
//! state commitment and a log event, each with the values the dashboard shows
//! for it (its `data-field` cells), and malformed leaves, envelopes and
//! statements with the error core reports. Generated here from core; this
//! test fails when tests/vectors/leaves.json no longer matches core, and
//! tests/tests/dashboard_browser.rs runs the same file through leaf.js.

#[path = "../../standards/tests/support/vectors_file.rs"]
mod vectors_file;

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use custody_registry::actor_key::ActorSigner;
use custody_registry::dsse::{DsseError, Envelope, EnvelopeSignature};
use custody_registry::leaf::{CommitmentLeaf, Leaf, LeafError, LogLeaf};
use custody_registry::log_event::{LogEventError, SignedLogEvent, LOG_EVENT_PAYLOAD_TYPE};
use custody_registry::names::ActorName;
use custody_registry::statement::events::BreakGlass;
use custody_registry::statement::{Event, SignedStatement, Statement, StatementError, PAYLOAD_TYPE};
use custody_standards::hash::{sha256, Hash};
use serde_json::{json, Value};

const T_MS: u64 = 1_795_417_200_000;

fn signer(name: &str) -> ActorSigner {
    ActorSigner::from_seed(&ActorName::new(name).unwrap(), &sha256(name.as_bytes()).0)
}

fn digest(s: &str) -> String {
    format!("sha256:{}", sha256(s.as_bytes()).to_hex())
}

/// The values the dashboard shows for a statement, by `data-field` name,
/// computed from core's parsed statement.
fn statement_fields(st: &Statement) -> BTreeMap<&'static str, String> {
    let mut f = BTreeMap::new();
    f.insert("kind", st.event.action().to_owned());
    f.insert("actor", st.actor.as_str().to_owned());
    f.insert("time", st.time.to_string());
    f.insert("reason", st.context.reason.as_str().to_owned());
    f.insert("detail", custody_registry::describe::statement(st));
    if let Some(e) = &st.context.environment {
        f.insert("environment", e.as_str().to_owned());
    }
    if let Some(p) = &st.context.pipeline {
        f.insert("pipeline", p.as_str().to_owned());
    }
    if let Some(n) = st.event.name() {
        f.insert("name", n.as_str().to_owned());
    }
    let (version, digest, tag) = match &st.event {
        Event::Publish(e) => (Some(&e.version), Some(e.digest), None),
        Event::Access(e) => (Some(&e.version), Some(e.digest), None),
        Event::Tag(e) | Event::BreakGlass(BreakGlass::Tag(e)) => (None, Some(e.digest), Some(&e.tag)),
        Event::Promote(e) | Event::BreakGlass(BreakGlass::Promote(e)) => (Some(&e.version), None, None),
        Event::Approve(e) => (Some(&e.version), None, None),
        Event::Rollback(e) | Event::BreakGlass(BreakGlass::Rollback(e)) => (Some(&e.version), None, None),
        Event::Protect(e) => (None, None, Some(&e.tag)),
        Event::Hold(e) | Event::Release(e) => (e.version.as_ref(), None, None),
        Event::Deploy(e) => (Some(&e.version), Some(e.digest), None),
        Event::Transfer(e) => (Some(&e.version), Some(e.digest), None),
        Event::Grant(_) | Event::Revoke(_) | Event::RevokeKey(_) | Event::Rotate(_) => (None, None, None),
    };
    if let Some(v) = version {
        f.insert("version", v.as_str().to_owned());
    }
    if let Some(d) = digest {
        f.insert("digest", d.to_string());
    }
    if let Some(t) = tag {
        f.insert("tag", t.as_str().to_owned());
    }
    f
}

fn dsse_code(e: &DsseError) -> &'static str {
    match e {
        DsseError::TooLarge { .. } => "too_large",
        DsseError::Malformed(_) => "malformed",
        DsseError::PayloadType => "payload_type",
        DsseError::Base64(_) => "base64",
        DsseError::SignatureCount(_) => "signature_count",
        DsseError::SignatureLength(_) => "signature_length",
        DsseError::KeyId => "key_id",
        _ => "other",
    }
}

fn leaf_code(e: &LeafError) -> &'static str {
    match e {
        LeafError::Truncated(_) => "truncated",
        LeafError::CommitmentSize(_) => "commitment_size",
        LeafError::Magic => "magic",
        LeafError::Version(_) => "version",
        LeafError::EnvelopeLength(_) => "envelope_length",
        LeafError::LengthMismatch { .. } => "length_mismatch",
        LeafError::Commitment | LeafError::LogEvent => "other",
    }
}

/// Core's verdict on leaf bytes: the decoded type and fields, or the error.
fn decode(leaf: &[u8]) -> Result<(&'static str, BTreeMap<&'static str, String>), &'static str> {
    match LogLeaf::decode(leaf).map_err(|e| leaf_code(&e))? {
        LogLeaf::Commitment(_) => Ok(("commitment", BTreeMap::from([("kind", "commitment".to_owned())]))),
        LogLeaf::Statement(l) => match SignedStatement::parse(l.envelope) {
            Ok(s) => Ok(("statement", statement_fields(&s.statement))),
            Err(StatementError::Envelope(e)) => Err(dsse_code(&e)),
            Err(StatementError::PayloadType) => Err("payload_type"),
            Err(StatementError::SignatureCount(_)) => Err("signature_count"),
            Err(StatementError::KeyIdMismatch) => Err("key_id_mismatch"),
            Err(StatementError::Invalid(_)) => Err("invalid"),
        },
        LogLeaf::LogEvent(l) => match SignedLogEvent::parse(l.envelope) {
            Ok(ev) => {
                let mut f = BTreeMap::new();
                f.insert("kind", ev.event.event.action().to_owned());
                f.insert("actor", format!("log {}", ev.event.origin));
                f.insert("time", ev.event.time.to_string());
                f.insert("digest", ev.event.event.digest().to_string());
                f.insert("detail", custody_registry::describe::log_event(&ev.event));
                Ok(("log_event", f))
            }
            Err(LogEventError::Envelope(e)) => Err(dsse_code(&e)),
            Err(LogEventError::Shape(_)) => Err("shape"),
            Err(LogEventError::Invalid(_)) => Err("invalid"),
            Err(_) => Err("other"),
        },
    }
}

/// A statement payload by `actor` with the given context and event JSON.
fn payload(actor: &ActorSigner, context: &str, event: &str) -> String {
    format!(
        r#"{{"schema":1,"actor":"{}","key_id":"{}","time":"2026-11-23T07:00:00Z","nonce":"000102030405060708090a0b0c0d0e0f","context":{context},"event":{event}}}"#,
        actor.actor().as_str(),
        actor.key_id()
    )
}

fn envelope(payload_type: &str, payload: &str, signer: &ActorSigner) -> String {
    String::from_utf8(Envelope::sign(payload_type, payload.as_bytes().to_vec(), signer).to_json()).unwrap()
}

fn leaf_of(envelope: &str) -> Vec<u8> {
    // Built by hand, not with `Leaf::new`, so oversized envelopes still
    // make a leaf for the decoder to refuse.
    let mut out = b"CUSTODY\x01".to_vec();
    out.extend_from_slice(&T_MS.to_be_bytes());
    out.extend_from_slice(&(envelope.len() as u32).to_be_bytes());
    out.extend_from_slice(envelope.as_bytes());
    out
}

fn leaves() -> Value {
    let alice = signer("alice");
    let bob = signer("bob");
    let ctx = r#"{"reason":"nightly evaluation","environment":"prod-eu","pipeline":"eval#812","source":"10.0.0.7"}"#;
    let why = r#"{"reason":"release"}"#;
    let (d1, d2) = (digest("weights v1"), digest("weights v2"));
    let n = r#""name":"acme/model""#;
    let good_events = [
        (
            "publish",
            format!(
                r#"{{"publish":{{{n},"version":"1.0","kind":"model","digest":"{d1}","size":1234,"media_type":"application/octet-stream"}}}}"#
            ),
        ),
        ("access", format!(r#"{{"access":{{{n},"version":"1.0","digest":"{d1}"}}}}"#)),
        ("first tag move", format!(r#"{{"tag":{{{n},"tag":"stable","digest":"{d1}","previous":null}}}}"#)),
        ("later tag move", format!(r#"{{"tag":{{{n},"tag":"stable","digest":"{d2}","previous":42}}}}"#)),
        ("promote", format!(r#"{{"promote":{{{n},"version":"1.0","to":"production"}}}}"#)),
        ("approve", format!(r#"{{"approve":{{{n},"version":"1.0+build.7"}}}}"#)),
        ("rollback", format!(r#"{{"rollback":{{{n},"version":"1.0"}}}}"#)),
        ("protect", format!(r#"{{"protect":{{{n},"tag":"gold","statuses":["staging","production"]}}}}"#)),
        (
            "grant",
            format!(
                r#"{{"grant":{{"actor":"bob","key":"{}","role":"reader","pattern":"acme/*"}}}}"#,
                bob.public()
            ),
        ),
        ("revoke", r#"{"revoke":{"actor":"bob","role":"reader","pattern":"acme/*"}}"#.to_owned()),
        ("revoke_key", format!(r#"{{"revoke_key":{{"actor":"bob","key_id":"{}"}}}}"#, bob.key_id())),
        (
            "rotate",
            format!(
                r#"{{"rotate":{{"new_key":"{}"}}}}"#,
                ActorSigner::from_seed(alice.actor(), &[9; 32]).public()
            ),
        ),
        ("hold of a name", format!(r#"{{"hold":{{{n}}}}}"#)),
        ("hold of a version", format!(r#"{{"hold":{{{n},"version":"1.0"}}}}"#)),
        ("release", format!(r#"{{"release":{{{n},"version":"1.0"}}}}"#)),
        (
            "deploy",
            format!(r#"{{"deploy":{{{n},"version":"1.0","digest":"{d1}","target":"prod-eu/chat"}}}}"#),
        ),
        (
            "transfer",
            format!(
                r#"{{"transfer":{{{n},"version":"1.0","digest":"{d1}","destination":"mirror.example"}}}}"#
            ),
        ),
        (
            "break-glass promote",
            format!(r#"{{"break_glass":{{"promote":{{{n},"version":"1.0","to":"production"}}}}}}"#),
        ),
        (
            "break-glass tag move",
            format!(r#"{{"break_glass":{{"tag":{{{n},"tag":"gold","digest":"{d2}","previous":7}}}}}}"#),
        ),
    ];
    let mut inputs: Vec<(String, Vec<u8>)> = good_events
        .iter()
        .map(|(desc, ev)| {
            (desc.to_string(), leaf_of(&envelope(PAYLOAD_TYPE, &payload(&alice, ctx, ev), &alice)))
        })
        .collect();
    let access = good_events[1].1.clone();
    let stmt = |context: &str, event: &str| {
        leaf_of(&envelope(PAYLOAD_TYPE, &payload(&alice, context, event), &alice))
    };
    let mut add = |desc: &str, leaf: Vec<u8>| inputs.push((desc.to_owned(), leaf));
    add("reason only, non-ASCII", stmt(r#"{"reason":"évaluation nocturne ✓ 检查"}"#, &access));
    add(
        "JSON escapes and whitespace",
        stmt("{ \"reason\" : \"a \\u00e9\\/b\\n\" }".replace("\\n", "").as_str(), &access),
    );
    add("fields in another order", {
        let p = format!(
            r#"{{"event":{access},"context":{why},"nonce":"000102030405060708090a0b0c0d0e0f","time":"2026-11-23T07:00:00Z","key_id":"{}","actor":"alice","schema":1}}"#,
            alice.key_id()
        );
        leaf_of(&envelope(PAYLOAD_TYPE, &p, &alice))
    });
    add("state commitment", CommitmentLeaf { index: 8, root: Hash([7; 32]) }.encode());
    let log_event = format!(
        r#"{{"schema":1,"origin":"log.example/custody","time":"2026-11-23T08:00:00Z","event":{{"integrity_violation":{{"digest":"{d1}","observed":"{d2}","access_index":3}}}}}}"#
    );
    let mut ev_leaf = leaf_of(&envelope(LOG_EVENT_PAYLOAD_TYPE, &log_event, &alice));
    ev_leaf[7] = 3;
    add("log event", ev_leaf.clone());

    // Malformed leaves.
    let good = stmt(why, &access);
    add("10 bytes", good[..10].to_vec());
    add("19 bytes", good[..19].to_vec());
    let mut m = good.clone();
    m[0] = b'c';
    add("bad magic", m);
    let mut m = good.clone();
    m[7] = 4;
    add("leaf version 4", m);
    let mut m = good[..20].to_vec();
    m[16..20].copy_from_slice(&[0; 4]);
    add("envelope length 0", m);
    let mut m = good.clone();
    m[19] = m[19].wrapping_sub(1);
    add("length field one short", m);
    let mut m = good.clone();
    m.push(b' ');
    add("a byte after the envelope", m);
    add("commitment of 47 bytes", CommitmentLeaf { index: 8, root: Hash([7; 32]) }.encode()[..47].to_vec());
    let mut m = ev_leaf;
    m.truncate(m.len() - 1);
    let len = (m.len() - 20) as u32;
    m[16..20].copy_from_slice(&len.to_be_bytes());
    add("log event with a cut envelope", m);

    // Malformed envelopes. The reason is padded until the payload's base64
    // has padding and a `+` or `/`, so the URL-safe and unpadded spellings
    // differ from it.
    let env = (0..64)
        .map(|k| {
            let reason = format!(r#"{{"reason":"release{}"}}"#, "?".repeat(k));
            envelope(PAYLOAD_TYPE, &payload(&alice, &reason, &access), &alice)
        })
        .find(|e| {
            let p = e.split(r#""payload":""#).nth(1).unwrap().split('"').next().unwrap();
            p.ends_with('=') && (p.contains('+') || p.contains('/'))
        })
        .expect("some reason length gives padded base64 with + or /");
    let sig_b64 = env.split(r#""sig":""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let p_b64 = env.split(r#""payload":""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let kid = alice.key_id().to_string();
    let raw = |s: String| leaf_of(&s);
    let sig_obj = format!(r#"{{"keyid":"{kid}","sig":"{sig_b64}"}}"#);
    add("envelope with an unknown field", raw(env.replacen('{', r#"{"x":1,"#, 1)));
    add("envelope with payload twice", raw(env.replacen('{', &format!(r#"{{"payload":"{p_b64}","#), 1)));
    add("envelope that is not JSON", raw(env.replacen('{', "[", 1)));
    add("payload in URL-safe base64", raw(env.replace(&p_b64, &p_b64.replace('+', "-").replace('/', "_"))));
    add("payload without padding", raw(env.replace(&p_b64, p_b64.trim_end_matches('='))));
    add("no signatures", raw(env.replace(&sig_obj, "")));
    add("two signatures", raw(env.replace(&sig_obj, &format!("{sig_obj},{sig_obj}"))));
    add("keyid in upper case", raw(env.replace(&kid, &kid.to_uppercase())));
    add("signature of 63 bytes", raw(env.replace(&sig_b64, &STANDARD.encode([1u8; 63]))));
    add("another payload type", raw(env.replace(PAYLOAD_TYPE, "application/vnd.in-toto+json")));
    add("statement payload in a log event leaf", {
        let mut l = good.clone();
        l[7] = 3;
        l
    });

    // Malformed statements, each signed so only the payload is at fault.
    let p = payload(&alice, why, &access);
    let signed =
        |desc: &str, payload: String| (desc.to_owned(), leaf_of(&envelope(PAYLOAD_TYPE, &payload, &alice)));
    let bad_statements = [
        signed("unknown statement field", p.replacen('{', r#"{"extra":1,"#, 1)),
        signed("duplicate statement field", p.replacen('{', r#"{"actor":"bob","#, 1)),
        signed("schema 2", p.replace(r#""schema":1"#, r#""schema":2"#)),
        signed("schema 1.0", p.replace(r#""schema":1"#, r#""schema":1.0"#)),
        signed("February 30", p.replace("2026-11-23", "2026-02-30")),
        signed("time with fractions", p.replace("07:00:00Z", "07:00:00.5Z")),
        signed("digest in upper case", p.replace(&d1, &d1.to_uppercase().replace("SHA256", "sha256"))),
        signed("name in upper case", p.replace("acme/model", "Acme/model")),
        signed("version starting with a dot", p.replace(r#""1.0""#, r#"".1""#)),
        signed("actor with a space", p.replace(r#""alice""#, r#""al ice""#)),
        signed("control character in the reason", p.replace("release", "rel\\u0007ease")),
        signed("bidi override in the reason", p.replace("release", "rel\u{202e}ease")),
        signed("empty reason", p.replace("release", "")),
        signed("no reason", p.replace(r#"{"reason":"release"}"#, "{}")),
        signed(
            "unknown context field",
            p.replace(r#""reason":"release""#, r#""reason":"release","why":"x""#),
        ),
        signed(
            "two actions",
            p.replace(&access, &format!(r#"{{"approve":{{{n},"version":"1.0"}},"hold":{{{n}}}}}"#)),
        ),
        signed("unknown action", p.replace(r#"{"access":"#, r#"{"download":"#)),
        signed("break-glass around an access", p.replace(&access, &format!(r#"{{"break_glass":{access}}}"#))),
        signed(
            "unknown field in the event",
            p.replace(r#""version":"1.0","#, r#""version":"1.0","size":1,"#),
        ),
        signed("lone surrogate in the reason", p.replace("release", "\\ud800")),
        signed("trailing data", format!("{p} {{}}")),
        signed(
            "promote to an unknown state",
            payload(&alice, why, &format!(r#"{{"promote":{{{n},"version":"1.0","to":"live"}}}}"#)),
        ),
        signed(
            "negative previous",
            payload(
                &alice,
                why,
                &format!(r#"{{"tag":{{{n},"tag":"stable","digest":"{d1}","previous":-1}}}}"#),
            ),
        ),
        signed("nonce too short", p.replace("0e0f", "0e")),
        signed("payload key_id not the envelope's", p.replace(&kid, &bob.key_id().to_string())),
    ];
    inputs.extend(bad_statements);

    let cases: Vec<Value> = inputs
        .iter()
        .map(|(desc, leaf)| match decode(leaf) {
            Ok((ty, fields)) => {
                json!({"desc": desc, "leaf": STANDARD.encode(leaf), "ok": true, "type": ty, "fields": fields})
            }
            Err(code) => json!({"desc": desc, "leaf": STANDARD.encode(leaf), "ok": false, "error": code}),
        })
        .collect();
    json!({ "cases": cases })
}

#[test]
fn leaf_vectors_match_core() {
    vectors_file::check_or_write(env!("CARGO_MANIFEST_DIR"), "leaves.json", &leaves());
}

#[test]
fn statement_vectors_carry_real_signatures() {
    // The good statement vectors are what a client would send: their
    // signatures verify with the actor's key, so a test page showing them is
    // showing real entries.
    let alice = signer("alice");
    let v = leaves();
    let ok: Vec<&Value> =
        v["cases"].as_array().unwrap().iter().filter(|c| c["type"] == "statement").collect();
    assert!(ok.len() >= 19, "every action has a good vector");
    for c in ok {
        let leaf = STANDARD.decode(c["leaf"].as_str().unwrap()).unwrap();
        let env = Leaf::decode(&leaf).unwrap().envelope;
        let s = SignedStatement::parse(env).unwrap();
        s.verify(alice.public()).unwrap();
        let EnvelopeSignature { keyid, .. } = &s.envelope.signatures[0];
        assert_eq!(*keyid, alice.key_id());
    }
}
