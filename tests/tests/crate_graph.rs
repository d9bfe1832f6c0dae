//! The workspace's crate graph stays layered as docs/architecture.md draws
//! it: the standards know nothing of the registry, the pure crates and the
//! shared plumbing know nothing of the binaries, and the test kit is only
//! ever a dev-dependency. A new `[dependencies]` line that breaks a layer
//! fails here, before it quietly becomes load-bearing.

use std::collections::BTreeMap;
use std::path::Path;

/// Each member's directory and the workspace crates it may use as a
/// normal (non-dev) dependency.
const ALLOWED: &[(&str, &[&str])] = &[
    ("standards", &[]),
    ("registry", &["custody-standards"]),
    ("service", &[]),
    ("client", &[]),
    ("testkit", &["custody-standards", "custody-registry"]),
    ("log-server", &["custody-standards", "custody-registry", "custody-service", "custody-client"]),
    ("witness", &["custody-standards", "custody-registry", "custody-service", "custody-client"]),
    ("verifier", &["custody-standards", "custody-registry", "custody-client"]),
    ("bench", &["custody-standards", "custody-registry", "custody-client"]),
    ("tests", &[]),
];

/// The `custody-*` names listed under each section of a manifest.
fn workspace_deps(manifest: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_owned();
            continue;
        }
        if let Some(name) = line.split(['=', '.', ' ']).next().filter(|n| n.starts_with("custody-")) {
            out.entry(section.clone()).or_default().push(name.to_owned());
        }
    }
    out
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (dir, allowed) in ALLOWED {
        assert!(workspace.contains(&format!("\"{dir}\"")), "{dir} is a workspace member");
        let manifest = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        let deps = workspace_deps(&manifest);
        for (section, names) in &deps {
            let normal = section == "dependencies" || section.ends_with(".dependencies");
            if !normal {
                continue;
            }
            for name in names {
                assert!(
                    allowed.contains(&name.as_str()),
                    "{dir}/Cargo.toml [{section}] uses {name}, which is not below it in docs/architecture.md"
                );
            }
        }
    }
}

#[test]
fn the_check_sees_a_forbidden_dependency() {
    let deps = workspace_deps("[package]\nname = \"x\"\n[dependencies]\ncustody-registry.workspace = true\nserde = \"1\"\n[dev-dependencies]\ncustody-testkit = { path = \"../testkit\" }\n");
    assert_eq!(deps["dependencies"], vec!["custody-registry"]);
    assert_eq!(deps["dev-dependencies"], vec!["custody-testkit"]);
    let standards_allowed = ALLOWED.iter().find(|(d, _)| *d == "standards").unwrap().1;
    assert!(!standards_allowed.contains(&"custody-registry"), "the standards never depend on the registry");
}
