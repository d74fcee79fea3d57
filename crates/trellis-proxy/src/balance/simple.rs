//! Round robin and random selection, plus the random-draw helpers the power-of-two-choices
//! balancers share.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::EndpointState;

/// Random draws tried before falling back to an exact draw over a scan of the usable
/// endpoints: with a fraction `h` of endpoints healthy, the O(n) scan is needed with
/// probability `(1-h)^DRAWS`.
const DRAWS: usize = 4;

/// Derives a new well-mixed 64-bit value from `x` (splitmix64 finaliser), so one random
/// value per pick yields as many as an algorithm needs.
pub(super) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a uniform 64-bit value onto `0..n` without division bias worth measuring
/// (Lemire's multiply-shift).
pub(super) fn bounded(r: u64, n: usize) -> usize {
    ((u128::from(r) * n as u128) >> 64) as usize
}

/// A uniformly random usable endpoint other than `exclude`: a few random draws, then an
/// exact uniform draw among the usable ones, so the result stays unbiased and a usable
/// endpoint is always found if one exists.
pub(super) fn random_usable(
    eps: &[EndpointState],
    mut r: u64,
    exclude: Option<usize>,
    usable: fn(&EndpointState) -> bool,
) -> Option<usize> {
    let n = eps.len();
    let span = if exclude.is_some() {
        n.checked_sub(1)?
    } else {
        n
    };
    if span == 0 {
        return None;
    }
    let shift = |i: usize| match exclude {
        Some(x) if i >= x => i + 1,
        _ => i,
    };
    for _ in 0..DRAWS {
        let i = shift(bounded(r, span));
        if usable(&eps[i]) {
            return Some(i);
        }
        r = mix(r);
    }
    let candidate = |j: &usize| Some(*j) != exclude && usable(&eps[*j]);
    let count = (0..n).filter(candidate).count();
    if count == 0 {
        return None;
    }
    (0..n).filter(candidate).nth(bounded(r, count))
}

/// Maps a uniform 64-bit value onto `0..total` (multiply-shift).
fn scale(r: u64, total: u64) -> u64 {
    ((u128::from(r) * u128::from(total)) >> 64) as u64
}

/// Lock-free round robin: one shared counter. Unhealthy endpoints are skipped by taking
/// the next counter value, so the healthy ones still share traffic exactly evenly.
/// Weights are not applied (every endpoint gets one turn per cycle).
#[derive(Debug, Default)]
pub(super) struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    pub(super) fn pick(
        &self,
        eps: &[EndpointState],
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        let n = eps.len();
        for _ in 0..n {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
            if usable(&eps[i]) {
                return Some(i);
            }
        }
        None
    }
}

/// Random selection proportional to weight; uniform (no table) when weights are equal.
#[derive(Debug)]
pub(super) struct WeightedRandom {
    /// Cumulative weights, empty when all weights are equal.
    prefix: Box<[u64]>,
}

impl WeightedRandom {
    pub(super) fn new(eps: &[EndpointState]) -> Self {
        let uniform = eps.windows(2).all(|w| w[0].weight() == w[1].weight());
        let prefix = if uniform {
            Box::default()
        } else {
            eps.iter()
                .scan(0u64, |acc, e| {
                    *acc += u64::from(e.weight());
                    Some(*acc)
                })
                .collect()
        };
        WeightedRandom { prefix }
    }

    pub(super) fn pick(
        &self,
        eps: &[EndpointState],
        mut r: u64,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        let Some(&total) = self.prefix.last() else {
            return random_usable(eps, r, None, usable);
        };
        for _ in 0..DRAWS {
            let i = self.prefix.partition_point(|&c| c <= scale(r, total));
            if usable(&eps[i]) {
                return Some(i);
            }
            r = mix(r);
        }
        // Exact weighted draw among the usable endpoints.
        let weight = |e: &EndpointState| if usable(e) { u64::from(e.weight()) } else { 0 };
        let usable_total: u64 = eps.iter().map(weight).sum();
        if usable_total == 0 {
            return None;
        }
        let mut point = scale(r, usable_total);
        for (i, e) in eps.iter().enumerate() {
            let w = weight(e);
            if point < w {
                return Some(i);
            }
            point -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use trellis_model::LoadBalancer;

    use super::super::testutil::*;
    use super::super::{BalanceError, Balancer, EndpointState};

    #[test]
    fn round_robin_is_exactly_fair() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps = endpoints(4, now);
        let b = Balancer::new(&LoadBalancer::RoundRobin, eps.clone())?;
        assert_eq!(histogram(&b, 10_000, 1, now), vec![2500; 4]);
        // An ejected endpoint's share is spread evenly, not dumped on its neighbour.
        eps[1].set_healthy(false);
        let counts = histogram(&b, 12_000, 1, now);
        assert_eq!(counts, vec![4000, 0, 4000, 4000]);
        Ok(())
    }

    #[test]
    fn random_is_uniform_within_two_percent() -> Result<(), BalanceError> {
        let now = Instant::now();
        let b = Balancer::new(&LoadBalancer::Random, endpoints(5, now))?;
        let picks = 100_000;
        for (i, &c) in histogram(&b, picks, 42, now).iter().enumerate() {
            let share = c as f64 / picks as f64;
            assert!((share - 0.2).abs() < 0.2 * 0.02, "endpoint {i}: {share}");
        }
        Ok(())
    }

    #[test]
    fn random_honours_weights_and_health() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps: std::sync::Arc<[EndpointState]> = [1, 3, 4]
            .iter()
            .enumerate()
            .map(|(i, &w)| EndpointState::with_epoch(format!("10.0.0.{i}:80"), w, now))
            .collect();
        let b = Balancer::new(&LoadBalancer::Random, eps.clone())?;
        let picks = 80_000;
        let counts = histogram(&b, picks, 9, now);
        for (c, want) in counts.iter().zip([0.125, 0.375, 0.5]) {
            let share = *c as f64 / picks as f64;
            assert!((share - want).abs() < want * 0.02, "{counts:?}");
        }
        eps[2].set_healthy(false);
        let counts = histogram(&b, picks, 9, now);
        assert_eq!(counts[2], 0);
        // The remaining weights 1:3 still hold.
        let share = counts[0] as f64 / picks as f64;
        assert!((share - 0.25).abs() < 0.25 * 0.02, "{counts:?}");
        Ok(())
    }
}
