//! Outlier detection wired to one backend's balancer: the detector of
//! [`crate::resilience::outlier`] plus what connects it to the request path.
//!
//! - every attempt's outcome is reported with [`BackendOutlier::report`] (atomics only,
//!   unless a threshold is reached);
//! - an ejection marks the endpoint unhealthy in its [`EndpointState`], which every
//!   balancer skips (panic mode still picks among all when none is healthy);
//! - there is no timer task: picks call [`BackendOutlier::maybe_tick`], which costs one
//!   atomic load until the next `interval` deadline passes; then exactly one caller wins a
//!   compare-exchange and runs the detector's periodic work (returning endpoints whose
//!   ejection time is over, decaying the ejection backoff). An idle backend therefore
//!   ticks on its next pick, before the pick, so returns are never missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use trellis_model::policy::OutlierDetection;

use crate::balance::EndpointState;
use crate::resilience::outlier::OutlierStats;
use crate::resilience::{EndpointOutlier, Outcome, OutlierDetector};

/// Intervals shorter than this are raised to it, so a misconfigured tiny interval
/// cannot turn every pick into a tick.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Idle periods replay at most this many missed ticks (each decays the ejection backoff
/// of endpoints that stayed healthy by one step).
const MAX_CATCH_UP_TICKS: u64 = 256;

/// The outlier state of one backend, built with it at configuration time.
#[derive(Debug)]
pub(super) struct BackendOutlier {
    detector: OutlierDetector,
    /// One handle per endpoint, indexed like the balancer's endpoints.
    handles: Box<[Arc<EndpointOutlier>]>,
    /// Readiness from discovery: an endpoint returning from ejection is healthy only if
    /// it is also ready.
    ready: Box<[bool]>,
    /// Ejections per endpoint since the backend was built (admin `/clusters`).
    ejections: Box<[AtomicU64]>,
    /// Serialises writes of endpoint health, so an ejection racing a tick's return can
    /// never leave an ejected endpoint marked healthy. Taken only on ejection and tick.
    health: Mutex<()>,
    epoch: Instant,
    interval_ns: u64,
    /// Nanoseconds since `epoch` at which the next tick is due.
    next_tick: AtomicU64,
}

impl BackendOutlier {
    /// A detector for `config` over `endpoints` (their current health is their
    /// readiness).
    pub(super) fn new(config: &OutlierDetection, endpoints: &[EndpointState]) -> BackendOutlier {
        let detector = OutlierDetector::new(config);
        let handles = endpoints.iter().map(|_| detector.add_endpoint()).collect();
        let interval = detector.interval().max(MIN_INTERVAL);
        let interval_ns = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        BackendOutlier {
            detector,
            handles,
            ready: endpoints.iter().map(EndpointState::is_healthy).collect(),
            ejections: endpoints.iter().map(|_| AtomicU64::new(0)).collect(),
            health: Mutex::new(()),
            epoch: Instant::now(),
            interval_ns,
            next_tick: AtomicU64::new(interval_ns),
        }
    }

    /// Records the outcome of an attempt to endpoint `index`; on ejection the endpoint
    /// leaves the balancing pool at once.
    pub(super) fn report(
        &self,
        endpoints: &[EndpointState],
        index: usize,
        outcome: Outcome,
        now: Instant,
    ) {
        let Some(handle) = self.handles.get(index) else {
            return;
        };
        let Some(ejection) = self.detector.report(handle, outcome, now) else {
            return;
        };
        if let Some(n) = self.ejections.get(index) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(
            endpoint = endpoints.get(index).map_or("", EndpointState::address),
            reason = ?ejection.reason,
            duration = ?ejection.duration,
            "outlier detection ejected an endpoint"
        );
        self.sync_health(endpoints);
    }

    /// Runs the periodic work if its deadline has passed; otherwise one atomic load.
    pub(super) fn maybe_tick(&self, endpoints: &[EndpointState], now: Instant) {
        let now_ns =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let due = self.next_tick.load(Ordering::Acquire);
        if now_ns < due {
            return;
        }
        let missed = (now_ns - due) / self.interval_ns + 1;
        let next = due.saturating_add(missed.saturating_mul(self.interval_ns));
        if self
            .next_tick
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // Another request is running this tick.
            return;
        }
        let mut returned = 0;
        for _ in 0..missed.min(MAX_CATCH_UP_TICKS) {
            returned += self.detector.tick(now);
        }
        if returned > 0 {
            self.sync_health(endpoints);
        }
    }

    /// Makes every endpoint's health `ready && !ejected`, under the health lock.
    fn sync_health(&self, endpoints: &[EndpointState]) {
        let _guard = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        for ((state, handle), ready) in endpoints.iter().zip(&self.handles).zip(&self.ready) {
            state.set_healthy(*ready && !handle.is_ejected());
        }
    }

    /// The detector's counters.
    pub(super) fn stats(&self) -> OutlierStats {
        self.detector.stats()
    }

    /// Whether endpoint `index` is ejected right now.
    pub(super) fn is_ejected(&self, index: usize) -> bool {
        self.handles.get(index).is_some_and(|h| h.is_ejected())
    }

    /// How many times endpoint `index` was ejected.
    pub(super) fn ejection_count(&self, index: usize) -> u64 {
        self.ejections
            .get(index)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::LocalFailure;

    fn setup(n: usize) -> (Arc<[EndpointState]>, BackendOutlier) {
        let eps: Arc<[EndpointState]> = (0..n)
            .map(|i| EndpointState::new(format!("10.0.0.{i}:80"), 1))
            .collect();
        let config = OutlierDetection {
            consecutive_5xx_errors: Some(2),
            interval: Duration::from_millis(100),
            base_ejection_time: Duration::from_secs(1),
            max_ejection_percent: 100,
            ..OutlierDetection::default()
        };
        let o = BackendOutlier::new(&config, &eps);
        (eps, o)
    }

    #[test]
    fn ejection_marks_unhealthy_and_tick_returns_it() {
        let (eps, o) = setup(2);
        let t0 = o.epoch;
        o.report(&eps, 0, Outcome::Response(500), t0);
        assert!(eps[0].is_healthy());
        o.report(&eps, 0, Outcome::LocalFailure(LocalFailure::Reset), t0);
        assert!(!eps[0].is_healthy() && o.is_ejected(0) && eps[1].is_healthy());
        assert_eq!((o.ejection_count(0), o.stats().ejections_total), (1, 1));
        // Before the ejection time is over ticks keep it out.
        o.maybe_tick(&eps, t0 + Duration::from_millis(500));
        assert!(!eps[0].is_healthy());
        // The first pick after it brings it back, even after a long idle period.
        o.maybe_tick(&eps, t0 + Duration::from_secs(3600));
        assert!(eps[0].is_healthy() && !o.is_ejected(0));
    }

    #[test]
    fn unready_endpoints_stay_unhealthy_after_returning() {
        let (eps, _) = setup(2);
        eps[1].set_healthy(false);
        let config = OutlierDetection {
            consecutive_5xx_errors: Some(1),
            max_ejection_percent: 100,
            ..OutlierDetection::default()
        };
        let o = BackendOutlier::new(&config, &eps);
        o.report(&eps, 0, Outcome::Response(503), o.epoch);
        assert!(!eps[0].is_healthy() && !eps[1].is_healthy());
        o.maybe_tick(&eps, o.epoch + Duration::from_secs(100));
        assert!(eps[0].is_healthy() && !eps[1].is_healthy());
        // Out-of-range indices are ignored.
        o.report(&eps, 7, Outcome::Response(503), o.epoch);
        assert!(!o.is_ejected(7) && o.ejection_count(7) == 0);
    }
}
