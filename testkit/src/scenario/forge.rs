//! Lies that need the deployment's secret keys: a checkpoint of another
//! tree signed by the log's key and cosigned by two witnesses (what an
//! operator who compromised them can show one client), and proxies that
//! serve such lies or alter the artifacts in transit.

use std::path::Path;
use std::sync::Arc;

use custody_standards::checkpoint::Checkpoint;
use custody_standards::cosignature::CosignatureSigner;
use custody_standards::note::{sign_note, NoteSigner};
use custody_standards::{Hash, SignerKey};

use super::Deployment;
use crate::hostile::proxy;
use crate::statements::now_secs;

/// Signs checkpoints with the deployment's log key and the keys of its
/// witnesses 1 and 2 (read from their data directories): enough for a
/// 2-of-n policy.
pub struct Forger {
    origin: String,
    log: SignerKey,
    witnesses: [CosignatureSigner; 2],
}

impl Forger {
    /// The forger of `d`'s log.
    pub fn of(d: &Deployment) -> Forger {
        let key = |path: &Path| {
            SignerKey::parse(std::fs::read_to_string(path).unwrap().lines().next().unwrap().trim()).unwrap()
        };
        let witness =
            |i: usize| CosignatureSigner::new(key(&d.witness_ids[i].data.join("witness.key"))).unwrap();
        Forger {
            origin: d.origin.clone(),
            log: key(&d.dir.join("log/log.key")),
            witnesses: [witness(0), witness(1)],
        }
    }

    /// A checkpoint of the log's origin at `size` with `root`, signed and
    /// cosigned now.
    pub fn checkpoint(&self, size: u64, root: Hash) -> Vec<u8> {
        let cp = Checkpoint { origin: self.origin.clone(), size, root, extensions: vec![] };
        let [w1, w2] = &self.witnesses;
        let (t1, t2) = (w1.at(now_secs()).unwrap(), w2.at(now_secs()).unwrap());
        let signers: [&dyn NoteSigner; 3] = [&self.log, &t1, &t2];
        sign_note(&cp.to_text().unwrap(), &signers).unwrap()
    }
}

/// A checkpoint of `d`'s origin at `size` with `root`, signed with the
/// log's key and cosigned by witnesses 1 and 2.
pub fn forged_checkpoint(d: &Deployment, size: u64, root: Hash) -> Vec<u8> {
    Forger::of(d).checkpoint(size, root)
}

/// A proxy to the deployment's log that answers `GET /checkpoint` with a
/// fork: a checkpoint of the size of the log's current one with another
/// root, signed by [`Forger`]. A client that remembers the honest
/// checkpoint of that size must refuse it as inconsistent (exit 3) and
/// write split-view evidence.
pub fn fork_proxy(d: &Deployment) -> String {
    let forger = Forger::of(d);
    proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path == "/checkpoint" && r.status == 200 {
                let note = String::from_utf8_lossy(&r.body).into_owned();
                let size = note.lines().nth(1).and_then(|s| s.parse().ok()).expect("a checkpoint note");
                r.body = forger.checkpoint(size, Hash([7; 32]));
            }
            r
        }),
    )
}

/// A proxy to the log at `upstream` that flips one byte of every file of a
/// model directory it serves (`GET /blobs/...` under an access index): a
/// server or network that alters stored weights.
pub fn tampering_proxy(upstream: &str) -> String {
    proxy(
        upstream.to_owned(),
        Arc::new(|req, mut r| {
            if req.path.starts_with("/blobs/")
                && req.header("custody-access-index").is_some()
                && r.status == 200
            {
                if let Some(b) = r.body.last_mut() {
                    *b ^= 1;
                }
            }
            r
        }),
    )
}

/// Entry bundle bytes as tlog-tiles entries (u16 BE length, bytes).
pub fn split_bundle(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    while rest.len() >= 2 {
        let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        out.push(rest[2..2 + n].to_vec());
        rest = &rest[2 + n..];
    }
    out
}

/// Entries joined into entry bundle bytes again.
pub fn join_bundle(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// A proxy in front of `d`'s log that applies `edit` to every entry
/// bundle it serves; returns its URL.
pub fn lying_bundles(d: &Deployment, edit: impl Fn(&mut Vec<Vec<u8>>) + Send + Sync + 'static) -> String {
    proxy(
        d.log.url.clone(),
        Arc::new(move |req, mut r| {
            if req.path.starts_with("/tile/entries/") && r.status == 200 {
                let mut entries = split_bundle(&r.body);
                edit(&mut entries);
                r.body = join_bundle(&entries);
            }
            r
        }),
    )
}
