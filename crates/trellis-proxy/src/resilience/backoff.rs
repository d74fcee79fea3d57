//! Envoy's fully jittered exponential backoff between retries.
//!
//! Before retry number `n` (1 for the first retry) the proxy waits a uniformly random
//! time in `[0, min((2^n - 1) × base, max)]`: for the default 25 ms base that is up to
//! 25 ms, then 75 ms, 175 ms, and then at most `max` (250 ms). Full jitter spreads the
//! retries of many clients that failed together, so they do not hit the backend again in
//! lockstep. The random source is passed in, so tests are reproducible and the proxy can
//! use a cheap per-thread generator.

use std::time::Duration;

use rand::{Rng, RngExt};
use trellis_model::retry::RetryPolicy;

/// Backoff parameters resolved at configuration time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base_nanos: u64,
    max_nanos: u64,
}

impl Backoff {
    /// Backoff with `base` and `max`. A `max` below `base` is raised to `base` (Envoy
    /// rejects such a configuration; the proxy keeps serving instead).
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let base_nanos = duration_nanos(base);
        Backoff {
            base_nanos,
            max_nanos: duration_nanos(max).max(base_nanos),
        }
    }

    /// The backoff of a route's retry policy.
    pub fn from_policy(policy: &RetryPolicy) -> Backoff {
        Backoff::new(policy.backoff_base, policy.backoff_max)
    }

    /// The upper bound of the wait before retry number `retry` (1-based):
    /// `min((2^retry - 1) × base, max)`; zero for `retry` 0.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u64.checked_shl(retry).map_or(u64::MAX, |p| p - 1);
        Duration::from_nanos(self.base_nanos.saturating_mul(factor).min(self.max_nanos))
    }

    /// The wait before retry number `retry` (1-based), drawn uniformly from
    /// `[0, ceiling(retry)]` with `rng`.
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let ceiling = duration_nanos(self.ceiling(retry));
        Duration::from_nanos(rng.random_range(0..=ceiling))
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn default_backoff() -> Backoff {
        Backoff::from_policy(&RetryPolicy::default())
    }

    #[test]
    fn ceilings_grow_exponentially_up_to_max() {
        let b = default_backoff();
        let ceilings: Vec<Duration> = (0..=6).map(|n| b.ceiling(n)).collect();
        assert_eq!(ceilings, [0, 25, 75, 175, 250, 250, 250].map(|ms| ms * MS),);
        // No overflow for huge retry counts or durations.
        assert_eq!(b.ceiling(64), 250 * MS);
        assert_eq!(b.ceiling(u32::MAX), 250 * MS);
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(3), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn delays_stay_within_bounds_and_are_uniform() {
        let b = default_backoff();
        let mut rng = SmallRng::seed_from_u64(7);
        for retry in 1..=8 {
            let ceiling = b.ceiling(retry);
            let trials = 2000;
            let mut sum = Duration::ZERO;
            let mut low_half = 0;
            for _ in 0..trials {
                let d = b.delay(retry, &mut rng);
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
                sum += d;
                low_half += usize::from(d < ceiling / 2);
            }
            // Full jitter: mean ≈ ceiling / 2, half the draws below it (±5%).
            let mean = sum / trials;
            let expected = ceiling / 2;
            let tolerance = ceiling / 20;
            assert!(
                mean + tolerance >= expected && mean <= expected + tolerance,
                "retry {retry}: mean {mean:?}, expected {expected:?}"
            );
            assert!(
                (900..=1100).contains(&low_half),
                "retry {retry}: {low_half}"
            );
        }
    }

    #[test]
    fn max_below_base_and_zero_base() {
        let b = Backoff::new(100 * MS, 10 * MS);
        assert_eq!(b.ceiling(1), 100 * MS);
        assert_eq!(b.ceiling(5), 100 * MS);
        let zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(zero.delay(3, &mut rng), Duration::ZERO);
        assert_eq!(default_backoff().delay(0, &mut rng), Duration::ZERO);
    }
}
