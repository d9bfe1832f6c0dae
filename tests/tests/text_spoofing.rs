//! Free text that would show something else than what was signed, on the
//! real binaries: statements whose context carries bidi overrides or
//! isolates, zero-width or other invisible format characters are refused
//! by the log with 400 `bad_request` and append nothing; the client refuses
//! to build them.

use custody_registry::dsse::Envelope;
use custody_registry::registry::Role;
use custody_registry::statement::PAYLOAD_TYPE;
use custody_testkit::scenario::*;

#[test]
fn invisible_and_reordering_characters_in_free_text_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::start(tmp.path());
    let (c, base) = (http(), d.log.url.clone());
    let root = admin_signer(&d);
    let event = || grant(&signer("bob"), Role::Reader, "demo/*");

    // A genuine statement's JSON with the reason replaced by hand (the
    // library refuses to build it), signed by the admin's live key.
    let spoofed = |reason: &str| {
        let env = Envelope::parse(&signed(&root, event())).unwrap();
        let mut payload: serde_json::Value = serde_json::from_slice(&env.payload).unwrap();
        payload["context"]["reason"] = reason.into();
        Envelope::sign(PAYLOAD_TYPE, serde_json::to_vec(&payload).unwrap(), &root).to_json()
    };
    let size = tree_size(&c, &base);
    for (what, reason) in [
        ("right-to-left override", "approved by \u{202E}lortnoc ytilauq"),
        ("right-to-left isolate", "reviewed \u{2067}evil\u{2069} ok"),
        ("zero-width space", "retrain\u{200B}ing"),
        ("zero-width joiner", "a\u{200D}b"),
        ("byte order mark", "\u{FEFF}nightly"),
        ("left-to-right mark", "nightly\u{200E}"),
        ("line separator", "line one\u{2028}line two"),
    ] {
        let (status, body) = post_statement(&c, &base, spoofed(reason));
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "bad_request", "{what}: {body}");
    }
    assert_eq!(tree_size(&c, &base), size, "refused statements append nothing");

    // The same JSON path with visible text is accepted: the refusals above
    // are about the characters, not about editing the payload.
    let (status, body) = post_statement(&c, &base, spoofed("nightly evaluation, naïve café"));
    assert_eq!(status, 200, "{body}");

    // The client refuses to sign such a reason at all.
    let admin = d.admin();
    let carol = signer("carol").public().to_string();
    let out = admin.run(&[
        "--reason",
        "ok\u{202E}kcab",
        "grant",
        &carol,
        "--role",
        "reader",
        "--pattern",
        "demo/*",
    ]);
    assert!(!out.status.success(), "the client signed a spoofing reason");
    assert!(text(&out.stderr).contains("format characters"), "{}", text(&out.stderr));
}
