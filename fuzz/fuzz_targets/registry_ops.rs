//! Structure-aware fuzzing of the registry rules: the input is read with
//! `arbitrary` as a sequence of 7-byte ops (registry/tests/invariants/ops.rs:
//! grants, revocations, rotations, key revocations, publishes, accesses,
//! tag moves, promotions, approvals and rollbacks by five actors with
//! several keys each), driven through `Registry::check` and `apply` as a
//! log would. After every accepted statement the independent model of
//! docs/protocol.md (registry/tests/invariants/model.rs) must find no
//! violation: the same invariants as the property tests, for as long as
//! the fuzzer runs.
#![no_main]

#[path = "../../registry/tests/invariants/model.rs"]
mod model;
#[path = "../../registry/tests/invariants/ops.rs"]
mod ops;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

/// Longest program run per input: deep enough for any rule, short enough
/// to keep executions fast.
const MAX_OPS: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut d = ops::Driver::new();
    let mut m = model::Model::new();
    assert!(m.observe(&d.genesis, 0).is_empty());
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(bytes) = u.arbitrary::<[u8; 7]>() else { break };
        if let ops::Step::Applied { stmt, applied } = d.step(ops::Op(bytes)) {
            let mut found = m.observe(&stmt, applied.index);
            found.extend(m.compare(&d.reg));
            // Families the rules do not implement yet are listed in
            // CUSTODY_FUZZ_SKIP (comma-separated `Inv` names), so the target
            // keeps searching for the others.
            found.retain(|(inv, _)| !skipped(*inv));
            assert!(found.is_empty(), "invariant violated after {bytes:?}: {found:?}");
        }
    }
});

fn skipped(inv: model::Inv) -> bool {
    std::env::var("CUSTODY_FUZZ_SKIP").is_ok_and(|s| s.split(',').any(|x| x.trim() == format!("{inv:?}")))
}
