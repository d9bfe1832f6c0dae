//! Length-prefixed entry sequences (the log server's write-ahead
//! segments): decoding never panics, and what decodes re-encodes to the
//! same bytes.
#![no_main]
use custody_standards::entries::decode_sequence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = decode_sequence(data) {
        assert!(!entries.is_empty());
        let mut again = Vec::with_capacity(data.len());
        for e in entries {
            again.extend_from_slice(&(e.len() as u16).to_be_bytes());
            again.extend_from_slice(e);
        }
        assert_eq!(again, data);
    }
});
