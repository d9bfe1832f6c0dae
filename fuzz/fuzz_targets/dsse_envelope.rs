//! DSSE envelopes: parsing never panics, whatever parses re-serialises to
//! an envelope that parses to the same value, and verification never
//! panics.
#![no_main]
use custody_registry::actor_key::ActorSigner;
use custody_registry::dsse::Envelope;
use custody_registry::names::ActorName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::parse(data) else { return };
    let again = Envelope::parse(&env.to_json()).expect("a parsed envelope re-parses");
    assert_eq!(again, env, "envelope does not round-trip");
    let key = ActorSigner::from_seed(&ActorName::new("alice").unwrap(), &[7; 32]);
    let _ = env.verify(key.public());
});
