use std::sync::{Arc, Barrier};
use std::thread;

use trellis_model::policy::ConnectionPool;

use super::*;

fn limits(f: impl FnOnce(&mut ConnectionPool)) -> ConnectionPoolLimits {
    let mut pool = ConnectionPool::default();
    f(&mut pool);
    ConnectionPoolLimits::new(&pool)
}

#[test]
fn defaults_are_istios_unlimited() {
    let l = limits(|p| p.http2_max_requests = Some(0));
    for (limit, max) in l.describe() {
        assert_eq!(max, UNLIMITED, "{limit}");
    }
    assert_eq!(l.max_requests_per_connection(), UNLIMITED);
    let held: Vec<_> = (0..10_000)
        .filter_map(|_| l.try_acquire_request().ok())
        .collect();
    assert_eq!(held.len(), 10_000);
}

#[test]
fn overflow_at_the_exact_limit_and_release_on_drop() {
    let l = limits(|p| {
        p.http2_max_requests = Some(3);
        p.max_retries = Some(1);
        p.http1_max_pending_requests = Some(2);
    });
    let mut held: Vec<Permit> = (0..3)
        .filter_map(|_| l.try_acquire_request().ok())
        .collect();
    assert_eq!(held.len(), 3);
    let err = l.try_acquire_request().err();
    assert_eq!(
        err,
        Some(Overflow {
            limit: Limit::Requests,
            max: 3
        })
    );
    let err = err.map(|e| (e.to_string(), e.response_flag()));
    assert_eq!(
        err,
        Some((
            "circuit breaker open: http2_max_requests of 3 reached".to_string(),
            crate::telemetry::ResponseFlag::UpstreamOverflow
        ))
    );
    assert_eq!(l.overflows(Limit::Requests), 1);
    assert_eq!(l.in_use(Limit::Requests), 3);
    // Limits are independent of each other.
    let retry = l.try_acquire_retry();
    assert!(retry.is_ok());
    assert_eq!(
        l.try_acquire_retry().err().map(|o| o.limit),
        Some(Limit::Retries)
    );
    assert!(l.try_acquire_pending().is_ok() && l.try_acquire_pending().is_ok());
    assert_eq!(l.in_use(Limit::PendingRequests), 0, "dropped at once");
    drop(retry);
    assert!(l.try_acquire_retry().is_ok());
    // Dropping one request permit admits exactly one more.
    held.pop();
    assert_eq!(l.in_use(Limit::Requests), 2);
    held.push(l.try_acquire_request().unwrap_or_else(|o| panic!("{o}")));
    assert!(l.try_acquire_request().is_err());
    drop(held);
    assert_eq!(l.in_use(Limit::Requests), 0);
}

#[test]
fn connections_and_requests_per_connection() {
    let l = limits(|p| {
        p.max_connections = Some(1);
        p.max_requests_per_connection = Some(2);
    });
    let conn = l.try_acquire_connection();
    assert!(l.try_acquire_connection().is_err());
    let conn = conn.unwrap_or_else(|o| panic!("{o}"));
    assert!(!conn.is_exhausted());
    assert!(conn.try_begin_request() && conn.try_begin_request());
    assert!(conn.is_exhausted());
    assert!(!conn.try_begin_request());
    assert_eq!(conn.requests_served(), 2);
    drop(conn);
    assert!(l.try_acquire_connection().is_ok());
}

#[test]
fn exactly_the_limit_is_admitted_under_contention() {
    const THREADS: usize = 32;
    let l = limits(|p| p.http2_max_requests = Some(10));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (l, barrier) = (l.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let permit = l.try_acquire_request();
                // Hold every permit until all threads have tried.
                barrier.wait();
                permit.is_ok()
            })
        })
        .collect();
    let admitted = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|ok| *ok)
        .count();
    assert_eq!(admitted, 10);
    assert_eq!(l.overflows(Limit::Requests), (THREADS - 10) as u64);
    assert_eq!(l.in_use(Limit::Requests), 0, "all released on drop");
}

#[test]
fn limit_never_exceeded_while_churning() {
    let l = limits(|p| p.max_retries = Some(4));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let l = l.clone();
            thread::spawn(move || {
                let mut max_seen = 0;
                let mut admitted = 0u32;
                for _ in 0..20_000 {
                    if let Ok(permit) = l.try_acquire_retry() {
                        admitted += 1;
                        max_seen = max_seen.max(l.in_use(Limit::Retries));
                        drop(permit);
                    }
                }
                (max_seen, admitted)
            })
        })
        .collect();
    let results: Vec<(u32, u32)> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or((u32::MAX, 0)))
        .collect();
    assert!(
        results.iter().all(|(max_seen, _)| *max_seen <= 4),
        "{results:?}"
    );
    assert!(results.iter().map(|(_, a)| a).sum::<u32>() > 0);
    assert_eq!(l.in_use(Limit::Retries), 0);
}
