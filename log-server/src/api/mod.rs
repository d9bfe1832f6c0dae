//! The HTTP API (actix-web): the C2SP tlog-tiles read path, proofs, entries,
//! raw append, health, readiness and metrics. docs/api.md is the user-facing reference.
//!
//! Handlers are thin: they parse and cap input, run the blocking RocksDB
//! work in `web::block` so the async workers never stall on disk, and return
//! `Result<_, ApiError>` so every failure gets its status in one place
//! ([`error`]).

pub mod blob_body;
pub mod blob_upload;
pub mod blobs;
pub mod client_limits;
pub mod connections;
mod directory;
pub mod entry_range;
pub mod error;
pub mod integrity;
pub mod ops;
pub mod proofs;
pub mod queries;
pub mod read;
pub mod refusals;
pub mod state;
pub mod statements;
pub mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::dev::Service as _;
use actix_web::{web, HttpResponse};
use custody_service::connection::ConnectionArgs;
use custody_service::request_id::RequestIds;
use custody_service::server::ServeError;
use custody_service::tls::CertReloader;

use crate::blobs::BlobStore;
use crate::checkpointer::{Published, Publisher};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::registry::RegistryService;
use crate::sequencer::SequencerHandle;
use crate::store::{InMemory, NotInMemory, Store};
use custody_registry::statement::SignedStatement;
use custody_service::guard::{address_guard, AddressGuard};
use custody_standards::HashReader;
pub use error::ApiError;

/// Bytes of full tiles and full entry bundles kept in memory. Full tiles
/// never change, and the hottest ones (the right edge of the upper levels)
/// are requested by every client verifying a new checkpoint.
pub const DEFAULT_TILE_CACHE_BYTES: usize = 64 << 20;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    /// Durable log state.
    pub store: Arc<dyn Store>,
    /// Submission side of the sequencer; also the durable tree size.
    pub seq: SequencerHandle<SignedStatement>,
    /// Published (policy-satisfying) checkpoints.
    pub publisher: Publisher,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Whether `POST /entries` is enabled (`--allow-raw-append`).
    pub allow_raw_append: bool,
    /// Largest entry accepted by `POST /entries`.
    pub max_entry_size: usize,
    /// Cache of immutable full tiles and bundles.
    pub tile_cache: TileCache,
    /// Cache of encoded entries for `GET /entries?start=&end=`.
    pub entry_steps: entry_range::EntryStepCache,
    /// The model registry; `None` on a generic log.
    pub registry: Option<RegistryApi>,
    /// Connection and request-time limits, and the open connections.
    pub connections: Arc<connections::Connections>,
    /// Unauthenticated refusals since the last summary line.
    pub refusals: Arc<refusals::RefusalSummary>,
    /// The log's key and policy, as the dashboard shows them.
    pub trust: crate::ui::Trust,
}

/// What the registry endpoints need.
pub struct RegistryApi {
    /// The registry state (authorization and queries).
    pub registry: Arc<RegistryService>,
    /// Artifact storage.
    pub blobs: Arc<BlobStore>,
    /// Verified small artifacts, served while their files are unchanged.
    pub blob_cache: crate::blob_cache::VerifiedBlobCache,
    /// Per-actor statement rate limit.
    pub limiter: RateLimiter,
    /// Per-actor rate limit of the pre-upload check of `PUT /blobs`.
    pub upload_limiter: RateLimiter,
    /// Uploads in flight and who uploaded what.
    pub uploads: Arc<crate::uploads::Uploads>,
    /// Running downloads under their caps and idle timeout.
    pub downloads: Arc<crate::download_slots::Downloads>,
    /// Largest accepted artifact.
    pub max_blob_size: u64,
    /// Parsed manifests of model directories.
    pub manifests: Arc<crate::directory::Manifests>,
    /// How long a logged access of a directory's manifest serves its files.
    pub access_grant: std::time::Duration,
}

impl AppState {
    /// The newest published checkpoint, or 503 if none exists yet: clients
    /// can verify nothing before the first one.
    pub(crate) fn published(&self) -> Result<Arc<Published>, ApiError> {
        self.publisher
            .latest()
            .ok_or_else(|| ApiError::Unavailable("no checkpoint has been published yet".into()))
    }

    /// The registry, or 404 on a generic log (the routes exist, the
    /// registry does not).
    pub(crate) fn registry(&self) -> Result<&RegistryApi, ApiError> {
        self.registry.as_ref().ok_or_else(|| ApiError::NotFound("this log is not a model registry".into()))
    }

    /// Runs blocking store work on actix's blocking pool.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&dyn Store) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let store = Arc::clone(&self.store);
        web::block(move || f(store.as_ref())).await?
    }

    /// Runs `f` over the stored hashes from memory on this thread when it
    /// can (memtables and block cache: no waiting), and on the blocking pool
    /// only when some hash is on disk. Proofs and tiles near the right edge
    /// and in the upper levels are then answered without a thread hop.
    pub(crate) async fn with_hashes<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: Fn(&dyn HashReader) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        match f(&InMemory(self.store.as_ref())) {
            Err(e) if e.read_error().is_some_and(NotInMemory::is) => {
                self.blocking(move |store| f(&store)).await
            }
            other => other,
        }
    }
}

/// A bounded map of immutable resources (full tiles, full bundles) keyed by
/// their canonical path. Eviction is arbitrary rather than LRU: the cache
/// only has to keep the hot right edge warm, and any entry it drops is
/// cheap to rebuild from RocksDB.
pub struct TileCache {
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    bytes: usize,
    map: HashMap<String, Arc<Vec<u8>>>,
}

impl TileCache {
    /// A cache holding at most `max_bytes` of bodies (0 disables it).
    pub fn new(max_bytes: usize) -> Self {
        TileCache { max_bytes, inner: Mutex::new(CacheInner::default()) }
    }

    /// The cached body of `path`, if any.
    pub fn get(&self, path: &str) -> Option<Arc<Vec<u8>>> {
        self.inner.lock().ok()?.map.get(path).cloned()
    }

    /// Stores `body` for `path`, evicting other bodies to stay in budget.
    pub fn put(&self, path: String, body: Arc<Vec<u8>>) {
        if body.len() > self.max_bytes {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        while inner.bytes + body.len() > self.max_bytes {
            let Some(victim) = inner.map.keys().next().cloned() else { break };
            if let Some(old) = inner.map.remove(&victim) {
                inner.bytes -= old.len();
            }
        }
        inner.bytes += body.len();
        if let Some(old) = inner.map.insert(path, body) {
            inner.bytes -= old.len();
        }
    }
}

/// Registers every route and the JSON error handlers for malformed query
/// strings and paths. Unknown routes get a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|err, _req| ApiError::BadRequest(format!("bad query: {err}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|err, _req| ApiError::BadRequest(format!("bad path: {err}")).into()),
    )
    // actix tries resources in this order and matches every pattern with
    // a variable part by regex (a visible cost in the profile at thousands
    // of requests a second): fixed paths first, then `/blobs` (a fixed
    // prefix, see `blobs::route`) and `/tile`, then the rest.
    .service(web::resource("/checkpoint").route(web::get().to(read::checkpoint)))
    .service(
        web::resource("/entries")
            .route(web::get().to(entry_range::entry_range))
            .route(web::post().to(write::append)),
    )
    .service(web::resource("/proof/inclusion").route(web::get().to(proofs::inclusion)))
    .service(web::resource("/proof/consistency").route(web::get().to(proofs::consistency)))
    .service(web::resource("/proof/bundle").route(web::get().to(proofs::bundle)))
    .service(web::resource("/statements").route(web::post().to(statements::submit)))
    .service(web::resource("/registry/models").route(web::get().to(queries::models)))
    .service(web::resource("/registry/resolve").route(web::get().to(queries::resolve)))
    .service(web::resource("/state/proof").route(web::get().to(state::proof)))
    .service(
        web::resource("/state/proofs")
            .app_data(web::JsonConfig::default().limit(state::MAX_KEYS_PER_REQUEST * 2200).error_handler(
                |err, _req| ApiError::BadRequest(format!("bad state proofs request: {err}")).into(),
            ))
            .route(web::post().to(state::proofs)),
    )
    .service(web::resource("/health").route(web::get().to(ops::health)))
    // Registered by custody-service:
    // route: GET /healthz
    .configure(custody_service::health::configure_healthz)
    .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
    .service(web::resource("/metrics").route(web::get().to(ops::metrics)))
    // Dispatched by method inside `blobs::route` (the route list in
    // tests/tests/http_fuzz.rs reads these two lines):
    // route: GET /blobs/{digest}
    // route: PUT /blobs/{digest}
    .service(web::scope("/blobs").default_service(web::to(blobs::route)))
    .service(web::resource("/tile/{tail:.*}").route(web::get().to(read::tile)))
    .service(web::resource("/entries/{index}").route(web::get().to(read::entry)))
    .service(web::resource("/registry/models/{org}/{model}").route(web::get().to(queries::model)))
    .service(
        web::resource("/registry/models/{org}/{model}/entries").route(web::get().to(queries::model_entries)),
    )
    .service(web::resource("/registry/artifacts/{digest}").route(web::get().to(queries::artifact)))
    .service(
        web::resource("/registry/artifacts/{digest}/entries").route(web::get().to(queries::digest_entries)),
    )
    .service(web::resource("/registry/actors/{actor}").route(web::get().to(queries::actor)))
    .service(web::resource("/registry/actors/{actor}/entries").route(web::get().to(queries::actor_entries)))
    // The dashboard (crate::ui), GET only, HTML 404 for other /ui/ paths:
    // route: GET /ui
    // route: GET /ui/
    // route: GET /ui/entries
    // route: GET /ui/witnesses
    // route: GET /ui/models/{org}/{model}
    // route: GET /ui/assets/{path:.*}
    // route: GET /ui/api/trust
    // route: GET /ui/api/proofs
    .configure(crate::ui::configure)
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

/// Builds the HTTP server on an already bound listener, over HTTPS when
/// `tls` is given. Each request runs in its own span with a request id
/// (echoed in `X-Request-Id`), is first charged to its client address's
/// budget (`guard`: a 429 before anything else is read), and each response
/// is counted by status in the metrics. Signals are left to the caller, which stops the server
/// gracefully through the returned handle.
pub fn server(
    state: web::Data<AppState>,
    guard: web::Data<AddressGuard>,
    listener: std::net::TcpListener,
    conn: &ConnectionArgs,
    tls: Option<&Arc<CertReloader>>,
) -> Result<actix_web::dev::Server, ServeError> {
    let connections = Arc::clone(&state.connections);
    let limits = connections.limits();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .app_data(guard.clone())
            .configure(configure)
            .wrap(actix_web::middleware::from_fn(address_guard))
            .wrap_fn(|req, srv| {
                let metrics = req.app_data::<web::Data<AppState>>().map(|s| Arc::clone(&s.metrics));
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    if let Some(m) = metrics {
                        m.inc_http(res.status().as_u16());
                    }
                    Ok(res)
                }
            })
            .wrap(RequestIds)
    })
    // Counts connections per address and in total, refuses those over the
    // caps, and sends segments at once (see `connections`).
    .on_connect(move |conn, data| {
        connections.on_connect(conn, data);
        crate::download_slots::remember_socket(conn, data);
    })
    // actix's own cap is per worker; the exact total is kept above.
    .max_connections(if limits.max_connections == 0 { 25_000 } else { limits.max_connections });
    let conn = ConnectionArgs { max_connections: limits.max_connections, ..conn.clone() };
    Ok(custody_service::server::listen(server, listener, &conn, tls)?.run())
}

/// Parses a decimal query parameter strictly (no sign, no leading zeros).
pub(crate) fn parse_u64(name: &str, value: &str) -> Result<u64, ApiError> {
    custody_standards::encoding::parse_decimal_u64(value).ok_or_else(|| {
        ApiError::BadRequest(format!("{name} must be a canonical decimal integer, got {value:?}"))
    })
}

/// Base64 of each hash, as proofs are rendered in JSON.
pub(crate) fn hashes_b64(hashes: &[custody_standards::Hash]) -> Vec<String> {
    hashes.iter().map(|h| h.to_base64()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_cache_stays_within_budget() {
        let cache = TileCache::new(100);
        for i in 0..10 {
            cache.put(format!("t{i}"), Arc::new(vec![0u8; 40]));
            let inner = cache.inner.lock().unwrap();
            assert!(inner.bytes <= 100);
            assert_eq!(inner.bytes, inner.map.values().map(|v| v.len()).sum::<usize>());
        }
        assert!(cache.get("t9").is_some());
        cache.put("big".into(), Arc::new(vec![0u8; 101]));
        assert!(cache.get("big").is_none());
    }

    #[test]
    fn decimals_are_strict() {
        assert_eq!(parse_u64("i", "12").unwrap(), 12);
        assert!(parse_u64("i", "012").is_err());
        assert!(parse_u64("i", "-1").is_err());
        assert!(parse_u64("i", "").is_err());
    }
}
