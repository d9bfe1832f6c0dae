//! Who a request is charged to: its TCP peer address, with an IPv6 peer
//! reduced to its /64 (one subscriber usually holds a whole /64, so keying
//! by the full address would let one client take 2^64 budgets), and the
//! address ranges an operator exempts from the limits.
//!
//! The peer address is the one of the TCP connection: a completed
//! handshake proves the client can receive at that address, which a
//! header such as `X-Forwarded-For` does not. Behind a reverse proxy every
//! client has the proxy's address; docs/operations.md says how to deploy
//! then.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// The key a client's budgets are kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of peer address `ip`: IPv4 as is (an IPv4-mapped IPv6
    /// address is its IPv4 address), IPv6 masked to its /64.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => ClientKey(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }

    /// The address (or /64 network) this key stands for.
    pub fn addr(&self) -> IpAddr {
        self.0
    }
}

/// An address range in CIDR notation (`127.0.0.1/32`, `fd00::/8`); a bare
/// address is the range of that one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    base: IpAddr,
    prefix: u8,
}

/// A malformed [`AddressRange`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 127.0.0.1)")]
pub struct BadRange(pub String);

impl FromStr for AddressRange {
    type Err = BadRange;

    fn from_str(s: &str) -> Result<Self, BadRange> {
        let bad = || BadRange(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let base: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(AddressRange { base, prefix })
    }
}

impl AddressRange {
    /// Whether `ip` lies in this range (an IPv4-mapped IPv6 address is
    /// compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(ClientKey::of(ip("2001:db8:1:2:3:4:5:6")), ClientKey::of(ip("2001:db8:1:2::ffff")));
        assert_ne!(ClientKey::of(ip("2001:db8:1:2::1")), ClientKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(ClientKey::of(ip("::ffff:127.0.0.2")), ClientKey::of(ip("127.0.0.2")));
        assert_ne!(ClientKey::of(ip("127.0.0.1")), ClientKey::of(ip("127.0.0.2")));
    }

    #[test]
    fn ranges_parse_strictly_and_match_by_prefix() {
        let r: AddressRange = "127.0.0.0/8".parse().unwrap();
        assert!(r.contains(ip("127.9.9.9")) && !r.contains(ip("128.0.0.1")));
        assert!(r.contains(ip("::ffff:127.0.0.1")));
        let one: AddressRange = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: AddressRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        let all: AddressRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["", "127.0.0.1/33", "fd00::/129", "host/8", "1.2.3.4/x"] {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
    }
}
