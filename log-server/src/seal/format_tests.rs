//! The sealed format: round trips, and every way of altering a sealed copy
//! (truncated, extended, chunks swapped or reordered, header or tag
//! changed, moved under another digest, wrong key) is refused; arbitrary
//! input never panics the decoder.

use proptest::prelude::*;

use super::*;

fn key(b: u8) -> DataKey {
    DataKey::from_bytes([b; 32])
}

fn digest(bytes: &[u8]) -> Hash {
    custody_standards::hash::sha256(bytes)
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn sealed(plain: &[u8]) -> Vec<u8> {
    seal_all(&key(7), Header::fresh(plain.len() as u64).unwrap(), &digest(plain), plain).unwrap()
}

fn open(bytes: &[u8], plain_digest: &Hash) -> Result<Vec<u8>, SealError> {
    open_all(bytes, plain_digest, |_| Ok(key(7)))
}

#[test]
fn round_trips_at_chunk_boundaries() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
        let plain = sample(len);
        let s = sealed(&plain);
        assert_eq!(s.len() as u64, sealed_len(len as u64), "{len}");
        assert_eq!(plain_len(s.len() as u64), Some(len as u64), "{len}");
        assert_eq!(open(&s, &digest(&plain)).unwrap(), plain, "{len}");
        assert_eq!(&s[..8], b"CSTDSEAL");
    }
}

#[test]
fn ciphertext_does_not_contain_the_plaintext() {
    let plain = b"distinctive plaintext window ".repeat(5000);
    let s = sealed(&plain);
    assert!(!s.windows(29).any(|w| w == &plain[..29]));
}

#[test]
fn plain_len_refuses_lengths_the_encoder_never_writes() {
    for bad in [0, 47, 48, 48 + 15, 48 + SEALED_CHUNK as u64 + 3, 48 + SEALED_CHUNK as u64 + 16] {
        assert_eq!(plain_len(bad), None, "{bad}");
    }
}

#[test]
fn truncated_copies_are_refused() {
    let plain = sample(3 * CHUNK + 100);
    let s = sealed(&plain);
    let d = digest(&plain);
    // At a chunk boundary (the new last chunk was not sealed as last), and
    // anywhere else.
    for cut in [HEADER_LEN, HEADER_LEN + SEALED_CHUNK, HEADER_LEN + 2 * SEALED_CHUNK, s.len() - 1, 10] {
        assert!(open(&s[..cut], &d).is_err(), "cut at {cut}");
    }
    // Cut at a boundary with the header's length edited to match: the
    // header is authenticated by every chunk.
    let mut h = Header::parse(&s).unwrap();
    h.plain_len = 2 * CHUNK as u64;
    let mut forged = h.encode().to_vec();
    forged.extend_from_slice(&s[HEADER_LEN..HEADER_LEN + 2 * SEALED_CHUNK]);
    assert!(matches!(open(&forged, &d), Err(SealError::Tampered { chunk: 0, .. })));
}

#[test]
fn a_streamed_copy_cut_at_a_chunk_boundary_fails_at_finish() {
    let plain = sample(2 * CHUNK + 5);
    let s = sealed(&plain);
    let h = Header::parse(&s).unwrap();
    let mut dec = Decoder::new(ChunkCipher::new(&key(7), h, &digest(&plain)));
    let mut out = Vec::new();
    dec.update(&s[HEADER_LEN..HEADER_LEN + SEALED_CHUNK], &mut out).unwrap();
    assert_eq!(out, plain[..CHUNK], "only whole authenticated chunks come out");
    assert!(matches!(dec.finish(), Err(SealError::Tampered { chunk: 1, .. })));
}

#[test]
fn extended_copies_are_refused() {
    let plain = sample(CHUNK + 9);
    let mut s = sealed(&plain);
    s.extend_from_slice(&[0u8; 16]);
    assert!(open(&s, &digest(&plain)).is_err());
    // Streamed: bytes after the last chunk are refused as they arrive.
    let h = Header::parse(&s).unwrap();
    let mut dec = Decoder::new(ChunkCipher::new(&key(7), h, &digest(&plain)));
    let err = dec.update(&s[HEADER_LEN..], &mut Vec::new()).unwrap_err();
    assert!(matches!(err, SealError::Tampered { what: "bytes after the last chunk", .. }), "{err}");
}

#[test]
fn swapped_or_duplicated_chunks_are_refused() {
    let plain = sample(3 * CHUNK);
    let s = sealed(&plain);
    let d = digest(&plain);
    let chunk = |i: usize| &s[HEADER_LEN + i * SEALED_CHUNK..HEADER_LEN + (i + 1) * SEALED_CHUNK];
    for order in [[1, 0, 2], [0, 2, 1], [0, 0, 2], [2, 1, 0]] {
        let mut evil = s[..HEADER_LEN].to_vec();
        for i in order {
            evil.extend_from_slice(chunk(i));
        }
        assert_eq!(evil.len(), s.len());
        assert!(matches!(open(&evil, &d), Err(SealError::Tampered { .. })), "{order:?}");
    }
    // A chunk of another copy of the same plaintext (other key and nonce).
    let other = sealed(&plain);
    let mut evil = s.clone();
    evil[HEADER_LEN..HEADER_LEN + SEALED_CHUNK]
        .copy_from_slice(&other[HEADER_LEN..HEADER_LEN + SEALED_CHUNK]);
    assert!(open(&evil, &d).is_err());
}

#[test]
fn any_flipped_bit_is_refused() {
    let plain = sample(CHUNK + 300);
    let s = sealed(&plain);
    let d = digest(&plain);
    for at in (0..s.len()).step_by(997).chain([0, 9, 12, 19, 20, 36, 43, 47, 48, s.len() - 1]) {
        let mut evil = s.clone();
        evil[at] ^= 0x01;
        assert!(open(&evil, &d).is_err(), "bit flip at {at}");
    }
}

#[test]
fn wrong_key_or_other_digest_is_refused() {
    let plain = sample(1000);
    let s = sealed(&plain);
    assert!(open_all(&s, &digest(&plain), |_| Ok(key(8))).is_err());
    assert!(open(&s, &digest(b"another artifact")).is_err(), "bound to its digest");
}

#[test]
fn header_parse_refuses_other_layouts() {
    let h = Header::fresh(5).unwrap().encode();
    assert!(Header::parse(&h).is_ok());
    for (at, v) in [(0, b'X'), (8, 2), (9, 2), (10, 20), (11, 1), (45, 1)] {
        let mut bad = h;
        bad[at] = v;
        assert!(matches!(Header::parse(&bad), Err(SealError::Format(_))), "byte {at}");
    }
    assert!(Header::parse(&h[..47]).is_err());
}

#[test]
fn encoder_refuses_more_or_less_than_the_header_says() {
    let d = digest(b"x");
    let mut enc = Encoder::new(ChunkCipher::new(&key(1), Header::fresh(3).unwrap(), &d));
    assert!(enc.update(b"abcd", &mut Vec::new()).is_err());
    let mut enc = Encoder::new(ChunkCipher::new(&key(1), Header::fresh(3).unwrap(), &d));
    enc.update(b"ab", &mut Vec::new()).unwrap();
    assert!(enc.finish(&mut Vec::new()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the parser or the decoder, and never
    /// open (they were not sealed under this key).
    #[test]
    fn arbitrary_input_never_panics_or_opens(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Header::parse(&bytes);
        prop_assert!(open(&bytes, &digest(&bytes)).is_err());
    }

    /// A valid header followed by arbitrary chunks, fed in arbitrary
    /// pieces, never panics and never yields plaintext.
    #[test]
    fn arbitrary_chunks_never_panic(
        plain_len in 0u64..(3 * CHUNK as u64),
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        split in 1usize..500,
    ) {
        let h = Header::fresh(plain_len).unwrap();
        let mut dec = Decoder::new(ChunkCipher::new(&key(3), h, &digest(b"d")));
        let mut out = Vec::new();
        let mut failed = false;
        for piece in body.chunks(split) {
            if dec.update(piece, &mut out).is_err() {
                failed = true;
                break;
            }
        }
        prop_assert!(out.is_empty());
        prop_assert!(failed || dec.finish().is_err());
    }

    /// Real sealed copies, truncated or cut anywhere, streamed in any
    /// piece size: the plaintext that comes out is a prefix of the real
    /// one in whole chunks, and only the whole copy finishes.
    #[test]
    fn streamed_copies_round_trip_and_cuts_fail(
        len in 0usize..(2 * CHUNK + 50),
        cut in any::<prop::sample::Index>(),
        split in 1usize..(CHUNK + 20),
    ) {
        let plain = sample(len);
        let s = sealed(&plain);
        let end = HEADER_LEN + cut.index(s.len() - HEADER_LEN + 1);
        let h = Header::parse(&s).unwrap();
        let mut dec = Decoder::new(ChunkCipher::new(&key(7), h, &digest(&plain)));
        let mut out = Vec::new();
        for piece in s[HEADER_LEN..end].chunks(split) {
            dec.update(piece, &mut out).unwrap();
        }
        prop_assert_eq!(&out[..], &plain[..out.len()]);
        prop_assert!(out.len() % CHUNK == 0 || out.len() == plain.len());
        prop_assert_eq!(dec.finish().is_ok(), end == s.len());
    }
}
