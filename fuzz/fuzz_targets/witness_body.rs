//! tlog-witness add-checkpoint bodies, 409 size bodies and 200 replies:
//! parsing never panics and accepted requests round-trip byte for byte.
#![no_main]
use custody_standards::witness::{parse_size_body, split_cosignature_response, AddCheckpointRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = AddCheckpointRequest::parse(data) {
        assert_eq!(req.to_bytes(), data, "accepted request does not round-trip");
    }
    if let Ok(n) = parse_size_body(data) {
        assert_eq!(format!("{n}\n").as_bytes(), data);
    }
    if let Ok(lines) = split_cosignature_response(data) {
        assert_eq!(lines.concat().as_bytes(), data);
    }
});
