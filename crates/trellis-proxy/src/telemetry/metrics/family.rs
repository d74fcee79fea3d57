//! The storage behind the metric families: a map from label key to a series of atomics, bounded in
//! size so a flood of distinct peers cannot grow the proxy's memory or the scrape without limit.
//!
//! Recording takes a shared read lock and one hash lookup; only the first request of a new label
//! set takes the write lock. Series are never removed, so a scrape sees every series that ever
//! recorded (Prometheus counters must not go backwards).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::metrics::counter::Counter;

/// What one stored series looks like: anything that can start from zero.
pub(crate) trait Series: Default + Send + Sync + 'static {}

impl<T: Default + Send + Sync + 'static> Series for T {}

#[derive(Debug)]
struct Entry<M> {
    /// Insertion order, so scrapes list series in a stable order.
    seq: u64,
    series: Arc<M>,
}

#[derive(Debug)]
struct Inner<K, M> {
    /// Hashed with foldhash (seeded per process): every request looks its series up here,
    /// and std's SipHash cost a percent of the request path. The keys are label sets from
    /// configuration and peers plus small integers, and the map is bounded (`max_series`),
    /// so collision flooding has little to work with.
    entries: HashMap<K, Entry<M>, foldhash::fast::RandomState>,
    /// Series counted against the bound (overflow series are not).
    bounded: usize,
    next_seq: u64,
}

/// A bounded map of series. Keys beyond `max_series` are replaced by their overflow key (which
/// does not count against the bound) and `overflowed` is incremented.
#[derive(Debug)]
pub(crate) struct SeriesMap<K, M> {
    inner: RwLock<Inner<K, M>>,
    max_series: usize,
    overflowed: Counter,
}

impl<K: Hash + Eq + Clone, M: Series> SeriesMap<K, M> {
    /// An empty map holding at most `max_series` regular series.
    pub(crate) fn new(max_series: usize, overflowed: Counter) -> Self {
        SeriesMap {
            inner: RwLock::new(Inner {
                entries: HashMap::default(),
                bounded: 0,
                next_seq: 0,
            }),
            max_series,
            overflowed,
        }
    }

    /// Runs `record` on the series of `key`, creating it (from `make`) if there is room, else on
    /// the series of `overflow(key)`. The common case is a read lock and one lookup through a
    /// borrowed key, so the caller clones nothing.
    pub(crate) fn with<Q, R>(
        &self,
        key: &Q,
        make: impl FnOnce() -> K,
        overflow: impl Fn(&K) -> K,
        record: impl FnOnce(&M) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        {
            let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = inner.entries.get(key) {
                return record(&entry.series);
            }
        }
        let series = self.resolve(make(), overflow);
        record(&series)
    }

    /// The series of `key` (or its overflow stand-in) as a handle, for callers that record many
    /// times against one key (a TCP connection's byte counts).
    pub(crate) fn get(&self, key: &K, overflow: impl Fn(&K) -> K) -> Arc<M> {
        self.resolve(key.clone(), overflow)
    }

    /// A key not found on the fast path. When the map is full and the overflow series exists,
    /// this stays on the read lock, so traffic past the bound does not serialise on the write
    /// lock; otherwise it inserts.
    #[cold]
    fn resolve(&self, key: K, overflow: impl Fn(&K) -> K) -> Arc<M> {
        {
            let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = inner.entries.get(&key) {
                return Arc::clone(&entry.series);
            }
            if inner.bounded >= self.max_series {
                let key = overflow(&key);
                if let Some(entry) = inner.entries.get(&key) {
                    self.overflowed.inc();
                    return Arc::clone(&entry.series);
                }
            }
        }
        self.insert(key, overflow)
    }

    /// Inserts under the write lock, re-checking first (another thread may have inserted the key
    /// or filled the map meanwhile).
    fn insert(&self, key: K, overflow: impl Fn(&K) -> K) -> Arc<M> {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = inner.entries.get(&key) {
            return Arc::clone(&entry.series);
        }
        let (key, counts) = if inner.bounded < self.max_series {
            (key, true)
        } else {
            self.overflowed.inc();
            let key = overflow(&key);
            if let Some(entry) = inner.entries.get(&key) {
                return Arc::clone(&entry.series);
            }
            (key, false)
        };
        if counts {
            inner.bounded += 1;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let series = Arc::new(M::default());
        inner.entries.insert(
            key,
            Entry {
                seq,
                series: Arc::clone(&series),
            },
        );
        series
    }

    /// All series in insertion order, for encoding (scrape path, not the request path).
    pub(crate) fn snapshot(&self) -> Vec<(K, Arc<M>)> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<(u64, K, Arc<M>)> = inner
            .entries
            .iter()
            .map(|(k, e)| (e.seq, k.clone(), Arc::clone(&e.series)))
            .collect();
        drop(inner);
        all.sort_unstable_by_key(|(seq, _, _)| *seq);
        all.into_iter().map(|(_, k, m)| (k, m)).collect()
    }
}

/// A fixed-bucket histogram of integers kept in atomics, with no lock (prometheus-client's own
/// histogram takes a lock per observation). Values are recorded in a small unit (microseconds,
/// bytes) and bounds are precomputed in that unit, so observing is a binary search and two
/// atomic adds.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    /// One slot per bound plus the `+Inf` bucket; non-cumulative.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// An empty histogram with `buckets` finite buckets.
    pub(crate) fn new(buckets: usize) -> Self {
        AtomicHistogram {
            counts: (0..=buckets).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts `value` in the first bucket whose bound is `>=` it (Prometheus `le` semantics).
    pub(crate) fn observe(&self, bounds: &[u64], value: u64) {
        let i = bounds.partition_point(|b| *b < value);
        if let Some(slot) = self.counts.get(i) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// `(sum, count, buckets)` as prometheus-client wants them: bounds divided by `scale` back to
    /// the exposed unit, the last bound `+Inf`, counts non-cumulative (the encoder accumulates).
    pub(crate) fn export(&self, bounds: &[u64], scale: f64) -> (f64, u64, Vec<(f64, u64)>) {
        let mut totals = HistogramTotals::default();
        totals.add(self);
        totals.export(bounds, scale)
    }
}

/// Histograms added together at scrape time, for a family whose label set leaves out labels
/// the stored series are keyed by (several series then print as one).
#[derive(Debug, Clone, Default)]
pub(crate) struct HistogramTotals {
    /// Non-cumulative, like [`AtomicHistogram`]'s slots.
    counts: Vec<u64>,
    sum: u64,
}

impl HistogramTotals {
    /// Adds `histogram`'s current counts and sum.
    pub(crate) fn add(&mut self, histogram: &AtomicHistogram) {
        if self.counts.len() < histogram.counts.len() {
            self.counts.resize(histogram.counts.len(), 0);
        }
        for (total, slot) in self.counts.iter_mut().zip(histogram.counts.iter()) {
            *total += slot.load(Ordering::Relaxed);
        }
        self.sum += histogram.sum.load(Ordering::Relaxed);
    }

    /// Adds another total (of the same bounds).
    pub(crate) fn merge(&mut self, other: HistogramTotals) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (total, n) in self.counts.iter_mut().zip(other.counts) {
            *total += n;
        }
        self.sum += other.sum;
    }

    /// As [`AtomicHistogram::export`].
    pub(crate) fn export(&self, bounds: &[u64], scale: f64) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let bound = bounds.get(i).map_or(f64::INFINITY, |b| *b as f64 / scale);
                (bound, *n)
            })
            .collect();
        let count = self.counts.iter().sum();
        (self.sum as f64 / scale, count, buckets)
    }
}
