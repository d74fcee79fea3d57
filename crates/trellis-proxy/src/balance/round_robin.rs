//! Round robin, plain and weighted, lock-free.
//!
//! Equal weights: one shared counter, each endpoint gets one turn per cycle. Unequal weights:
//! the same counter walks a schedule precomputed at config time by an earliest-deadline-first
//! pass (Envoy's EDF scheduler, run once instead of per pick), so each endpoint appears in
//! proportion to its weight and its turns are spread evenly through the cycle rather than
//! bunched: for weights a:b:c = 5:1:1 the cycle is `a a a b c a a`, not `a a a a a b c`.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::EndpointState;
use super::simple::weighted_scan;

/// Schedule length above which weights (after dividing by their greatest common divisor)
/// are scaled down proportionally, each endpoint keeping at least one slot. The bound is
/// raised to [`SLOTS_PER_ENDPOINT`] per endpoint for very large endpoint sets.
pub(super) const MAX_SLOTS: u64 = 16_384;

/// Minimum schedule room per endpoint when weights are scaled down.
const SLOTS_PER_ENDPOINT: u64 = 8;

/// Counter advances a weighted pick tries while landing on unusable endpoints' slots before
/// it falls back to an exact weighted random draw among the usable endpoints, which bounds
/// the cost of a pick when most of the weight is ejected.
const SKIPS: usize = 8;

/// Round robin over the endpoints, weighted when their weights differ.
#[derive(Debug)]
pub(super) struct RoundRobin {
    next: AtomicUsize,
    /// One cycle of endpoint indices in EDF order; empty when weights are equal, which
    /// selects the plain counter.
    schedule: Box<[u32]>,
}

impl RoundRobin {
    /// Builds the weighted schedule when `eps` have unequal weights.
    pub(super) fn new(eps: &[EndpointState]) -> Self {
        RoundRobin {
            next: AtomicUsize::new(0),
            schedule: schedule(eps),
        }
    }

    /// The next usable endpoint. Unusable ones are skipped by taking the next counter
    /// value, so the usable ones keep their exact shares whatever the health changes.
    pub(super) fn pick(
        &self,
        eps: &[EndpointState],
        random: u64,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        let len = self.schedule.len();
        if len == 0 {
            let n = eps.len();
            for _ in 0..n {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
                if usable(&eps[i]) {
                    return Some(i);
                }
            }
            return None;
        }
        for _ in 0..SKIPS {
            let i = self.schedule[self.next.fetch_add(1, Ordering::Relaxed) % len] as usize;
            if eps.get(i).is_some_and(usable) {
                return Some(i);
            }
        }
        weighted_scan(eps, random, None, usable)
    }
}

/// Greatest common divisor, so weights 2:6 build the same four-slot cycle as 1:3.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Builds one cycle of the weighted schedule, or nothing when weights are equal.
fn schedule(eps: &[EndpointState]) -> Box<[u32]> {
    let n = eps.len();
    let weights = eps.iter().map(|e| u64::from(e.weight()));
    let divisor = weights.clone().fold(0, gcd);
    if divisor == 0 || weights.clone().all(|w| w == divisor) || u32::try_from(n).is_err() {
        return Box::default();
    }
    let mut slots: Vec<u64> = weights.map(|w| w / divisor).collect();
    let total: u64 = slots.iter().sum();
    let cap = MAX_SLOTS.max(SLOTS_PER_ENDPOINT * n as u64);
    if total > cap {
        for s in &mut slots {
            let scaled = u128::from(*s) * u128::from(cap) / u128::from(total);
            *s = u64::try_from(scaled).unwrap_or(cap).max(1);
        }
        tracing::debug!(
            total,
            cap,
            "round-robin weights scaled down to bound the schedule"
        );
    }
    let mut heap: BinaryHeap<Due> = slots
        .iter()
        .enumerate()
        .map(|(index, &weight)| Due {
            turn: 0,
            weight,
            index,
        })
        .collect();
    let len: u64 = slots.iter().sum();
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for _ in 0..len {
        let Some(mut due) = heap.pop() else { break };
        out.push(due.index as u32);
        due.turn += 1;
        heap.push(due);
    }
    out.into_boxed_slice()
}

/// An endpoint's next turn in the EDF pass: its `turn`-th slot (from 0) is due at
/// `(turn + 1/2) / weight`, so each endpoint's slots sit evenly spaced over the cycle.
#[derive(Debug, PartialEq, Eq)]
struct Due {
    turn: u64,
    weight: u64,
    index: usize,
}

impl Due {
    /// `(2 turn + 1) * other.weight` against the same for `other`: the due times
    /// compared exactly, without division.
    fn scaled(&self, other: &Due) -> u128 {
        u128::from(2 * self.turn + 1) * u128::from(other.weight)
    }
}

impl Ord for Due {
    /// Earliest due time first (the heap is a max-heap, so "greater" is earlier); ties go
    /// to the lower index, so the schedule is deterministic.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .scaled(self)
            .cmp(&self.scaled(other))
            .then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use trellis_model::LoadBalancer;

    use super::super::testutil::*;
    use super::super::{BalanceError, Balancer};
    use super::*;

    #[test]
    fn equal_weights_are_exactly_fair() -> Result<(), BalanceError> {
        let now = Instant::now();
        // Equal weights other than 1 build no schedule: the plain counter.
        let eps = weighted(&[5, 5, 5, 5], now);
        assert!(schedule(&eps).is_empty());
        let b = Balancer::new(&LoadBalancer::RoundRobin, eps.clone())?;
        assert_eq!(histogram(&b, 10_000, 1, now), vec![2500; 4]);
        // An ejected endpoint's share is spread evenly, not dumped on its neighbour.
        eps[1].set_healthy(false);
        let counts = histogram(&b, 12_000, 1, now);
        assert_eq!(counts, vec![4000, 0, 4000, 4000]);
        Ok(())
    }

    #[test]
    fn weights_one_to_three_give_a_quarter_and_three_quarters() -> Result<(), BalanceError> {
        let now = Instant::now();
        let b = Balancer::new(&LoadBalancer::RoundRobin, weighted(&[1, 3], now))?;
        let counts = histogram(&b, 4000, 1, now);
        assert_shares(&counts, &[0.25, 0.75], 3.0);
        // A deterministic cycle: exact, in fact.
        assert_eq!(counts, vec![1000, 3000]);
        Ok(())
    }

    #[test]
    fn schedule_is_interleaved_not_blocked() {
        let now = Instant::now();
        assert_eq!(&*schedule(&weighted(&[1, 3], now)), &[1, 0, 1, 1]);
        // Common factors are divided out.
        assert_eq!(&*schedule(&weighted(&[2, 6], now)), &[1, 0, 1, 1]);
        assert_eq!(
            &*schedule(&weighted(&[5, 1, 1], now)),
            &[0, 0, 0, 1, 2, 0, 0]
        );
        for weights in [
            &[5u32, 1, 1][..],
            &[2, 3, 7, 1],
            &[10, 1],
            &[1, 2, 3, 4, 5, 6],
        ] {
            let s = schedule(&weighted(weights, now));
            let total: u32 = weights.iter().sum();
            assert_eq!(s.len(), total as usize);
            // Every prefix of the cycle holds each endpoint within one pick of its
            // exact share, so no endpoint's turns are bunched together.
            let mut seen = vec![0u32; weights.len()];
            for (t, &i) in s.iter().enumerate() {
                seen[i as usize] += 1;
                for (j, &w) in weights.iter().enumerate() {
                    let ideal = f64::from(w) * (t + 1) as f64 / f64::from(total);
                    let off = (f64::from(seen[j]) - ideal).abs();
                    assert!(off < 1.0, "{weights:?}: {s:?} at {t}");
                }
            }
        }
    }

    #[test]
    fn ejected_endpoints_are_skipped_and_shares_hold() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps = weighted(&[1, 3, 4], now);
        let b = Balancer::new(&LoadBalancer::RoundRobin, eps.clone())?;
        assert_shares(&histogram(&b, 8000, 1, now), &[0.125, 0.375, 0.5], 3.0);
        eps[2].set_healthy(false);
        let counts = histogram(&b, 8000, 2, now);
        assert_eq!(counts[2], 0);
        assert_shares(&counts, &[0.25, 0.75, 0.0], 3.0);
        // Back in: its share returns.
        eps[2].set_healthy(true);
        assert_shares(&histogram(&b, 8000, 3, now), &[0.125, 0.375, 0.5], 3.0);
        Ok(())
    }

    #[test]
    fn mostly_ejected_weight_falls_back_to_a_weighted_draw() -> Result<(), BalanceError> {
        let now = Instant::now();
        // Runs of the ejected heavy endpoint's slots exceed the skip budget.
        let eps = weighted(&[1, 3, 400], now);
        eps[2].set_healthy(false);
        let b = Balancer::new(&LoadBalancer::RoundRobin, eps.clone())?;
        let counts = histogram(&b, 8000, 4, now);
        assert_shares(&counts, &[0.25, 0.75, 0.0], 3.0);
        eps[1].set_healthy(false);
        assert_eq!(histogram(&b, 1000, 5, now), vec![1000, 0, 0]);
        Ok(())
    }

    #[test]
    fn huge_weights_are_scaled_to_a_bounded_schedule() -> Result<(), BalanceError> {
        let now = Instant::now();
        let eps = weighted(&[1, 1_000_000_000, 3_000_000_000], now);
        let s = schedule(&eps);
        assert!(s.len() as u64 <= MAX_SLOTS + 3, "{}", s.len());
        // Every endpoint keeps a turn.
        assert!(s.contains(&0));
        let b = Balancer::new(&LoadBalancer::RoundRobin, eps)?;
        let counts = histogram(&b, 40_000, 6, now);
        assert_shares(&counts, &[0.0, 0.25, 0.75], 0.1);
        Ok(())
    }
}
