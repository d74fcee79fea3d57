//! The configuration-time thresholds of the outlier detector and the slow-path state of
//! each endpoint (ejection time and backoff), which only changes under the detector's
//! mutex.

use std::sync::Arc;
use std::time::{Duration, Instant};

use trellis_model::policy::OutlierDetection;

use super::{DEFAULT_MAX_EJECTION_TIME, EndpointOutlier};

/// Envoy's default consecutive-local-origin-failure threshold, used when the split is on
/// and the threshold is unset.
const DEFAULT_LOCAL_ORIGIN_FAILURES: u32 = 5;

/// `OutlierDetection` resolved once: defaults applied, 0 meaning "check off".
#[derive(Debug, Clone)]
pub(super) struct Thresholds {
    pub(super) five_xx: u32,
    pub(super) gateway: u32,
    pub(super) local: u32,
    pub(super) split: bool,
    pub(super) interval: Duration,
    base_ejection_time: Duration,
    max_ejection_time: Duration,
    max_ejection_percent: usize,
    min_health_percent: usize,
}

impl Thresholds {
    pub(super) fn new(c: &OutlierDetection) -> Thresholds {
        Thresholds {
            five_xx: c.consecutive_5xx_threshold().unwrap_or(0),
            gateway: c.consecutive_gateway_errors.unwrap_or(0),
            local: if c.split_external_local_origin_errors {
                c.consecutive_local_origin_failures
                    .unwrap_or(DEFAULT_LOCAL_ORIGIN_FAILURES)
            } else {
                0
            },
            split: c.split_external_local_origin_errors,
            interval: c.interval,
            base_ejection_time: c.base_ejection_time,
            // Envoy: the cap never shortens the base ejection time.
            max_ejection_time: DEFAULT_MAX_EJECTION_TIME.max(c.base_ejection_time),
            max_ejection_percent: c.max_ejection_percent.min(100) as usize,
            min_health_percent: c.min_health_percent.min(100) as usize,
        }
    }

    /// Envoy's `max_ejection_percent` rule: one more ejection is allowed when
    /// `100 × (active + 1) / total ≤ percent` (so with 10% and fewer than 10 endpoints
    /// nothing is ejected, as in Envoy without `always_eject_one_host`).
    pub(super) fn may_eject(&self, active: usize, total: usize) -> bool {
        (active + 1) * 100 <= self.max_ejection_percent * total
    }

    /// Whether, with `ejected` of `total` endpoints out, at least `min_health_percent`
    /// remain healthy.
    pub(super) fn keeps_min_health(&self, ejected: usize, total: usize) -> bool {
        total.saturating_sub(ejected) * 100 >= self.min_health_percent * total
    }

    /// The ejection time for a backoff multiplier: `base × backoff`, capped.
    fn ejection_time(&self, backoff: u32) -> Duration {
        self.base_ejection_time
            .saturating_mul(backoff.max(1))
            .min(self.max_ejection_time)
    }
}

/// Slow-path state of one endpoint.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) ep: Arc<EndpointOutlier>,
    /// When the current ejection started; `None` while the endpoint is in the pool.
    pub(super) ejected_at: Option<Instant>,
    /// When the endpoint last returned from an ejection.
    returned_at: Option<Instant>,
    /// Envoy's ejection-time multiplier: +1 per ejection (until the cap is reached),
    /// -1 per healthy interval after returning.
    backoff: u32,
}

impl Member {
    pub(super) fn new(ep: Arc<EndpointOutlier>) -> Member {
        Member {
            ep,
            ejected_at: None,
            returned_at: None,
            backoff: 0,
        }
    }

    /// Starts an ejection at `now`; returns its duration.
    pub(super) fn eject(&mut self, t: &Thresholds, now: Instant) -> Duration {
        // Envoy grows the multiplier only while the product is under the cap.
        if t.base_ejection_time.saturating_mul(self.backoff) < t.max_ejection_time {
            self.backoff = self.backoff.saturating_add(1);
        }
        self.ejected_at = Some(now);
        t.ejection_time(self.backoff)
    }

    /// The periodic check; true when the endpoint returns from ejection now.
    pub(super) fn tick(&mut self, t: &Thresholds, now: Instant) -> bool {
        match self.ejected_at {
            Some(at) => {
                if now.saturating_duration_since(at) >= t.ejection_time(self.backoff) {
                    self.ejected_at = None;
                    self.returned_at = Some(now);
                    true
                } else {
                    false
                }
            }
            None => {
                let healthy_for_interval = self
                    .returned_at
                    .is_some_and(|r| now.saturating_duration_since(r) >= t.interval);
                if healthy_for_interval && self.backoff > 0 {
                    self.backoff -= 1;
                }
                false
            }
        }
    }
}
