//! Shared checks for the consistent-hash balancers (ring hash and Maglev): stickiness,
//! spread, minimal remapping when an endpoint leaves, and skipping ejected endpoints.

use std::time::Instant;

use trellis_model::{ConsistentHash, HashAlgorithm, LoadBalancer};
use xxhash_rust::xxh64::xxh64;

use super::{BalanceError, Balancer, EndpointState, Pick, PickContext};

/// Keys hashed in every check.
const KEYS: u64 = 10_000;

/// A balancer over endpoints `10.0.0.<i>:80`, `i` in `0..n` except `skip`.
pub(super) struct ConsistentCase {
    balancer: Balancer,
}

impl ConsistentCase {
    pub(super) fn new(
        n: usize,
        skip: Option<usize>,
        algorithm: &HashAlgorithm,
    ) -> Result<Self, BalanceError> {
        let eps: std::sync::Arc<[EndpointState]> = (0..n)
            .filter(|&i| Some(i) != skip)
            .map(|i| EndpointState::new(format!("10.0.0.{i}:80"), 1))
            .collect();
        let lb = LoadBalancer::ConsistentHash(ConsistentHash {
            algorithm: algorithm.clone(),
            ..ConsistentHash::default()
        });
        Ok(ConsistentCase {
            balancer: Balancer::new(&lb, eps)?,
        })
    }

    /// Address of the endpoint `hash` maps to.
    fn owner(&self, hash: u64, random: u64) -> Option<&str> {
        let ctx = PickContext {
            random,
            hash: Some(hash),
            now: Instant::now(),
        };
        match self.balancer.pick(&ctx) {
            Some(Pick::Endpoint(i)) => Some(self.balancer.endpoints()[i].address()),
            _ => None,
        }
    }
}

/// Request hashes as `RequestHasher` produces them for header values `user-<i>`.
fn keys() -> impl Iterator<Item = u64> {
    (0..KEYS).map(|i| xxh64(format!("user-{i}").as_bytes(), 0))
}

/// Same key, same endpoint (whatever the random value); every endpoint's share of keys
/// within `tolerance` (relative) of uniform.
pub(super) fn check_sticky_and_spread(case: &ConsistentCase, tolerance: f64) {
    let n = case.balancer.endpoints().len();
    let mut counts = std::collections::HashMap::new();
    for (k, h) in keys().enumerate() {
        let owner = case.owner(h, k as u64);
        assert!(owner.is_some());
        assert_eq!(owner, case.owner(h, !(k as u64)), "not sticky");
        *counts.entry(owner).or_insert(0usize) += 1;
    }
    assert_eq!(counts.len(), n);
    let expect = KEYS as f64 / n as f64;
    for (owner, c) in counts {
        let off = (c as f64 - expect).abs() / expect;
        assert!(off < tolerance, "{owner:?} has {c} keys, expected {expect}");
    }
}

/// Removing endpoint 4 of 10 moves its keys and fewer than `tolerance` of the others.
pub(super) fn check_remap(algorithm: &HashAlgorithm, tolerance: f64) -> Result<(), BalanceError> {
    let full = ConsistentCase::new(10, None, algorithm)?;
    let reduced = ConsistentCase::new(10, Some(4), algorithm)?;
    let (mut others, mut moved) = (0, 0);
    for h in keys() {
        let before = full.owner(h, 0);
        let after = reduced.owner(h, 0);
        assert!(after.is_some() && after != Some("10.0.0.4:80"));
        if before != Some("10.0.0.4:80") {
            others += 1;
            moved += usize::from(before != after);
        }
    }
    let share = moved as f64 / others as f64;
    assert!(share < tolerance, "{share} of unaffected keys moved");
    Ok(())
}

/// Ejecting an endpoint moves exactly its keys, to healthy endpoints.
pub(super) fn check_ejection(case: &ConsistentCase) {
    let before: Vec<_> = keys()
        .map(|h| case.owner(h, 0).map(str::to_owned))
        .collect();
    case.balancer.endpoints()[3].set_healthy(false);
    let ejected = case.balancer.endpoints()[3].address();
    let mut moved = 0;
    for (h, was) in keys().zip(&before) {
        let now = case.owner(h, 0);
        assert!(now.is_some() && now != Some(ejected));
        if was.as_deref() == Some(ejected) {
            moved += 1;
        } else {
            assert_eq!(
                now,
                was.as_deref(),
                "a key not on the ejected endpoint moved"
            );
        }
    }
    assert!(moved > 0);
    case.balancer.endpoints()[3].set_healthy(true);
}
