//! A faithful in-test C2SP tlog-witness (`POST /add-checkpoint`): checks
//! the log signature and the consistency proof from its latest size, then
//! cosigns (cosignature/v1). It can be switched off to lose a quorum
//! without stopping a process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use custody_standards::checkpoint::open_checkpoint;
use custody_standards::cosignature::CosignatureSigner;
use custody_standards::witness::{format_size_body, AddCheckpointRequest, SIZE_CONTENT_TYPE};
use custody_standards::{empty_root, verify_consistency, Hash, VerifierKey};

use crate::hostile::{serve, Request, Response};

pub struct Witness {
    pub url: String,
    pub vkey: String,
    pub down: Arc<AtomicBool>,
}

impl Witness {
    /// A witness named `name` (key from `seed`) for the log `log_vkey`.
    pub fn start(name: &str, seed: u8, log_vkey: &str) -> Witness {
        let signer = CosignatureSigner::from_seed(name, &[seed; 32]).unwrap();
        let vkey = signer.verifier().to_string();
        let log_key = VerifierKey::parse(log_vkey).unwrap();
        let state: Mutex<Option<(u64, Hash)>> = Mutex::new(None);
        let down = Arc::new(AtomicBool::new(false));
        let is_down = down.clone();
        let url = serve(Arc::new(move |req: Request| {
            if is_down.load(Ordering::SeqCst) {
                return Response::new(503, "down");
            }
            if req.method != "POST" || req.path != "/add-checkpoint" {
                return Response::new(404, "not found");
            }
            let Ok(r) = AddCheckpointRequest::parse(&req.body) else {
                return Response::new(400, "malformed");
            };
            let Ok(opened) = open_checkpoint(&r.checkpoint, &log_key) else {
                return Response::new(403, "bad log signature");
            };
            let cp = opened.checkpoint;
            let mut st = state.lock().unwrap();
            let (latest, root) = st.unwrap_or((0, empty_root()));
            if r.old_size != latest {
                return Response::new(409, format_size_body(latest))
                    .with_header("Content-Type", SIZE_CONTENT_TYPE);
            }
            if verify_consistency(latest, cp.size, &r.proof, &root, &cp.root).is_err() {
                return Response::new(422, "inconsistent");
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            let line = signer.sign(&opened.note.note.text, now).unwrap().to_line();
            *st = Some((cp.size, cp.root));
            Response::new(200, line)
        }));
        Witness { url, vkey, down }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}
