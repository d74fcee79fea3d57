//! Deterministic helpers shared by the tests of every algorithm: a seeded generator,
//! endpoint sets, pick histograms and a closed-loop load simulation.

use super::*;

/// splitmix64: a tiny, well-mixed generator so tests are reproducible.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `n` endpoints `10.0.0.<i>:80` of weight 1 sharing one epoch.
pub(crate) fn endpoints(n: usize, epoch: Instant) -> Arc<[EndpointState]> {
    (0..n)
        .map(|i| EndpointState::with_epoch(format!("10.0.0.{i}:80"), 1, epoch))
        .collect()
}

/// Counts picks per endpoint over `picks` draws.
pub(crate) fn histogram(b: &Balancer, picks: usize, seed: u64, now: Instant) -> Vec<usize> {
    let mut rng = Rng(seed);
    let mut counts = vec![0; b.endpoints().len()];
    for _ in 0..picks {
        let ctx = PickContext {
            random: rng.next(),
            hash: None,
            now,
        };
        if let Some(Pick::Endpoint(i)) = b.pick(&ctx) {
            counts[i] += 1;
        }
    }
    counts
}

/// Endpoints `10.0.0.<i>:80` with the given weights, sharing one epoch.
pub(crate) fn weighted(weights: &[u32], epoch: Instant) -> Arc<[EndpointState]> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| EndpointState::with_epoch(format!("10.0.0.{i}:80"), w, epoch))
        .collect()
}

/// Asserts each endpoint's share of `counts` is within `points` percentage points of
/// `want` (fractions).
pub(crate) fn assert_shares(counts: &[usize], want: &[f64], points: f64) {
    let total = counts.iter().sum::<usize>() as f64;
    assert!(total > 0.0, "no picks");
    for (c, w) in counts.iter().zip(want) {
        let share = *c as f64 / total;
        assert!(
            (share - w).abs() * 100.0 <= points,
            "{counts:?} vs {want:?}"
        );
    }
}

/// A closed loop at equal latency: every pick starts a request, and once `inflight`
/// requests are outstanding the oldest completes (with `rtt`, feeding peak EWMA) before the
/// next pick. Returns picks per endpoint over `picks` draws.
pub(crate) fn closed_loop(
    b: &Balancer,
    picks: usize,
    inflight: usize,
    seed: u64,
    now: Instant,
) -> Vec<usize> {
    let eps = b.endpoints();
    let mut rng = Rng(seed);
    let mut counts = vec![0; eps.len()];
    let mut queue = std::collections::VecDeque::with_capacity(inflight + 1);
    for _ in 0..picks {
        let ctx = PickContext {
            random: rng.next(),
            hash: None,
            now,
        };
        if let Some(Pick::Endpoint(i)) = b.pick(&ctx) {
            eps[i].start_request();
            queue.push_back(i);
            counts[i] += 1;
        }
        if queue.len() >= inflight
            && let Some(done) = queue.pop_front()
        {
            eps[done].finish_request(Some(std::time::Duration::from_millis(10)), now);
        }
    }
    counts
}
