//! tlog-tiles paths: decoding never panics, and every accepted path is the
//! canonical encoding of what it decodes to (no leading zeros, no `.p/256`).
#![no_main]
use custody_standards::tiles::parse_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = parse_path(s) {
            assert_eq!(p.path(), s, "accepted path is not canonical");
        }
    }
});
