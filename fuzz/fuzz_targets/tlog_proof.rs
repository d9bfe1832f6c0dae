//! tlog-proof bundles: parsing never panics, and whatever parses formats back
//! to the exact input bytes (one accepted spelling per bundle).
#![no_main]
use custody_standards::bundle::ProofBundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = ProofBundle::parse(data) {
        assert_eq!(b.to_bytes(), data, "accepted bundle does not round-trip");
    }
});
