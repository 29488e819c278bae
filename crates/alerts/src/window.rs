//! Sliding windows as rings of per-bucket counts: fixed memory per key, O(1) per record.

/// Buckets per window: the window slides in steps of 1/16 of its length.
pub(crate) const BUCKETS: usize = 16;

/// Calls and errors of one key over the last `BUCKETS` buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ring {
    /// Absolute index (time / width) of the newest bucket.
    head: i64,
    calls: [u32; BUCKETS],
    errors: [u32; BUCKETS],
    total_calls: u32,
    total_errors: u32,
}

impl Ring {
    /// An empty ring whose newest bucket holds `at_us`.
    pub(crate) fn new(at_us: i64, width_us: i64) -> Self {
        Self {
            head: at_us.div_euclid(width_us),
            calls: [0; BUCKETS],
            errors: [0; BUCKETS],
            total_calls: 0,
            total_errors: 0,
        }
    }

    /// Counts one call at `at_us` (an error if `error`); returns (calls, errors) in the window
    /// that ends with the newest bucket. A call older than the window is not counted.
    pub(crate) fn add(&mut self, at_us: i64, width_us: i64, error: bool) -> (u32, u32) {
        let b = at_us.div_euclid(width_us);
        if b > self.head {
            let steps = (b - self.head).min(BUCKETS as i64);
            for k in 1..=steps {
                let i = (self.head + k).rem_euclid(BUCKETS as i64) as usize;
                self.total_calls -= self.calls[i];
                self.total_errors -= self.errors[i];
                self.calls[i] = 0;
                self.errors[i] = 0;
            }
            self.head = b;
        }
        if b > self.head - BUCKETS as i64 {
            let i = b.rem_euclid(BUCKETS as i64) as usize;
            self.calls[i] = self.calls[i].saturating_add(1);
            self.total_calls = self.total_calls.saturating_add(1);
            if error {
                self.errors[i] = self.errors[i].saturating_add(1);
                self.total_errors = self.total_errors.saturating_add(1);
            }
        }
        (self.total_calls, self.total_errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_buckets_fall_out_as_time_moves() {
        let w = 1_000_000; // 16 s window of 1 s buckets
        let mut r = Ring::new(0, w);
        assert_eq!(r.add(0, w, false), (1, 0));
        assert_eq!(r.add(500_000, w, true), (2, 1));
        assert_eq!(r.add(15 * w, w, false), (3, 1)); // bucket 0 still inside
        assert_eq!(r.add(16 * w, w, false), (2, 0)); // bucket 0 gone
        assert_eq!(r.add(100 * w, w, false), (1, 0)); // everything gone
        assert_eq!(r.add(50 * w, w, true), (1, 0)); // too old: not counted
        assert_eq!(r.add(99 * w, w, true), (2, 1)); // late but inside
    }
}
