//! Entry bundles: decoding never panics, and what decodes re-encodes to the
//! same bytes.
#![no_main]
use custody_standards::entries::{decode_bundle, encode_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&count, body)) = data.split_first() else { return };
    if let Ok(entries) = decode_bundle(body, count as usize) {
        assert_eq!(encode_bundle(&entries).expect("decoded entries re-encode"), body);
    }
});
