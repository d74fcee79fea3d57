//! Power of two choices: draw two distinct usable endpoints at random and take the one with
//! the lower cost. Used with cost = outstanding requests (Istio `LEAST_REQUEST`) and with
//! cost = peak-EWMA latency x (outstanding + 1) (Linkerd's default). Two random choices
//! avoid both the herd behaviour of "always the least loaded" under stale information and
//! the O(n) scan, while getting most of its benefit (Mitzenmacher).
//!
//! Weights. When endpoint weights differ, an endpoint of weight `w` is treated as `w / mean`
//! replicas of an average endpoint: both candidates are drawn with probability proportional
//! to weight, and outstanding requests count per replica (`outstanding x mean / w`). With
//! equal load the first (weighted) draw wins the tie, so an idle weight-3 endpoint gets
//! exactly 3x the picks of a weight-1 one; under load the comparison drives outstanding per
//! unit of weight level, which by Little's law gives the same 3x at equal latency. Equal
//! weights keep the unweighted draws and costs above unchanged.

use std::time::Instant;

use super::EndpointState;
use super::simple::{WeightedRandom, mix, random_usable};

/// Candidate sampling for the two power-of-two-choices balancers, built at config time.
#[derive(Debug)]
pub(super) struct TwoChoices {
    draw: WeightedRandom,
    /// Mean endpoint weight, the weight of "one replica".
    mean_weight: f64,
}

impl TwoChoices {
    /// Builds the weight table when `eps` have unequal weights.
    pub(super) fn new(eps: &[EndpointState]) -> Self {
        let total: f64 = eps.iter().map(|e| f64::from(e.weight())).sum();
        TwoChoices {
            draw: WeightedRandom::new(eps),
            mean_weight: total / eps.len().max(1) as f64,
        }
    }

    /// `LEAST_REQUEST`: fewer outstanding requests (per unit of weight) wins.
    pub(super) fn least_request(
        &self,
        eps: &[EndpointState],
        random: u64,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        if !self.draw.is_weighted() {
            let draw = |r, x| random_usable(eps, r, x, usable);
            return p2c(eps, random, draw, EndpointState::outstanding);
        }
        let draw = |r, x| self.draw.draw(eps, r, x, usable);
        // Exact for ties: equal ratios give equal correctly rounded quotients.
        p2c(eps, random, draw, |e| {
            e.outstanding() as f64 / f64::from(e.weight())
        })
    }

    /// Peak EWMA: lower latency estimate x (outstanding per replica + 1) wins.
    pub(super) fn peak_ewma(
        &self,
        eps: &[EndpointState],
        random: u64,
        now: Instant,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        if !self.draw.is_weighted() {
            let draw = |r, x| random_usable(eps, r, x, usable);
            return p2c(eps, random, draw, |e| {
                e.ewma.estimate_ns(now) * (e.outstanding() as f64 + 1.0)
            });
        }
        let draw = |r, x| self.draw.draw(eps, r, x, usable);
        let mean = self.mean_weight;
        p2c(eps, random, draw, |e| {
            let per_replica = e.outstanding() as f64 * mean / f64::from(e.weight());
            e.ewma.estimate_ns(now) * (per_replica + 1.0)
        })
    }
}

/// Picks the cheaper of two distinct usable endpoints from `draw(random, exclude)`; ties go
/// to the first draw, which is itself random, so equal costs spread as the draws do.
fn p2c<K: PartialOrd>(
    eps: &[EndpointState],
    random: u64,
    draw: impl Fn(u64, Option<usize>) -> Option<usize>,
    cost: impl Fn(&EndpointState) -> K,
) -> Option<usize> {
    let a = draw(random, None)?;
    let Some(b) = draw(mix(random ^ 0xA5A5_A5A5_A5A5_A5A5), Some(a)) else {
        return Some(a);
    };
    if cost(&eps[b]) < cost(&eps[a]) {
        Some(b)
    } else {
        Some(a)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use trellis_model::LoadBalancer;

    use super::super::testutil::*;
    use super::super::{BalanceError, Balancer};

    #[test]
    fn prefers_fewer_outstanding() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps = endpoints(2, now);
        eps[0].set_outstanding(3);
        eps[1].set_outstanding(1);
        let b = Balancer::new(&LoadBalancer::LeastRequest, eps.clone())?;
        // With two endpoints both are always compared: the less loaded one always wins.
        assert_eq!(histogram(&b, 10_000, 3, now), vec![0, 10_000]);
        Ok(())
    }

    #[test]
    fn idle_endpoint_wins_whenever_drawn() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps = endpoints(4, now);
        for (i, e) in eps.iter().enumerate() {
            e.set_outstanding(if i == 2 { 0 } else { 5 });
        }
        let b = Balancer::new(&LoadBalancer::LeastRequest, eps.clone())?;
        let picks = 20_000;
        let counts = histogram(&b, picks, 5, now);
        // Endpoint 2 is in a random pair of distinct endpoints with probability 1/2 and
        // then always wins; the other three split the rest.
        let share = counts[2] as f64 / picks as f64;
        assert!((share - 0.5).abs() < 0.5 * 0.02, "{counts:?}");
        Ok(())
    }

    #[test]
    fn equal_load_is_uniform() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps = endpoints(5, now);
        eps.iter().for_each(|e| e.set_outstanding(2));
        let b = Balancer::new(&LoadBalancer::LeastRequest, eps)?;
        let picks = 100_000;
        for c in histogram(&b, picks, 11, now) {
            let share = c as f64 / picks as f64;
            assert!((share - 0.2).abs() < 0.2 * 0.02, "{share}");
        }
        Ok(())
    }

    #[test]
    fn real_load_balances_out() -> Result<(), BalanceError> {
        // Closed loop: each pick adds a request, and the oldest completes every step, so
        // the outstanding counts must stay close together.
        let now = Instant::now();
        let eps = endpoints(5, now);
        let b = Balancer::new(&LoadBalancer::LeastRequest, eps.clone())?;
        let mut rng = Rng(17);
        let mut inflight = std::collections::VecDeque::new();
        for _ in 0..10_000 {
            let ctx = super::super::PickContext {
                random: rng.next(),
                hash: None,
                now,
            };
            if let Some(super::super::Pick::Endpoint(i)) = b.pick(&ctx) {
                eps[i].start_request();
                inflight.push_back(i);
            }
            if inflight.len() > 50
                && let Some(done) = inflight.pop_front()
            {
                eps[done].finish_request(None, now);
            }
        }
        let loads: Vec<u64> = eps.iter().map(|e| e.outstanding()).collect();
        let (min, max) = (loads.iter().min(), loads.iter().max());
        assert!(
            matches!((min, max), (Some(lo), Some(hi)) if hi - lo <= 6),
            "{loads:?}"
        );
        Ok(())
    }

    #[test]
    fn weights_one_to_three_at_idle_and_under_load() -> Result<(), BalanceError> {
        let now = Instant::now();
        // Idle: equal (zero) load ties, and the weighted first draw decides.
        let b = Balancer::new(&LoadBalancer::LeastRequest, weighted(&[1, 3], now))?;
        assert_shares(&histogram(&b, 4000, 21, now), &[0.25, 0.75], 3.0);
        // Closed loop with 48 in flight at equal latency: outstanding per unit of weight
        // levels out, so the picks still follow the weights.
        let b = Balancer::new(&LoadBalancer::LeastRequest, weighted(&[1, 3], now))?;
        assert_shares(&closed_loop(&b, 8000, 48, 22, now), &[0.25, 0.75], 3.0);
        // More endpoints: 1:1:2 with one ejected.
        let eps = weighted(&[1, 1, 2, 4], now);
        let b = Balancer::new(&LoadBalancer::LeastRequest, eps.clone())?;
        assert_shares(
            &closed_loop(&b, 8000, 64, 23, now),
            &[0.125, 0.125, 0.25, 0.5],
            3.0,
        );
        eps[3].set_healthy(false);
        let counts = closed_loop(&b, 8000, 64, 24, now);
        assert_eq!(counts[3], 0);
        assert_shares(&counts, &[0.25, 0.25, 0.5, 0.0], 3.0);
        Ok(())
    }

    #[test]
    fn weighted_still_prefers_the_less_loaded() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps = weighted(&[1, 3], now);
        // 2 in flight on weight 1 is less per unit of weight than 9 on weight 3.
        eps[0].set_outstanding(2);
        eps[1].set_outstanding(9);
        let b = Balancer::new(&LoadBalancer::LeastRequest, eps.clone())?;
        assert_eq!(histogram(&b, 1000, 25, now), vec![1000, 0]);
        eps[0].set_outstanding(4);
        assert_eq!(histogram(&b, 1000, 26, now), vec![0, 1000]);
        Ok(())
    }
}
