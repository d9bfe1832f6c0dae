//! Seed corpora for the fuzz targets (fuzz/seeds/<target>/): valid inputs
//! of every format, so libFuzzer starts past the parsers and reaches the
//! code behind them (`Registry::check` for registry leaves, the
//! verification of evidence and bundles). Random bytes almost never decode
//! as a signed leaf; a corpus of real ones does on the first run.
//!
//! Everything is deterministic (fixed seeds, times and nonces), signed with
//! the keys the targets themselves verify with, and checked to be accepted
//! by the parser it seeds. The test fails if the committed seeds differ
//! from what it generates; `CUSTODY_WRITE_FUZZ_SEEDS=1` rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use custody_registry::actor_key::ActorSigner;
use custody_registry::dsse::Envelope;
use custody_registry::evidence::{Evidence, EvidenceCheckpoint, PrefixProof};
use custody_registry::leaf::Leaf;
use custody_registry::log_event::{IntegrityViolation, LogEvent, LogEventBody, LogEventLeaf, SignedLogEvent};
use custody_registry::manifest::{FileEntry, Manifest, ManifestPath, SignatureFile, SignatureFormat};
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::events::{
    Access, Approve, BreakGlass, Deploy, GrantRole, HoldTarget, Kind, Promote, Protect, Publish, RevokeKey,
    RevokeRole, Rollback, Rotate, TagMove, Transfer,
};
use custody_registry::statement::metadata::{Lineage, LineageRef, Metadata, StrictMap};
use custody_registry::statement::{Context, Event, Nonce, Schema, SignedStatement, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::bundle::ProofBundle;
use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::cosignature::{cosign, CosignatureSigner};
use custody_standards::entries::encode_bundle;
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::note::{sign_note, NoteSigner, NoteVerifier};
use custody_standards::policy::Policy;
use custody_standards::tiles::{parse_path, EntryBundle, Tile};
use custody_standards::witness::{parse_size_body, split_cosignature_response, AddCheckpointRequest};
use custody_standards::{consistency_proof, inclusion_proof, leaf_hash, MemoryHashStore, SignerKey};

/// The genesis time of the `registry_leaf` target (seconds).
const GENESIS_SECS: u64 = 1_800_000_000;

type Corpus = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

fn actor(name: &str, seed: u8) -> ActorSigner {
    ActorSigner::from_seed(&ActorName::new(name).unwrap(), &[seed; 32])
}

fn digest(tag: &str) -> Digest {
    Digest(custody_standards::hash::sha256(tag.as_bytes()))
}

/// The `registry_leaf` target's genesis admin (`root`, seed 7); the
/// `dsse_envelope` target verifies with the same Ed25519 key.
fn root() -> ActorSigner {
    actor("root", 7)
}

/// One statement of every kind, as the target's genesis admin could sign
/// them right after genesis (plus a few by others).
fn events() -> Vec<(&'static str, Event)> {
    let (name, v1) = (ModelName::new("acme/m").unwrap(), Version::new("1").unwrap());
    let alice = actor("alice", 8);
    let publish = Publish {
        name: name.clone(),
        version: v1.clone(),
        kind: Kind::Model,
        digest: digest("weights"),
        size: 1234,
        media_type: MediaType::new("application/octet-stream").unwrap(),
        metadata: Metadata {
            framework: Some(Text::new("pytorch 2.4").unwrap()),
            description: Some(Text::new("seed model").unwrap()),
            metrics: StrictMap([("accuracy".to_owned(), 0.5)].into_iter().collect()),
            labels: StrictMap([("team".to_owned(), Text::new("ml").unwrap())].into_iter().collect()),
        },
        lineage: Lineage {
            parents: vec![],
            datasets: vec![LineageRef { digest: digest("corpus"), external: true }],
            pipeline: Some(Text::new("train#1").unwrap()),
            source_commit: None,
        },
    };
    vec![
        (
            "grant",
            Event::Grant(GrantRole {
                actor: alice.actor().clone(),
                key: alice.public().clone(),
                role: Role::Publisher,
                pattern: Pattern::new("acme/*").unwrap(),
            }),
        ),
        (
            "revoke",
            Event::Revoke(RevokeRole {
                actor: root().actor().clone(),
                role: Role::Admin,
                pattern: Pattern::All,
            }),
        ),
        (
            "revoke_key",
            Event::RevokeKey(RevokeKey { actor: root().actor().clone(), key_id: root().key_id() }),
        ),
        ("rotate", Event::Rotate(Rotate { new_key: actor("root", 9).public().clone() })),
        ("publish", Event::Publish(publish)),
        (
            "access",
            Event::Access(Access { name: name.clone(), version: v1.clone(), digest: digest("weights") }),
        ),
        (
            "tag",
            Event::Tag(TagMove {
                name: name.clone(),
                tag: TagName::new("latest").unwrap(),
                digest: digest("weights"),
                previous: None,
            }),
        ),
        (
            "promote",
            Event::Promote(Promote { name: name.clone(), version: v1.clone(), to: Lifecycle::Staging }),
        ),
        ("approve", Event::Approve(Approve { name: name.clone(), version: v1.clone() })),
        (
            "protect",
            Event::Protect(Protect {
                name: name.clone(),
                tag: TagName::new("release").unwrap(),
                statuses: vec![Lifecycle::Staging, Lifecycle::Production],
            }),
        ),
        ("rollback", Event::Rollback(Rollback { name: name.clone(), version: v1.clone() })),
        ("hold", Event::Hold(HoldTarget { name: name.clone(), version: Some(v1.clone()) })),
        ("release", Event::Release(HoldTarget { name: name.clone(), version: None })),
        (
            "deploy",
            Event::Deploy(Deploy {
                name: name.clone(),
                version: v1.clone(),
                digest: digest("weights"),
                target: Text::new("prod-eu").unwrap(),
            }),
        ),
        (
            "transfer",
            Event::Transfer(Transfer {
                name: name.clone(),
                version: v1.clone(),
                digest: digest("weights"),
                destination: Text::new("registry.example/mirror").unwrap(),
            }),
        ),
        (
            "break_glass",
            Event::BreakGlass(BreakGlass::Promote(Promote { name, version: v1, to: Lifecycle::Production })),
        ),
    ]
}

fn statement(who: &ActorSigner, secs: u64, nonce: u8, event: Event) -> Statement {
    let mut ctx = Context::reason(Text::new("fuzz seed").unwrap());
    ctx.environment = Some(Text::new("ci").unwrap());
    Statement::new(who, Timestamp::from_unix_secs(secs).unwrap(), Nonce([nonce; 16]), ctx, event)
}

/// Signed envelopes: the genesis, then every kind by root, and one by an
/// actor the registry does not know.
fn envelopes() -> Vec<(String, Vec<u8>)> {
    let root = root();
    let genesis = Event::Grant(GrantRole {
        actor: root.actor().clone(),
        key: root.public().clone(),
        role: Role::Admin,
        pattern: Pattern::All,
    });
    let mut out =
        vec![("genesis".to_owned(), statement(&root, GENESIS_SECS, 0, genesis).sign(&root).unwrap())];
    for (i, (kind, event)) in events().into_iter().enumerate() {
        let s = statement(&root, GENESIS_SECS + 1 + i as u64, i as u8 + 1, event.clone());
        out.push((kind.to_owned(), s.sign(&root).unwrap()));
        if kind == "publish" {
            let alice = actor("alice", 8);
            out.push((
                "publish_by_unknown".into(),
                statement(&alice, GENESIS_SECS, 99, event).sign(&alice).unwrap(),
            ));
        }
    }
    for (_, env) in &out {
        SignedStatement::parse(env).expect("seed envelopes parse");
    }
    out
}

/// Registry leaves: each envelope at the receive time of its statement.
fn leaves() -> Vec<(String, Vec<u8>)> {
    envelopes()
        .into_iter()
        .enumerate()
        .map(|(i, (kind, env))| {
            let ms = (GENESIS_SECS + i as u64) * 1000;
            (kind, Leaf::new(ms, &env).unwrap().encode())
        })
        .collect()
}

/// Integrity violations signed by the log key (`log_event` target): the
/// leaf bytes, and a bare payload the target signs itself.
fn log_event_seeds() -> Vec<(String, Vec<u8>)> {
    let key = log_key();
    let public = key.verifier().public_key();
    let mut out = Vec::new();
    for (i, (name, observed)) in [
        ("mismatch", "sha256:0000000000000000000000000000000000000000000000000000000000000000"),
        ("short_read", "read 1024 of 4096 bytes"),
    ]
    .into_iter()
    .enumerate()
    {
        let event = LogEvent {
            schema: Schema::V1,
            origin: key.name().to_owned(),
            time: Timestamp::from_unix_secs(GENESIS_SECS + 100 + i as u64).unwrap(),
            event: LogEventBody::IntegrityViolation(IntegrityViolation {
                digest: digest("model-v1"),
                observed: Text::new(observed).unwrap(),
                access_index: 7 + i as u64,
            }),
        };
        let envelope = SignedLogEvent::sign(&event, &public, |m| key.sign_ed25519(m)).unwrap();
        let ms = (GENESIS_SECS + 100 + i as u64) * 1000;
        let leaf = LogEventLeaf { receive_time_ms: ms, envelope: &envelope }.encode();
        out.push((format!("{name}_leaf"), leaf));
        if i == 0 {
            out.push((format!("{name}_payload"), serde_json::to_vec(&event).unwrap()));
        }
    }
    out
}

fn log_key() -> SignerKey {
    SignerKey::from_seed("example.com/log", SIG_TYPE_ED25519, &[7; 32]).unwrap()
}

fn witness(i: u8) -> CosignatureSigner {
    CosignatureSigner::from_seed(&format!("w{i}.example"), &[20 + i; 32]).unwrap()
}

/// A tree of the registry leaves, its checkpoint, and the checkpoint note
/// signed by the log and cosigned by two witnesses.
fn tree() -> (MemoryHashStore, Vec<Vec<u8>>, Checkpoint, Vec<u8>) {
    let leaves: Vec<Vec<u8>> = leaves().into_iter().map(|(_, l)| l).collect();
    let mut t = MemoryHashStore::new();
    for l in &leaves {
        t.append(leaf_hash(l));
    }
    let cp =
        Checkpoint { origin: "example.com/log".into(), size: t.size(), root: t.root(), extensions: vec![] };
    let mut note = sign_checkpoint(&cp, &log_key()).unwrap();
    for i in 1..=2 {
        note.extend_from_slice(cosign(&witness(i), &cp, GENESIS_SECS + 60).unwrap().as_bytes());
    }
    (t, leaves, cp, note)
}

fn evidence_seeds() -> Vec<(String, Vec<u8>)> {
    let key = SignerKey::from_seed("example.com/fuzz", SIG_TYPE_ED25519, &[1; 32]).unwrap();
    let build = |tag: &str, n: u64| {
        let mut t = MemoryHashStore::new();
        for i in 0..n {
            t.append(leaf_hash(format!("{}-{i}", if i < 3 { "common" } else { tag }).as_bytes()));
        }
        t
    };
    let note = |t: &MemoryHashStore| {
        let cp = Checkpoint {
            origin: "example.com/fuzz".into(),
            size: t.size(),
            root: t.root(),
            extensions: vec![],
        };
        sign_checkpoint(&cp, &key).unwrap()
    };
    let ev = |a: Vec<u8>, b: Vec<u8>, prefix| Evidence {
        origin: "example.com/fuzz".into(),
        detected: GENESIS_SECS,
        reporter: "w1.example".into(),
        checkpoints: [
            EvidenceCheckpoint { note: a, source: "add-checkpoint".into() },
            EvidenceCheckpoint { note: b, source: "peer w2.example http://w2.example".into() },
        ],
        prefix,
    };
    let (a5, b5) = (build("a", 5), build("b", 5));
    let (a4, b9) = (build("a", 4), build("b", 9));
    let mut b9_at4 = MemoryHashStore::new();
    for i in 0..4u64 {
        b9_at4.append(leaf_hash(format!("{}-{i}", if i < 3 { "common" } else { "b" }).as_bytes()));
    }
    let prefix = PrefixProof { prefix: b9_at4.root(), proof: consistency_proof(4, 9, &b9).unwrap() };
    let out = vec![
        ("same_size".to_owned(), ev(note(&a5), note(&b5), None)),
        ("not_a_prefix".to_owned(), ev(note(&a4), note(&b9), Some(prefix))),
    ];
    out.into_iter()
        .map(|(n, e)| {
            e.verify(&[&key.verifier() as &dyn NoteVerifier]).expect("seed evidence proves a split");
            (n, e.to_bytes().unwrap())
        })
        .collect()
}

/// Byte programs for `registry_ops` (see fuzz/fuzz_targets/registry_ops.rs):
/// one byte per choice, so each seed is a readable scenario.
fn registry_ops_seeds() -> Vec<(String, Vec<u8>)> {
    // op = [actor, action, a, b, c, d, dt]
    // actions: 0 grant(to=a, gen=b, role=c, pattern=d), 1 revoke, 2 revoke_key(a, gen b),
    // 3 rotate(gen a), 4 publish(name a, version b, digest c), 5 access(digest a, name b),
    // 6 tag(name a, tag b, digest c, previous d), 7 promote(name a, version b, to c),
    // 8 approve(name a, version b), 9 rollback(name a, version b),
    // 10 protect(name a, tag b, statuses: bits of c % 31 + 1)
    let lifecycle = vec![
        [0, 0, 1, 0, 1, 1, 1], // root grants actor 1 publisher on org a/*
        [0, 0, 2, 0, 2, 1, 1], // maintainer
        [0, 0, 3, 0, 3, 1, 1], // approver
        [0, 0, 4, 0, 0, 1, 1], // reader
        [1, 4, 0, 0, 0, 0, 1], // publish a/m0@0 digest 0
        [1, 4, 0, 1, 1, 0, 1], // publish a/m0@1 digest 1
        [2, 6, 0, 0, 0, 255, 1],
        [2, 7, 0, 0, 1, 0, 1], // staging
        [3, 8, 0, 0, 0, 0, 1],
        [2, 7, 0, 0, 2, 0, 1], // production
        [4, 5, 0, 0, 0, 0, 1],
        [2, 7, 0, 1, 1, 0, 1],
        [3, 8, 0, 1, 0, 0, 1],
        [2, 7, 0, 1, 2, 0, 1],
        [2, 9, 0, 0, 0, 0, 1],
    ];
    let keys = vec![
        [0, 0, 1, 0, 4, 0, 1], // admin on *
        [1, 3, 1, 0, 0, 0, 1], // rotate
        [1, 0, 2, 0, 4, 1, 1],
        [0, 2, 1, 1, 0, 0, 1], // revoke the rotated key
        [2, 0, 1, 2, 0, 1, 1], // rebind actor 1 with a new key
        [0, 1, 2, 0, 4, 1, 1],
    ];
    let protect = vec![
        [0, 0, 1, 0, 1, 1, 1],   // root grants actor 1 publisher on a/*
        [0, 0, 2, 0, 2, 1, 1],   // actor 2 maintainer on a/*
        [1, 4, 0, 0, 0, 0, 1],   // publish a/m0@1 digest 0
        [0, 10, 0, 3, 5, 0, 1],  // root protects a/m0:release, staging or production
        [2, 6, 0, 3, 0, 255, 1], // tag release -> a development version: refused
        [2, 7, 0, 0, 1, 0, 1],   // staging
        [2, 6, 0, 3, 0, 255, 1], // tag release: accepted
        [0, 10, 0, 3, 3, 0, 1],  // root narrows it to production: disqualified
        [2, 10, 0, 3, 0, 0, 1],  // a maintainer protects: refused
        [0, 10, 0, 1, 0, 0, 1],  // root protects production: built in, refused
        [2, 6, 0, 3, 0, 128, 1], // tag release again: refused
    ];
    [("lifecycle", lifecycle), ("keys", keys), ("protect", protect)]
        .into_iter()
        .map(|(n, ops)| (n.to_owned(), ops.concat()))
        .collect()
}

/// Proofs from the `state_map_proof` target's fixed map (the same 16
/// entries): inclusion, absence on a leaf, absence on an empty subtree.
fn state_map_seeds() -> Vec<(String, Vec<u8>)> {
    use custody_registry::state_map::{Hash, Proof, Tree};
    let tree = Tree::from_entries((0u8..16).map(|i| {
        let mut k = [0u8; 32];
        k[0] = i.wrapping_mul(17);
        k[31] = i;
        (Hash(k), Hash([i + 1; 32]))
    }));
    let mut probe_leaf = [0u8; 32];
    probe_leaf[0] = 0x11;
    probe_leaf[31] = 0x7f;
    let keys = [
        ("present", tree.iter().nth(3).unwrap().0),
        ("absent_leaf", Hash(probe_leaf)),
        ("absent_empty", Hash([0x0f; 32])),
    ];
    keys.into_iter()
        .map(|(name, k)| {
            let bytes = tree.prove(&k).encode();
            assert_eq!(Proof::decode(&bytes), Ok(tree.prove(&k)));
            (name.to_owned(), bytes)
        })
        .collect()
}

fn manifest_seeds() -> Vec<(String, Vec<u8>)> {
    let file =
        |p: &str, size: u64| FileEntry { path: ManifestPath::new(p).unwrap(), size, digest: digest(p) };
    let one = Manifest::new(vec![file("model.safetensors", 1 << 30)], None).unwrap();
    let hf = Manifest::new(
        vec![
            file("config.json", 700),
            file("model-00001-of-00002.safetensors", 4 << 30),
            file("model-00002-of-00002.safetensors", 1 << 30),
            file("tokenizer/tokenizer.json", 2_000_000),
            file("données/modèle.bin", 3),
        ],
        Some(SignatureFile {
            format: SignatureFormat::Oms,
            path: ManifestPath::new("model.sig").unwrap(),
            size: 1500,
            digest: digest("model.sig"),
            public_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
        }),
    )
    .unwrap();
    vec![("one_file".into(), one.encode()), ("hugging_face".into(), hf.encode())]
}

fn generate() -> Corpus {
    let mut c = Corpus::new();
    let mut put = |target: &str, name: &str, bytes: Vec<u8>| {
        c.entry(target.to_owned()).or_default().insert(name.to_owned(), bytes);
    };
    for (kind, leaf) in leaves() {
        Leaf::decode(&leaf).unwrap();
        put("registry_leaf", &kind, leaf);
    }
    for (name, bytes) in log_event_seeds() {
        if name.ends_with("_leaf") {
            custody_registry::log_event::check(&bytes, Some(&log_key().verifier()), 1_000, |_| true)
                .unwrap_or_else(|e| panic!("log_event seed {name}: {e}"));
        }
        put("log_event", &name, bytes);
    }
    for (kind, env) in envelopes() {
        Envelope::parse(&env).unwrap();
        put("dsse_envelope", &kind, env);
    }
    let (t, leaves, cp, note) = tree();
    put("note", "checkpoint_cosigned", note.clone());
    put("note", "checkpoint", sign_checkpoint(&cp, &log_key()).unwrap());
    put("note", "text", sign_note("example.com/log\nfree text\n", &[&log_key() as &dyn NoteSigner]).unwrap());
    for (name, size) in [("empty", 0u64), ("one", 1), ("large", 1 << 40)] {
        let c = Checkpoint { origin: "example.com/log".into(), size, root: cp.root, extensions: vec![] };
        put("checkpoint", name, c.to_text().unwrap().into_bytes());
    }
    let ext = Checkpoint { extensions: vec!["extension line".into()], ..cp.clone() };
    put("checkpoint", "extension", ext.to_text().unwrap().into_bytes());
    for i in [0u64, 3, leaves.len() as u64 - 1] {
        let b = ProofBundle {
            extra: Some(leaves[i as usize].clone()),
            index: i,
            proof: inclusion_proof(i, t.size(), &t).unwrap(),
            checkpoint: note.clone(),
        };
        put("tlog_proof", &format!("entry_{i}"), b.to_bytes());
    }
    let bare = ProofBundle {
        extra: None,
        index: 1,
        proof: inclusion_proof(1, t.size(), &t).unwrap(),
        checkpoint: note.clone(),
    };
    put("tlog_proof", "no_extra", bare.to_bytes());
    let vkey = log_key().verifier();
    let (w1, w2) = (witness(1).verifier(), witness(2).verifier());
    put(
        "policy",
        "two_of_two",
        format!(
            "log {vkey} https://log.example\nwitness w1 {w1} https://w1.example\nwitness w2 {w2}\ngroup g 2 w1 w2\nquorum g\n"
        )
        .into_bytes(),
    );
    put(
        "policy",
        "any",
        format!("log {vkey}\nwitness w1 {w1}\nwitness w2 {w2}\ngroup g any w1 w2\nquorum g\n").into_bytes(),
    );
    put("policy", "none", format!("# comment\nlog {vkey}\nquorum none\n").into_bytes());
    let old = 3u64;
    let req = AddCheckpointRequest {
        old_size: old,
        proof: consistency_proof(old, t.size(), &t).unwrap(),
        checkpoint: note.clone(),
    };
    put("witness_body", "add_checkpoint", req.to_bytes());
    put(
        "witness_body",
        "add_checkpoint_first",
        AddCheckpointRequest { old_size: 0, proof: vec![], checkpoint: note.clone() }.to_bytes(),
    );
    put("witness_body", "size", b"12345\n".to_vec());
    let cosigs = format!(
        "{}{}",
        cosign(&witness(1), &cp, GENESIS_SECS).unwrap(),
        cosign(&witness(2), &cp, GENESIS_SECS).unwrap()
    );
    put("witness_body", "cosignatures", cosigs.into_bytes());
    for n in [1usize, leaves.len()] {
        let refs: Vec<&[u8]> = leaves[..n].iter().map(Vec::as_slice).collect();
        let mut b = vec![n as u8];
        b.extend(encode_bundle(&refs).unwrap());
        put("entry_bundle", &format!("entries_{n}"), b);
        put("entry_sequence", &format!("entries_{n}"), encode_bundle(&refs).unwrap());
    }
    let paths = [
        Tile::at_size(0, 0, 5).unwrap().path(),
        Tile::at_size(0, 1, 300).unwrap().path(),
        Tile::at_size(1, 0, 256 * 256).unwrap().path(),
        Tile::new(2, 1_234_567, 256).unwrap().path(),
        EntryBundle::at_size(0, 5).unwrap().path(),
        EntryBundle::new(1_000_000, 256).unwrap().path(),
    ];
    for (i, p) in paths.iter().enumerate() {
        parse_path(p).unwrap();
        put("tile_path", &format!("path_{i}"), p.clone().into_bytes());
    }
    for (name, ev) in evidence_seeds() {
        put("evidence", &name, ev);
    }
    for (name, ops) in registry_ops_seeds() {
        put("registry_ops", &name, ops);
    }
    for (name, proof) in state_map_seeds() {
        put("state_map_proof", &name, proof);
    }
    for (name, bytes) in manifest_seeds() {
        Manifest::parse(&bytes).unwrap();
        put("manifest", &name, bytes);
    }
    // The bundle model_signing 1.1.1 wrote (registry/tests/oms_kat.rs
    // verifies it) and the key the target verifies with.
    put("oms_bundle", "model_sig", include_bytes!("data/oms/model.sig").to_vec());
    put("oms_bundle", "key_pub_pem", include_bytes!("data/oms/key.pub.pem").to_vec());
    for (name, bytes) in &c["policy"] {
        Policy::parse(bytes).unwrap_or_else(|e| panic!("policy seed {name}: {e}"));
    }
    for (name, bytes) in &c["witness_body"] {
        let ok = AddCheckpointRequest::parse(bytes).is_ok()
            || parse_size_body(bytes).is_ok()
            || split_cosignature_response(bytes).is_ok();
        assert!(ok, "witness_body seed {name} parses as nothing");
    }
    c
}

/// The `[[bin]]` names of fuzz/Cargo.toml: every fuzz target.
fn fuzz_targets() -> Vec<String> {
    let toml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml")).unwrap();
    let mut in_bin = false;
    let mut out = Vec::new();
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(v) = line.strip_prefix("name = ").filter(|_| in_bin) {
            out.push(v.trim_matches('"').to_owned());
        }
    }
    out.sort();
    out
}

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds")
}

/// Files under `dir`, as target -> name -> bytes.
fn read_committed(dir: &Path) -> Corpus {
    let mut c = Corpus::new();
    let Ok(targets) = std::fs::read_dir(dir) else { return c };
    for t in targets.map(Result::unwrap) {
        for f in std::fs::read_dir(t.path()).unwrap().map(Result::unwrap) {
            c.entry(t.file_name().to_string_lossy().into_owned())
                .or_default()
                .insert(f.file_name().to_string_lossy().into_owned(), std::fs::read(f.path()).unwrap());
        }
    }
    c
}

#[test]
fn fuzz_seed_corpora_are_current() {
    let generated = generate();
    assert_eq!(
        generated.keys().cloned().collect::<Vec<_>>(),
        fuzz_targets(),
        "a seed corpus per fuzz target"
    );
    let dir = seeds_dir();
    if std::env::var_os("CUSTODY_WRITE_FUZZ_SEEDS").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        for (target, files) in &generated {
            std::fs::create_dir_all(dir.join(target)).unwrap();
            for (name, bytes) in files {
                std::fs::write(dir.join(target).join(name), bytes).unwrap();
            }
        }
    }
    let committed = read_committed(&dir);
    let stale: Vec<String> = generated
        .iter()
        .flat_map(|(t, fs)| fs.iter().map(move |(n, b)| (t, n, b)))
        .filter(|(t, n, b)| committed.get(*t).and_then(|f| f.get(*n)) != Some(b))
        .map(|(t, n, _)| format!("{t}/{n}"))
        .chain(
            committed
                .iter()
                .flat_map(|(t, fs)| fs.keys().map(move |n| (t, n)))
                .filter(|(t, n)| generated.get(*t).and_then(|f| f.get(*n)).is_none())
                .map(|(t, n)| format!("{t}/{n} (not generated)")),
        )
        .collect();
    assert!(
        stale.is_empty(),
        "fuzz/seeds is stale: {stale:?}; regenerate with \
         CUSTODY_WRITE_FUZZ_SEEDS=1 cargo test -p custody-registry --test fuzz_seeds"
    );
}
