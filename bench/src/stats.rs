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
}
