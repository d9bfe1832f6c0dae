//! The per-address limits in front of a service's routes: an actix
//! middleware ([`address_guard`]) and the command-line flags that
//! configure it ([`AddressLimitArgs`]).
//!
//! The middleware runs before routing hands the request to its handler,
//! so a refused request has had only its head parsed: no body is read, no
//! signature checked, no store touched. Its response is a 429 with
//! `Retry-After` and the JSON error body the services use everywhere.
//! After the handler has answered, a response that says authentication
//! failed is charged to the address's failed-authentication budget.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{mirror_count, Counter, Family, Gauge, LabelText, Labels, Registry};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use clap::Args;

use crate::rate_limit::{
    AddressList, ClassQuota, ClientLimits, FailureBudget, LimitConfig, Refused, RouteClass,
};

/// How often idle addresses are forgotten.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);

/// The limits of one service and how it maps its routes to them; stored
/// as app data (`web::Data<AddressGuard>`) for [`address_guard`] and for
/// handlers that charge bytes.
pub struct AddressGuard {
    /// The budgets.
    pub limits: Arc<ClientLimits>,
    /// The class of a request, from its method and path.
    pub classify: fn(&Method, &str) -> RouteClass,
    /// Whether a response of this status to a request of this class means
    /// the client failed to authenticate.
    pub is_auth_failure: fn(RouteClass, StatusCode) -> bool,
}

impl AddressGuard {
    /// The peer address a request is charged to: its TCP peer.
    pub fn peer(req: &actix_web::HttpRequest) -> Option<IpAddr> {
        req.peer_addr().map(|a| a.ip())
    }
}

/// The 429 answer to a refused request. A request that announced a body
/// gets its connection closed: the body was not read, and reading it only
/// to throw it away is the work the limit saves.
pub fn refusal_response(refused: &Refused, has_body: bool) -> HttpResponse {
    let mut resp = HttpResponse::TooManyRequests();
    resp.insert_header((header::RETRY_AFTER, refused.retry_after_secs().to_string()));
    if has_body {
        resp.force_close();
    }
    resp.json(serde_json::json!({ "error": refused.code(), "detail": refused.to_string() }))
}

fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// The middleware (install with `actix_web::middleware::from_fn`): charges
/// the request to its peer's budget of its route class and answers 429 if
/// that is spent; afterwards counts a failed authentication. A service
/// without an [`AddressGuard`] in its app data is not limited.
pub async fn address_guard<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let guard = req.app_data::<web::Data<AddressGuard>>().cloned();
    let (Some(guard), Some(peer)) = (guard, req.peer_addr().map(|a| a.ip())) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let class = (guard.classify)(req.method(), req.path());
    if let Err(refused) = guard.limits.admit(peer, class) {
        tracing::debug!(%peer, class = class.name(), reason = refused.code(), "request refused by address limit");
        let body = has_body(&req);
        return Ok(req.into_response(refusal_response(&refused, body)).map_into_right_body());
    }
    let res = next.call(req).await?;
    if (guard.is_auth_failure)(class, res.status()) {
        guard.limits.record_auth_failure(peer);
    }
    Ok(res.map_into_left_body())
}

/// Command-line flags of the per-address limits, flattened into a
/// service's `serve` arguments. Rates are per client address (an IPv6
/// client's /64); 0 disables a limit.
#[derive(Debug, Clone, Args)]
pub struct AddressLimitArgs {
    /// Read requests (checkpoint, tiles, proofs, entries, queries,
    /// downloads, health, metrics) per second per client address; more get
    /// 429 before anything is read. 0 disables the limit.
    #[arg(long = "read-rate", env = "CUSTODY_READ_RATE", default_value_t = 500)]
    pub read_rate: u32,
    /// Read requests one address may send at once.
    #[arg(long = "read-burst", env = "CUSTODY_READ_BURST", default_value_t = 1000)]
    pub read_burst: u32,
    /// KiB of entry pages (`GET /entries?start=&end=`) per second per client
    /// address; a page is cut short when the budget runs out and the
    /// address's reads get 429 until it is paid off. 0 disables it.
    #[arg(long = "read-kib-rate", env = "CUSTODY_READ_KIB_RATE", default_value_t = 8192)]
    pub read_kib_rate: u32,
    /// KiB of entry pages one address may read at once.
    #[arg(long = "read-kib-burst", env = "CUSTODY_READ_KIB_BURST", default_value_t = 32768)]
    pub read_kib_burst: u32,
    /// Failed authentications (bad signature, unknown key) allowed per
    /// client address per `--auth-failure-window`; past them, its signed
    /// requests get 429 before their body is read. 0 disables it.
    #[arg(long = "auth-failure-budget", env = "CUSTODY_AUTH_FAILURE_BUDGET", default_value_t = 20)]
    pub auth_failure_budget: u32,
    /// The window of `--auth-failure-budget`, in seconds.
    #[arg(long = "auth-failure-window", env = "CUSTODY_AUTH_FAILURE_WINDOW_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_failure_window_secs: u64,
    /// Client addresses no per-address limit applies to: comma-separated
    /// addresses or CIDR ranges (a monitoring host, a load balancer's
    /// health checker), or `none`. The default exempts the host itself
    /// (a local reverse proxy, an operator's shell).
    #[arg(long = "rate-limit-exempt", env = "CUSTODY_RATE_LIMIT_EXEMPT", default_value = "127.0.0.1,::1")]
    pub rate_limit_exempt: AddressList,
    /// Most client addresses each per-address budget keeps state for.
    #[arg(long = "max-tracked-addresses", env = "CUSTODY_MAX_TRACKED_ADDRESSES", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_tracked_addresses: u64,
}

impl AddressLimitArgs {
    /// The limit configuration, with the service's own class budgets
    /// (`write` for the log, `witness` for the witness; the other 0).
    pub fn config(&self, write: ClassQuota, witness: ClassQuota) -> LimitConfig {
        LimitConfig {
            read: ClassQuota { per_second: self.read_rate, burst: self.read_burst },
            write,
            witness,
            auth_failures: FailureBudget {
                failures: self.auth_failure_budget,
                window: Duration::from_secs(self.auth_failure_window_secs),
            },
            read_kib: ClassQuota { per_second: self.read_kib_rate, burst: self.read_kib_burst },
            exempt: self.rate_limit_exempt.0.clone(),
            max_tracked: usize::try_from(self.max_tracked_addresses).unwrap_or(usize::MAX),
        }
    }

    /// The guard of a service over these limits, with its maintenance
    /// thread started.
    pub fn guard(
        &self,
        write: ClassQuota,
        witness: ClassQuota,
        classify: fn(&Method, &str) -> RouteClass,
        is_auth_failure: fn(RouteClass, StatusCode) -> bool,
    ) -> AddressGuard {
        let limits = Arc::new(ClientLimits::new(&self.config(write, witness)));
        limits.spawn_maintenance(MAINTENANCE_INTERVAL);
        AddressGuard { limits, classify, is_auth_failure }
    }
}

/// The per-address limits' gauges, registered once in a server's metrics
/// registry and set from the limiter at scrape time.
#[derive(Clone, Default)]
pub struct LimitGauges {
    tracked: Gauge,
    refusals: Family<Labels, Counter>,
}

impl LimitGauges {
    /// Registers the series `custody_client_addresses_tracked` and
    /// `custody_client_limit_refusals_total{reason}` in `registry`.
    pub fn register(registry: &mut Registry) -> LimitGauges {
        let g = LimitGauges::default();
        registry.register(
            "custody_client_addresses_tracked",
            "Client addresses for which per-address limit state is kept (all budgets together).",
            g.tracked.clone(),
        );
        registry.register(
            "custody_client_limit_refusals",
            "Requests refused by the per-address limits since start, by reason.",
            g.refusals.clone(),
        );
        g
    }

    /// Copies the limiter's current figures into the series.
    pub fn set_from(&self, limits: &ClientLimits) {
        self.tracked.set(i64::try_from(limits.tracked()).unwrap_or(i64::MAX));
        for (reason, n) in limits.refusals() {
            mirror_count(&self.refusals, &vec![("reason", LabelText::new(reason))], n);
        }
    }
}
