//! A faithful in-test C2SP tlog-witness (`POST /add-checkpoint`): checks
//! the origin, the log signature and the consistency proof from its latest
//! size, answers 409 with its size when the log is behind, then cosigns
//! (cosignature/v1). It can be switched off (503) to lose a quorum without
//! stopping a process, and its remembered size can be forced, so a test
//! can play a witness that is ahead of the log.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use custody_standards::checkpoint::{open_checkpoint, Checkpoint};
use custody_standards::cosignature::CosignatureSigner;
use custody_standards::witness::{format_size_body, AddCheckpointRequest, SIZE_CONTENT_TYPE};
use custody_standards::{empty_root, verify_consistency, Hash, Note, VerifierKey};

use crate::hostile::{serve, Request, Response};

/// What the witness remembers and counts.
#[derive(Default)]
struct State {
    /// Latest cosigned (size, root); checked and updated under one lock.
    latest: Mutex<Option<(u64, Hash)>>,
    down: AtomicBool,
    requests: AtomicUsize,
    conflicts: AtomicUsize,
    cosigned: AtomicUsize,
}

pub struct Witness {
    pub url: String,
    /// The cosigner's verifier key (for a policy's `witness` line).
    pub vkey: String,
    state: Arc<State>,
}

impl Witness {
    /// A witness named `name` (key from `seed`) for the log `log_vkey`.
    pub fn start(name: &str, seed: u8, log_vkey: &str) -> Witness {
        let signer = CosignatureSigner::from_seed(name, &[seed; 32]).unwrap();
        let vkey = signer.verifier().to_string();
        let log_key = VerifierKey::parse(log_vkey).unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        let url = serve(Arc::new(move |req: Request| {
            if req.method != "POST" || req.path != "/add-checkpoint" {
                return Response::new(404, "not found");
            }
            add_checkpoint(&shared, &signer, &log_key, &req.body)
        }));
        Witness { url, vkey, state }
    }

    /// While down, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The latest cosigned size (0 before the first).
    pub fn size(&self) -> u64 {
        self.state.latest.lock().unwrap().map_or(0, |s| s.0)
    }

    /// Makes the witness remember `size` and `root` as its latest cosigned
    /// checkpoint (a witness ahead of the log, or one restored from backup).
    pub fn set_latest(&self, size: u64, root: Hash) {
        *self.state.latest.lock().unwrap() = Some((size, root));
    }

    /// `add-checkpoint` requests received so far, whatever the answer
    /// (down, refused, 409 or cosigned): how often the log calls it.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// 409 answers so far (the log's old size was not ours).
    pub fn conflicts(&self) -> usize {
        self.state.conflicts.load(Ordering::SeqCst)
    }

    /// Checkpoints cosigned so far.
    pub fn cosigned(&self) -> usize {
        self.state.cosigned.load(Ordering::SeqCst)
    }
}

fn add_checkpoint(w: &State, signer: &CosignatureSigner, log_key: &VerifierKey, body: &[u8]) -> Response {
    w.requests.fetch_add(1, Ordering::SeqCst);
    if w.down.load(Ordering::SeqCst) {
        return Response::new(503, "down for maintenance");
    }
    let Ok(req) = AddCheckpointRequest::parse(body) else { return Response::new(400, "malformed request") };
    let origin =
        Note::parse(&req.checkpoint).ok().and_then(|n| Checkpoint::parse(&n.text).ok()).map(|c| c.origin);
    match origin {
        None => return Response::new(400, "not a checkpoint"),
        Some(o) if o != log_key.name() => return Response::new(404, "unknown origin"),
        Some(_) => {}
    }
    let Ok(opened) = open_checkpoint(&req.checkpoint, log_key) else {
        return Response::new(403, "no valid log signature");
    };
    let cp = opened.checkpoint;
    if req.old_size > cp.size {
        return Response::new(400, "old size above checkpoint size");
    }
    let mut latest = w.latest.lock().unwrap();
    let (size, root) = latest.unwrap_or((0, empty_root()));
    if req.old_size != size {
        w.conflicts.fetch_add(1, Ordering::SeqCst);
        return Response::new(409, format_size_body(size)).with_header("Content-Type", SIZE_CONTENT_TYPE);
    }
    if req.old_size == cp.size && latest.is_some() && root != cp.root {
        return Response::new(409, "same size, different root");
    }
    if verify_consistency(req.old_size, cp.size, &req.proof, &root, &cp.root).is_err() {
        return Response::new(422, "consistency proof does not verify");
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let line = signer.sign(&opened.note.note.text, now).unwrap().to_line();
    *latest = Some((cp.size, cp.root));
    w.cosigned.fetch_add(1, Ordering::SeqCst);
    Response::new(200, line)
}
