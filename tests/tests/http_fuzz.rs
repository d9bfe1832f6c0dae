//! Scenario 8, bad input over HTTP: random, truncated, bit-flipped and
//! oversized bodies, garbage headers, odd paths and query strings and raw
//! protocol garbage at every route of the real `custody-log` and
//! `custody-witness` (three policy witnesses plus a fourth that has the
//! first as its gossip peer, so pushed checkpoints are parsed deeply). No
//! answer may be a 5xx, no process may die, and neither the log's tree nor
//! any witness's checkpoint may change; afterwards valid requests still
//! work.
//!
//! The seed is printed; `CUSTODY_FUZZ_SEED=<n>` replays the same choices
//! (the valid bodies themselves differ per run: fresh keys and nonces).

mod fuzzkit;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use custody_registry::leaf::Leaf;
use custody_registry::statement::SignedStatement;
use custody_standards::witness::AddCheckpointRequest;
use custody_standards::{Checkpoint, Hash, Note};
use custody_testkit::scenario::*;
use fuzzkit::cases::{endpoint_cases, protocol_cases, Ctx};
use fuzzkit::*;

/// `(method, route)` pairs.
type Routes = &'static [(&'static str, &'static str)];

/// Every route `custody-log` registers, copied from `configure` in
/// log-server/src/api/mod.rs (handlers in log-server/src/api/*.rs). The
/// first test keeps this list equal to the code and to docs/api.md.
const LOG_ROUTES: &[(&str, &str)] = &[
    ("GET", "/checkpoint"),
    ("GET", "/tile/{tail:.*}"),
    ("GET", "/entries"),
    ("POST", "/entries"),
    ("GET", "/entries/{index}"),
    ("GET", "/proof/inclusion"),
    ("GET", "/proof/consistency"),
    ("GET", "/proof/bundle"),
    ("POST", "/statements"),
    ("PUT", "/blobs/{digest}"),
    ("GET", "/blobs/{digest}"),
    ("GET", "/registry/models"),
    ("GET", "/registry/models/{org}/{model}"),
    ("GET", "/registry/models/{org}/{model}/entries"),
    ("GET", "/registry/resolve"),
    ("GET", "/state/proof"),
    ("POST", "/state/proofs"),
    ("GET", "/registry/artifacts/{digest}"),
    ("GET", "/registry/artifacts/{digest}/entries"),
    ("GET", "/registry/actors/{actor}"),
    ("GET", "/registry/actors/{actor}/entries"),
    ("GET", "/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/ui"),
    ("GET", "/ui/"),
    ("GET", "/ui/entries"),
    ("GET", "/ui/witnesses"),
    ("GET", "/ui/models/{org}/{model}"),
    ("GET", "/ui/assets/{path:.*}"),
    ("GET", "/ui/api/trust"),
    ("GET", "/ui/api/proofs"),
];

/// Every route `custody-witness` registers, copied from `configure` in
/// witness/src/api/mod.rs; kept equal to the code and to docs/witness.md.
const WITNESS_ROUTES: &[(&str, &str)] = &[
    ("POST", "/add-checkpoint"),
    ("POST", "/gossip/checkpoint"),
    ("GET", "/evidence"),
    ("GET", "/evidence/{id}"),
    ("GET", "/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/{origin_hex}/checkpoint"),
];

#[test]
fn the_fuzzed_routes_are_every_route_in_the_code_and_in_the_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    for (src, doc, list) in [
        ("log-server/src/api/mod.rs", "docs/api.md", LOG_ROUTES),
        ("witness/src/api/mod.rs", "docs/witness.md", WITNESS_ROUTES),
    ] {
        let listed: BTreeSet<(String, String)> =
            list.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(routes_in_source(&read(src)), listed, "the fuzz list must be exactly the routes of {src}");
        let documented = endpoints_in_doc(&read(doc));
        assert!(documented.len() >= list.len(), "{doc}: only {documented:?}");
        let missing: Vec<_> = documented
            .iter()
            .filter(|(m, p)| !list.iter().any(|(lm, lp)| lm == m && route_matches(lp, p)))
            .collect();
        assert!(missing.is_empty(), "endpoints in {doc} that the fuzz list lacks: {missing:?}");
        let undocumented: Vec<_> = list
            .iter()
            .filter(|(lm, lp)| !documented.iter().any(|(m, p)| lm == m && route_matches(lp, p)))
            .collect();
        assert!(undocumented.is_empty(), "routes of {src} missing from {doc}: {undocumented:?}");
    }
}

/// `(METHOD, path)` of every `web::resource("path")...route(web::method())`
/// in the `configure` function of `src`.
fn routes_in_source(src: &str) -> BTreeSet<(String, String)> {
    let start = src.find("pub fn configure").expect("configure");
    let body = &src[start..start + src[start..].find("\n}\n").expect("end of configure")];
    let mut out = BTreeSet::new();
    for chunk in body.split("web::resource(\"").skip(1) {
        let path = &chunk[..chunk.find('"').unwrap()];
        let methods: Vec<_> = ["get", "post", "put", "delete", "patch", "head"]
            .into_iter()
            .filter(|m| chunk.contains(&format!("web::{m}()")))
            .collect();
        assert!(!methods.is_empty(), "no method for {path}");
        out.extend(methods.into_iter().map(|m| (m.to_uppercase(), path.to_owned())));
    }
    // A scope whose handler dispatches by method itself declares its routes
    // in `// route: METHOD /path` comments; every scope must declare some.
    for line in body.lines() {
        if let Some((method, path)) = line.trim().strip_prefix("// route: ").and_then(|r| r.split_once(' ')) {
            out.insert((method.to_owned(), path.to_owned()));
        }
    }
    for chunk in body.split("web::scope(\"").skip(1) {
        let prefix = &chunk[..chunk.find('"').unwrap()];
        assert!(
            out.iter().any(|(_, p)| p.starts_with(&format!("{prefix}/"))),
            "scope {prefix} declares no `// route:` comment"
        );
    }
    out
}

/// Endpoints a doc defines: headings ``### `METHOD /path...` `` and table
/// rows whose first cell is `` `METHOD /path...` ``, with `<x>` placeholders
/// made concrete and optional `[...]` parts and queries dropped.
fn endpoints_in_doc(doc: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in doc.lines() {
        let Some(rest) = line.strip_prefix("### `").or_else(|| line.strip_prefix("| `")) else { continue };
        let span = &rest[..rest.find('`').unwrap_or(rest.len())];
        let Some((method, path)) = span.split_once(' ') else { continue };
        if !["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method) {
            continue;
        }
        let mut concrete = String::new();
        let mut depth = 0;
        for c in path.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                '?' if depth == 0 => break,
                c if depth == 0 => concrete.push(c),
                _ => {}
            }
        }
        while let (Some(a), Some(b)) = (concrete.find('<'), concrete.find('>')) {
            concrete.replace_range(a..=b, "x");
        }
        out.insert((method.to_owned(), concrete));
    }
    out
}

/// Whether actix's route template matches a concrete path.
fn route_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    for (i, seg) in t.iter().enumerate() {
        if seg.starts_with('{') && seg.contains(":.*") {
            return p.len() > i;
        }
        match p.get(i) {
            Some(s) if seg.starts_with('{') && !s.is_empty() => {}
            Some(s) if s == seg => {}
            _ => return false,
        }
    }
    t.len() == p.len()
}

#[test]
fn fuzzed_http_requests_never_get_a_5xx_crash_a_server_or_change_state() {
    let started = Instant::now();
    let seed = seed();
    eprintln!("http_fuzz: seed {seed} (replay with {SEED_VAR}={seed})");
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Deployment::start(tmp.path());

    // Real traffic whose requests become the valid bodies: two grants, a
    // publish (PUT /blobs), a verified pull (GET /blobs).
    let admin = d.admin();
    let alice = d.user("alice");
    let ka = alice.keygen("alice");
    for role in ["publisher", "reader"] {
        admin.ok(&["grant", &ka, "--role", role, "--pattern", "demo/*"]);
    }
    let artifact = b"fuzz target weights\n".repeat(100);
    let model = tmp.path().join("model.bin");
    std::fs::write(&model, &artifact).unwrap();
    alice.ok(&["publish", model.to_str().unwrap(), "--name", "demo/model", "--version", "1"]);
    alice.ok(&["pull", "demo/model@1", "-o", tmp.path().join("pulled.bin").to_str().unwrap()]);
    let log = addr(&d.log.url);
    let size = eventually("the log's checkpoint to cover the whole tree", 30, || {
        let (_, m) = get(&log, "/metrics");
        let tree = metric(&m, "custody_tree_size")?;
        (tree >= 5.0 && metric(&m, "custody_published_tree_size") == Some(tree)).then_some(tree as u64)
    });
    // Late cosignature requests from the last publishing round settle.
    std::thread::sleep(std::time::Duration::from_millis(500));

    // A fourth witness, outside the policy, with w1 as its gossip peer.
    let origin_hex = custody_standards::hash::sha256(d.origin.as_bytes()).to_hex();
    let (_, log_cp) = get(&log, "/checkpoint");
    let mut w4 = start_peer_witness(&d, tmp.path());
    let seed_body =
        AddCheckpointRequest { old_size: 0, proof: vec![], checkpoint: log_cp.clone() }.to_bytes();
    let (status, body) =
        send(&addr(&w4.url), &request("POST", "/add-checkpoint", &[], Some(&seed_body)), false).unwrap();
    assert_eq!(status, 200, "w4 cosigns the log's checkpoint: {}", text(&body));

    let ctx = gather(&d, &w4, size, artifact, origin_hex, log_cp);
    let before = snapshot(&d, &w4, &ctx.origin_hex);

    let mut servers: Vec<(String, String, Routes)> = vec![("custody-log".into(), log.clone(), LOG_ROUTES)];
    for (i, w) in d.witnesses.iter().chain([&w4]).enumerate() {
        servers.push((format!("witness w{}", i + 1), addr(&w.url), WITNESS_ROUTES));
    }
    let fuzzing = Instant::now();
    let mut failures = Vec::new();
    let mut cosigned = vec![0; servers.len()];
    let mut requests = 0;
    let mut seen = std::collections::BTreeMap::new();
    for (s, (name, address, routes)) in servers.iter().enumerate() {
        let mut batches: Vec<(String, Vec<Case>)> =
            routes.iter().map(|(m, r)| (format!("{m} {r}"), endpoint_cases(&mut rng, m, r, &ctx))).collect();
        batches.push(("protocol garbage".into(), protocol_cases(&mut rng)));
        for (what, cases) in batches {
            for case in &cases {
                requests += 1;
                let answer = send(address, &case.raw, case.half_close);
                if let Ok((status, _)) = &answer {
                    *seen.entry((s, what.clone(), *status)).or_insert(0) += 1;
                }
                // No documented 5xx can apply: the log answers 503 before
                // its first checkpoint, when `?wait=checkpoint` times out
                // (only after an append), while shutting down and from
                // `/health` without quorum, 500 for storage failures and
                // tampered blobs; a witness 503 for a frozen origin or a
                // failed store, 500 if its own key cannot sign. None of
                // these holds here, so every 5xx is a bug.
                match answer {
                    Ok((status, body)) if status >= 500 => failures.push(format!(
                        "{name} {what} [{}]: {status} {}",
                        case.label,
                        text(&body[..body.len().min(300)])
                    )),
                    Ok((200, _)) if what == "POST /add-checkpoint" => cosigned[s] += 1,
                    Ok(_) => {}
                    Err(e) if case.must_answer => {
                        failures.push(format!("{name} {what} [{}]: {e}", case.label))
                    }
                    Err(_) => {}
                }
            }
            assert_all_alive(
                &mut d,
                &mut w4,
                &format!("{} requests to {name} {what} (seed {seed})", cases.len()),
            );
        }
    }
    eprintln!("http_fuzz: {requests} requests in {:.1} s", fuzzing.elapsed().as_secs_f64());
    for ((s, what, status), n) in &seen {
        eprintln!("  {} {what}: {status} x{n}", servers[*s].0);
    }
    assert!(failures.is_empty(), "seed {seed}: {} bad answers:\n{}", failures.len(), failures.join("\n"));
    // The fuzz got past the parsers: replayed statements reached
    // authentication, uploads the digest check, witnesses the signature
    // and old-size checks, and w4 compared a peer's checkpoint.
    for (s, what, status) in [
        (0, "POST /statements", 401),
        (0, "GET /blobs/{digest}", 401),
        (0, "PUT /blobs/{digest}", 422),
        (0, "GET /proof/inclusion", 200),
        (0, "GET /tile/{tail:.*}", 200),
        (1, "POST /add-checkpoint", 409),
        (4, "POST /add-checkpoint", 409),
        (4, "POST /gossip/checkpoint", 200),
    ] {
        assert!(seen.contains_key(&(s, what.to_owned(), status)), "no {status} from {} {what}", servers[s].0);
    }

    // Nothing was appended or cosigned, no evidence, no 5xx counted.
    let after = snapshot(&d, &w4, &ctx.origin_hex);
    assert_eq!(after.log, before.log, "the log's tree and checkpoint are unchanged (seed {seed})");
    for (i, (b, a)) in before.witnesses.iter().zip(&after.witnesses).enumerate() {
        assert_eq!(
            (a.0, a.1, &a.3),
            (b.0, b.1, &b.3),
            "w{}: same size, root and evidence (seed {seed})",
            i + 1
        );
        // A fuzz case that happens to be a valid re-submission of the
        // cosigned size is answered 200 and re-cosigned with a fresh
        // timestamp; otherwise the served note is byte-identical.
        if cosigned[i + 1] == 0 {
            assert_eq!(a.2, b.2, "w{}: the served note is unchanged (seed {seed})", i + 1);
        }
    }
    let (_, m) = get(&log, "/metrics");
    let m = text(&m);
    assert!(!m.contains("custody_http_requests_total{status=\"5"), "the log counted 5xx answers:\n{m}");
    for w in d.witnesses.iter().chain([&w4]) {
        let (_, m) = get(&addr(&w.url), "/metrics");
        for line in
            text(&m).lines().filter(|l| l.starts_with("custody_witness_add_checkpoint_requests_total"))
        {
            assert!(!line.contains("status=\"5") || line.ends_with(" 0"), "{line}");
        }
    }

    // Valid requests still work: a new publish is sequenced and cosigned
    // by the quorum, and w4 cosigns the grown tree.
    let model2 = tmp.path().join("model2.bin");
    std::fs::write(&model2, b"after the fuzz\n".repeat(50)).unwrap();
    alice.ok(&["publish", model2.to_str().unwrap(), "--name", "demo/model", "--version", "2"]);
    let (_, cp2) = eventually("a checkpoint of the grown tree", 30, || {
        let (status, cp) = get(&log, "/checkpoint");
        // The publish and its batch's commitment leaf.
        (status == 200 && note_state(&cp).0 == size + 2).then_some((status, cp))
    });
    eventually("two policy witnesses to cosign the grown tree", 30, || {
        let n = d
            .witnesses
            .iter()
            .filter(|w| witness_state(&addr(&w.url), &ctx.origin_hex).0 == size + 2)
            .count();
        (n >= 2).then_some(())
    });
    let (_, proof) = get(&log, &format!("/proof/consistency?old={size}&new={}", size + 2));
    let proof = json_strings(&proof, "proof").iter().map(|h| Hash::from_base64(h).unwrap()).collect();
    let body = AddCheckpointRequest { old_size: size, proof, checkpoint: cp2 }.to_bytes();
    let (status, answer) =
        send(&addr(&w4.url), &request("POST", "/add-checkpoint", &[], Some(&body)), false).unwrap();
    assert_eq!(status, 200, "w4 still cosigns: {}", text(&answer));
    assert_eq!(witness_state(&addr(&w4.url), &ctx.origin_hex).0, size + 2);
    eprintln!("http_fuzz: whole scenario {:.1} s", started.elapsed().as_secs_f64());
}

/// Starts a witness that trusts the log and has w1 (from the policy file)
/// as its only peer; it gossips rarely, so only pushes reach it.
fn start_peer_witness(d: &Deployment, dir: &Path) -> Proc {
    let policy = std::fs::read_to_string(&d.policy).unwrap();
    let w1: Vec<&str> = policy.lines().find(|l| l.starts_with("witness ")).unwrap().split(' ').collect();
    let data = dir.join("w4");
    run_ok(
        Command::new(bin("custody-witness"))
            .args(["init", "--name", "w4.fuzz.example", "--data-dir"])
            .arg(&data),
    );
    let (logs, peers) = (dir.join("w4-logs.txt"), dir.join("w4-peers.txt"));
    std::fs::write(&logs, format!("logs/v0\n\nvkey {}\norigin none\nqpd 86400\n", d.log_vkey)).unwrap();
    std::fs::write(&peers, format!("peers/v0\n\nwitness {}\nvkey {}\nurl {}\n", w1[1], w1[2], w1[3]))
        .unwrap();
    spawn(
        Command::new(bin("custody-witness"))
            .args(["serve", "--listen", "127.0.0.1:0", "--gossip-interval", "3600000", "--data-dir"])
            .arg(&data)
            .arg("--logs")
            .arg(&logs)
            .arg("--peers")
            .arg(&peers),
    )
}

/// Valid bodies from the log's own entries and checkpoints.
fn gather(
    d: &Deployment,
    w4: &Proc,
    size: u64,
    artifact: Vec<u8>,
    origin_hex: String,
    log_cp: Vec<u8>,
) -> Ctx {
    let log = addr(&d.log.url);
    let mut envelopes = std::collections::HashMap::new();
    let mut first = Vec::new();
    for i in 0..size {
        let (status, entry) = get(&log, &format!("/entries/{i}"));
        assert_eq!(status, 200);
        // Commitment leaves end each batch: no statement in them.
        let Ok(leaf) = Leaf::decode(&entry) else { continue };
        let envelope = leaf.envelope.to_vec();
        let action = SignedStatement::parse(&envelope).unwrap().statement.event.action();
        envelopes.insert(action, envelope);
        // The first statement after the genesis.
        if i >= 1 && first.is_empty() {
            first = entry;
        }
    }
    let leaf = custody_standards::leaf_hash(&first);
    // An old size no witness holds, so no variant of this body is valid.
    let sizes: Vec<u64> = d.witnesses.iter().map(|w| witness_state(&addr(&w.url), &origin_hex).0).collect();
    let old = (1..size - 1).find(|s| !sizes.contains(s)).unwrap();
    let (_, proof) = get(&log, &format!("/proof/consistency?old={old}&new={size}"));
    let proof: Vec<Hash> =
        json_strings(&proof, "proof").iter().map(|h| Hash::from_base64(h).unwrap()).collect();
    assert!(!proof.is_empty());
    let add =
        |old_size, proof| AddCheckpointRequest { old_size, proof, checkpoint: log_cp.clone() }.to_bytes();
    let (_, w1_note) = get(&addr(&d.witnesses[0].url), &format!("/{origin_hex}/checkpoint"));
    let (_, w4_note) = get(&addr(&w4.url), &format!("/{origin_hex}/checkpoint"));
    let take = |a: &str| envelopes.get(a).cloned().unwrap_or_else(|| panic!("no {a} entry"));
    Ctx {
        size,
        digest_hex: custody_standards::hash::sha256(&artifact).to_hex(),
        artifact,
        leaf_b64: leaf.to_base64(),
        leaf_hex: leaf.to_hex(),
        origin_hex,
        entry: first,
        grant: take("grant"),
        publish: take("publish"),
        access: take("access"),
        add_bodies: vec![add(old, proof), add(0, vec![])],
        gossip_bodies: vec![w1_note, w4_note, log_cp.clone()],
    }
}

/// Size and root of a checkpoint note (0 and the zero hash if it is none).
fn note_state(note: &[u8]) -> (u64, Hash) {
    let parsed = Note::parse(note).ok().and_then(|n| Checkpoint::parse(&n.text).ok());
    parsed.map_or((0, Hash([0; 32])), |c| (c.size, c.root))
}

/// A witness's size, root, served note and evidence list for the log.
fn witness_state(addr: &str, origin_hex: &str) -> (u64, Hash, String, String) {
    let (_, note) = get(addr, &format!("/{origin_hex}/checkpoint"));
    let (size, root) = note_state(&note);
    (size, root, text(&note), text(&get(addr, "/evidence").1))
}

struct Snapshot {
    /// Checkpoint, tree size gauges, model list.
    log: (String, Option<f64>, Option<f64>, String),
    witnesses: Vec<(u64, Hash, String, String)>,
}

fn snapshot(d: &Deployment, w4: &Proc, origin_hex: &str) -> Snapshot {
    let log = addr(&d.log.url);
    let (_, m) = get(&log, "/metrics");
    Snapshot {
        log: (
            text(&get(&log, "/checkpoint").1),
            metric(&m, "custody_tree_size"),
            metric(&m, "custody_published_tree_size"),
            text(&get(&log, "/registry/models").1),
        ),
        witnesses: d.witnesses.iter().chain([w4]).map(|w| witness_state(&addr(&w.url), origin_hex)).collect(),
    }
}

/// Every process still runs and its `/health` answers 200.
fn assert_all_alive(d: &mut Deployment, w4: &mut Proc, after: &str) {
    let procs = std::iter::once(&mut d.log).chain(d.witnesses.iter_mut()).chain([w4]);
    for (i, p) in procs.enumerate() {
        if let Some(status) = p.child.try_wait().unwrap() {
            panic!("process {i} ({}) exited with {status} after {after}", p.url);
        }
        let (status, body) = get(&addr(&p.url), "/health");
        assert_eq!(status, 200, "{} /health after {after}: {}", p.url, text(&body));
    }
}
