//! Endpoint selection: which endpoint of a backend gets the next request.
//!
//! A [`Balancer`] is built once per endpoint set (config time) from the model's
//! [`LoadBalancer`]; it precomputes whatever the algorithm needs (hash rings, Maglev tables,
//! weight prefix sums, weighted round-robin schedules) so that [`Balancer::pick`] is
//! allocation-free and lock-free. Every algorithm honours endpoint weights (see each
//! submodule for how); with equal weights each keeps its unweighted fast path. Live
//! per-endpoint state (health, outstanding requests, latency estimate) sits in
//! [`EndpointState`] behind atomics, shared with the code that completes requests and with
//! outlier detection.
//!
//! Randomness and time come in through [`PickContext`] so callers choose the source (a
//! fast thread-local generator in the proxy, a fixed seed in tests).
//!
//! Health: unhealthy (unready or ejected) endpoints are skipped. When none is healthy,
//! `pick` returns `None` (the caller answers `UH`), unless panic mode is switched on with
//! [`Balancer::with_panic_mode`], in which case it picks among all endpoints as Envoy does
//! below its healthy-panic threshold, so a bad probe cannot take a whole service down.

mod hash_key;
#[cfg(test)]
mod hash_tests;
mod least_request;
mod maglev;
mod peak_ewma;
mod ring_hash;
mod round_robin;
mod simple;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use trellis_model::{HashAlgorithm, LoadBalancer};

pub use hash_key::{CookieValue, HashDecision, HashInput, RequestHasher};
pub use peak_ewma::{DECAY, DEFAULT_RTT};

use least_request::TwoChoices;
use maglev::Maglev;
use peak_ewma::PeakEwma;
use ring_hash::RingHash;
use round_robin::RoundRobin;
use simple::WeightedRandom;

/// Errors in a load-balancer configuration, found when the [`Balancer`] is built so the
/// request path never sees them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    /// Maglev needs a prime table size for its permutations to cover the table; Envoy
    /// caps it at 5,000,011.
    #[error("maglev table size {0} must be a prime no larger than 5000011")]
    MaglevTableSize(u64),
    /// Ring sizes outside 1..=8,388,608 (Envoy's maximum) are rejected.
    #[error("ring hash minimum size {0} is outside 1..=8388608")]
    RingSize(u64),
    /// A consistent-hash header key must be a valid HTTP header name.
    #[error("invalid hash header name {0:?}")]
    HeaderName(String),
}

/// Live state of one endpoint, shared between the balancer, request completion and
/// outlier detection. All fields are atomics (or a tiny mutex serialising latency
/// updates only), so picks never block.
#[derive(Debug)]
pub struct EndpointState {
    address: String,
    weight: u32,
    healthy: AtomicBool,
    outstanding: AtomicU64,
    ewma: PeakEwma,
}

impl EndpointState {
    /// An endpoint at `address` (`ip:port` or `host:port`, the string consistent hashing
    /// keys on, as Envoy hashes `address()->asString()`). Weight 0 is raised to 1, the
    /// minimum Envoy accepts. The latency estimate starts at [`DEFAULT_RTT`] now.
    pub fn new(address: impl Into<String>, weight: u32) -> Self {
        Self::with_epoch(address, weight, Instant::now())
    }

    /// Like [`EndpointState::new`] with the latency estimate's start time given, so
    /// tests drive time explicitly.
    pub fn with_epoch(address: impl Into<String>, weight: u32, epoch: Instant) -> Self {
        EndpointState {
            address: address.into(),
            weight: weight.max(1),
            healthy: AtomicBool::new(true),
            outstanding: AtomicU64::new(0),
            ewma: PeakEwma::new(epoch),
        }
    }

    /// State for a model endpoint reached on `port`; unready endpoints start unhealthy.
    pub fn from_endpoint(endpoint: &trellis_model::Endpoint, port: u16) -> Self {
        let address = if endpoint.address.contains(':') {
            format!("[{}]:{port}", endpoint.address)
        } else {
            format!("{}:{port}", endpoint.address)
        };
        let state = Self::new(address, endpoint.weight);
        state.set_healthy(endpoint.ready);
        state
    }

    /// The address the endpoint is dialled at and hashed by.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Relative share of traffic (at least 1).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Whether the endpoint may receive traffic (ready and not ejected).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Marks the endpoint healthy or not; outlier detection and readiness call this.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Requests sent to this endpoint and not yet completed.
    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Sets the outstanding count directly (tests, and resynchronisation after a reload).
    pub fn set_outstanding(&self, n: u64) {
        self.outstanding.store(n, Ordering::Relaxed);
    }

    /// Counts a request as sent; pair with [`EndpointState::finish_request`].
    pub fn start_request(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request as completed and, when it got a response, feeds its latency into
    /// the peak-EWMA estimate. Never underflows.
    pub fn finish_request(&self, rtt: Option<Duration>, now: Instant) {
        // Saturating: a spurious extra finish must not wrap to u64::MAX and starve the endpoint.
        let _ = self
            .outstanding
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        if let Some(rtt) = rtt {
            self.ewma.record(rtt, now);
        }
    }

    /// The peak-EWMA latency estimate at `now`.
    pub fn rtt_estimate(&self, now: Instant) -> Duration {
        Duration::from_secs_f64(self.ewma.estimate_ns(now) / 1e9)
    }
}

/// Per-pick inputs supplied by the caller.
#[derive(Debug, Clone, Copy)]
pub struct PickContext {
    /// A fresh random value for this pick; algorithms derive further values from it.
    pub random: u64,
    /// The request's consistent-hash value (see [`RequestHasher`]); without one, hash
    /// balancers pick at random, as Envoy does.
    pub hash: Option<u64>,
    /// The current time, for decaying latency estimates.
    pub now: Instant,
}

/// What the balancer chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Send to the endpoint at this index of the endpoint slice.
    Endpoint(usize),
    /// Passthrough: connect to the original destination the client asked for.
    OriginalDestination,
}

/// The precomputed algorithm.
#[derive(Debug)]
enum Algo {
    RoundRobin(RoundRobin),
    LeastRequest(TwoChoices),
    Random(WeightedRandom),
    Passthrough,
    PeakEwma(TwoChoices),
    RingHash(RingHash),
    Maglev(Maglev),
}

/// Endpoint selection for one endpoint set; build once, share across tasks.
#[derive(Debug)]
pub struct Balancer {
    endpoints: Arc<[EndpointState]>,
    algo: Algo,
    panic_mode: bool,
}

impl Balancer {
    /// Builds the tables `lb` needs over `endpoints`. Errors on an invalid hash
    /// configuration (non-prime Maglev table, out-of-range ring size).
    pub fn new(lb: &LoadBalancer, endpoints: Arc<[EndpointState]>) -> Result<Self, BalanceError> {
        let algo = match lb {
            LoadBalancer::RoundRobin => Algo::RoundRobin(RoundRobin::new(&endpoints)),
            LoadBalancer::LeastRequest => Algo::LeastRequest(TwoChoices::new(&endpoints)),
            LoadBalancer::Random => Algo::Random(WeightedRandom::new(&endpoints)),
            LoadBalancer::Passthrough => Algo::Passthrough,
            LoadBalancer::PeakEwma => Algo::PeakEwma(TwoChoices::new(&endpoints)),
            LoadBalancer::ConsistentHash(ch) => match ch.algorithm {
                HashAlgorithm::RingHash { minimum_ring_size } => {
                    Algo::RingHash(RingHash::new(&endpoints, minimum_ring_size)?)
                }
                HashAlgorithm::Maglev { table_size } => {
                    Algo::Maglev(Maglev::new(&endpoints, table_size)?)
                }
            },
        };
        Ok(Balancer {
            endpoints,
            algo,
            panic_mode: false,
        })
    }

    /// With panic mode on, a pick when no endpoint is healthy chooses among all of them
    /// instead of returning `None` (Envoy's healthy-panic behaviour at 0% healthy).
    pub fn with_panic_mode(mut self, on: bool) -> Self {
        self.panic_mode = on;
        self
    }

    /// The endpoints this balancer picks from; `Pick::Endpoint(i)` indexes this slice.
    pub fn endpoints(&self) -> &Arc<[EndpointState]> {
        &self.endpoints
    }

    /// Chooses an endpoint for one request. `None` means no healthy endpoint (or none at
    /// all); see the module docs for panic mode.
    pub fn pick(&self, ctx: &PickContext) -> Option<Pick> {
        if let Algo::Passthrough = self.algo {
            return Some(Pick::OriginalDestination);
        }
        let picked = self.pick_with(ctx, EndpointState::is_healthy).or_else(|| {
            if self.panic_mode {
                tracing::debug!("no healthy endpoint, panic mode picks among all");
                self.pick_with(ctx, |_| true)
            } else {
                None
            }
        });
        picked.map(Pick::Endpoint)
    }

    /// Runs the algorithm considering only endpoints for which `usable` holds.
    fn pick_with(&self, ctx: &PickContext, usable: fn(&EndpointState) -> bool) -> Option<usize> {
        let eps = &self.endpoints[..];
        match &self.algo {
            Algo::RoundRobin(rr) => rr.pick(eps, ctx.random, usable),
            Algo::Random(wr) => wr.pick(eps, ctx.random, usable),
            Algo::LeastRequest(two) => two.least_request(eps, ctx.random, usable),
            Algo::PeakEwma(two) => two.peak_ewma(eps, ctx.random, ctx.now, usable),
            Algo::RingHash(ring) => ring.pick(eps, ctx.hash.unwrap_or(ctx.random), usable),
            Algo::Maglev(table) => table.pick(eps, ctx.hash.unwrap_or(ctx.random), usable),
            Algo::Passthrough => None,
        }
    }
}

/// Deterministic helpers shared by the tests of every algorithm.
#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn passthrough_uses_original_destination() -> Result<(), BalanceError> {
        let b = Balancer::new(&LoadBalancer::Passthrough, endpoints(0, Instant::now()))?;
        let ctx = PickContext {
            random: 1,
            hash: None,
            now: Instant::now(),
        };
        assert_eq!(b.pick(&ctx), Some(Pick::OriginalDestination));
        Ok(())
    }

    #[test]
    fn every_algorithm_skips_to_none_or_panics_when_all_unhealthy() -> Result<(), BalanceError> {
        let epoch = Instant::now();
        let hash = trellis_model::ConsistentHash::default();
        let maglev = trellis_model::ConsistentHash {
            algorithm: HashAlgorithm::Maglev { table_size: 65537 },
            ..hash.clone()
        };
        for lb in [
            LoadBalancer::RoundRobin,
            LoadBalancer::LeastRequest,
            LoadBalancer::Random,
            LoadBalancer::PeakEwma,
            LoadBalancer::ConsistentHash(hash),
            LoadBalancer::ConsistentHash(maglev),
        ] {
            // Equal and unequal weights take different paths in most algorithms.
            for weights in [[1, 1, 1, 1], [1, 2, 3, 4]] {
                let eps = weighted(&weights, epoch);
                let b = Balancer::new(&lb, eps.clone())?;
                assert_eq!(histogram(&b, 1000, 7, epoch).iter().sum::<usize>(), 1000);
                eps.iter().for_each(|e| e.set_healthy(false));
                assert_eq!(
                    histogram(&b, 1000, 7, epoch).iter().sum::<usize>(),
                    0,
                    "{lb:?}"
                );
                eps[2].set_healthy(true);
                assert_eq!(histogram(&b, 1000, 7, epoch)[2], 1000, "{lb:?}");
                eps[2].set_healthy(false);
                let b = b.with_panic_mode(true);
                assert_eq!(histogram(&b, 1000, 7, epoch).iter().sum::<usize>(), 1000);
            }
            let empty = Balancer::new(&lb, endpoints(0, epoch))?.with_panic_mode(true);
            assert_eq!(histogram(&empty, 10, 7, epoch).iter().sum::<usize>(), 0);
        }
        Ok(())
    }

    #[test]
    fn outstanding_never_underflows_and_model_endpoints_convert() {
        let e = EndpointState::new("10.0.0.1:80", 0);
        assert_eq!(e.weight(), 1);
        e.start_request();
        e.finish_request(None, Instant::now());
        e.finish_request(None, Instant::now());
        assert_eq!(e.outstanding(), 0);
        let model = trellis_model::Endpoint {
            address: "fd00::1".into(),
            ready: false,
            ..Default::default()
        };
        let e = EndpointState::from_endpoint(&model, 8080);
        assert_eq!(e.address(), "[fd00::1]:8080");
        assert!(!e.is_healthy());
    }
}
