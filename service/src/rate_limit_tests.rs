//! Unit tests of the per-client limits, on a fake clock.

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
    for _ in 0..2 {
        l.record_auth_failure(a);
    }
    l.admit(a, RouteClass::Write).unwrap();
    clock.advance(Duration::from_secs(10));
    l.record_auth_failure(a);
    // The same /64 is the same client; the window runs from the first
    // failure.
    let refused = l.admit(ip("2001:db8::2"), RouteClass::Write).unwrap_err();
    assert_eq!(refused.code(), "too_many_auth_failures");
    assert_eq!(refused.retry_after(), Duration::from_secs(50));
    assert!(l.admit(a, RouteClass::Witness).is_err());
    l.admit(a, RouteClass::Read).unwrap();
    l.admit(ip("2001:db8:0:1::1"), RouteClass::Write).unwrap();
    clock.advance(Duration::from_secs(50));
    l.admit(a, RouteClass::Write).unwrap();
    // A new window, a new budget.
    l.record_auth_failure(a);
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
