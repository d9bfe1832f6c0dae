//! Outgoing HTTP: a log's `/checkpoint` and tiles (tlog-tiles), and peers'
//! monitoring endpoints, through custody-client: every request has a
//! timeout and every body a size cap, checked while reading, so a hostile
//! log or peer can neither stall a loop nor make us buffer unbounded data.
//!
//! Consistency from tiles: [`prefix_proof`] fetches exactly the tiles that
//! [`TileHashReader`] will read (core's [`fetch_plan`]) concurrently, then
//! runs the synchronous, authenticating reader over them. Every hash it
//! yields has been checked against the larger checkpoint's root, so a lying
//! or split log cannot make us compute a wrong prefix root: it can only
//! make the check fail with an authentication error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use custody_client::{Client, ClientConfig, ClientError, RetryPolicy};
use custody_registry::evidence::PrefixProof;
use custody_standards::proof::{consistency_proof_nodes, tree_hash_nodes, ProofError};
use custody_standards::stored::ReadError;
use custody_standards::tile_reader::fetch_plan;
use custody_standards::tiles::{Tile, FULL_TILE_BYTES};
use custody_standards::{consistency_proof, tree_hash, Hash, TileFetcher, TileHashReader};

/// Why a prefix proof could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// A tile could not be fetched.
    #[error("fetching tile {tile}: {source}")]
    Fetch {
        /// Tile path.
        tile: String,
        /// Cause.
        source: ClientError,
    },
    /// The log serves no such tile (404).
    #[error("the log serves no tile {0} (404)")]
    Missing(String),
    /// Tiles did not authenticate against the root, or sizes are wrong.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// The witness's outgoing client: the workspace's one HTTP client
/// (custody-client), with the witness's user agent, `--http-timeout` per
/// attempt, `--ca-cert` for HTTPS logs and peers, and a short retry
/// budget so a gossip or pull round is not held up long by one server.
pub fn http_client(timeout: Duration, ca_cert: Option<PathBuf>) -> Result<Client, ClientError> {
    let retry = RetryPolicy { max_attempts: 3, max_delay: Duration::from_secs(2), ..RetryPolicy::default() };
    Client::new(
        ClientConfig::new(concat!("custody-witness/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .ca_cert(ca_cert)
            .retry(retry),
    )
}

/// Tiles fetched ahead of time; the reader authenticates them.
struct Prefetched(HashMap<Tile, Vec<u8>>);

impl TileFetcher for Prefetched {
    fn fetch_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadError> {
        tiles
            .iter()
            .map(|t| {
                self.0
                    .get(t)
                    .cloned()
                    .ok_or_else(|| ReadError::Backend(format!("tile {t} was not prefetched").into()))
            })
            .collect()
    }
}

/// The root that the log's tree of `large` leaves (with the trusted
/// `large_root`) has at `small` leaves, and the consistency proof from it,
/// built from the log's tiles at `log_url`. `small <= large`.
pub async fn prefix_proof(
    client: &Client,
    log_url: &str,
    small: u64,
    large: u64,
    large_root: Hash,
) -> Result<PrefixProof, ProveError> {
    if small > large {
        return Err(ProofError::SizeOrder { old: small, new: large }.into());
    }
    let mut nodes = tree_hash_nodes(small);
    nodes.extend(consistency_proof_nodes(small, large)?);
    let tiles = fetch_plan(large, &nodes).map_err(ProofError::from)?;
    let mut tasks = tokio::task::JoinSet::new();
    for tile in tiles {
        let (client, url) = (client.clone(), format!("{log_url}/{}", tile.path()));
        tasks.spawn(async move { (tile, client.get_opt(&url, FULL_TILE_BYTES as u64).await) });
    }
    let mut fetched = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((tile, result)) = joined else { continue };
        let body = match result {
            Ok(Some(body)) => body,
            Ok(None) => return Err(ProveError::Missing(tile.path())),
            Err(source) => return Err(ProveError::Fetch { tile: tile.path(), source }),
        };
        fetched.insert(tile, body);
    }
    let reader = TileHashReader::new(large, large_root, Prefetched(fetched));
    let prefix = tree_hash(small, &reader)?;
    let proof = consistency_proof(small, large, &reader)?;
    Ok(PrefixProof { prefix, proof })
}
