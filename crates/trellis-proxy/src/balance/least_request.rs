//! Power of two choices: draw two distinct usable endpoints at random and take the one with
//! the lower cost. Used with cost = outstanding requests (Istio `LEAST_REQUEST`) and with
//! cost = peak-EWMA latency x (outstanding + 1) (Linkerd's default). Two random choices
//! avoid both the herd behaviour of "always the least loaded" under stale information and
//! the O(n) scan, while getting most of its benefit (Mitzenmacher).

use super::EndpointState;
use super::simple::{mix, random_usable};

/// Picks the cheaper of two distinct random usable endpoints; ties go to the first draw,
/// which is itself random, so equal costs spread uniformly.
pub(super) fn p2c<K: PartialOrd>(
    eps: &[EndpointState],
    random: u64,
    usable: fn(&EndpointState) -> bool,
    cost: impl Fn(&EndpointState) -> K,
) -> Option<usize> {
    let a = random_usable(eps, random, None, usable)?;
    let Some(b) = random_usable(eps, mix(random ^ 0xA5A5_A5A5_A5A5_A5A5), Some(a), usable) else {
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
}
