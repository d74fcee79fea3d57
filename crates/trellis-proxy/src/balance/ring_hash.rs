//! Ketama-style hash ring built as Envoy builds it, so a mixed fleet of Envoy and Trellis
//! proxies sends the same key to the same endpoint.
//!
//! Every endpoint gets ring entries in proportion to its weight, at least
//! `minimum_ring_size` in total; entry `i` of an endpoint is `xxHash64("<address>_<i>", 0)`.
//! A request hash maps to the first entry at or after it (wrapping), found by binary search.
//! Unhealthy endpoints are skipped by walking to the next entry, so only their keys move.

use std::io::Write;

use xxhash_rust::xxh64::Xxh64;

use super::{BalanceError, EndpointState};

/// Envoy's default and upper bound for the ring size.
const MAXIMUM_RING_SIZE: u64 = 8 * 1024 * 1024;

/// The sorted ring: hashes and owning endpoint indices in separate arrays, so the binary
/// search touches only the hashes.
#[derive(Debug)]
pub(super) struct RingHash {
    hashes: Box<[u64]>,
    owners: Box<[u32]>,
}

impl RingHash {
    pub(super) fn new(eps: &[EndpointState], minimum_ring_size: u64) -> Result<Self, BalanceError> {
        if !(1..=MAXIMUM_RING_SIZE).contains(&minimum_ring_size) {
            return Err(BalanceError::RingSize(minimum_ring_size));
        }
        if eps.is_empty() {
            return Ok(RingHash {
                hashes: Box::default(),
                owners: Box::default(),
            });
        }
        let total: f64 = eps.iter().map(|e| f64::from(e.weight())).sum();
        let min_weight = eps
            .iter()
            .map(|e| f64::from(e.weight()) / total)
            .fold(1.0, f64::min);
        // Scale so the lightest endpoint gets at least its share of the minimum size.
        let scale = ((min_weight * minimum_ring_size as f64).ceil() / min_weight)
            .min(MAXIMUM_RING_SIZE as f64);
        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(scale.ceil() as usize + eps.len());
        let (mut current, mut target) = (0.0, 0.0);
        let mut key = Vec::with_capacity(64);
        for (index, e) in eps.iter().enumerate() {
            let owner = u32::try_from(index).unwrap_or(u32::MAX);
            target += scale * f64::from(e.weight()) / total;
            key.clear();
            key.extend_from_slice(e.address().as_bytes());
            key.push(b'_');
            let prefix = key.len();
            let mut i = 0u64;
            while current < target {
                key.truncate(prefix);
                // Writing to a Vec cannot fail.
                let _ = write!(key, "{i}");
                let mut h = Xxh64::new(0);
                h.update(&key);
                entries.push((h.digest(), owner));
                i += 1;
                current += 1.0;
            }
        }
        entries.sort_unstable();
        tracing::debug!(entries = entries.len(), "built hash ring");
        Ok(RingHash {
            hashes: entries.iter().map(|&(h, _)| h).collect(),
            owners: entries.iter().map(|&(_, o)| o).collect(),
        })
    }

    /// The owner of the first entry at or after `hash` whose endpoint is usable.
    pub(super) fn pick(
        &self,
        eps: &[EndpointState],
        hash: u64,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        let len = self.hashes.len();
        if len == 0 {
            return None;
        }
        let start = self.hashes.partition_point(|&h| h < hash) % len;
        first_usable_from(&self.owners, start, eps, usable)
    }
}

/// The owner of slot `start` of a hash table (ring or Maglev), or, when it is not usable
/// (ejected, unhealthy), of the next slot whose owner is: only the unusable endpoint's keys move.
pub(super) fn first_usable_from(
    owners: &[u32],
    start: usize,
    eps: &[EndpointState],
    usable: fn(&EndpointState) -> bool,
) -> Option<usize> {
    let len = owners.len();
    let owner = *owners.get(start)? as usize;
    if eps.get(owner).is_some_and(usable) {
        return Some(owner);
    }
    // Check once that the walk will end early rather than scanning the whole table.
    if !eps.iter().any(usable) {
        return None;
    }
    // Neighbouring slots belong to pseudo-random endpoints, so the moved keys spread over all
    // the others.
    (1..len)
        .map(|k| owners[(start + k) % len] as usize)
        .find(|&o| eps.get(o).is_some_and(usable))
}

#[cfg(test)]
mod tests {
    use super::super::hash_tests::*;
    use super::*;

    #[test]
    fn entries_follow_envoy_keys() -> Result<(), BalanceError> {
        let eps = [EndpointState::new("10.0.0.1:80", 1)];
        let ring = RingHash::new(&eps, 4)?;
        let mut want: Vec<u64> = (0..4)
            .map(|i| xxhash_rust::xxh64::xxh64(format!("10.0.0.1:80_{i}").as_bytes(), 0))
            .collect();
        want.sort_unstable();
        assert_eq!(&ring.hashes[..], &want[..]);
        // The first entry at or after the hash, wrapping past the end to the start.
        assert_eq!(
            ring.pick(&eps, want[3] + 1, EndpointState::is_healthy),
            Some(0)
        );
        Ok(())
    }

    #[test]
    fn weights_set_entry_counts() -> Result<(), BalanceError> {
        let eps = [
            EndpointState::new("10.0.0.1:80", 1),
            EndpointState::new("10.0.0.2:80", 3),
        ];
        let ring = RingHash::new(&eps, 1024)?;
        let light = ring.owners.iter().filter(|&&o| o == 0).count();
        assert_eq!((light, ring.owners.len()), (256, 1024));
        Ok(())
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(RingHash::new(&[], 0).err(), Some(BalanceError::RingSize(0)));
        assert!(RingHash::new(&[], MAXIMUM_RING_SIZE + 1).is_err());
    }

    #[test]
    fn sticky_spread_and_minimal_remap() -> Result<(), BalanceError> {
        let algo = trellis_model::HashAlgorithm::RingHash {
            minimum_ring_size: 1024,
        };
        check_sticky_and_spread(&ConsistentCase::new(5, None, &algo)?, 0.15);
        check_remap(&algo, 0.20)?;
        check_ejection(&ConsistentCase::new(10, None, &algo)?);
        Ok(())
    }
}
