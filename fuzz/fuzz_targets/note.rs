//! Signed notes: parsing and opening never panic, and every parsed note
//! formats back to the exact input bytes.
#![no_main]
use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
use custody_standards::note::{open_note, Note, NoteVerifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = Note::parse(data) {
        assert_eq!(n.to_bytes().expect("parsed note formats"), data, "note does not round-trip");
    }
    let key = SignerKey::from_seed("example.com/log", SIG_TYPE_ED25519, &[7; 32]).unwrap().verifier();
    let verifiers: [&dyn NoteVerifier; 1] = [&key];
    let _ = open_note(data, &verifiers);
});
