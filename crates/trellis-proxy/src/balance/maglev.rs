//! Maglev consistent hashing (Eisenbud et al., NSDI 2016) built as Envoy builds it: every
//! endpoint walks its own permutation of the table (offset and skip from xxHash64 of its
//! address with seeds 0 and 1) and claims the next free slot in turn, weighted turns
//! included, until the table is full. Lookups are one modulo and one load; an endpoint
//! leaving disturbs few slots of the others, and balance is near perfect.

use xxhash_rust::xxh64::xxh64;

use super::{BalanceError, EndpointState};

/// Envoy's largest accepted table size (a prime).
const MAXIMUM_TABLE_SIZE: u64 = 5_000_011;

/// Slot not yet claimed while building.
const FREE: u32 = u32::MAX;

/// The lookup table: endpoint index per slot.
#[derive(Debug)]
pub(super) struct Maglev {
    table: Box<[u32]>,
}

/// One endpoint's progress through its permutation while building.
struct Entry {
    index: u32,
    offset: u64,
    skip: u64,
    next: u64,
    normalized_weight: f64,
    target_weight: f64,
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

impl Maglev {
    pub(super) fn new(eps: &[EndpointState], table_size: u64) -> Result<Self, BalanceError> {
        if !is_prime(table_size) || table_size > MAXIMUM_TABLE_SIZE {
            return Err(BalanceError::MaglevTableSize(table_size));
        }
        if eps.is_empty() {
            return Ok(Maglev {
                table: Box::default(),
            });
        }
        let max_weight = eps.iter().map(|e| e.weight()).max().unwrap_or(1);
        let mut entries: Vec<Entry> = eps
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let key = e.address().as_bytes();
                Entry {
                    index: u32::try_from(i).unwrap_or(FREE - 1),
                    offset: xxh64(key, 0) % table_size,
                    skip: xxh64(key, 1) % (table_size - 1) + 1,
                    next: 0,
                    normalized_weight: f64::from(e.weight()) / f64::from(max_weight),
                    target_weight: 0.0,
                }
            })
            .collect();
        // Claim order by address, so the table does not depend on endpoint order.
        entries.sort_by(|a, b| {
            eps[a.index as usize]
                .address()
                .cmp(eps[b.index as usize].address())
        });

        // The size is at most MAXIMUM_TABLE_SIZE, so it fits in usize.
        let size = table_size as usize;
        let mut table = vec![FREE; size];
        let mut filled = 0;
        let mut iteration = 1.0;
        'fill: loop {
            for entry in &mut entries {
                // Heavier endpoints get a turn every iteration, lighter ones less often.
                if iteration * entry.normalized_weight < entry.target_weight {
                    continue;
                }
                entry.target_weight += 1.0;
                let mut slot = ((entry.offset + entry.skip * entry.next) % table_size) as usize;
                while table[slot] != FREE {
                    entry.next += 1;
                    slot = ((entry.offset + entry.skip * entry.next) % table_size) as usize;
                }
                table[slot] = entry.index;
                entry.next += 1;
                filled += 1;
                if filled == size {
                    break 'fill;
                }
            }
            iteration += 1.0;
        }
        tracing::debug!(size, endpoints = eps.len(), "built maglev table");
        Ok(Maglev {
            table: table.into_boxed_slice(),
        })
    }

    /// The endpoint in slot `hash % size`, or the next usable one after it.
    pub(super) fn pick(
        &self,
        eps: &[EndpointState],
        hash: u64,
        usable: fn(&EndpointState) -> bool,
    ) -> Option<usize> {
        let len = self.table.len();
        if len == 0 {
            return None;
        }
        let start = (hash % len as u64) as usize;
        super::ring_hash::first_usable_from(&self.table, start, eps, usable)
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash_tests::*;
    use super::*;

    #[test]
    fn primes_only() {
        assert!(is_prime(65537) && is_prime(7) && is_prime(5_000_011));
        assert!(!is_prime(65536) && !is_prime(1) && !is_prime(9));
        assert_eq!(
            Maglev::new(&[], 1024).err(),
            Some(BalanceError::MaglevTableSize(1024))
        );
        assert!(Maglev::new(&[], 5_000_101).is_err());
    }

    #[test]
    fn slots_follow_weights_and_ignore_order() -> Result<(), BalanceError> {
        let a = [
            EndpointState::new("10.0.0.1:80", 1),
            EndpointState::new("10.0.0.2:80", 3),
        ];
        let m = Maglev::new(&a, 65537)?;
        let light = m.table.iter().filter(|&&o| o == 0).count();
        assert!((light as f64 / 65537.0 - 0.25).abs() < 0.001, "{light}");
        let b = [
            EndpointState::new("10.0.0.2:80", 3),
            EndpointState::new("10.0.0.1:80", 1),
        ];
        let swapped = Maglev::new(&b, 65537)?;
        assert!(
            m.table
                .iter()
                .zip(&swapped.table[..])
                .all(|(x, y)| *x == 1 - *y)
        );
        Ok(())
    }

    #[test]
    fn more_endpoints_than_slots_terminates() -> Result<(), BalanceError> {
        let eps: Vec<_> = (0..10)
            .map(|i| EndpointState::new(format!("10.0.0.{i}:80"), 1))
            .collect();
        let m = Maglev::new(&eps, 7)?;
        assert!(m.table.iter().all(|&o| o < 10));
        Ok(())
    }

    #[test]
    fn sticky_spread_and_minimal_remap() -> Result<(), BalanceError> {
        let algo = trellis_model::HashAlgorithm::Maglev { table_size: 65537 };
        check_sticky_and_spread(&ConsistentCase::new(5, None, &algo)?, 0.15);
        check_remap(&algo, 0.10)?;
        check_ejection(&ConsistentCase::new(10, None, &algo)?);
        Ok(())
    }
}
