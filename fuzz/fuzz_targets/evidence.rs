//! Split-view evidence: parsing never panics, accepted texts are canonical,
//! and verifying any parsed evidence never panics.
#![no_main]
use custody_registry::evidence::Evidence;
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::note::NoteVerifier;
use custody_standards::SignerKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = Evidence::parse(data) {
        assert_eq!(ev.to_bytes().expect("parsed evidence formats"), data);
        let key = SignerKey::from_seed("example.com/fuzz", SIG_TYPE_ED25519, &[1; 32]).unwrap().verifier();
        let _ = ev.verify(&[&key as &dyn NoteVerifier]);
    }
});
