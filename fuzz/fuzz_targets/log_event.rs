//! Log-event leaves (version 3) and the log-signed events inside: decoding
//! never panics, a decoded leaf re-encodes to the same bytes, verification
//! against the log key is a verdict (never a panic), the full check never
//! panics, and an event that parses, once signed by the log key, verifies
//! and parses back to itself.
#![no_main]
use custody_registry::log_event::{check, LogEvent, LogEventLeaf, SignedLogEvent};
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::SignerKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The key registry/tests/fuzz_seeds.rs signs the seeds with.
    let key = SignerKey::from_seed("example.com/log", SIG_TYPE_ED25519, &[7; 32]).expect("valid seed key");
    let vkey = key.verifier();
    if let Ok(leaf) = LogEventLeaf::decode(data) {
        assert_eq!(leaf.encode(), data, "log-event leaf does not round-trip");
        if let Ok(signed) = SignedLogEvent::parse(leaf.envelope) {
            let _ = signed.verify(&vkey);
        }
    }
    let _ = check(data, Some(&vkey), 1_000, |_| true);
    let _ = check(data, None, 1_000, |_| false);
    if let Ok(event) = serde_json::from_slice::<LogEvent>(data) {
        let public = vkey.public_key();
        if let Ok(envelope) = SignedLogEvent::sign(&event, &public, |m| key.sign_ed25519(m)) {
            let signed = SignedLogEvent::parse(&envelope).expect("a signed event parses");
            if event.origin == "example.com/log" {
                signed.verify(&vkey).expect("signed by the log key, it verifies");
            }
            assert_eq!(signed.event, event, "log event does not round-trip");
        }
    }
});
