use custody_registry::commitment::EntriesValue;
use custody_registry::names::ActorName;

use super::*;

fn header() -> Header {
    Header {
        origin: "log.example/a".into(),
        size: 12,
        tree_root: Hash([1; 32]),
        state_root: Hash([2; 32]),
        window_ms: 300_000,
        exact: false,
    }
}

fn state() -> ResumeState {
    let alice = ActorName::new("alice").unwrap();
    ResumeState {
        records: Vec::new(),
        nonces: vec![(NonceId::from_bytes([3; 16]), 1_000), (NonceId::from_bytes([4; 16]), 2_000)],
        position: Position { clock_ms: 5, last_index: Some(10), generation: 6 },
        map: vec![(
            StateKey::ActorEntries { actor: alice },
            StateValue::Entries(EntriesValue::of([0, 2, 10])),
        )],
    }
}

#[test]
fn a_state_file_round_trips() {
    let bytes = encode(&header(), &state());
    assert_eq!(decode(&bytes, &header()).unwrap(), (header().state_root, state()));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&header(), &state());
    for n in 0..bytes.len() {
        assert!(decode(&bytes[..n], &header()).is_err(), "{n} bytes");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(decode(&long, &header()), Err(StateFileError::Trailing)));
}

#[test]
fn another_version_origin_size_or_window_is_not_used() {
    let mut bytes = encode(&header(), &state());
    bytes[MAGIC.len() + 3] ^= 2;
    assert!(matches!(decode(&bytes, &header()), Err(StateFileError::Version(3))));
    for other in [
        Header { origin: "log.example/b".into(), ..header() },
        Header { size: 13, ..header() },
        Header { tree_root: Hash([9; 32]), ..header() },
        Header { window_ms: 1, ..header() },
    ] {
        let bytes = encode(&other, &state());
        assert!(matches!(decode(&bytes, &header()), Err(StateFileError::Header { .. })), "{other:?}");
    }
    // The state root is returned for the caller to compare once it has
    // authenticated the commitment leaf.
    let other_root = encode(&Header { state_root: Hash([9; 32]), ..header() }, &state());
    assert_eq!(decode(&other_root, &header()).unwrap().0, Hash([9; 32]));
    // An exact audit resumes only from an exact one; any audit resumes
    // from an exact one.
    let exact = Header { exact: true, ..header() };
    let batched = encode(&header(), &state());
    assert!(matches!(decode(&batched, &exact), Err(StateFileError::Header { .. })));
    assert_eq!(decode(&encode(&exact, &state()), &header()).unwrap().1, state());
    assert!(matches!(decode(b"not a state file at all", &header()), Err(StateFileError::Magic)));
}

#[test]
fn a_huge_count_is_refused_before_allocating() {
    let mut bytes = encode(&header(), &ResumeState { nonces: Vec::new(), map: Vec::new(), ..state() });
    // The map count is the last 8 bytes: claim 2^60 entries.
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(&(1u64 << 60).to_be_bytes());
    assert!(matches!(decode(&bytes, &header()), Err(StateFileError::Truncated)));
}

#[test]
fn a_file_is_only_used_with_the_digest_saved_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(load(dir.path(), &header()), Err(StateFileError::Missing(_))));
    save(dir.path(), &header(), &state()).unwrap();
    assert_eq!(load(dir.path(), &header()).unwrap(), (header().state_root, state()));
    let path = dir.path().join("state");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(load(dir.path(), &header()), Err(StateFileError::Digest)));
}
