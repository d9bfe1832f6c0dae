//! Per-client-address limits, checked before a request is read.
//!
//! Every request is charged to its client's address ([`ClientKey`]) in the
//! budget of its route class (reads, writes, witness submissions), a GCRA
//! token bucket from `governor`: `per_second` requests a second with
//! bursts of `burst`. A client over its budget is answered 429 with
//! `Retry-After` before its body is read or any signature is checked, so a
//! flood from one address costs the server a hash-map lookup per request,
//! whatever the requests carry. Per-actor limits (after authentication)
//! stay behind this one: they stop an authenticated actor spending the
//! log's capacity from many addresses.
//!
//! Failed authentications (a bad signature, an unknown key) are budgeted
//! apart: once an address has failed `failures` times within a `window`
//! (counted from its first failure), its authenticated requests are
//! refused until that window ends. Signature checks are the expensive part
//! of a write, and an honest client fails them rarely.
//!
//! Bytes served by the heaviest reads (pages of entries) are charged to a
//! per-address byte budget as they are produced ([`ClientLimits::charge_bytes`]);
//! an address in debt has its reads refused until the debt is paid off.
//!
//! Memory: each budget keeps one small state per address seen recently.
//! [`ClientLimits::maintain`] (run periodically, and from the request path
//! whenever more than `max_tracked` addresses are kept) drops the states
//! indistinguishable from a fresh one; if more than `max_tracked` still
//! remain, that budget starts over empty. Only a client holding more than
//! `max_tracked` addresses (or /64s) at once could cause that, and it could
//! spread its requests over those addresses anyway.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference as _};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

pub use crate::client_address::{AddressList, AddressRange, BadRange, ClientKey};

/// Requests between two checks of the number of tracked addresses.
const SIZE_CHECK_EVERY: u64 = 1024;

/// What a route does, for its per-address budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// Reads: checkpoints, tiles, proofs, entries, queries, downloads.
    Read,
    /// Authenticated writes to the log: statements, uploads, raw appends.
    Write,
    /// Checkpoint submissions to a witness (add-checkpoint, gossip).
    Witness,
}

impl RouteClass {
    /// The class's name in responses, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Read => "read",
            RouteClass::Write => "write",
            RouteClass::Witness => "witness",
        }
    }

    /// Whether requests of this class carry a signature, and so are
    /// refused while their address is over its failed-authentication budget.
    pub fn is_authenticated(self) -> bool {
        matches!(self, RouteClass::Write | RouteClass::Witness)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A per-address request budget: `per_second` requests a second (0: no
/// limit), in bursts of at most `burst` (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassQuota {
    /// Sustained requests a second per address; 0 disables the limit.
    pub per_second: u32,
    /// Requests one address may send at once after being idle.
    pub burst: u32,
}

impl ClassQuota {
    fn quota(self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Some(Quota::per_second(rate).allow_burst(burst))
    }
}

/// The failed-authentication budget: `failures` per `window` per address
/// (0 disables it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBudget {
    /// Failures allowed per window; 0 disables the budget.
    pub failures: u32,
    /// The window (at least a millisecond).
    pub window: Duration,
}

/// Failures per address in its current window.
struct FailureWindows<C: Clock> {
    budget: u32,
    window: Nanos,
    counts: Mutex<HashMap<ClientKey, (u32, C::Instant)>>,
}

impl<C: Clock> FailureWindows<C> {
    fn new(budget: FailureBudget) -> Option<Self> {
        (budget.failures > 0).then(|| FailureWindows {
            budget: budget.failures,
            window: Nanos::from(budget.window.max(Duration::from_millis(1))),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one failure of `key` at `now`; returns the end of its window
    /// if the budget is now spent.
    fn record(&self, key: ClientKey, now: C::Instant, max_tracked: usize) -> Option<C::Instant> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= max_tracked && !counts.contains_key(&key) {
            counts.retain(|_, (_, start)| now.duration_since(*start) < self.window);
            if counts.len() >= max_tracked {
                return None;
            }
        }
        let entry = counts.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
        (entry.0 >= self.budget).then(|| entry.1 + self.window)
    }

    fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn maintain(&self, now: C::Instant) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.retain(|_, (_, start)| now.duration_since(*start) < self.window);
        counts.shrink_to_fit();
    }
}

/// Everything [`ClientLimits`] enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitConfig {
    /// Budget of [`RouteClass::Read`] requests.
    pub read: ClassQuota,
    /// Budget of [`RouteClass::Write`] requests.
    pub write: ClassQuota,
    /// Budget of [`RouteClass::Witness`] requests.
    pub witness: ClassQuota,
    /// Failed authentications allowed before authenticated requests are refused.
    pub auth_failures: FailureBudget,
    /// Bytes of heavy reads per address, in KiB (`per_second` KiB a second,
    /// bursts of `burst` KiB).
    pub read_kib: ClassQuota,
    /// Addresses no limit applies to (trusted monitors, a load balancer's
    /// health checks).
    pub exempt: Vec<AddressRange>,
    /// Most addresses each budget keeps state for (see the module docs).
    pub max_tracked: usize,
}

/// Why a request was refused, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address used up its budget for this route class.
    #[error("too many {} requests from this address; retry in {retry_after:.2?}", class.name())]
    RateLimited {
        /// The route class whose budget is spent.
        class: RouteClass,
        /// How long until one more request fits.
        retry_after: Duration,
    },
    /// The address failed authentication too often.
    #[error("too many failed authentications from this address; retry in {retry_after:.2?}")]
    AuthFailures {
        /// How long until the address may try again.
        retry_after: Duration,
    },
    /// The address read more bytes than its byte budget allows.
    #[error("too many bytes read by this address; retry in {retry_after:.2?}")]
    TooManyBytes {
        /// How long until the address has paid off its debt.
        retry_after: Duration,
    },
}

/// What an address is blocked for after it overspent a budget charged
/// after the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Penalty {
    AuthFailures,
    Bytes,
}

impl Refused {
    /// How long the client should wait.
    pub fn retry_after(&self) -> Duration {
        match self {
            Refused::RateLimited { retry_after, .. }
            | Refused::AuthFailures { retry_after }
            | Refused::TooManyBytes { retry_after } => *retry_after,
        }
    }

    /// The `Retry-After` value: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after();
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }

    /// The machine-readable reason (the `error` field of the 429 body).
    pub fn code(&self) -> &'static str {
        match self {
            Refused::RateLimited { .. } => "rate_limited",
            Refused::AuthFailures { .. } => "too_many_auth_failures",
            Refused::TooManyBytes { .. } => "too_many_bytes",
        }
    }
}

type Keyed<C> =
    RateLimiter<ClientKey, DashMapStateStore<ClientKey>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One keyed budget, replaceable as a whole when it outgrows its bound.
struct Budget<C: Clock> {
    quota: Quota,
    clock: C,
    limiter: RwLock<Arc<Keyed<C>>>,
}

impl<C: Clock + Clone> Budget<C> {
    fn new(quota: Quota, clock: C) -> Self {
        let limiter = RwLock::new(Arc::new(RateLimiter::dashmap_with_clock(quota, clock.clone())));
        Budget { quota, clock, limiter }
    }

    fn current(&self) -> Arc<Keyed<C>> {
        Arc::clone(&self.limiter.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Takes one unit for `key`, or says when the next one is available.
    fn take(&self, key: &ClientKey) -> Result<(), C::Instant> {
        self.current().check_key(key).map_err(|not_until| not_until.earliest_possible())
    }

    /// Takes `n` units (at most a burst) for `key`, or says when they would
    /// have been available.
    fn take_n(&self, key: &ClientKey, n: u32) -> Result<(), C::Instant> {
        let n = NonZeroU32::new(n.min(self.quota.burst_size().get())).unwrap_or(NonZeroU32::MIN);
        match self.current().check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.earliest_possible()),
            // Cannot happen: `n` is at most a burst.
            Err(_) => Err(self.clock.now()),
        }
    }

    fn len(&self) -> usize {
        self.current().len()
    }

    fn maintain(&self, max_tracked: usize) {
        let limiter = self.current();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        if limiter.len() > max_tracked {
            tracing::warn!(
                tracked = limiter.len(),
                max_tracked,
                "more client addresses are over budget than tracked; starting the budget over"
            );
            *self.limiter.write().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(RateLimiter::dashmap_with_clock(self.quota, self.clock.clone()));
        }
    }
}

/// The per-address budgets of one service (see the module docs).
pub struct ClientLimits<C: Clock = DefaultClock> {
    classes: [Option<Budget<C>>; 3],
    failures: Option<FailureWindows<C>>,
    bytes: Option<Budget<C>>,
    /// Addresses over their failure or byte budget, and until when.
    blocked: Mutex<HashMap<(ClientKey, Penalty), C::Instant>>,
    exempt: Vec<AddressRange>,
    max_tracked: usize,
    checks: AtomicU64,
    /// Refusals so far, by [`Refused::code`] (in [`REFUSAL_CODES`] order).
    refusals: [AtomicU64; 3],
    clock: C,
}

/// Every [`Refused::code`], in the order of [`ClientLimits::refusals`].
pub const REFUSAL_CODES: [&str; 3] = ["rate_limited", "too_many_auth_failures", "too_many_bytes"];

impl ClientLimits<DefaultClock> {
    /// Limits on the system clock.
    pub fn new(config: &LimitConfig) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ClientLimits<C> {
    /// Limits on `clock` (tests use a fake one).
    pub fn with_clock(config: &LimitConfig, clock: C) -> Self {
        let budget = |q: Option<Quota>| q.map(|q| Budget::new(q, clock.clone()));
        ClientLimits {
            classes: [
                budget(config.read.quota()),
                budget(config.write.quota()),
                budget(config.witness.quota()),
            ],
            failures: FailureWindows::new(config.auth_failures),
            bytes: budget(config.read_kib.quota()),
            blocked: Mutex::new(HashMap::new()),
            exempt: config.exempt.clone(),
            max_tracked: config.max_tracked.max(1),
            checks: AtomicU64::new(0),
            refusals: Default::default(),
            clock,
        }
    }

    fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|r| r.contains(ip))
    }

    /// Charges one request of `class` from `peer`; `Err` says why it must
    /// be refused and for how long. Nothing about the request but its
    /// address and route is looked at.
    pub fn admit(&self, peer: IpAddr, class: RouteClass) -> Result<(), Refused> {
        let result = self.check(peer, class);
        if let Err(refused) = &result {
            let i = REFUSAL_CODES.iter().position(|c| *c == refused.code()).unwrap_or(0);
            self.refusals[i].fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Requests refused so far, by [`Refused::code`].
    pub fn refusals(&self) -> [(&'static str, u64); 3] {
        std::array::from_fn(|i| (REFUSAL_CODES[i], self.refusals[i].load(Ordering::Relaxed)))
    }

    fn check(&self, peer: IpAddr, class: RouteClass) -> Result<(), Refused> {
        if self.is_exempt(peer) {
            return Ok(());
        }
        if self.checks.fetch_add(1, Ordering::Relaxed) % SIZE_CHECK_EVERY == SIZE_CHECK_EVERY - 1
            && self.tracked() > self.max_tracked
        {
            self.maintain();
        }
        let key = ClientKey::of(peer);
        if class.is_authenticated() && self.failures.is_some() {
            if let Some(retry_after) = self.blocked_for(key, Penalty::AuthFailures) {
                return Err(Refused::AuthFailures { retry_after });
            }
        }
        if class == RouteClass::Read && self.bytes.is_some() {
            if let Some(retry_after) = self.blocked_for(key, Penalty::Bytes) {
                return Err(Refused::TooManyBytes { retry_after });
            }
        }
        let Some(budget) = &self.classes[class.index()] else { return Ok(()) };
        budget.take(&key).map_err(|until| Refused::RateLimited {
            class,
            retry_after: until.duration_since(self.clock.now()).into(),
        })
    }

    /// How much longer `key` is blocked for `penalty`, if it is.
    fn blocked_for(&self, key: ClientKey, penalty: Penalty) -> Option<Duration> {
        let now = self.clock.now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&(key, penalty)) {
            Some(until) if *until > now => Some(until.duration_since(now).into()),
            Some(_) => {
                blocked.remove(&(key, penalty));
                None
            }
            None => None,
        }
    }

    fn block(&self, key: ClientKey, penalty: Penalty, until: C::Instant) {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= self.max_tracked {
            let now = self.clock.now();
            blocked.retain(|_, t| *t > now);
        }
        if blocked.len() < self.max_tracked {
            blocked.insert((key, penalty), until);
        }
    }

    /// Records a failed authentication from `peer`. Once its budget is
    /// spent, [`ClientLimits::admit`] refuses its authenticated requests
    /// until the window ends.
    pub fn record_auth_failure(&self, peer: IpAddr) {
        let Some(failures) = &self.failures else { return };
        if self.is_exempt(peer) {
            return;
        }
        let key = ClientKey::of(peer);
        if let Some(until) = failures.record(key, self.clock.now(), self.max_tracked) {
            self.block(key, Penalty::AuthFailures, until);
        }
    }

    /// Charges `bytes` read by `peer` to its byte budget. Returns false if
    /// the budget is spent: the caller should stop producing (a page of
    /// entries ends early), and [`ClientLimits::admit`] refuses the
    /// address's reads until its debt is paid off.
    pub fn charge_bytes(&self, peer: IpAddr, bytes: usize) -> bool {
        let Some(budget) = &self.bytes else { return true };
        if self.is_exempt(peer) {
            return true;
        }
        let key = ClientKey::of(peer);
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        if kib == 0 {
            return true;
        }
        match budget.take_n(&key, kib) {
            Ok(()) => true,
            Err(until) => {
                self.block(key, Penalty::Bytes, until);
                false
            }
        }
    }

    /// Addresses for which some state is kept (all budgets together).
    pub fn tracked(&self) -> usize {
        let budgets: usize = self.classes.iter().chain([&self.bytes]).flatten().map(Budget::len).sum();
        let failures = self.failures.as_ref().map_or(0, FailureWindows::len);
        budgets + failures + self.blocked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Drops the state of every address indistinguishable from a new one,
    /// and bounds what remains (see the module docs).
    pub fn maintain(&self) {
        for budget in self.classes.iter().chain([&self.bytes]).flatten() {
            budget.maintain(self.max_tracked);
        }
        let now = self.clock.now();
        if let Some(failures) = &self.failures {
            failures.maintain(now);
        }
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        blocked.retain(|_, until| *until > now);
        blocked.shrink_to_fit();
    }
}

impl<C: Clock + Clone + Send + Sync + 'static> ClientLimits<C>
where
    C::Instant: Send + Sync,
{
    /// Runs [`ClientLimits::maintain`] every `every` on a background thread
    /// for as long as the limits are in use.
    pub fn spawn_maintenance(self: &Arc<Self>, every: Duration) -> std::thread::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("client-limits".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                match weak.upgrade() {
                    Some(limits) => limits.maintain(),
                    None => return,
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the client-limits thread: {e}"))
    }
}

#[cfg(test)]
#[path = "rate_limit_tests.rs"]
mod tests;
