use super::*;
use custody_standards::{leaf_hash, tree_hash, MemoryHashStore};

#[test]
fn concatenation_is_associative_and_keeps_order() {
    let ops: [&[u8]; 3] = [b"ab", b"c", b"def"];
    assert_eq!(concat(None, ops), b"abcdef");
    assert_eq!(concat(Some(b"xy"), ops), b"xyabcdef");
    // Partial merges (operands combined first) give the same value.
    let partial = concat(None, [ops[1], ops[2]]);
    assert_eq!(concat(Some(b"xy"), [ops[0], &partial[..]]), b"xyabcdef");
}

#[test]
fn entry_rows_round_trip_and_reject_malformed_rows() {
    let entries: Vec<Vec<u8>> = (1..=16).map(|n| vec![n as u8; n * 100]).collect();
    let mut row = Vec::new();
    for e in &entries {
        push_entry(&mut row, e);
    }
    let got: Vec<Vec<u8>> = split_entries(&row).unwrap().into_iter().map(<[u8]>::to_vec).collect();
    assert_eq!(got, entries);
    assert_eq!(entry_row_key(0), entry_row_key(15));
    assert_ne!(entry_row_key(15), entry_row_key(16));
    assert!(split_entries(&[]).is_err(), "empty row");
    assert!(split_entries(&row[..row.len() - 1]).is_err(), "truncated record");
    assert!(split_entries(&[0, 0]).is_err(), "empty record");
    assert!(split_entries(&[0]).is_err(), "truncated length");
    let mut seventeen = row.clone();
    push_entry(&mut seventeen, b"x");
    assert!(split_entries(&seventeen).is_err(), "more than a row holds");
    assert!(check_entry(b"").is_err());
    assert!(check_entry(&vec![0; MAX_ENTRY_SIZE + 1]).is_err());
    assert!(check_entry(&vec![0; MAX_ENTRY_SIZE]).is_ok());
}

#[test]
fn hash_row_keys_round_trip() {
    for (level, index) in [(0u8, 0u64), (0, 15), (0, 16), (4, 1 << 40), (60, 3)] {
        let (l, first) = parse_hash_row_key(&hash_row_key(level, index)).unwrap();
        assert_eq!((l, first), (level, index & !(ROW_WIDTH - 1)));
    }
    assert_eq!(parse_hash_row_key(&[1, 0, 0, 0, 0, 0, 0, 0, 0]), None, "unstored level");
    assert_eq!(parse_hash_row_key(&[0; 8]), None);
    let mut huge = [0xffu8; 9];
    huge[0] = 0;
    assert_eq!(parse_hash_row_key(&huge), None, "first index overflows");
    assert!(split_hashes(&[0; 31]).is_err());
    assert!(split_hashes(&[]).is_err());
    assert!(split_hashes(&[0; 32 * 17]).is_err());
    assert_eq!(split_hashes(&[7; 64]).unwrap().len(), 2);
}

/// Every complete subtree of trees up to 300 leaves comes out of the kept
/// levels exactly as the in-memory store (which keeps every level) has it.
#[test]
fn every_node_is_recomputed_from_the_stratum_below() {
    let mut mem = MemoryHashStore::new();
    let mut rows: std::collections::BTreeMap<[u8; 9], Vec<Hash>> = Default::default();
    for i in 0..300u64 {
        mem.append(leaf_hash(&i.to_be_bytes()));
    }
    for level in (0..64u8).filter(|l| is_stored_level(*l)) {
        for index in 0.. {
            let Some(h) = mem.get(NodeId::new(level, index)) else { break };
            rows.entry(hash_row_key(level, index)).or_default().push(h);
        }
    }
    for level in 0..9u8 {
        for index in 0..(300u64 >> level) {
            let id = NodeId::new(level, index);
            let src = HashSource::of(id).unwrap();
            assert!(src.span <= 8 && src.first % ROW_WIDTH + src.span <= ROW_WIDTH, "{id}: {src:?}");
            let got = src.compute(&rows[&src.row_key()]);
            assert_eq!(got, mem.get(id), "{id}");
        }
    }
    // A row that does not yet hold every descendant gives nothing.
    let partial = HashSource::of(NodeId::new(3, 37)).unwrap();
    assert_eq!(partial.compute(&rows[&partial.row_key()]), None);
    assert_eq!(HashSource::of(NodeId::new(3, u64::MAX)), None);
    assert_eq!(tree_hash(300, &mem).unwrap(), mem.root());
}

#[test]
fn postings_round_trip_and_only_match_their_leaf() {
    let leaves: Vec<Hash> = (0..50u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut buckets: std::collections::HashMap<[u8; 2], Vec<u8>> = Default::default();
    for (i, l) in leaves.iter().enumerate() {
        push_posting(buckets.entry(leaf_bucket(l)).or_default(), l, (MAX_INDEX - 1) - i as u64);
    }
    for (i, l) in leaves.iter().enumerate() {
        let bucket = &buckets[&leaf_bucket(l)];
        assert_eq!(candidates(bucket, l).unwrap(), vec![(MAX_INDEX - 1) - i as u64]);
        for (tag, index) in split_postings(bucket).unwrap() {
            let own = index == (MAX_INDEX - 1) - i as u64;
            assert_eq!(posting_matches(&leaf_bucket(l), &tag, l), own);
        }
    }
    let absent = leaf_hash(b"absent");
    let mut bucket = Vec::new();
    push_posting(&mut bucket, &leaves[0], 3);
    assert_eq!(candidates(&bucket, &absent).unwrap(), Vec::<u64>::new());
    assert!(split_postings(&bucket[..8]).is_err());
    assert!(split_postings(&[]).is_err());
}

#[test]
fn registry_postings_expand_to_the_logical_rows() {
    let prefix = b"\x01some-digest".to_vec();
    let rows: Vec<Vec<u8>> = [3u64, 200, 255, 256, 70_000]
        .iter()
        .map(|i| [prefix.clone(), i.to_be_bytes().to_vec()].concat())
        .collect();
    let mut packed: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
    for r in &rows {
        let (k, b) = posting_row(r).unwrap();
        assert_eq!(k.len(), r.len());
        packed.entry(k).or_default().push(b);
    }
    assert_eq!(packed.len(), 3, "0..256, 256..512 and 70_000's bucket");
    let expanded: Vec<Vec<u8>> = packed.iter().flat_map(|(k, v)| expand_postings(k, v).unwrap()).collect();
    assert_eq!(expanded, rows, "same rows, same order");
    let key = packed.keys().next().unwrap();
    assert!(expand_postings(key, &[]).is_err());
    assert!(expand_postings(key, &[5, 5]).is_err(), "a row twice");
    assert!(expand_postings(key, &[6, 5]).is_err(), "out of order");
    assert!(expand_postings(&[1, 2], &[1]).is_err());
    assert_eq!(posting_row(&[1, 2, 3]), None);
}
