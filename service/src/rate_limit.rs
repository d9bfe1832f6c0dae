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
//! apart: an address that fails `failures` times within `window` (a
//! bucket refilled one failure per `window / failures`) has its
//! authenticated requests refused until the bucket lets one more failure
//! through. Signature checks are the expensive part of a write, and an
//! honest client fails them rarely.
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
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

pub use crate::client_address::{AddressRange, BadRange, ClientKey};

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

impl FailureBudget {
    fn quota(self) -> Option<Quota> {
        let failures = NonZeroU32::new(self.failures)?;
        let period = self.window.max(Duration::from_millis(1)) / failures.get();
        Some(Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(failures))
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
    failures: Option<Budget<C>>,
    bytes: Option<Budget<C>>,
    /// Addresses over their failure or byte budget, and until when.
    blocked: Mutex<HashMap<(ClientKey, Penalty), C::Instant>>,
    exempt: Vec<AddressRange>,
    max_tracked: usize,
    checks: AtomicU64,
    clock: C,
}

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
            failures: budget(config.auth_failures.quota()),
            bytes: budget(config.read_kib.quota()),
            blocked: Mutex::new(HashMap::new()),
            exempt: config.exempt.clone(),
            max_tracked: config.max_tracked.max(1),
            checks: AtomicU64::new(0),
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
    /// until the budget allows one more failure.
    pub fn record_auth_failure(&self, peer: IpAddr) {
        let Some(failures) = &self.failures else { return };
        if self.is_exempt(peer) {
            return;
        }
        let key = ClientKey::of(peer);
        if let Err(until) = failures.take(&key) {
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
        let budgets: usize =
            self.classes.iter().chain([&self.failures, &self.bytes]).flatten().map(Budget::len).sum();
        budgets + self.blocked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Drops the state of every address indistinguishable from a new one,
    /// and bounds what remains (see the module docs).
    pub fn maintain(&self) {
        for budget in self.classes.iter().chain([&self.failures, &self.bytes]).flatten() {
            budget.maintain(self.max_tracked);
        }
        let now = self.clock.now();
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
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn config() -> LimitConfig {
        LimitConfig {
            read: ClassQuota { per_second: 10, burst: 5 },
            write: ClassQuota { per_second: 2, burst: 2 },
            witness: ClassQuota { per_second: 0, burst: 0 },
            auth_failures: FailureBudget { failures: 3, window: Duration::from_secs(60) },
            read_kib: ClassQuota { per_second: 1024, burst: 4096 },
            exempt: vec!["127.0.0.1".parse().unwrap()],
            max_tracked: 100,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_address_and_class_has_its_own_budget() {
        let clock = FakeRelativeClock::default();
        let l = ClientLimits::with_clock(&config(), clock.clone());
        let a = ip("10.0.0.1");
        for _ in 0..5 {
            l.admit(a, RouteClass::Read).unwrap();
        }
        let refused = l.admit(a, RouteClass::Read).unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        assert_eq!(refused.retry_after(), Duration::from_millis(100));
        assert_eq!(refused.retry_after_secs(), 1);
        // Other classes and other addresses are untouched; exempt ones and
        // unlimited classes are never refused.
        l.admit(a, RouteClass::Write).unwrap();
        l.admit(ip("10.0.0.2"), RouteClass::Read).unwrap();
        for _ in 0..1000 {
            l.admit(ip("127.0.0.1"), RouteClass::Read).unwrap();
            l.admit(a, RouteClass::Witness).unwrap();
        }
        clock.advance(Duration::from_millis(100));
        l.admit(a, RouteClass::Read).unwrap();
        assert!(l.admit(a, RouteClass::Read).is_err());
    }

    #[test]
    fn failed_authentications_close_writes_but_not_reads() {
        let clock = FakeRelativeClock::default();
        let l = ClientLimits::with_clock(&config(), clock.clone());
        let a = ip("2001:db8::1");
        for _ in 0..3 {
            l.record_auth_failure(a);
        }
        l.admit(a, RouteClass::Write).unwrap();
        l.record_auth_failure(a);
        // The same /64 is the same client.
        let refused = l.admit(ip("2001:db8::2"), RouteClass::Write).unwrap_err();
        assert_eq!(refused.code(), "too_many_auth_failures");
        assert_eq!(refused.retry_after(), Duration::from_secs(20));
        assert!(l.admit(a, RouteClass::Witness).is_err());
        l.admit(a, RouteClass::Read).unwrap();
        l.admit(ip("2001:db8:0:1::1"), RouteClass::Write).unwrap();
        clock.advance(Duration::from_secs(20));
        l.admit(a, RouteClass::Write).unwrap();
        // Exempt addresses are never blocked.
        for _ in 0..10 {
            l.record_auth_failure(ip("127.0.0.1"));
        }
        l.admit(ip("127.0.0.1"), RouteClass::Write).unwrap();
    }

    #[test]
    fn bytes_beyond_the_budget_close_reads_until_paid_off() {
        let clock = FakeRelativeClock::default();
        let l = ClientLimits::with_clock(&config(), clock.clone());
        let a = ip("10.0.0.9");
        assert!(l.charge_bytes(a, 3 << 20));
        assert!(l.charge_bytes(a, 1 << 20));
        assert!(!l.charge_bytes(a, 1 << 20), "past the 4 MiB burst");
        let refused = l.admit(a, RouteClass::Read).unwrap_err();
        assert_eq!(refused.code(), "too_many_bytes");
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(refused.retry_after() > Duration::from_millis(999), "{refused}");
        l.admit(a, RouteClass::Write).unwrap();
        l.admit(ip("10.0.0.10"), RouteClass::Read).unwrap();
        assert!(l.charge_bytes(ip("127.0.0.1"), 100 << 20), "exempt");
        clock.advance(Duration::from_secs(1));
        l.admit(a, RouteClass::Read).unwrap();
        assert!(l.charge_bytes(a, 1 << 20));
    }

    #[test]
    fn state_is_bounded_by_maintenance() {
        let clock = FakeRelativeClock::default();
        let l = ClientLimits::with_clock(&config(), clock.clone());
        for i in 0..50u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.admit(a, RouteClass::Read).unwrap();
            for _ in 0..4 {
                l.record_auth_failure(a);
            }
        }
        assert_eq!(l.tracked(), 150);
        // Idle addresses are forgotten once their budgets have refilled.
        clock.advance(Duration::from_secs(200));
        l.maintain();
        assert_eq!(l.tracked(), 0);
        // More live addresses than `max_tracked`: the budget starts over,
        // and the request path itself triggers it.
        for i in 0..(SIZE_CHECK_EVERY as u32 * 2) {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            l.admit(a, RouteClass::Read).unwrap();
            assert!(l.tracked() <= 100 + SIZE_CHECK_EVERY as usize, "{}", l.tracked());
        }
    }

    #[test]
    fn zero_rates_disable_budgets() {
        let mut c = config();
        c.read.per_second = 0;
        c.auth_failures.failures = 0;
        c.read_kib.per_second = 0;
        let l = ClientLimits::new(&c);
        let a = ip("10.1.1.1");
        for _ in 0..1000 {
            l.admit(a, RouteClass::Read).unwrap();
            l.record_auth_failure(a);
            assert!(l.charge_bytes(a, 1 << 20));
        }
        l.admit(a, RouteClass::Write).unwrap();
        assert_eq!(l.tracked(), 1);
    }
}
