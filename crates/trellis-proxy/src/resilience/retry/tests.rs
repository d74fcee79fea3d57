use http::Method;
use trellis_model::retry::{RetryOn, RetryPolicy};

use super::*;

fn classifier(retry_on: &str, retry_non_idempotent: bool) -> RetryClassifier {
    let retry_on = RetryOn::parse(retry_on).unwrap_or_else(|e| panic!("{e}"));
    RetryClassifier::new(&RetryPolicy {
        retry_on,
        retry_non_idempotent,
        ..RetryPolicy::default()
    })
}

fn grpc(code: u32) -> AttemptOutcome {
    AttemptOutcome::Response {
        status: 200,
        grpc_status: Some(code),
        rate_limited: false,
    }
}

const FAILURES: [AttemptOutcome; 6] = [
    AttemptOutcome::ConnectFailure,
    AttemptOutcome::RefusedStream,
    AttemptOutcome::ResetBeforeRequest,
    AttemptOutcome::Reset,
    AttemptOutcome::ProtocolError("header value"),
    AttemptOutcome::PerTryTimeout,
];

/// Which of [`FAILURES`] and of a set of statuses each condition covers.
#[test]
fn every_condition_covers_exactly_its_outcomes() {
    use AttemptOutcome::*;
    let statuses = [200, 404, 409, 429, 500, 501, 502, 503, 504, 599];
    let cases: &[(&str, &[AttemptOutcome], &[u16])] = &[
        ("5xx", &FAILURES, &[500, 501, 502, 503, 504, 599]),
        ("gateway-error", &FAILURES, &[502, 503, 504]),
        ("reset", &FAILURES, &[]),
        (
            "reset-before-request",
            &[ConnectFailure, RefusedStream, ResetBeforeRequest],
            &[],
        ),
        ("connect-failure", &[ConnectFailure], &[]),
        ("refused-stream", &[RefusedStream], &[]),
        ("retriable-4xx", &[], &[409]),
        ("429,501", &[], &[429, 501]),
        ("envoy-ratelimited", &[], &[]),
        ("retriable-headers,http3-post-connect-failure", &[], &[]),
        ("unavailable,cancelled,internal", &[], &[]),
    ];
    for &(retry_on, failures, codes) in cases {
        let c = classifier(retry_on, true);
        for f in FAILURES {
            assert_eq!(c.covers(f), failures.contains(&f), "{retry_on} / {f:?}");
        }
        for s in statuses {
            let covered = c.covers(AttemptOutcome::status(s));
            assert_eq!(covered, codes.contains(&s), "{retry_on} / {s}");
        }
    }
}

#[test]
fn grpc_conditions_read_grpc_status() {
    let names = [
        ("cancelled", 1),
        ("deadline-exceeded", 4),
        ("resource-exhausted", 8),
        ("internal", 13),
        ("unavailable", 14),
    ];
    for (name, code) in names {
        let c = classifier(name, true);
        for other in 0..=16 {
            assert_eq!(
                c.covers(grpc(other)),
                other == code,
                "{name} / grpc {other}"
            );
        }
    }
    // Istio's default covers UNAVAILABLE and CANCELLED, not INTERNAL.
    let d = RetryClassifier::new(&RetryPolicy::default());
    assert!(d.covers(grpc(14)) && d.covers(grpc(1)) && !d.covers(grpc(13)));
    assert!(d.covers(AttemptOutcome::status(503)) && !d.covers(AttemptOutcome::status(500)));
}

#[test]
fn rate_limited_responses_only_under_envoy_ratelimited() {
    let limited = AttemptOutcome::Response {
        status: 503,
        grpc_status: None,
        rate_limited: true,
    };
    assert!(!classifier("5xx,503", true).covers(limited));
    assert!(classifier("envoy-ratelimited", true).covers(limited));
}

/// The idempotency table: method × outcome × `retry_non_idempotent`.
#[test]
fn idempotency_rule() {
    let c = classifier("5xx", false);
    let lenient = classifier("5xx", true);
    let idempotent = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ];
    let unsafe_methods = [Method::POST, Method::PATCH, Method::CONNECT];
    let reached = [
        AttemptOutcome::status(500),
        AttemptOutcome::Reset,
        AttemptOutcome::ProtocolError("status line"),
        AttemptOutcome::PerTryTimeout,
    ];
    let not_reached = [
        AttemptOutcome::ConnectFailure,
        AttemptOutcome::RefusedStream,
        AttemptOutcome::ResetBeforeRequest,
    ];
    for m in &idempotent {
        for o in reached.iter().chain(&not_reached) {
            assert_eq!(c.decide(*o, m, true, 0), RetryDecision::Retry, "{m} {o:?}");
        }
    }
    for m in &unsafe_methods {
        for o in reached {
            let want = RetryDecision::DoNotRetry(NoRetry::NonIdempotent);
            assert_eq!(c.decide(o, m, true, 0), want, "{m} {o:?}");
            assert_eq!(
                lenient.decide(o, m, true, 0),
                RetryDecision::Retry,
                "{m} {o:?}"
            );
        }
        for o in not_reached {
            assert_eq!(c.decide(o, m, true, 0), RetryDecision::Retry, "{m} {o:?}");
        }
    }
}

#[test]
fn decision_order_and_attempts() {
    let c = classifier("5xx", true);
    let get = Method::GET;
    let fail = AttemptOutcome::status(503);
    assert_eq!(c.decide(fail, &get, true, 0), RetryDecision::Retry);
    assert_eq!(c.decide(fail, &get, true, 1), RetryDecision::Retry);
    let exhausted = c.decide(fail, &get, true, 2);
    assert_eq!(
        exhausted,
        RetryDecision::DoNotRetry(NoRetry::AttemptsExhausted)
    );
    assert_eq!(
        NoRetry::AttemptsExhausted.response_flag().map(|f| f.code()),
        Some("URX")
    );
    assert_eq!(NoRetry::NotRetriable.response_flag(), None);
    // A success is not retriable, whatever the count.
    let ok = c.decide(AttemptOutcome::status(200), &get, true, 5);
    assert_eq!(ok, RetryDecision::DoNotRetry(NoRetry::NotRetriable));
    // A body that was not kept cannot be re-sent, even after a connect failure.
    let no_body = c.decide(AttemptOutcome::ConnectFailure, &get, false, 0);
    assert_eq!(
        no_body,
        RetryDecision::DoNotRetry(NoRetry::BodyNotReplayable)
    );
    // attempts: 0 disables retries before anything else.
    let off = RetryClassifier::new(&RetryPolicy {
        attempts: 0,
        ..RetryPolicy::default()
    });
    let d = off.decide(AttemptOutcome::ConnectFailure, &get, true, 0);
    assert_eq!(d, RetryDecision::DoNotRetry(NoRetry::Disabled));
    // Non-idempotence is reported before the exhausted count (no URX for a POST).
    let strict = classifier("5xx", false);
    let post = strict.decide(fail, &Method::POST, true, 9);
    assert_eq!(post, RetryDecision::DoNotRetry(NoRetry::NonIdempotent));
}

#[test]
fn out_of_range_status_codes_are_ignored() {
    let mut policy = RetryPolicy::default();
    policy.retry_on.status_codes = vec![700, 65535, 418];
    let c = RetryClassifier::new(&policy);
    assert!(c.covers(AttemptOutcome::status(418)));
    assert!(!c.covers(AttemptOutcome::status(700)) && !c.covers(AttemptOutcome::status(65535)));
}
