// Pure in-browser verification of checkpoints, cosignatures and inclusion proofs (written by webjs).
