//! Linkerd's retry budget: retries may add at most `retry_ratio` of the regular request
//! rate, plus a floor of `min_retries_per_second`, measured over a sliding window of
//! `ttl`. During an outage every request fails, so a per-request retry count alone would
//! multiply the load on a struggling backend; a budget keeps it to `1 + ratio`.
//!
//! The window is a ring of [`BUCKETS`] time buckets, each `ttl / BUCKETS` wide, counting
//! the requests (deposits) and retries (withdrawals) made in it. A retry is allowed when
//! `retries in window + 1 ≤ ⌊retry_ratio × requests in window⌋ + min_retries_per_second ×
//! ttl`. An entry expires when its bucket leaves the window: between `ttl - ttl/BUCKETS`
//! and `ttl` after it was made.
//!
//! Each counter is one `AtomicU64` holding the bucket's generation (the high 32 bits) and
//! its count (the low 32 bits), so rolling a bucket over to a new generation and counting
//! in it is one compare-and-swap: no lock and no lost update. Time is passed in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use trellis_model::retry::RetryBudget as BudgetConfig;

#[cfg(test)]
mod tests;

/// Number of time buckets in the window; finer buckets expire entries closer to `ttl`.
pub const BUCKETS: usize = 10;

/// Tower's upper bound for the ratio: more than 1000 retries per request is a mistake.
const MAX_RATIO: f64 = 1000.0;

/// A budget configuration that cannot be enforced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    /// The ratio is negative, not a number, or above 1000.
    #[error("retry budget: retry_ratio must be between 0 and 1000, got {0}")]
    Ratio(f64),
    /// The window is empty.
    #[error("retry budget: ttl must be positive")]
    ZeroTtl,
}

/// A retry budget shared by every request of a route (or backend).
#[derive(Debug)]
pub struct RetryBudget {
    epoch: Instant,
    bucket_nanos: u128,
    ratio: f64,
    reserve: u64,
    deposits: [AtomicU64; BUCKETS],
    withdrawals: [AtomicU64; BUCKETS],
}

/// `(generation, count)` packed into one word.
fn pack(generation: u32, count: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(count)
}

fn unpack(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

/// Whether a bucket tagged `tag` is inside the window ending at generation `now`. Tags
/// slightly ahead of `now` (another thread's later `Instant`) count as current.
fn in_window(tag: u32, now: u32) -> bool {
    now.wrapping_sub(tag) < BUCKETS as u32 || tag.wrapping_sub(now) < BUCKETS as u32
}

impl RetryBudget {
    /// A budget for `config` whose window starts at `now`, with nothing deposited.
    pub fn new(config: &BudgetConfig, now: Instant) -> Result<RetryBudget, BudgetError> {
        let ratio = config.retry_ratio;
        if !(0.0..=MAX_RATIO).contains(&ratio) {
            return Err(BudgetError::Ratio(ratio));
        }
        if config.ttl.is_zero() {
            return Err(BudgetError::ZeroTtl);
        }
        let reserve = f64::from(config.min_retries_per_second) * config.ttl.as_secs_f64();
        Ok(RetryBudget {
            epoch: now,
            bucket_nanos: (config.ttl.as_nanos() / BUCKETS as u128).max(1),
            ratio,
            reserve: reserve as u64,
            deposits: std::array::from_fn(|_| AtomicU64::new(0)),
            withdrawals: std::array::from_fn(|_| AtomicU64::new(0)),
        })
    }

    /// Retries always available in a window, even with no traffic
    /// (`min_retries_per_second × ttl`).
    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    /// Records an original request (not a retry): it earns `retry_ratio` retries.
    pub fn deposit(&self, now: Instant) {
        let generation = self.generation(now);
        add(&self.deposits[slot(generation)], generation);
    }

    /// Takes one retry from the budget; false when the budget is spent and the failure
    /// must be returned to the client instead.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let generation = self.generation(now);
        let cell = &self.withdrawals[slot(generation)];
        // Count first, then check: concurrent withdrawals can only be refused
        // spuriously, never let the budget be exceeded.
        add(cell, generation);
        let (deposited, withdrawn) = self.window(generation);
        if withdrawn <= self.allowed(deposited) {
            true
        } else {
            remove(cell, generation);
            false
        }
    }

    /// Retries still available at `now`.
    pub fn available(&self, now: Instant) -> u64 {
        let (deposited, withdrawn) = self.window(self.generation(now));
        self.allowed(deposited).saturating_sub(withdrawn)
    }

    fn allowed(&self, deposited: u64) -> u64 {
        (self.ratio * deposited as f64) as u64 + self.reserve
    }

    /// The bucket generation of `now`, truncated to the 32 bits of a tag (the tag wraps
    /// after 2^32 buckets, e.g. 136 years of 1 s buckets; a bucket idle for exactly that
    /// long could be miscounted once).
    fn generation(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_nanos() / self.bucket_nanos) as u32
    }

    /// Requests and retries counted in the window ending at `generation`.
    fn window(&self, generation: u32) -> (u64, u64) {
        let sum = |cells: &[AtomicU64; BUCKETS]| {
            cells
                .iter()
                .map(|c| unpack(c.load(Ordering::Acquire)))
                .filter(|&(tag, _)| in_window(tag, generation))
                .map(|(_, n)| u64::from(n))
                .sum::<u64>()
        };
        (sum(&self.deposits), sum(&self.withdrawals))
    }

    /// The window length this budget was built with (rounded to whole nanoseconds per
    /// bucket).
    pub fn ttl(&self) -> Duration {
        let nanos = self.bucket_nanos.saturating_mul(BUCKETS as u128);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

fn slot(generation: u32) -> usize {
    generation as usize % BUCKETS
}

/// Counts one event in `cell` for `generation`, restarting the bucket if it still holds
/// an older generation. An event older than the bucket's generation (a late `Instant`)
/// is counted in the newer bucket rather than wiping it.
fn add(cell: &AtomicU64, generation: u32) {
    let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        let (tag, n) = unpack(v);
        let stale = tag != generation && generation.wrapping_sub(tag) < u32::MAX / 2;
        Some(if stale {
            pack(generation, 1)
        } else {
            pack(tag, n.saturating_add(1))
        })
    });
}

/// Undoes one [`add`] unless the bucket has meanwhile moved to another generation.
fn remove(cell: &AtomicU64, generation: u32) {
    let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        let (tag, n) = unpack(v);
        (tag == generation && n > 0).then(|| pack(tag, n - 1))
    });
}
