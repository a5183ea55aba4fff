//! A fixed-size log-linear histogram for percentiles of lag samples: values below 128 are
//! exact, larger ones fall in buckets 1/64 of their power of two wide (under 1.6 % error).
//! 3,776 counters whatever the number of samples; the maximum is kept exactly.

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const EXACT: u64 = 2 * SUB;
const BUCKETS: usize = (EXACT + (63 - SUB_BITS as u64) * SUB) as usize;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            n: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let m = (v >> (e - SUB_BITS)) & (SUB - 1);
    (EXACT + u64::from(e - SUB_BITS - 1) * SUB + m) as usize
}

/// The smallest value of bucket `i`, and its width.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        return (i, 1);
    }
    let e = (i - EXACT) / SUB + u64::from(SUB_BITS) + 1;
    let m = (i - EXACT) % SUB;
    let width = 1u64 << (e - u64::from(SUB_BITS));
    ((1u64 << e) + m * width, width)
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding the sample of
    /// rank ⌈q·n⌉, never above the maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket_range(i);
                return (low + width / 2).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS && b >= last, "{v}");
            let (low, width) = bucket_range(b);
            assert!(low <= v && v - low < width, "{v}: {low} {width}");
            last = b;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_within_two_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 37);
        }
        for (q, want) in [
            (0.5, 50_000u64 * 37),
            (0.99, 99_000 * 37),
            (1.0, 100_000 * 37),
        ] {
            let got = h.quantile(q) as f64;
            assert!(
                (got / want as f64 - 1.0).abs() < 0.02,
                "{q}: {got} vs {want}"
            );
        }
        assert_eq!(h.max(), 3_700_000);
        assert_eq!(h.count(), 100_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
        let mut small = Histogram::default();
        small.record(3);
        small.record(7);
        assert_eq!((small.quantile(0.5), small.quantile(0.99)), (3, 7));
    }
}
