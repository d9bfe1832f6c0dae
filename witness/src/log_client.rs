//! Outgoing HTTP: a log's `/checkpoint` and tiles (tlog-tiles), and peers'
//! monitoring endpoints. Every request has a timeout and every body a size
//! cap, checked while reading, so a hostile log or peer can neither stall a
//! loop nor make us buffer unbounded data.
//!
//! Consistency from tiles: [`prefix_proof`] fetches exactly the tiles that
//! [`TileHashReader`] will read (core's [`fetch_plan`]) concurrently, then
//! runs the synchronous, authenticating reader over them. Every hash it
//! yields has been checked against the larger checkpoint's root, so a lying
//! or split log cannot make us compute a wrong prefix root: it can only
//! make the check fail with an authentication error.

use std::collections::HashMap;
use std::time::Duration;

use custody_registry::evidence::PrefixProof;
use custody_standards::proof::{consistency_proof_nodes, tree_hash_nodes, ProofError};
use custody_standards::stored::ReadError;
use custody_standards::tile_reader::fetch_plan;
use custody_standards::tiles::{Tile, FULL_TILE_BYTES};
use custody_standards::{consistency_proof, tree_hash, Hash, TileFetcher, TileHashReader};

/// Why an HTTP fetch failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// Connection refused, reset, bad URL, ...
    #[error("transport: {0}")]
    Transport(String),
    /// No complete answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A status other than 200 (and other than 404 where that means "none").
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body exceeded the cap.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
}

/// Why a prefix proof could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// A tile could not be fetched.
    #[error("fetching tile {tile}: {source}")]
    Fetch {
        /// Tile path.
        tile: String,
        /// Cause.
        source: FetchError,
    },
    /// Tiles did not authenticate against the root, or sizes are wrong.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// A keep-alive client with a timeout on every request.
#[derive(Debug, Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose every request gives up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("custody-witness/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            // Never follow a log or peer somewhere its URL does not say.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(HttpClient { http, timeout })
    }

    /// GET `url`; `Ok(None)` on 404; the body is read up to `max` bytes.
    pub async fn get(&self, url: &str, max: usize) -> Result<Option<Vec<u8>>, FetchError> {
        match tokio::time::timeout(self.timeout, self.get_inner(url, max)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    /// POST `body` to `url`; returns the status and a capped body.
    pub async fn post(&self, url: &str, body: Vec<u8>, max: usize) -> Result<(u16, Vec<u8>), FetchError> {
        let fut = async {
            let resp = self.http.post(url).body(body).send().await.map_err(|e| self.classify(e))?;
            let status = resp.status().as_u16();
            Ok((status, self.read_capped(resp, max).await?))
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn get_inner(&self, url: &str, max: usize) -> Result<Option<Vec<u8>>, FetchError> {
        let resp = self.http.get(url).send().await.map_err(|e| self.classify(e))?;
        match resp.status().as_u16() {
            200 => Ok(Some(self.read_capped(resp, max).await?)),
            404 => Ok(None),
            s => Err(FetchError::Status(s)),
        }
    }

    async fn read_capped(&self, mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, FetchError> {
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(e))? {
            if out.len() + chunk.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    fn classify(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else {
            FetchError::Transport(e.without_url().to_string())
        }
    }
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
    client: &HttpClient,
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
        tasks.spawn(async move { (tile, client.get(&url, FULL_TILE_BYTES).await) });
    }
    let mut fetched = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((tile, result)) = joined else { continue };
        let body = match result {
            Ok(Some(body)) => body,
            Ok(None) => return Err(ProveError::Fetch { tile: tile.path(), source: FetchError::Status(404) }),
            Err(source) => return Err(ProveError::Fetch { tile: tile.path(), source }),
        };
        fetched.insert(tile, body);
    }
    let reader = TileHashReader::new(large, large_root, Prefetched(fetched));
    let prefix = tree_hash(small, &reader)?;
    let proof = consistency_proof(small, large, &reader)?;
    Ok(PrefixProof { prefix, proof })
}
