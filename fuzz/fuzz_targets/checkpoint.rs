//! Checkpoint texts: parsing never panics, and accepted texts are canonical.
#![no_main]
use custody_standards::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(s) {
            assert_eq!(cp.to_text().expect("parsed checkpoint formats"), s);
        }
    }
});
