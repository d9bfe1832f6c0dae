//! The rules on hand-made statements: what is a baseline, what alerts,
//! what is learned.

use custody_registry::registry::Lifecycle;
use custody_registry::statement::{SignedStatement, Text};
use custody_testkit::statements::{access, digest_of, protect, signer, statement_at, tag};

use super::*;

const RULES: &str = r#"
[[sink]]
name = "out"
type = "stdout"

[rules.new_environment]
[rules.new_pipeline]
[rules.protected_tag_move]

[rules.unknown_client]
allow = ["ci-*"]
allow_missing = true
"#;

fn stmt(event: Event, env: Option<&str>, pipeline: Option<&str>, source: Option<&str>) -> SignedStatement {
    let who = signer("dave");
    let mut st = statement_at(&who, 1_800_000_000, event);
    st.context.environment = env.map(|s| Text::new(s).unwrap());
    st.context.pipeline = pipeline.map(|s| Text::new(s).unwrap());
    st.context.source = source.map(|s| Text::new(s).unwrap());
    SignedStatement::parse(&st.sign(&who).unwrap()).unwrap()
}

fn rules_of(cfg: &Config, l: &mut Learned, s: &SignedStatement) -> Vec<&'static str> {
    evaluate(cfg, l, s, true).into_iter().map(|h| h.rule).collect()
}

#[test]
fn a_names_first_environment_and_pipeline_are_its_baseline() {
    let cfg = Config::parse(RULES).unwrap();
    let mut l = Learned::default();
    let read = || access("acme/m", "1", digest_of(b"m"));
    assert!(rules_of(&cfg, &mut l, &stmt(read(), Some("prod"), Some("eval#1"), None)).is_empty());
    // Another run of the same pipeline is not new; another environment is.
    assert!(rules_of(&cfg, &mut l, &stmt(read(), Some("prod"), Some("eval#2"), None)).is_empty());
    assert_eq!(rules_of(&cfg, &mut l, &stmt(read(), Some("dev"), Some("eval#3"), None)), ["new_environment"]);
    assert_eq!(rules_of(&cfg, &mut l, &stmt(read(), Some("dev"), Some("train#1"), None)), ["new_pipeline"]);
    assert!(rules_of(&cfg, &mut l, &stmt(read(), Some("dev"), Some("train#2"), None)).is_empty());
    // Learned per name: another name starts its own baseline.
    let other = access("acme/other", "1", digest_of(b"o"));
    assert!(rules_of(&cfg, &mut l, &stmt(other, Some("dev"), None, None)).is_empty());
}

#[test]
fn the_baseline_pass_only_learns() {
    let cfg = Config::parse(RULES).unwrap();
    let mut l = Learned::default();
    let read = |env: &str| stmt(access("acme/m", "1", digest_of(b"m")), Some(env), None, Some("curl"));
    assert!(evaluate(&cfg, &mut l, &read("prod"), false).is_empty());
    assert!(evaluate(&cfg, &mut l, &read("dev"), false).is_empty());
    assert_eq!(l.environments["acme/m"].len(), 2);
    assert_eq!(rules_of(&cfg, &mut l, &read("dev")), ["unknown_client"]);
}

#[test]
fn clients_are_matched_against_the_allowlist() {
    let cfg = Config::parse(RULES).unwrap();
    let mut l = Learned::default();
    let read = |src: Option<&str>| stmt(access("acme/m", "1", digest_of(b"m")), None, None, src);
    assert!(rules_of(&cfg, &mut l, &read(Some("ci-runner-3"))).is_empty());
    assert!(rules_of(&cfg, &mut l, &read(None)).is_empty(), "allow_missing");
    assert_eq!(rules_of(&cfg, &mut l, &read(Some("laptop"))), ["unknown_client"]);
}

#[test]
fn a_protect_makes_a_tag_protected_until_lifted() {
    let cfg = Config::parse(RULES).unwrap();
    let mut l = Learned::default();
    let d = digest_of(b"m");
    let mv = |t: &str| stmt(tag("acme/m", t, d, None), None, None, None);
    assert!(rules_of(&cfg, &mut l, &mv("release")).is_empty());
    assert_eq!(rules_of(&cfg, &mut l, &mv("production")), ["protected_tag_move"]);
    evaluate(
        &cfg,
        &mut l,
        &stmt(protect("acme/m", "release", &[Lifecycle::Production]), None, None, None),
        true,
    );
    assert_eq!(rules_of(&cfg, &mut l, &mv("release")), ["protected_tag_move"]);
    let all = [
        Lifecycle::Development,
        Lifecycle::Staging,
        Lifecycle::Production,
        Lifecycle::Deprecated,
        Lifecycle::Archived,
    ];
    evaluate(&cfg, &mut l, &stmt(protect("acme/m", "release", &all), None, None, None), true);
    assert!(rules_of(&cfg, &mut l, &mv("release")).is_empty());
}
