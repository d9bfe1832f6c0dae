//! tlog-policy files: parsing never panics; an accepted policy evaluates any
//! cosignature pattern without panicking.
#![no_main]
use custody_standards::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Policy::parse(data) {
        let n = p.witnesses().len();
        for pattern in [vec![false; n], vec![true; n]] {
            let _ = p.evaluate(&pattern);
        }
        let _ = p.verify_checkpoint(data);
    }
});
