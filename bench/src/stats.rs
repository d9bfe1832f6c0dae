//! Small, exact statistics over recorded samples: the load generator keeps
//! every latency (a few million `f64` at most) and sorts once, so
//! percentiles are exact rather than estimated by a sketch.

/// Exact percentiles of a set of samples.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Records one sample.
    pub fn push(&mut self, v: f64) {
        if v.is_finite() {
            self.0.push(v);
        }
    }

    /// The `p`-th percentile (0..=100), nearest-rank; `None` if empty.
    pub fn percentile(&mut self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable_by(f64::total_cmp);
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, self.0.len()) - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        assert_eq!(s.percentile(50.0), None);
        for v in [5.0, 1.0, 4.0, 2.0, 3.0, f64::NAN] {
            s.push(v);
        }
        assert_eq!(s.0.len(), 5, "NaN is not recorded");
        assert_eq!(s.percentile(50.0), Some(3.0));
        assert_eq!(s.percentile(99.0), Some(5.0));
        assert_eq!(s.percentile(0.0), Some(1.0));
        assert_eq!(s.percentile(20.0), Some(1.0));
        assert_eq!(s.percentile(21.0), Some(2.0));
    }
}

/// A figure measured several times: its median and its spread (the lowest
/// and highest value seen).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spread {
    /// Median of the runs.
    pub median: f64,
    /// Lowest run.
    pub low: f64,
    /// Highest run.
    pub high: f64,
    /// How many runs.
    pub runs: usize,
}

impl Spread {
    /// Median and range of `values` (non-finite values are ignored);
    /// `None` if none is left.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { median, low: v[0], high: v[n - 1], runs: n })
    }
}

/// Cuts `items` (in completion order, finished at `at(item)`) into at most
/// `windows` windows of equal count; each comes with its rate per second,
/// measured from the end of the previous window (or `start`).
pub fn windows<T>(
    items: &[T],
    windows: usize,
    start: std::time::Instant,
    at: impl Fn(&T) -> std::time::Instant,
) -> Vec<(&[T], f64)> {
    let per = items.len().div_ceil(windows.clamp(1, items.len().max(1))).max(1);
    let mut from = start;
    items
        .chunks(per)
        .map(|chunk| {
            let to = chunk.last().map_or(from, &at);
            let rate = chunk.len() as f64 / (to - from).as_secs_f64().max(1e-9);
            from = to;
            (chunk, rate)
        })
        .collect()
}

#[cfg(test)]
mod spread_tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Some(Spread { median: 2.0, low: 1.0, high: 3.0, runs: 3 }));
        assert_eq!(
            Spread::of(&[4.0, 1.0, 2.0, 10.0]),
            Some(Spread { median: 3.0, low: 1.0, high: 10.0, runs: 4 })
        );
    }

    #[test]
    fn windows_of_equal_count_with_their_rates() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Five completions: at 100, 200, 300 ms, then 1300 and 1400 ms.
        let done = [ms(100), ms(200), ms(300), ms(1300), ms(1400)];
        let w = windows(&done, 2, t0, |t| *t);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].0.len(), 3);
        assert!((w[0].1 - 10.0).abs() < 1e-9, "3 in 300 ms: {}", w[0].1);
        assert_eq!(w[1].0.len(), 2);
        assert!((w[1].1 - 2.0 / 1.1).abs() < 1e-9, "2 in the next 1100 ms: {}", w[1].1);
        assert!(windows::<Instant>(&[], 3, t0, |t| *t).is_empty());
        assert_eq!(windows(&done, 99, t0, |t| *t).len(), 5, "never more windows than items");
    }
}
