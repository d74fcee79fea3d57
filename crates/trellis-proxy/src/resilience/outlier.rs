//! Outlier detection: passive health checking from the outcomes of real requests.
//!
//! Semantics follow Envoy's consecutive-error detectors, which is what Istio's
//! `outlierDetection` configures:
//!
//! - every 5xx response increments the endpoint's consecutive-5xx counter; 502/503/504
//!   also increment the consecutive-gateway counter (any other 5xx resets it); a non-5xx
//!   response resets both;
//! - failures the proxy observes itself (connect failure, reset, timeout) are, unless
//!   `split_external_local_origin_errors` is set, counted as if the endpoint had answered
//!   503 (504 for a timeout), exactly as Envoy maps them; with the split they only feed the
//!   consecutive-local-origin counter, which a successful connection or any response
//!   resets;
//! - reaching a threshold resets that counter and ejects the endpoint at once, unless
//!   that would eject more than `max_ejection_percent` of the endpoints (Envoy's rule:
//!   `100 × (active + 1) / endpoints ≤ percent`) or leave fewer than
//!   `min_health_percent` healthy;
//! - an ejection lasts `base_ejection_time × backoff`, where the backoff grows by one per
//!   ejection and shrinks by one per `interval` the endpoint then stays healthy (Envoy
//!   1.20+), capped at `max(base, 300 s)`; [`OutlierDetector::tick`], called every
//!   `interval`, returns endpoints whose time is up.
//!
//! The per-request path ([`OutlierDetector::report`]) only touches atomics of one
//! endpoint; the detector's mutex is taken only when a threshold is reached, on ticks and
//! on membership changes. Time is always passed in, so tests and callers control it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use trellis_model::policy::OutlierDetection;

mod state;
#[cfg(test)]
mod tests;

use state::{Member, Thresholds};

/// Envoy's default `max_ejection_time`: ejections never last longer than this (unless the
/// base ejection time itself is longer).
pub const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// What happened to one request (or connection attempt) sent to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered with this HTTP status (an externally originated result).
    Response(u16),
    /// The proxy itself observed a failure before any response.
    LocalFailure(LocalFailure),
    /// A connection to the endpoint was established; only meaningful with
    /// `split_external_local_origin_errors`, where it resets the local-origin counter.
    ConnectSuccess,
}

/// A failure observed by the proxy rather than reported by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFailure {
    /// The TCP (or TLS) connection could not be established.
    ConnectFailure,
    /// The connection or stream was reset before a response arrived.
    Reset,
    /// No response arrived within the deadline.
    Timeout,
}

impl LocalFailure {
    /// The status Envoy substitutes when local-origin errors are not split out: a
    /// timeout looks like a 504 and anything else like a 503, so both count as 5xx and as
    /// gateway errors.
    pub fn equivalent_status(self) -> u16 {
        match self {
            LocalFailure::Timeout => 504,
            LocalFailure::ConnectFailure | LocalFailure::Reset => 503,
        }
    }
}

/// Which detector ejected an endpoint; it names the log line and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EjectReason {
    /// `consecutive_5xx_errors` was reached.
    Consecutive5xx,
    /// `consecutive_gateway_errors` was reached.
    ConsecutiveGatewayErrors,
    /// `consecutive_local_origin_failures` was reached (split mode only).
    ConsecutiveLocalOriginFailures,
}

/// An ejection that just took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// The threshold that triggered it.
    pub reason: EjectReason,
    /// How long the endpoint stays out of the balancing pool (at least; it returns on the
    /// first tick after this).
    pub duration: Duration,
}

/// The outlier state of one endpoint, shared with the balancer, which reads
/// [`EndpointOutlier::is_ejected`] per pick without locking.
#[derive(Debug)]
pub struct EndpointOutlier {
    ejected: AtomicBool,
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    /// Position in the detector's member list, maintained under the detector's mutex so
    /// the slow path finds the member without a scan.
    slot: AtomicUsize,
}

impl EndpointOutlier {
    /// Whether the endpoint is currently ejected and should be skipped by balancing
    /// (unless the detector reports [`OutlierDetector::in_panic`]).
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Acquire)
    }

    fn reset_counters(&self) {
        self.consecutive_5xx.store(0, Ordering::Relaxed);
        self.consecutive_gateway.store(0, Ordering::Relaxed);
        self.consecutive_local.store(0, Ordering::Relaxed);
    }
}

/// A snapshot of the detector's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutlierStats {
    /// Ejections performed since creation.
    pub ejections_total: u64,
    /// Endpoints ejected right now.
    pub ejections_active: u64,
    /// Thresholds reached but not acted on because of `max_ejection_percent`.
    pub ejections_overflow: u64,
    /// Thresholds reached but not acted on because of `min_health_percent`.
    pub ejections_suppressed_min_health: u64,
}

/// Outlier detection over the endpoints of one backend.
#[derive(Debug)]
pub struct OutlierDetector {
    thresholds: Thresholds,
    members: Mutex<Vec<Member>>,
    /// Mirrors of the member count and ejected count, written under the mutex, read
    /// lock-free by [`OutlierDetector::in_panic`].
    total: AtomicUsize,
    active: AtomicUsize,
    ejections_total: AtomicU64,
    ejections_overflow: AtomicU64,
    ejections_suppressed: AtomicU64,
}

impl OutlierDetector {
    /// A detector for `config`, with no endpoints yet.
    pub fn new(config: &OutlierDetection) -> OutlierDetector {
        OutlierDetector {
            thresholds: Thresholds::new(config),
            members: Mutex::new(Vec::new()),
            total: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            ejections_total: AtomicU64::new(0),
            ejections_overflow: AtomicU64::new(0),
            ejections_suppressed: AtomicU64::new(0),
        }
    }

    /// How often [`OutlierDetector::tick`] should run (the configured `interval`).
    pub fn interval(&self) -> Duration {
        self.thresholds.interval
    }

    /// Adds an endpoint; the returned handle is what the balancer keeps next to the
    /// endpoint and what [`OutlierDetector::report`] takes.
    pub fn add_endpoint(&self) -> Arc<EndpointOutlier> {
        let mut members = self.lock();
        let ep = Arc::new(EndpointOutlier {
            ejected: AtomicBool::new(false),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            consecutive_local: AtomicU32::new(0),
            slot: AtomicUsize::new(members.len()),
        });
        members.push(Member::new(Arc::clone(&ep)));
        self.total.store(members.len(), Ordering::Release);
        ep
    }

    /// Removes an endpoint that left discovery; an active ejection of it ends. Unknown
    /// handles (already removed, or from another detector) are ignored.
    pub fn remove_endpoint(&self, ep: &Arc<EndpointOutlier>) {
        let mut members = self.lock();
        let Some(slot) = find(&members, ep) else {
            return;
        };
        let removed = members.swap_remove(slot);
        if let Some(moved) = members.get(slot) {
            moved.ep.slot.store(slot, Ordering::Relaxed);
        }
        if removed.ejected_at.is_some() {
            self.active.fetch_sub(1, Ordering::AcqRel);
        }
        self.total.store(members.len(), Ordering::Release);
    }

    /// Records the outcome of one request to `ep` and ejects it if a threshold is
    /// reached; returns the ejection if one took effect. Outcomes for an endpoint that is
    /// already ejected are ignored (its counters restart when it returns).
    pub fn report(
        &self,
        ep: &Arc<EndpointOutlier>,
        outcome: Outcome,
        now: Instant,
    ) -> Option<Ejection> {
        if ep.is_ejected() {
            return None;
        }
        let t = &self.thresholds;
        let reason = match outcome {
            Outcome::Response(status) => {
                if t.split {
                    ep.consecutive_local.store(0, Ordering::Relaxed);
                }
                self.count_status(ep, status)
            }
            Outcome::LocalFailure(_) if t.split => bump(&ep.consecutive_local, t.local)
                .then_some(EjectReason::ConsecutiveLocalOriginFailures),
            Outcome::LocalFailure(kind) => self.count_status(ep, kind.equivalent_status()),
            Outcome::ConnectSuccess => {
                if t.split {
                    ep.consecutive_local.store(0, Ordering::Relaxed);
                }
                None
            }
        }?;
        self.try_eject(ep, reason, now)
    }

    fn count_status(&self, ep: &EndpointOutlier, status: u16) -> Option<EjectReason> {
        if !(500..=599).contains(&status) {
            ep.consecutive_5xx.store(0, Ordering::Relaxed);
            ep.consecutive_gateway.store(0, Ordering::Relaxed);
            return None;
        }
        let t = &self.thresholds;
        let gateway = if matches!(status, 502..=504) {
            bump(&ep.consecutive_gateway, t.gateway)
        } else {
            ep.consecutive_gateway.store(0, Ordering::Relaxed);
            false
        };
        let five_xx = bump(&ep.consecutive_5xx, t.five_xx);
        if five_xx {
            Some(EjectReason::Consecutive5xx)
        } else if gateway {
            Some(EjectReason::ConsecutiveGatewayErrors)
        } else {
            None
        }
    }

    /// The slow path: decide under the mutex whether the ejection is allowed.
    fn try_eject(
        &self,
        ep: &Arc<EndpointOutlier>,
        reason: EjectReason,
        now: Instant,
    ) -> Option<Ejection> {
        let mut members = self.lock();
        let slot = find(&members, ep)?;
        if members[slot].ejected_at.is_some() {
            return None;
        }
        let total = members.len();
        let active = self.active.load(Ordering::Acquire);
        if !self.thresholds.may_eject(active, total) {
            self.ejections_overflow.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                ?reason,
                active,
                total,
                "outlier ejection refused by max_ejection_percent"
            );
            return None;
        }
        if !self.thresholds.keeps_min_health(active + 1, total) {
            self.ejections_suppressed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                ?reason,
                active,
                total,
                "outlier ejection refused by min_health_percent"
            );
            return None;
        }
        let duration = members[slot].eject(&self.thresholds, now);
        self.active.fetch_add(1, Ordering::AcqRel);
        self.ejections_total.fetch_add(1, Ordering::Relaxed);
        ep.ejected.store(true, Ordering::Release);
        tracing::info!(?reason, ?duration, "endpoint ejected by outlier detection");
        Some(Ejection { reason, duration })
    }

    /// Periodic work, to be called every [`OutlierDetector::interval`]: returns ejected
    /// endpoints whose ejection time is over, and lets the ejection backoff of endpoints
    /// that stayed healthy decay. Returns how many endpoints came back.
    pub fn tick(&self, now: Instant) -> usize {
        let mut members = self.lock();
        let mut returned = 0;
        for member in members.iter_mut() {
            if member.tick(&self.thresholds, now) {
                member.ep.reset_counters();
                member.ep.ejected.store(false, Ordering::Release);
                self.active.fetch_sub(1, Ordering::AcqRel);
                returned += 1;
            }
        }
        if returned > 0 {
            tracing::info!(returned, "ejected endpoints returned to the balancing pool");
        }
        returned
    }

    /// Whether fewer than `min_health_percent` of the endpoints are healthy, in which
    /// case the balancer should ignore ejections (Istio's panic threshold). Lock-free.
    pub fn in_panic(&self) -> bool {
        let total = self.total.load(Ordering::Acquire);
        let active = self.active.load(Ordering::Acquire).min(total);
        !self.thresholds.keeps_min_health(active, total)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> OutlierStats {
        OutlierStats {
            ejections_total: self.ejections_total.load(Ordering::Relaxed),
            ejections_active: self.active.load(Ordering::Relaxed) as u64,
            ejections_overflow: self.ejections_overflow.load(Ordering::Relaxed),
            ejections_suppressed_min_health: self.ejections_suppressed.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Member>> {
        // The state stays consistent at every await-free step, so a panic elsewhere while
        // holding the lock does not invalidate it.
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The member slot of `ep`, if it belongs to this list.
fn find(members: &[Member], ep: &Arc<EndpointOutlier>) -> Option<usize> {
    let slot = ep.slot.load(Ordering::Relaxed);
    members
        .get(slot)
        .filter(|m| Arc::ptr_eq(&m.ep, ep))
        .map(|_| slot)
}

/// Counts one consecutive failure; true (and the counter restarts) when `threshold` is
/// reached. A threshold of 0 means the check is off.
fn bump(counter: &AtomicU32, threshold: u32) -> bool {
    if threshold == 0 {
        return false;
    }
    let n = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    if n >= threshold {
        counter.store(0, Ordering::Relaxed);
        true
    } else {
        false
    }
}
