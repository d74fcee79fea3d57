//! Random selection, plain and weighted, plus the random-draw helpers that round robin and
//! the power-of-two-choices balancers share.

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

/// An exact weighted draw among the usable endpoints other than `exclude`, by one O(n)
/// scan: the fallback when random draws keep hitting unusable endpoints.
pub(super) fn weighted_scan(
    eps: &[EndpointState],
    r: u64,
    exclude: Option<usize>,
    usable: fn(&EndpointState) -> bool,
) -> Option<usize> {
    let weight = |i: usize, e: &EndpointState| {
        if Some(i) != exclude && usable(e) {
            u64::from(e.weight())
        } else {
            0
        }
    };
    let total: u64 = eps.iter().enumerate().map(|(i, e)| weight(i, e)).sum();
    if total == 0 {
        return None;
    }
    let mut point = scale(r, total);
    for (i, e) in eps.iter().enumerate() {
        let w = weight(i, e);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// Random draws proportional to weight; uniform (no table) when weights are equal. RANDOM
/// uses it directly, and the weighted power-of-two-choices balancers draw their two
/// candidates with it.
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

    /// Whether the endpoints' weights differ (draws are weighted, not uniform).
    pub(super) fn is_weighted(&self) -> bool {
        !self.prefix.is_empty()
    }

    pub(super) fn pick(
        &self,
        eps: &[EndpointState],
        r: u64,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        self.draw(eps, r, None, usable)
    }

    /// A usable endpoint other than `exclude`, drawn with probability proportional to its
    /// weight among those. `exclude`'s range is cut out of the draw rather than rejected,
    /// so excluding a heavy endpoint costs no retries.
    pub(super) fn draw(
        &self,
        eps: &[EndpointState],
        mut r: u64,
        exclude: Option<usize>,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        let Some(&total) = self.prefix.last() else {
            return random_usable(eps, r, exclude, usable);
        };
        // Points at or above `cut` skip over the excluded endpoint's `gap`.
        let (cut, gap) = match exclude.and_then(|x| Some((x, self.prefix.get(x)?))) {
            Some((x, &end)) => {
                let w = u64::from(eps[x].weight());
                (end - w, w)
            }
            None => (u64::MAX, 0),
        };
        if total == gap {
            return None;
        }
        for _ in 0..DRAWS {
            let mut point = scale(r, total - gap);
            if point >= cut {
                point += gap;
            }
            let i = self.prefix.partition_point(|&c| c <= point);
            if usable(&eps[i]) {
                return Some(i);
            }
            r = mix(r);
        }
        weighted_scan(eps, r, exclude, usable)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use trellis_model::LoadBalancer;

    use super::super::testutil::*;
    use super::super::{BalanceError, Balancer, EndpointState};
    use super::WeightedRandom;

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

    #[test]
    fn weighted_draw_cuts_out_the_excluded_endpoint() {
        let now = Instant::now();
        let eps = weighted(&[1, 3, 4], now);
        let table = WeightedRandom::new(&eps);
        assert!(table.is_weighted());
        let mut rng = Rng(12);
        for (exclude, want) in [(2, [0.25, 0.75, 0.0]), (1, [0.2, 0.0, 0.8])] {
            let mut counts = vec![0; 3];
            for _ in 0..20_000 {
                if let Some(i) = table.draw(&eps, rng.next(), Some(exclude), |e| e.is_healthy()) {
                    counts[i] += 1;
                }
            }
            assert_eq!(counts[exclude], 0);
            assert_shares(&counts, &want, 1.0);
        }
        // Excluding the only usable endpoint leaves nothing.
        eps[1].set_healthy(false);
        eps[2].set_healthy(false);
        assert_eq!(table.draw(&eps, 7, Some(0), |e| e.is_healthy()), None);
    }
}
