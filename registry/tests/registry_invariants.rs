//! Invariants of the registry rules under random statement sequences.
//!
//! proptest generates sequences of ops (registry/tests/invariants/ops.rs: grants,
//! revocations, key rotations and revocations, publishes, claims of stored
//! digests, tag moves, promotions, approvals, rollbacks, tag protections
//! and accesses from five actors with several keys each) and drives a registry with them as a
//! log would. After every statement the registry accepts, an independent
//! model written from docs/protocol.md (registry/tests/invariants/model.rs)
//! checks that the documented rules allowed it, and that both states agree.
//!
//! Each test checks one invariant family over its own share of
//! `CUSTODY_PROPTEST_STATEMENTS` generated statements (default 1,000,000
//! in all); raise it for a longer search. The `registry_ops` fuzz target runs
//! the same ops and model for as long as it is given. Every counterexample
//! found becomes a named test at the end of this file.

#[path = "invariants/model.rs"]
mod model;
#[path = "invariants/ops.rs"]
mod ops;
#[path = "invariants/strategy.rs"]
mod strategy;

use model::{Inv, Model};
use ops::{Driver, Op, Step};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering};
use strategy::op;

/// Ops per generated sequence: long enough to build grant chains, publish,
/// approve and promote.
const OPS_PER_CASE: usize = 200;
/// Invariant families, each tested over a fifth of the budget.
const FAMILIES: u64 = 6;

/// Statements generated and accepted, over every run of this process: a
/// generator that stopped producing acceptable statements would make the
/// invariants hold vacuously.
static GENERATED: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// Runs `ops`, checking `inv` after every accepted statement; on a
/// violation, the index of the op and what was violated.
fn run(ops: &[Op], inv: Inv) -> Result<(), (usize, String)> {
    GENERATED.fetch_add(ops.len() as u64, Ordering::Relaxed);
    let mut d = Driver::new();
    let mut m = Model::new();
    // The genesis, accepted by Driver::new, is leaf 0.
    m.observe(&d.genesis, 0);
    for (i, op) in ops.iter().enumerate() {
        if let Step::Applied { stmt, applied } = d.step(*op) {
            ACCEPTED.fetch_add(1, Ordering::Relaxed);
            let mut found = m.observe(&stmt, applied.index);
            found.extend(m.compare(&d.reg));
            if let Some((_, msg)) = found.into_iter().find(|(k, _)| *k == inv) {
                return Err((i, format!("op {i} {op:?}: {msg}")));
            }
        }
    }
    Ok(())
}

fn statements_budget() -> u64 {
    std::env::var("CUSTODY_PROPTEST_STATEMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

/// proptest over this family's share of the budget; a failure is shrunk
/// to a minimal op sequence and printed as bytes for a regression test.
fn check_family(inv: Inv) {
    // Sequences of 1 ..= 2 * OPS_PER_CASE ops: OPS_PER_CASE on average, and
    // shrinkable to the few ops a counterexample needs.
    let cases = (statements_budget() / FAMILIES / OPS_PER_CASE as u64).max(1) as u32;
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let lengths = 1..=2 * OPS_PER_CASE;
    let result = runner.run(&proptest::collection::vec(op(), lengths), |ops| {
        run(&ops, inv).map_err(|(_, msg)| TestCaseError::fail(msg))
    });
    if let Err(e) = result {
        let detail = match &e {
            proptest::test_runner::TestError::Fail(why, ops) => {
                let upto = run(ops, inv).err().map_or(ops.len(), |(i, _)| i + 1);
                let bytes: Vec<[u8; 7]> = ops[..upto].iter().map(|o| o.0).collect();
                format!("{why}\nregression bytes: {bytes:?}")
            }
            other => other.to_string(),
        };
        panic!("{inv:?} violated: {detail}");
    }
    let (generated, accepted) = (GENERATED.load(Ordering::Relaxed), ACCEPTED.load(Ordering::Relaxed));
    assert!(accepted * 10 > generated, "only {accepted} of {generated} generated statements were accepted");
}

#[test]
fn statements_are_signed_by_live_keys_of_their_actor() {
    check_family(Inv::LiveKey);
}

#[test]
fn roles_come_only_from_grants_by_admins_over_the_pattern() {
    check_family(Inv::Roles);
}

#[test]
fn keys_are_bound_to_an_actor_only_with_authority_over_its_roles() {
    check_family(Inv::Binding);
}

#[test]
fn access_needs_reader_on_a_name_that_published_the_digest() {
    check_family(Inv::Access);
}

#[test]
fn production_and_protected_tags_need_a_second_person() {
    check_family(Inv::TwoPerson);
}

#[test]
fn tags_protected_by_an_admin_keep_their_statuses() {
    check_family(Inv::Protect);
}

// ---- regressions: counterexamples found by the tests above -------------------
//
// Each failed on the rules before they were fixed (found by the property
// tests on the code of the time) and must hold from now on. One more was a
// bug in the model, not in the rules: a publish of a digest already
// published under the *same* name by another version needs only reader on
// that name (kept as `claim_under_a_name_that_already_published_it`).

/// Runs a recorded counterexample and requires `inv` to hold.
fn regression(inv: Inv, bytes: &[[u8; 7]]) {
    let ops: Vec<Op> = bytes.iter().map(|b| Op(*b)).collect();
    if let Err((_, e)) = run(&ops, inv) {
        panic!("{inv:?} violated: {e}");
    }
}

/// A scoped admin (cat, admin on `a/*`) bound a new key to dan, whose key
/// root had revoked and who holds reader on `*`: the new key would inherit
/// roles beyond cat's authority (actor takeover through a revoked key).
#[test]
fn regression_scoped_admin_rebinds_an_actor_with_wider_roles() {
    regression(
        Inv::Binding,
        &[
            [0, 0, 8, 0, 4, 156, 0],     // root: cat admin on a/*
            [0, 0, 69, 0, 0, 255, 0],    // root: dan reader on *
            [0, 2, 179, 0, 0, 128, 0],   // root: revoke dan's key
            [3, 0, 69, 193, 58, 137, 6], // cat: dan approver on a/m0, new key
        ],
    );
}

/// dan, admin on `b/*` only, published the digest root had published as
/// `a/m0@1` under `b/m0`, without reader on `a/m0` (read without the
/// reader role by claiming a stored digest).
#[test]
fn regression_claiming_a_stored_digest_needs_reader_on_it() {
    regression(
        Inv::Access,
        &[
            [0, 0, 104, 0, 144, 153, 0], // root: dan admin on b/*
            [0, 4, 124, 0, 28, 128, 0],  // root: publish a/m0@1, digest 0
            [4, 4, 190, 0, 188, 128, 0], // dan: publish b/m0@1, digest 0
        ],
    );
}

/// The protected tag `production` moved to a version still in
/// development, routing around the two-person rule.
#[test]
fn regression_production_tag_on_an_unpromoted_version() {
    regression(
        Inv::TwoPerson,
        &[
            [0, 4, 19, 0, 134, 128, 0], // root: publish b/m1@1, digest 2
            [0, 6, 143, 1, 74, 128, 0], // root: tag b/m1:production -> digest 2
        ],
    );
}

/// Not a hole: dan, publisher on `b/*`, publishes as `b/m0@2` the digest
/// that `b/m0@1` (and `a/m0@1`) already published. He reads `b/m0`, a name
/// that published it, which is what the rule asks (the model once wrongly
/// demanded reader on another name).
#[test]
fn claim_under_a_name_that_already_published_it() {
    let ops = [
        [0, 4, 112, 0, 126, 128, 0], // root: publish a/m0@1, digest 2
        [0, 0, 234, 0, 66, 3, 0],    // root: dan publisher on b/*
        [0, 4, 126, 0, 46, 128, 0],  // root: publish b/m0@1, digest 2
        [4, 4, 38, 13, 70, 128, 0],  // dan: publish b/m0@2, digest 2
    ];
    regression(Inv::Access, &ops);
    let mut d = Driver::new();
    let accepted = ops.iter().filter(|o| matches!(d.step(Op(**o)), Step::Applied { .. })).count();
    assert_eq!(accepted, 4, "the rules accept the claim");
}
