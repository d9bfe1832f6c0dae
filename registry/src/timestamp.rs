//! UTC timestamps in exactly one spelling: RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`.
//!
//! No fractions, no offsets other than `Z`, no lower-case `t`/`z`, no leap
//! second (`:60`), years 1970 to 9999. One spelling per instant means a
//! statement's time can be compared as text and as a number alike. Parsing
//! is a few lines of civil-calendar arithmetic (Howard Hinnant's
//! `days_from_civil`), so the crate needs no date library and no clock.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a timestamp was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {0:?}: expected YYYY-MM-DDTHH:MM:SSZ (UTC, 1970..=9999, no fractions)")]
pub struct TimestampError(pub String);

/// Seconds since the Unix epoch, always in 1970-01-01T00:00:00Z ..=
/// 9999-12-31T23:59:59Z.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(u64);

/// Last second representable (9999-12-31T23:59:59Z).
pub const MAX_TIMESTAMP_SECS: u64 = 253_402_300_799;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Timestamp {
    /// From seconds since the epoch; `None` beyond year 9999.
    pub fn from_unix_secs(secs: u64) -> Option<Self> {
        (secs <= MAX_TIMESTAMP_SECS).then_some(Timestamp(secs))
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> u64 {
        self.0
    }

    /// Milliseconds since the Unix epoch (cannot overflow: year <= 9999).
    pub fn unix_millis(&self) -> u64 {
        self.0 * 1000
    }

    /// Parses the one accepted spelling.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let err = || TimestampError(s.chars().take(40).collect());
        let b = s.as_bytes();
        if b.len() != 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'Z'
        {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) =
            (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19))
        else {
            return Err(err());
        };
        let y = i64::from(y);
        if y < 1970
            || !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || sec > 59
        {
            return Err(err());
        }
        let days = days_from_civil(y, mo, d) as u64; // y >= 1970, so non-negative
        Ok(Timestamp(days * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(sec)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days((self.0 / 86_400) as i64);
        let s = self.0 % 86_400;
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl TryFrom<String> for Timestamp {
    type Error = TimestampError;
    fn try_from(s: String) -> Result<Self, TimestampError> {
        Timestamp::parse(&s)
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T12:34:56Z", 951_827_696),
            ("2026-11-23T07:17:17Z", 1_795_418_237),
            ("9999-12-31T23:59:59Z", MAX_TIMESTAMP_SECS),
        ];
        for (text, secs) in cases {
            let t = Timestamp::parse(text).unwrap();
            assert_eq!(t.unix_secs(), secs, "{text}");
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(Timestamp::from_unix_secs(MAX_TIMESTAMP_SECS + 1), None);
    }

    #[test]
    fn every_other_spelling_is_rejected() {
        for bad in [
            "",
            "2026-11-23T07:17:17",
            "2026-11-23t07:17:17Z",
            "2026-11-23T07:17:17z",
            "2026-11-23 07:17:17Z",
            "2026-11-23T07:17:17.5Z",
            "2026-11-23T07:17:17+00:00",
            "1969-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "+026-11-23T07:17:17Z",
            "2026-1-023T07:17:17Z",
            "２026-11-23T07:17:17Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(secs in 0..=MAX_TIMESTAMP_SECS) {
            let t = Timestamp::from_unix_secs(secs).unwrap();
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
    }
}
