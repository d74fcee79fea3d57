use std::sync::Arc;
use std::time::{Duration, Instant};

use trellis_model::policy::OutlierDetection;

use super::*;

const S: Duration = Duration::from_secs(1);

fn detector(
    config: OutlierDetection,
    endpoints: usize,
) -> (OutlierDetector, Vec<Arc<EndpointOutlier>>) {
    let d = OutlierDetector::new(&config);
    let eps = (0..endpoints).map(|_| d.add_endpoint()).collect();
    (d, eps)
}

fn all_ejecting() -> OutlierDetection {
    OutlierDetection {
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    }
}

/// Reports `n` outcomes; returns the last ejection, if any.
fn report_n(
    d: &OutlierDetector,
    ep: &Arc<EndpointOutlier>,
    outcome: Outcome,
    n: usize,
    now: Instant,
) -> Option<Ejection> {
    let mut last = None;
    for _ in 0..n {
        last = d.report(ep, outcome, now).or(last);
    }
    last
}

#[test]
fn ejects_after_consecutive_5xx_threshold() {
    let now = Instant::now();
    let (d, eps) = detector(all_ejecting(), 2);
    assert_eq!(report_n(&d, &eps[0], Outcome::Response(500), 4, now), None);
    assert!(!eps[0].is_ejected());
    let e = d.report(&eps[0], Outcome::Response(503), now);
    assert_eq!(
        e,
        Some(Ejection {
            reason: EjectReason::Consecutive5xx,
            duration: 30 * S
        })
    );
    assert!(eps[0].is_ejected() && !eps[1].is_ejected());
    let stats = d.stats();
    assert_eq!((stats.ejections_total, stats.ejections_active), (1, 1));
    // Outcomes while ejected are ignored.
    assert_eq!(report_n(&d, &eps[0], Outcome::Response(500), 10, now), None);
}

#[test]
fn success_resets_the_counters() {
    let now = Instant::now();
    let (d, eps) = detector(all_ejecting(), 1);
    for ok in [200, 404, 302] {
        report_n(&d, &eps[0], Outcome::Response(500), 4, now);
        assert_eq!(d.report(&eps[0], Outcome::Response(ok), now), None);
    }
    assert!(!eps[0].is_ejected());
    assert!(report_n(&d, &eps[0], Outcome::Response(500), 5, now).is_some());
}

#[test]
fn gateway_errors_have_their_own_counter() {
    let now = Instant::now();
    let config = OutlierDetection {
        consecutive_5xx_errors: Some(0),
        consecutive_gateway_errors: Some(3),
        ..all_ejecting()
    };
    let (d, eps) = detector(config, 1);
    // A 500 is a 5xx but not a gateway error: it resets the gateway counter.
    report_n(&d, &eps[0], Outcome::Response(502), 2, now);
    d.report(&eps[0], Outcome::Response(500), now);
    report_n(&d, &eps[0], Outcome::Response(504), 2, now);
    assert!(!eps[0].is_ejected());
    let e = d.report(&eps[0], Outcome::Response(503), now);
    assert_eq!(
        e.map(|e| e.reason),
        Some(EjectReason::ConsecutiveGatewayErrors)
    );
}

#[test]
fn max_ejection_percent_with_ten_endpoints() {
    let now = Instant::now();
    for (percent, allowed) in [(10, 1), (30, 3), (100, 10), (0, 0)] {
        let config = OutlierDetection {
            max_ejection_percent: percent,
            ..OutlierDetection::default()
        };
        let (d, eps) = detector(config, 10);
        for ep in &eps {
            report_n(&d, ep, Outcome::Response(500), 5, now);
        }
        let ejected = eps.iter().filter(|e| e.is_ejected()).count();
        assert_eq!(ejected, allowed, "max_ejection_percent {percent}");
        let stats = d.stats();
        assert_eq!(stats.ejections_active, allowed as u64);
        assert_eq!(stats.ejections_overflow, 10 - allowed as u64);
    }
    // Envoy's arithmetic: 10% of 3 endpoints allows no ejection at all.
    let (d, eps) = detector(OutlierDetection::default(), 3);
    report_n(&d, &eps[0], Outcome::Response(500), 5, now);
    assert!(!eps[0].is_ejected());
}

#[test]
fn min_health_percent_stops_ejection_and_reports_panic() {
    let now = Instant::now();
    let config = OutlierDetection {
        min_health_percent: 50,
        ..all_ejecting()
    };
    let (d, eps) = detector(config, 10);
    for ep in &eps {
        report_n(&d, ep, Outcome::Response(500), 5, now);
    }
    assert_eq!(eps.iter().filter(|e| e.is_ejected()).count(), 5);
    assert_eq!(d.stats().ejections_suppressed_min_health, 5);
    assert!(!d.in_panic());
    // Healthy endpoints leaving discovery push the healthy share under the threshold.
    for ep in eps.iter().filter(|e| !e.is_ejected()).take(2) {
        d.remove_endpoint(ep);
    }
    assert!(d.in_panic(), "3 healthy of 8 is below 50%");
    // Removing ejected endpoints ends their ejection.
    for ep in eps.iter().filter(|e| e.is_ejected()) {
        d.remove_endpoint(ep);
    }
    assert_eq!(d.stats().ejections_active, 0);
    assert!(!d.in_panic());
}

#[test]
fn ejection_time_grows_and_endpoints_return() {
    let t0 = Instant::now();
    let (d, eps) = detector(all_ejecting(), 1);
    let ep = &eps[0];
    let first = report_n(&d, ep, Outcome::Response(500), 5, t0);
    assert_eq!(first.map(|e| e.duration), Some(30 * S));
    assert_eq!(d.tick(t0 + 29 * S), 0);
    assert!(ep.is_ejected());
    assert_eq!(d.tick(t0 + 30 * S), 1);
    assert!(!ep.is_ejected());
    assert_eq!(d.stats().ejections_active, 0);

    // Ejected again right away: twice the base time.
    let t1 = t0 + 31 * S;
    let second = report_n(&d, ep, Outcome::Response(500), 5, t1);
    assert_eq!(second.map(|e| e.duration), Some(60 * S));
    d.tick(t1 + 59 * S);
    assert!(ep.is_ejected());
    d.tick(t1 + 60 * S);
    assert!(!ep.is_ejected());
    assert_eq!(d.stats().ejections_total, 2);

    // Healthy intervals let the multiplier decay back to one.
    let t2 = t1 + 60 * S;
    d.tick(t2 + 10 * S);
    d.tick(t2 + 20 * S);
    let third = report_n(&d, ep, Outcome::Response(500), 5, t2 + 21 * S);
    assert_eq!(third.map(|e| e.duration), Some(30 * S));
}

#[test]
fn ejection_time_is_capped() {
    let mut t = Instant::now();
    let config = OutlierDetection {
        base_ejection_time: 100 * S,
        ..all_ejecting()
    };
    let (d, eps) = detector(config, 1);
    let mut durations = Vec::new();
    for _ in 0..5 {
        let e = report_n(&d, &eps[0], Outcome::Response(500), 5, t);
        let dur = e.map_or(Duration::ZERO, |e| e.duration);
        durations.push(dur.as_secs());
        t += dur;
        d.tick(t);
    }
    assert_eq!(durations, [100, 200, 300, 300, 300]);
}

#[test]
fn local_origin_failures_count_as_5xx_without_split() {
    let now = Instant::now();
    let (d, eps) = detector(all_ejecting(), 2);
    let connect = Outcome::LocalFailure(LocalFailure::ConnectFailure);
    report_n(&d, &eps[0], connect, 2, now);
    report_n(
        &d,
        &eps[0],
        Outcome::LocalFailure(LocalFailure::Reset),
        1,
        now,
    );
    // ConnectSuccess means nothing without the split.
    d.report(&eps[0], Outcome::ConnectSuccess, now);
    d.report(&eps[0], Outcome::LocalFailure(LocalFailure::Timeout), now);
    let e = d.report(&eps[0], Outcome::Response(500), now);
    assert_eq!(e.map(|e| e.reason), Some(EjectReason::Consecutive5xx));

    // They are gateway errors too.
    let config = OutlierDetection {
        consecutive_5xx_errors: Some(0),
        consecutive_gateway_errors: Some(2),
        ..all_ejecting()
    };
    let (d, eps) = detector(config, 1);
    let e = report_n(
        &d,
        &eps[0],
        Outcome::LocalFailure(LocalFailure::Timeout),
        2,
        now,
    );
    assert_eq!(
        e.map(|e| e.reason),
        Some(EjectReason::ConsecutiveGatewayErrors)
    );
}

#[test]
fn local_origin_failures_are_separate_with_split() {
    let now = Instant::now();
    let config = OutlierDetection {
        split_external_local_origin_errors: true,
        consecutive_local_origin_failures: Some(3),
        ..all_ejecting()
    };
    let (d, eps) = detector(config, 2);
    let ep = &eps[0];
    let connect = Outcome::LocalFailure(LocalFailure::ConnectFailure);
    // Local failures do not feed the 5xx counter, nor reset it.
    report_n(&d, ep, Outcome::Response(500), 4, now);
    report_n(&d, ep, connect, 2, now);
    assert!(!ep.is_ejected());
    // A successful connection resets the local counter only.
    d.report(ep, Outcome::ConnectSuccess, now);
    report_n(&d, ep, connect, 2, now);
    assert!(!ep.is_ejected());
    let e = d.report(ep, Outcome::Response(502), now);
    assert_eq!(e.map(|e| e.reason), Some(EjectReason::Consecutive5xx));

    // The local threshold ejects on its own; a response resets it.
    let other = &eps[1];
    report_n(
        &d,
        other,
        Outcome::LocalFailure(LocalFailure::Timeout),
        2,
        now,
    );
    d.report(other, Outcome::Response(200), now);
    report_n(
        &d,
        other,
        Outcome::LocalFailure(LocalFailure::Reset),
        2,
        now,
    );
    assert!(!other.is_ejected());
    let e = d.report(other, connect, now);
    assert_eq!(
        e.map(|e| e.reason),
        Some(EjectReason::ConsecutiveLocalOriginFailures)
    );

    // Unset local threshold with the split means Envoy's 5.
    let config = OutlierDetection {
        split_external_local_origin_errors: true,
        ..all_ejecting()
    };
    let (d, eps) = detector(config, 1);
    assert_eq!(report_n(&d, &eps[0], connect, 4, now), None);
    assert!(d.report(&eps[0], connect, now).is_some());
}

#[test]
fn concurrent_failures_eject_once() {
    let now = Instant::now();
    let (d, eps) = detector(all_ejecting(), 1);
    let d = Arc::new(d);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (d, ep) = (Arc::clone(&d), Arc::clone(&eps[0]));
            std::thread::spawn(move || {
                report_n(&d, &ep, Outcome::Response(500), 100, now).is_some()
            })
        })
        .collect();
    let ejections = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|e| *e)
        .count();
    assert_eq!(ejections, 1);
    assert_eq!(d.stats().ejections_total, 1);
}

#[test]
fn unknown_and_removed_endpoints_are_ignored() {
    let now = Instant::now();
    let (d, eps) = detector(all_ejecting(), 3);
    let (other, foreign) = detector(all_ejecting(), 1);
    d.remove_endpoint(&eps[0]);
    d.remove_endpoint(&eps[0]);
    d.remove_endpoint(&foreign[0]);
    assert_eq!(report_n(&d, &eps[0], Outcome::Response(500), 5, now), None);
    assert_eq!(
        report_n(&d, &foreign[0], Outcome::Response(500), 5, now),
        None
    );
    // The endpoint moved into the freed slot is still found.
    assert!(report_n(&d, &eps[2], Outcome::Response(500), 5, now).is_some());
    assert_eq!(other.stats().ejections_total, 0);
}
