//! The core's end-to-end story in one process, run by `scripts/quickstart`:
//! a log appends model-publish entries, signs a checkpoint, two of three
//! witnesses check consistency and cosign it, and a client verifies a
//! `c2sp.org/tlog-proof@v1` bundle offline against a 2-of-3 policy. Then it
//! shows the same checks refusing a tampered entry, an under-witnessed
//! checkpoint and a forked log.
//!
//! Keys come from fixed seeds so the output is reproducible; real keys come
//! from `custody-log init` / `custody-witness init`.

use std::process::ExitCode;

use custody_standards::bundle::ProofBundle;
use custody_standards::checkpoint::{sign_checkpoint, Checkpoint};
use custody_standards::cosignature::{cosign, CosignatureSigner};
use custody_standards::keys::{SignerKey, SIG_TYPE_ED25519};
use custody_standards::policy::Policy;
use custody_standards::{
    consistency_proof, hash, inclusion_proof, leaf_hash, verify_consistency, MemoryHashStore,
};

const ORIGIN: &str = "custody.example/quickstart";
/// Fixed time so the cosignatures, and thus the printed bundle, are stable.
const TIME: u64 = 1_790_000_000;

/// A witness as the tlog-witness spec describes it: it remembers the last
/// checkpoint it cosigned and only cosigns a new one that is provably an
/// append-only extension of it.
struct Witness {
    signer: CosignatureSigner,
    last: Option<Checkpoint>,
}

impl Witness {
    fn add_checkpoint(
        &mut self,
        cp: &Checkpoint,
        proof: &[custody_standards::Hash],
    ) -> Result<String, String> {
        if let Some(last) = &self.last {
            verify_consistency(last.size, cp.size, proof, &last.root, &cp.root)
                .map_err(|e| format!("{}: refuses to cosign: {e}", self.signer.key().name()))?;
        }
        self.last = Some(cp.clone());
        cosign(&self.signer, cp, TIME).map_err(|e| e.to_string())
    }
}

fn seed(label: &str) -> [u8; 32] {
    hash::sha256(label.as_bytes()).0
}

fn publish_entry(i: usize) -> Vec<u8> {
    format!(
        "{{\"action\":\"publish\",\"name\":\"acme/sentiment\",\"version\":\"1.{i}.0\",\"digest\":\"sha256:{}\"}}",
        hash::sha256(format!("weights of model 1.{i}.0").as_bytes())
    )
    .into_bytes()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let log_key = SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &seed("log"))?;
    let mut witnesses: Vec<Witness> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| {
            let signer = CosignatureSigner::from_seed(&format!("witness.example/{n}"), &seed(n))?;
            Ok(Witness { signer, last: None })
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;

    let mut policy_text = format!("log {}\n", log_key.verifier());
    for (w, n) in witnesses.iter().zip(["w1", "w2", "w3"]) {
        policy_text.push_str(&format!("witness {n} {}\n", w.signer.verifier()));
    }
    policy_text.push_str("group witnesses 2 w1 w2 w3\nquorum witnesses\n");
    let policy = Policy::parse(policy_text.as_bytes())?;
    println!("== policy (C2SP tlog-policy, 2-of-3 witnesses)\n{policy_text}");

    // The log: append entries, sign a checkpoint, collect cosignatures from
    // the witnesses that are up (w3 is "down" to show the quorum at work).
    let mut log = MemoryHashStore::new();
    let entries: Vec<Vec<u8>> = (0..10).map(publish_entry).collect();
    for e in &entries[..6] {
        log.append(leaf_hash(e));
    }
    let first = Checkpoint { origin: ORIGIN.into(), size: log.size(), root: log.root(), extensions: vec![] };
    let mut note = sign_checkpoint(&first, &log_key)?;
    for w in witnesses.iter_mut().take(2) {
        note.extend_from_slice(w.add_checkpoint(&first, &[])?.as_bytes());
    }
    println!("== checkpoint at size {} cosigned by w1 and w2", first.size);

    // Grow the log; witnesses accept only with a valid consistency proof.
    for e in &entries[6..] {
        log.append(leaf_hash(e));
    }
    let second = Checkpoint { origin: ORIGIN.into(), size: log.size(), root: log.root(), extensions: vec![] };
    let proof = consistency_proof(first.size, second.size, &log)?;
    let mut note2 = sign_checkpoint(&second, &log_key)?;
    for w in witnesses.iter_mut().take(2) {
        note2.extend_from_slice(w.add_checkpoint(&second, &proof)?.as_bytes());
    }
    println!(
        "== witnesses verified a {}-hash consistency proof {} -> {} and cosigned",
        proof.len(),
        first.size,
        second.size
    );
    println!("{}", String::from_utf8_lossy(&note2));

    // The client's receipt for entry 7: an offline-verifiable proof bundle.
    let index = 7u64;
    let bundle = ProofBundle {
        extra: None,
        index,
        proof: inclusion_proof(index, second.size, &log)?,
        checkpoint: note2.clone(),
    };
    let bytes = bundle.to_bytes();
    let path = std::env::temp_dir().join("custody-quickstart.tlog-proof");
    std::fs::write(&path, &bytes)?;
    println!(
        "== proof bundle for entry {index} written to {}\n{}",
        path.display(),
        String::from_utf8_lossy(&bytes)
    );

    let parsed = ProofBundle::parse(&bytes)?;
    let ok = parsed.verify(&leaf_hash(&entries[index as usize]), &policy)?;
    println!("== bundle verified offline: log {}, satisfied {:?}", ok.log_key_name, ok.satisfied);

    // What the same checks refuse.
    let mut tampered = entries[index as usize].clone();
    tampered[30] ^= 1;
    let e = parsed.verify(&leaf_hash(&tampered), &policy).expect_err("tampered entry must fail");
    println!("refused, tampered entry: {e}");

    let mut under = sign_checkpoint(&second, &log_key)?;
    under.extend_from_slice(cosign(&witnesses[0].signer, &second, TIME)?.as_bytes());
    let e = ProofBundle { checkpoint: under, ..parsed.clone() }
        .verify(&leaf_hash(&entries[7]), &policy)
        .expect_err("1-of-3 must fail");
    println!("refused, one cosignature only: {e}");

    // A fork: same first 6 entries, then a different history, grown past the
    // witness's view so only the consistency proof can tell.
    let mut fork = MemoryHashStore::new();
    for e in &entries[..6] {
        fork.append(leaf_hash(e));
    }
    for i in 0..5 {
        fork.append(leaf_hash(format!("rewritten entry {i}").as_bytes()));
    }
    let forked =
        Checkpoint { origin: ORIGIN.into(), size: fork.size(), root: fork.root(), extensions: vec![] };
    let fork_proof = consistency_proof(second.size, forked.size, &fork)?;
    let e = witnesses[0].add_checkpoint(&forked, &fork_proof);
    println!("refused, forked log: {}", e.expect_err("fork must be refused"));
    println!("\nquickstart: all checks behaved as expected");
    Ok(())
}
