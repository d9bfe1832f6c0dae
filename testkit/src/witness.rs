//! A real `custody-witness` on port 0, and logs built in the test with
//! `custody-standards` (in memory, optionally served over HTTP as `/checkpoint`
//! plus tiles) for it to witness: a test log can sign anything, so it can
//! also fork, lie and serve corrupt tiles.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::note::{sign_note, NoteSigner};
use custody_standards::tile_data::read_tile_data;
use custody_standards::tiles::Tile;
use custody_standards::witness::AddCheckpointRequest;
use custody_standards::{consistency_proof, leaf_hash, Hash, MemoryHashStore, SignerKey, VerifierKey};

use crate::bins::bin;
use crate::process::{run_ok, spawn_logged, Proc};
use crate::WAIT;

/// `custody-witness init`; returns the printed verifier key.
pub fn init(data: &Path, name: &str) -> VerifierKey {
    let out = run_ok(
        Command::new(bin("custody-witness"))
            .args(["init", "--data-dir"])
            .arg(data)
            .args(["--name", name])
            .env_remove("CUSTODY_DATA_DIR"),
    );
    VerifierKey::parse(out.trim_end()).unwrap()
}

/// `custody-witness serve` on 127.0.0.1:0 with the log list `logs`, an
/// optional peers file and `extra` flags; stderr kept in `data.stderr`.
pub fn serve(data: &Path, logs: &Path, peers: Option<&Path>, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("custody-witness"));
    cmd.args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--logs"])
        .arg(logs)
        .args(extra)
        .env("CUSTODY_LOG", "info");
    if let Some(p) = peers {
        cmd.arg("--peers").arg(p);
    }
    spawn_logged(&mut cmd, Some(&data.with_extension("stderr")))
}

/// A log built in memory with `custody-standards`.
pub struct TestLog {
    pub origin: String,
    pub key: SignerKey,
    pub tree: MemoryHashStore,
    /// When set, checkpoints are signed as plain notes with this key name
    /// (for logs whose origin is not their key name).
    pub foreign: bool,
}

impl TestLog {
    pub fn new(origin: &str, seed: u8) -> Self {
        let key = SignerKey::from_seed(origin, SIG_TYPE_ED25519, &[seed; 32]).unwrap();
        TestLog { origin: origin.into(), key, tree: MemoryHashStore::new(), foreign: false }
    }

    /// A log whose key name differs from its origin.
    pub fn foreign(origin: &str, key_name: &str, seed: u8) -> Self {
        let key = SignerKey::from_seed(key_name, SIG_TYPE_ED25519, &[seed; 32]).unwrap();
        TestLog { origin: origin.into(), key, tree: MemoryHashStore::new(), foreign: true }
    }

    pub fn vkey(&self) -> VerifierKey {
        self.key.verifier()
    }

    /// Appends `n` distinct leaves named after `tag`.
    pub fn append(&mut self, n: u64, tag: &str) {
        for i in 0..n {
            let size = self.tree.size();
            self.tree.append(leaf_hash(format!("{tag}-{size}-{i}").as_bytes()));
        }
    }

    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The signed checkpoint of the current tree.
    pub fn checkpoint(&self) -> Vec<u8> {
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: self.tree.size(),
            root: self.tree.root(),
            extensions: vec![],
        };
        if self.foreign {
            sign_note(&cp.to_text().unwrap(), &[&self.key as &dyn NoteSigner]).unwrap()
        } else {
            sign_checkpoint(&cp, &self.key).unwrap()
        }
    }

    pub fn proof(&self, old: u64) -> Vec<Hash> {
        consistency_proof(old, self.tree.size(), &self.tree).unwrap()
    }

    /// A correct add-checkpoint body from `old`.
    pub fn body(&self, old: u64) -> Vec<u8> {
        AddCheckpointRequest { old_size: old, proof: self.proof(old), checkpoint: self.checkpoint() }
            .to_bytes()
    }

    /// A log-list stanza, with `url` when given.
    pub fn list_entry(&self, url: Option<&str>) -> String {
        let mut s = format!("vkey {}\n", self.vkey());
        if self.foreign {
            s.push_str(&format!("origin {}\n", self.origin));
        } else {
            s.push_str("origin none\n");
        }
        s.push_str("qpd 86400000\ncontact test@example.com\n");
        if let Some(u) = url {
            s.push_str(&format!("url {u}\n"));
        }
        s
    }
}

/// Writes a log list with the given stanzas.
pub fn write_log_list(path: &Path, entries: &[String]) {
    let mut s = String::from("# test log list\nlogs/v0\n");
    for e in entries {
        s.push('\n');
        s.push_str(e);
    }
    std::fs::write(path, s).unwrap();
}

/// A test log served over HTTP (`/checkpoint`, `/tile/...`).
#[derive(Clone)]
pub struct ServedLog {
    pub log: Arc<Mutex<TestLog>>,
    pub url: String,
    /// While set, every tile body is served with one byte flipped.
    pub corrupt_tiles: Arc<AtomicBool>,
}

async fn serve_checkpoint(log: web::Data<Mutex<TestLog>>) -> HttpResponse {
    let note = log.lock().unwrap().checkpoint();
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(note)
}

async fn serve_tile(
    req: HttpRequest,
    log: web::Data<Mutex<TestLog>>,
    corrupt: web::Data<AtomicBool>,
) -> HttpResponse {
    let path = req.path().trim_start_matches('/');
    let Ok(tile) = Tile::parse_path(path) else { return HttpResponse::NotFound().finish() };
    let log = log.lock().unwrap();
    let exists = Tile::at_size(tile.level(), tile.index(), log.size()).map(|t| t.width()).unwrap_or(0);
    if tile.width() > exists {
        return HttpResponse::NotFound().finish();
    }
    match read_tile_data(&tile, &log.tree) {
        Ok(mut body) => {
            if corrupt.load(std::sync::atomic::Ordering::SeqCst) {
                body[0] ^= 1;
            }
            HttpResponse::Ok().content_type("application/octet-stream").body(body)
        }
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

impl ServedLog {
    /// Serves `log` on 127.0.0.1:0 (call inside a tokio runtime).
    pub fn start(log: TestLog) -> ServedLog {
        let data = web::Data::new(Mutex::new(log));
        let shared = data.clone().into_inner();
        let corrupt = web::Data::new(AtomicBool::new(false));
        let corrupt_tiles = corrupt.clone().into_inner();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(corrupt.clone())
                .route("/checkpoint", web::get().to(serve_checkpoint))
                .route("/tile/{tail:.*}", web::get().to(serve_tile))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let url = format!("http://{}", server.addrs()[0]);
        tokio::spawn(server.run());
        ServedLog { log: shared, url, corrupt_tiles }
    }
}

/// An async HTTP client for the witness tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(WAIT).build().unwrap()
}

/// POSTs an add-checkpoint body; returns status, content type and body.
pub async fn post(url: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let resp = client().post(format!("{url}/add-checkpoint")).body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

/// GETs a URL; returns status and body.
pub async fn get(url: &str) -> (u16, Vec<u8>) {
    let resp = client().get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// Lowercase hex SHA-256 of an origin (the monitoring path segment).
pub fn origin_hex(origin: &str) -> String {
    custody_standards::hash::sha256(origin.as_bytes()).to_hex()
}

/// The stderr so far of the witness serving `data` (see [`serve`]).
pub fn stderr_of(data: &Path) -> String {
    std::fs::read_to_string(data.with_extension("stderr")).unwrap_or_default()
}
