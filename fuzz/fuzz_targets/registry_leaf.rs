//! Registry leaves and the statements inside: decoding never panics, a
//! decoded leaf re-encodes to the same bytes, a parsed statement survives a
//! serialize/parse round trip, and the registry's check never panics on
//! whatever parses.
#![no_main]
use custody_registry::actor_key::ActorSigner;
use custody_registry::leaf::Leaf;
use custody_registry::names::{ActorName, Pattern};
use custody_registry::registry::{Config, Registry, Role};
use custody_registry::statement::events::GrantRole;
use custody_registry::statement::{Context, Event, Nonce, SignedStatement, Statement, Text};
use custody_registry::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(leaf) = Leaf::decode(data) else { return };
    assert_eq!(leaf.encode(), data, "leaf does not round-trip");
    let Ok(signed) = SignedStatement::parse(leaf.envelope) else { return };
    let stmt = &signed.statement;
    let again = Statement::parse(&stmt.to_json()).expect("a parsed statement re-parses");
    // Metrics are f64 parsed best-effort by serde_json (no float_roundtrip),
    // so only metric-free statements must compare equal.
    let has_metrics = matches!(&stmt.event, Event::Publish(p) if !p.metadata.metrics.is_empty());
    if !has_metrics {
        assert_eq!(&again, stmt, "statement does not round-trip");
    }

    // A registry with a genesis admin, then the fuzzed statement checked
    // against it and against the empty registry: verdicts, never panics.
    let root = ActorSigner::from_seed(&ActorName::new("root").unwrap(), &[7; 32]);
    let genesis = Statement::new(
        &root,
        Timestamp::from_unix_secs(1_800_000_000).unwrap(),
        Nonce([0; 16]),
        Context::reason(Text::new("genesis").unwrap()),
        Event::Grant(GrantRole {
            actor: root.actor().clone(),
            key: root.public().clone(),
            role: Role::Admin,
            pattern: Pattern::All,
        }),
    );
    let empty = Registry::new(Config::default());
    let _ = empty.signing_key(stmt);
    let _ = empty.check(stmt, 0, leaf.receive_time_ms);
    let mut reg = Registry::new(Config::default());
    reg.process(&genesis, 0, 1_800_000_000_000).expect("genesis applies");
    let _ = reg.authenticate(&signed);
    if let Ok(custody_registry::registry::Verdict::Append(a)) = reg.check(stmt, 1, leaf.receive_time_ms) {
        reg.apply(a).expect("apply right after check succeeds");
    }
});
