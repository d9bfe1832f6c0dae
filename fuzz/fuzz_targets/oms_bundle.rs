//! OpenSSF model-signing bundles and their public keys: parsing never
//! panics, verification with the known-answer key never panics, whatever
//! verifies has a subject digest that matches its resources and sorted,
//! distinct paths, and an accepted key's PEM reads back as the same key.
#![no_main]
use custody_registry::oms::{OmsBundle, OmsPublicKey};
use libfuzzer_sys::fuzz_target;

const KEY: &str = include_str!("../../registry/tests/data/oms/key.pub.pem");

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(k) = OmsPublicKey::from_pem(text) {
            assert_eq!(OmsPublicKey::from_pem(&k.to_pem()).expect("to_pem re-parses"), k);
        }
    }
    let Ok(bundle) = OmsBundle::parse(data) else { return };
    let key = OmsPublicKey::from_pem(KEY).expect("the known-answer key parses");
    if let Ok(files) = bundle.verify(&key) {
        let st = bundle.statement();
        assert_eq!(st.recompute_subject_digest(), st.subject_sha256);
        assert!(files.files.windows(2).all(|w| w[0].0 < w[1].0), "sorted, distinct paths");
        assert_eq!(files.compare(&files.files), Ok(()));
    }
});
