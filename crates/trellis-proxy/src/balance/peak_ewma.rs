//! Peak exponentially weighted moving average of endpoint latency, as in Linkerd (tower's
//! `PeakEwma`): a slower response raises the estimate at once (the "peak"), faster ones
//! pull it down gradually, and with no new samples it decays towards zero with time
//! constant [`DECAY`], so an endpoint that was slow once is retried eventually.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Decay time constant: Linkerd's 10 s.
pub const DECAY: Duration = Duration::from_secs(10);

/// Estimate of an endpoint with no samples yet: Linkerd's 30 ms default.
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);

const DECAY_NS: f64 = DECAY.as_nanos() as f64;

/// Lock-free reads, serialised writes: the estimate (f64 bits, nanoseconds) and the time
/// of its last update (nanoseconds since `epoch`) are atomics read on every pick without
/// locking; updates on completion take a per-endpoint mutex so concurrent samples do not
/// lose each other. A pick racing an update may pair the new estimate with the old
/// timestamp and see it slightly over-decayed for that one pick, which is harmless.
#[derive(Debug)]
pub(super) struct PeakEwma {
    epoch: Instant,
    rtt_ns: AtomicU64,
    stamp_ns: AtomicU64,
    update: Mutex<()>,
}

impl PeakEwma {
    pub(super) fn new(epoch: Instant) -> Self {
        PeakEwma {
            epoch,
            rtt_ns: AtomicU64::new((DEFAULT_RTT.as_nanos() as f64).to_bits()),
            stamp_ns: AtomicU64::new(0),
            update: Mutex::new(()),
        }
    }

    fn since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The stored estimate decayed to `now`, and the decay factor applied.
    fn decayed(&self, now: Instant) -> (f64, f64) {
        let rtt = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let stamp = self.stamp_ns.load(Ordering::Relaxed);
        let elapsed = self.since_epoch(now).saturating_sub(stamp) as f64;
        let decay = (-elapsed / DECAY_NS).exp();
        (rtt * decay, decay)
    }

    /// The current estimate in nanoseconds.
    pub(super) fn estimate_ns(&self, now: Instant) -> f64 {
        self.decayed(now).0
    }

    /// Folds one observed round-trip time into the estimate.
    pub(super) fn record(&self, rtt: Duration, now: Instant) {
        let _serialised = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let sample = rtt.as_nanos() as f64;
        let (current, decay) = self.decayed(now);
        let next = if sample > current {
            sample
        } else {
            // The older the estimate, the more weight the new sample gets.
            current + sample * (1.0 - decay)
        };
        self.rtt_ns.store(next.to_bits(), Ordering::Relaxed);
        self.stamp_ns
            .store(self.since_epoch(now).max(1), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use trellis_model::LoadBalancer;

    use super::super::testutil::*;
    use super::super::{BalanceError, Balancer};
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn peaks_then_decays_with_ten_second_constant() {
        let epoch = Instant::now();
        let ewma = PeakEwma::new(epoch);
        assert_eq!(ewma.estimate_ns(epoch), 30e6);
        ewma.record(100 * MS, epoch);
        assert_eq!(
            ewma.estimate_ns(epoch),
            100e6,
            "a slower sample is taken at once"
        );
        let later = epoch + DECAY;
        let expect = 100e6 * (-1f64).exp();
        assert!((ewma.estimate_ns(later) - expect).abs() < 1.0);
        // A fast sample right after a slow one moves the estimate only slightly...
        ewma.record(10 * MS, epoch + MS);
        assert!(ewma.estimate_ns(epoch + MS) > 99e6);
        // ...while one after a long quiet period dominates it.
        ewma.record(10 * MS, epoch + 60 * DECAY);
        assert!((ewma.estimate_ns(epoch + 60 * DECAY) - 10e6).abs() < 1e3);
    }

    #[test]
    fn prefers_lower_latency_then_recovers() -> Result<(), BalanceError> {
        let t0 = Instant::now();
        let eps = endpoints(3, t0);
        let b = Balancer::new(&LoadBalancer::PeakEwma, eps.clone())?;
        let picks = 10_000;
        // No samples: equal estimates, so uniform.
        for c in histogram(&b, picks, 1, t0) {
            assert!((c as f64 / picks as f64 - 1.0 / 3.0).abs() < 0.02, "{c}");
        }
        // Endpoint 0 answers in 200 ms, the others in 10 ms.
        for k in 0..20 {
            let t = t0 + k * 10 * MS;
            eps[0].finish_request(Some(200 * MS), t);
            eps[1].finish_request(Some(10 * MS), t);
            eps[2].finish_request(Some(10 * MS), t);
        }
        let now = t0 + 200 * MS;
        assert!(eps[0].rtt_estimate(now) > 150 * MS);
        let counts = histogram(&b, picks, 2, now);
        // Endpoint 0 loses every comparison; the others split traffic evenly.
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1].abs_diff(counts[2]) < picks / 25, "{counts:?}");
        // Latency x (outstanding + 1): enough queued requests outweigh a faster endpoint.
        eps[1].set_outstanding(40);
        eps[2].set_outstanding(40);
        let counts = histogram(&b, picks, 3, now);
        assert!(counts[0] > picks / 2, "{counts:?}");
        eps[1].set_outstanding(0);
        eps[2].set_outstanding(0);
        // Endpoints 1 and 2 keep answering in 10 ms while 0 gets no traffic: after a
        // minute its penalty has decayed below theirs and it is tried again.
        let mut t = now;
        while t < now + 6 * DECAY {
            t += 100 * MS;
            eps[1].finish_request(Some(10 * MS), t);
            eps[2].finish_request(Some(10 * MS), t);
        }
        let counts = histogram(&b, picks, 4, t);
        assert!(counts[0] > picks / 2, "{counts:?}");
        Ok(())
    }

    #[test]
    fn weights_one_to_three_at_equal_latency() -> Result<(), BalanceError> {
        let t0 = Instant::now();
        // No samples yet: equal estimates tie, and the weighted first draw decides.
        let b = Balancer::new(&LoadBalancer::PeakEwma, weighted(&[1, 3], t0))?;
        assert_shares(&histogram(&b, 4000, 31, t0), &[0.25, 0.75], 3.0);
        // Closed loop, every response 10 ms: the per-replica load levels out.
        let b = Balancer::new(&LoadBalancer::PeakEwma, weighted(&[1, 3], t0))?;
        assert_shares(&closed_loop(&b, 8000, 48, 32, t0), &[0.25, 0.75], 3.0);
        let eps = weighted(&[1, 3, 4], t0);
        let b = Balancer::new(&LoadBalancer::PeakEwma, eps.clone())?;
        assert_shares(
            &closed_loop(&b, 8000, 64, 33, t0),
            &[0.125, 0.375, 0.5],
            3.0,
        );
        eps[2].set_healthy(false);
        let counts = closed_loop(&b, 8000, 64, 34, t0);
        assert_eq!(counts[2], 0);
        assert_shares(&counts, &[0.25, 0.75, 0.0], 3.0);
        Ok(())
    }

    #[test]
    fn weight_does_not_hide_a_slow_endpoint() -> Result<(), BalanceError> {
        let t0 = Instant::now();
        let eps = weighted(&[1, 1, 4], t0);
        // The heavy endpoint answers in 200 ms, the light ones in 10 ms.
        eps[0].finish_request(Some(10 * MS), t0);
        eps[1].finish_request(Some(10 * MS), t0);
        eps[2].finish_request(Some(200 * MS), t0);
        let b = Balancer::new(&LoadBalancer::PeakEwma, eps)?;
        let counts = histogram(&b, 4000, 35, t0);
        // It wins only when drawn against itself, which distinct draws never do.
        assert_eq!(counts[2], 0, "{counts:?}");
        Ok(())
    }
}
