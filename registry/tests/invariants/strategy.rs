//! The proptest strategy for registry ops, shared by the property tests
//! (the fuzz target reads ops with `arbitrary` instead).

use proptest::prelude::*;

use super::ops::Op;

/// An op biased towards statements that can be accepted and that build the
/// states where holes hide: root acts often (grants), key generation 0 (the
/// one most actors hold) is picked often, tags usually name their current
/// move, and the clock moves by seconds.
pub fn op() -> impl Strategy<Value = Op> {
    let action = prop_oneof![
        4 => Just(0u8), // grant
        1 => Just(1u8), // revoke
        2 => Just(2u8), // revoke_key
        1 => Just(3u8), // rotate
        3 => Just(4u8), // publish
        2 => Just(5u8), // access
        2 => Just(6u8), // tag
        3 => Just(7u8), // promote
        3 => Just(8u8), // approve
        1 => Just(9u8), // rollback
        1 => Just(10u8), // protect
    ];
    (
        prop_oneof![2 => Just(0u8), 3 => 1u8..5],
        action,
        any::<u8>(),
        prop_oneof![2 => Just(0u8), 1 => any::<u8>()],
        any::<u8>(),
        prop_oneof![3 => 128u8..255, 1 => Just(255u8), 2 => 0u8..5],
        prop_oneof![9 => 0u8..8, 1 => any::<u8>()],
    )
        .prop_map(|(w, act, a, b, c, d, dt)| Op([w, act, a, b, c, d, dt]))
}
