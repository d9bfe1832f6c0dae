//! HTTP API end to end against the real `custody-log` binary: concurrent
//! appends, tiles rebuilding the checkpoint root, every kind of proof
//! verified with `custody-standards`, error statuses, metrics and health, and the
//! `init` / `fsck` commands.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custody_standards::bundle::ProofBundle;
use custody_standards::checkpoint::open_checkpoint;
use custody_standards::entries::{bundle_leaf_hashes, decode_bundle};
use custody_standards::tiles::{EntryBundle, Tile};
use custody_standards::{
    leaf_hash, tree_hash, verify_consistency, verify_inclusion, Hash, HashReader, NodeId, Policy, ReadError,
    TileFetcher, TileHashReader, VerifierKey,
};
use rand::Rng as _;
use serde_json::Value;

use custody_testkit::aio::{client, get_json};
use custody_testkit::logserver::{init_generic, serve};
use custody_testkit::{bin, Proc};

const ORIGIN: &str = "test.custody.example/log";

fn init(dir: &Path) -> VerifierKey {
    init_generic(dir, ORIGIN)
}

async fn get(c: &reqwest::Client, url: String) -> reqwest::Response {
    c.get(url).send().await.unwrap()
}

async fn post_entry(c: &reqwest::Client, base: &str, body: Vec<u8>) -> (u16, Value) {
    let r = c.post(format!("{base}/entries")).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn b64_hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap()).collect()
}

/// The current checkpoint, opened with the log key: (size, root, note).
async fn checkpoint(c: &reqwest::Client, base: &str, vkey: &VerifierKey) -> Option<(u64, Hash, Vec<u8>)> {
    let r = get(c, format!("{base}/checkpoint")).await;
    if r.status().as_u16() != 200 {
        return None;
    }
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let note = r.bytes().await.unwrap().to_vec();
    let cp = open_checkpoint(&note, vkey).unwrap().checkpoint;
    Some((cp.size, cp.root, note))
}

async fn wait_for_checkpoint(
    c: &reqwest::Client,
    base: &str,
    vkey: &VerifierKey,
    size: u64,
) -> (u64, Hash, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(cp) = checkpoint(c, base, vkey).await {
            if cp.0 >= size {
                return cp;
            }
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size} within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Tile bodies fetched beforehand; the reader authenticates them.
struct MapFetcher(HashMap<Tile, Vec<u8>>);

impl TileFetcher for MapFetcher {
    fn fetch_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadError> {
        tiles
            .iter()
            .map(|t| self.0.get(t).cloned().ok_or_else(|| ReadError::Unauthenticated(format!("no tile {t}"))))
            .collect()
    }
}

async fn tree_size_now(c: &reqwest::Client, base: &str) -> u64 {
    let (status, health) = get_json(c, format!("{base}/health")).await;
    assert_eq!(status, 200, "{health}");
    health["sequencer"]["tree_size"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_tiles_and_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init(&data);
    let mut server = serve(&data, &["--allow-raw-append"]);
    let base = server.url.clone();
    let c = client();
    let mut observed: BTreeMap<u64, Hash> = BTreeMap::new();

    // A small tree first: every inclusion proof of it verifies.
    let mut entries: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for i in 0..7u32 {
        let e = format!("small-{i}").into_bytes();
        let (status, ack) = post_entry(&c, &base, e.clone()).await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(ack["index"].as_u64().unwrap(), u64::from(i));
        assert_eq!(ack["leaf_hash"].as_str().unwrap(), leaf_hash(&e).to_base64());
        entries.insert(u64::from(i), e);
    }
    let (size, root, _) = wait_for_checkpoint(&c, &base, &vkey, 7).await;
    assert_eq!(size, 7);
    observed.insert(size, root);
    for i in 0..7u64 {
        let (status, p) = get_json(&c, format!("{base}/proof/inclusion?index={i}&size=7")).await;
        assert_eq!(status, 200, "{p}");
        verify_inclusion(&leaf_hash(&entries[&i]), i, 7, &b64_hashes(&p["proof"]), &root).unwrap();
    }

    // Thousands of entries from concurrent clients, while watching checkpoints.
    let tasks: Vec<_> = (0..8u32)
        .map(|t| {
            let (c, base) = (c.clone(), base.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..260u32 {
                    let e = format!("entry {t}/{i} {}", "x".repeat((i % 50) as usize)).into_bytes();
                    let (status, ack) = post_entry(&c, &base, e.clone()).await;
                    assert_eq!(status, 200, "{ack}");
                    assert!(!ack["duplicate"].as_bool().unwrap());
                    acks.push((ack["index"].as_u64().unwrap(), e));
                }
                acks
            })
        })
        .collect();
    while !tasks.iter().all(|t| t.is_finished()) {
        if let Some((s, r, _)) = checkpoint(&c, &base, &vkey).await {
            observed.insert(s, r);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for t in tasks {
        for (index, e) in t.await.unwrap() {
            assert!(entries.insert(index, e).is_none(), "index {index} acknowledged twice");
        }
    }
    let n = entries.len() as u64;
    assert_eq!(n, 7 + 8 * 260);
    assert_eq!(*entries.keys().last().unwrap(), n - 1, "indexes are not dense");
    let (size, root, note) = wait_for_checkpoint(&c, &base, &vkey, n).await;
    assert_eq!(size, n);
    observed.insert(size, root);
    assert!(observed.len() >= 3, "saw only {} checkpoints", observed.len());

    // Duplicates get the existing index and append nothing.
    let (status, dup) = post_entry(&c, &base, entries[&100].clone()).await;
    assert_eq!(status, 200);
    assert_eq!(dup["index"].as_u64(), Some(100));
    assert_eq!(dup["duplicate"].as_bool(), Some(true));
    assert_eq!(tree_size_now(&c, &base).await, n);

    // Fetch every tile of the tree at `size`; rebuild the root from them.
    let mut tiles = HashMap::new();
    for level in 0..8u8 {
        let mut idx = 0;
        while let Some(tile) = Tile::at_size(level, idx, size) {
            let r = get(&c, format!("{base}/{}", tile.path())).await;
            assert_eq!(r.status().as_u16(), 200, "{tile}");
            assert_eq!(r.headers()["content-type"], "application/octet-stream");
            let cache = r.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(
                cache.as_deref() == Some("public, max-age=31536000, immutable"),
                tile.is_full(),
                "{tile}"
            );
            tiles.insert(tile, r.bytes().await.unwrap().to_vec());
            idx += 1;
        }
    }
    let reader = TileHashReader::new(size, root, MapFetcher(tiles.clone()));
    assert_eq!(tree_hash(size, &reader).unwrap(), root);
    let leaves: Vec<NodeId> = (0..size).map(|i| NodeId::new(0, i)).collect();
    let hashes = reader.read_hashes(&leaves).unwrap();
    for (i, h) in hashes.iter().enumerate() {
        assert_eq!(*h, leaf_hash(&entries[&(i as u64)]), "leaf {i}");
    }
    // Entry bundles hash to the level-0 tiles.
    let mut idx = 0;
    while let Some(b) = EntryBundle::at_size(idx, size) {
        let body = get(&c, format!("{base}/{}", b.path())).await.bytes().await.unwrap();
        let decoded = decode_bundle(&body, usize::from(b.width())).unwrap();
        let tile_hashes: Vec<u8> = bundle_leaf_hashes(&decoded).iter().flat_map(|h| h.0).collect();
        assert_eq!(tile_hashes, tiles[&b.hash_tile()], "{b}");
        idx += 1;
    }

    // Inclusion proofs for a sample of indexes (by index and by leaf hash).
    let mut rng = rand::thread_rng();
    let mut sample: Vec<u64> = (0..300).map(|_| rng.gen_range(0..size)).collect();
    sample.extend([0, size - 1]);
    for (k, i) in sample.iter().enumerate() {
        let leaf = leaf_hash(&entries[i]);
        let url = if k % 10 == 0 {
            format!("{base}/proof/inclusion?leaf_hash={}&size={size}", leaf.to_hex())
        } else {
            format!("{base}/proof/inclusion?index={i}&size={size}")
        };
        let (status, p) = get_json(&c, url).await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["index"].as_u64(), Some(*i));
        verify_inclusion(&leaf, *i, size, &b64_hashes(&p["proof"]), &root).unwrap();
    }

    // Consistency between successive observed checkpoints.
    let seen: Vec<(u64, Hash)> = observed.into_iter().collect();
    for w in seen.windows(2) {
        let ((old, old_root), (new, new_root)) = (w[0], w[1]);
        let (status, p) = get_json(&c, format!("{base}/proof/consistency?old={old}&new={new}")).await;
        assert_eq!(status, 200, "{p}");
        verify_consistency(old, new, &b64_hashes(&p["proof"]), &old_root, &new_root).unwrap();
    }

    // A tlog-proof bundle verifies offline with a `quorum none` policy.
    let policy = Policy::parse(format!("log {vkey}\nquorum none\n").as_bytes()).unwrap();
    for i in [0, 1234, size - 1] {
        let r = get(&c, format!("{base}/proof/bundle?index={i}")).await;
        assert_eq!(r.status().as_u16(), 200);
        let bundle = ProofBundle::parse(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(bundle.index, i);
        let verified = bundle.verify(&leaf_hash(&entries[&i]), &policy).unwrap();
        assert!(verified.checkpoint.size >= size);
    }
    assert_eq!(note, checkpoint(&c, &base, &vkey).await.unwrap().2, "checkpoint changed without appends");

    // ?wait=checkpoint returns a covering checkpoint and a proof against it.
    let e = b"waited entry".to_vec();
    let r = c.post(format!("{base}/entries?wait=checkpoint")).body(e.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let w: Value = r.json().await.unwrap();
    let cp = open_checkpoint(w["checkpoint"].as_str().unwrap().as_bytes(), &vkey).unwrap().checkpoint;
    let index = w["index"].as_u64().unwrap();
    assert_eq!(index, n);
    verify_inclusion(&leaf_hash(&e), index, cp.size, &b64_hashes(&w["proof"]), &cp.root).unwrap();
    let size = cp.size;

    // Error statuses; bad input changes nothing.
    let (status, err) = post_entry(&c, &base, vec![7u8; 65536]).await;
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"], "entry_too_large");
    assert!(err["detail"].is_string());
    let (status, _) = post_entry(&c, &base, Vec::new()).await;
    assert_eq!(status, 422);
    assert_eq!(tree_size_now(&c, &base).await, size);
    for (path, want) in [
        ("tile/0/1".to_owned(), 400),
        ("tile/0/001.p/0".to_owned(), 400),
        ("tile/0/x000/001".to_owned(), 400),
        ("tile/entries/01".to_owned(), 400),
        ("tile/0/x001/000".to_owned(), 404),
        (Tile::new(0, size / 256, 256).unwrap().path(), 404),
        (Tile::new(0, size / 256, 255).unwrap().path(), 404),
        (format!("proof/inclusion?index={size}&size={size}"), 400),
        (format!("proof/inclusion?index=0&size={}", size + 1000), 404),
        ("proof/inclusion?index=01&size=5".to_owned(), 400),
        ("proof/inclusion?index=1&leaf_hash=AAAA&size=5".to_owned(), 400),
        (format!("proof/consistency?old={size}&new=1"), 400),
        (format!("entries/{}", size + 5), 404),
        ("entries?start=0&end=1001".to_owned(), 400),
        ("no/such/route".to_owned(), 404),
    ] {
        let (status, body) = get_json(&c, format!("{base}/{path}")).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["error"].is_string() && body["detail"].is_string(), "{path}: {body}");
    }
    let (status, range) = get_json(&c, format!("{base}/entries?start=5&end=10")).await;
    assert_eq!(status, 200);
    assert_eq!(range["entries"].as_array().unwrap().len(), 5);
    let one = get(&c, format!("{base}/entries/5")).await.bytes().await.unwrap();
    assert_eq!(one.as_ref(), entries[&5].as_slice());

    // Metrics: valid exposition text, entries counter equals the tree size.
    let text = get(&c, format!("{base}/metrics")).await.text().await.unwrap();
    let mut typed = std::collections::HashSet::new();
    let mut values = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(typed.contains(name) || typed.contains(family), "no TYPE for {line:?}");
        values.insert(series.to_owned(), value);
    }
    assert_eq!(values["custody_entries_total"], size as f64);
    assert_eq!(values["custody_tree_size"], size as f64);
    assert!(values["custody_rejected_total{reason=\"too_large\"}"] >= 1.0);
    assert!(values["custody_http_requests_total{status=\"413\"}"] >= 1.0);

    let (status, health) = get_json(&c, format!("{base}/health")).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");

    // Clean shutdown, then fsck of the stopped server's data directory.
    assert!(server.stop_gracefully(), "server did not exit cleanly on SIGTERM");
    let out = Command::new(bin("custody-log")).args(["fsck", "--data-dir"]).arg(&data).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "fsck: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_existing_dir_and_raw_append_is_off_by_default() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init(&data);
    assert_eq!(vkey.name(), ORIGIN);
    let mode = std::fs::metadata(data.join("log.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key_before = std::fs::read(data.join("log.key")).unwrap();
    let again = Command::new(bin("custody-log"))
        .args(["init", "--data-dir"])
        .arg(&data)
        .args(["--origin", ORIGIN])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read(data.join("log.key")).unwrap(), key_before, "init overwrote the key");

    let server = serve(&data, &[]);
    let c = client();
    let (status, err) = post_entry(&c, &server.url, b"hello".to_vec()).await;
    assert_eq!(status, 403, "{err}");
    assert!(err["detail"].as_str().unwrap().contains("--allow-raw-append"));
    // Nothing appended, so nothing published yet.
    let (status, err) = get_json(&c, format!("{}/checkpoint", server.url)).await;
    assert_eq!(status, 503, "{err}");
    let (status, _) = get_json(&c, format!("{}/tile/0/000.p/1", server.url)).await;
    assert_eq!(status, 404);
    let (status, health) = get_json(&c, format!("{}/health", server.url)).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["sequencer"]["tree_size"], 0);

    // A bad policy file fails fast with a clear message.
    drop(server);
    let policy = dir.path().join("policy");
    std::fs::write(&policy, "quorum nobody\n").unwrap();
    let child = Command::new(bin("custody-log"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--policy")
        .arg(&policy)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Proc { child, url: String::new(), stderr: None };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = guard.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve with a bad policy did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut guard.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("invalid policy file"), "{stderr}");
}
