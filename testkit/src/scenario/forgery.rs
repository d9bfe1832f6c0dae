//! What a log that lies about its past serves: entry bundles edited on the
//! way (an entry left out, two swapped, one altered) and checkpoints of
//! another tree signed with the keys of a deployment's log and witnesses
//! (as if they were compromised).

use std::path::Path;
use std::sync::Arc;

use custody_standards::checkpoint::Checkpoint;
use custody_standards::cosignature::CosignatureSigner;
use custody_standards::note::{sign_note, NoteSigner};
use custody_standards::{Hash, SignerKey};

use super::Deployment;
use crate::hostile::proxy;

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

/// A checkpoint of `d`'s origin at `size` with `root`, signed with the
/// log's key and cosigned at `time` by witnesses 1 and 2 (their keys read
/// from their data directories): a fork a quorum of two accepts.
pub fn forged_checkpoint(d: &Deployment, size: u64, root: Hash, time: u64) -> Vec<u8> {
    let key = |path: &Path| {
        SignerKey::parse(std::fs::read_to_string(path).unwrap().lines().next().unwrap().trim()).unwrap()
    };
    let log = key(&d.dir.join("log/log.key"));
    let cp = Checkpoint { origin: d.origin.clone(), size, root, extensions: vec![] };
    let w1 = CosignatureSigner::new(key(&d.witness_ids[0].data.join("witness.key"))).unwrap();
    let w2 = CosignatureSigner::new(key(&d.witness_ids[1].data.join("witness.key"))).unwrap();
    let (t1, t2) = (w1.at(time).unwrap(), w2.at(time).unwrap());
    let signers: [&dyn NoteSigner; 3] = [&log, &t1, &t2];
    sign_note(&cp.to_text().unwrap(), &signers).unwrap()
}
