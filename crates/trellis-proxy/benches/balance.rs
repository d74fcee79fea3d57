//! Pick cost of every load-balancing algorithm over 10 and 100 endpoints.
//!
//! Each iteration is one `Balancer::pick` with a fresh random value (and, for the hash
//! balancers, a fresh request hash), all endpoints healthy; peak EWMA has recorded
//! latencies so its cost comparison does real work. Endpoints have equal weights, except in
//! the `*_weighted` runs (weights 1, 2, 3, 4 repeating), which take the weighted paths.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use trellis_model::{ConsistentHash, HashAlgorithm, LoadBalancer};
use trellis_proxy::balance::{Balancer, EndpointState, PickContext};

/// splitmix64, so every iteration gets a different but reproducible value.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Each algorithm with whether its endpoints get unequal weights.
fn algorithms() -> Vec<(&'static str, LoadBalancer, bool)> {
    let hash = |algorithm| {
        LoadBalancer::ConsistentHash(ConsistentHash {
            algorithm,
            ..ConsistentHash::default()
        })
    };
    vec![
        ("round_robin", LoadBalancer::RoundRobin, false),
        ("least_request", LoadBalancer::LeastRequest, false),
        ("random", LoadBalancer::Random, false),
        ("peak_ewma", LoadBalancer::PeakEwma, false),
        (
            "ring_hash",
            hash(HashAlgorithm::RingHash {
                minimum_ring_size: 1024,
            }),
            false,
        ),
        (
            "maglev",
            hash(HashAlgorithm::Maglev { table_size: 65537 }),
            false,
        ),
        ("round_robin_weighted", LoadBalancer::RoundRobin, true),
        ("least_request_weighted", LoadBalancer::LeastRequest, true),
        ("random_weighted", LoadBalancer::Random, true),
        ("peak_ewma_weighted", LoadBalancer::PeakEwma, true),
    ]
}

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("balance_pick");
    let now = Instant::now();
    for n in [10usize, 100] {
        for (name, lb, weighted) in algorithms() {
            let weight = |i: usize| if weighted { (i % 4) as u32 + 1 } else { 1 };
            let eps: Arc<[EndpointState]> = (0..n)
                .map(|i| {
                    EndpointState::new(format!("10.0.{}.{}:8080", i / 256, i % 256), weight(i))
                })
                .collect();
            for (i, e) in eps.iter().enumerate() {
                e.set_outstanding((i % 7) as u64);
                e.finish_request(Some(Duration::from_millis(5 + (i % 13) as u64)), now);
            }
            let Ok(balancer) = Balancer::new(&lb, eps) else {
                continue;
            };
            let mut state = 1u64;
            group.bench_with_input(BenchmarkId::new(name, n), &balancer, |b, balancer| {
                b.iter(|| {
                    let ctx = PickContext {
                        random: next(&mut state),
                        hash: Some(next(&mut state)),
                        now,
                    };
                    black_box(balancer.pick(black_box(&ctx)))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pick);
criterion_main!(benches);
