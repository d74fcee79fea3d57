use std::sync::Arc;
use std::time::{Duration, Instant};

use trellis_model::retry::RetryBudget as BudgetConfig;

use super::*;

const TTL: Duration = Duration::from_secs(10);

fn budget(now: Instant) -> RetryBudget {
    // Linkerd's default: 20%, 10 retries/s, 10 s.
    RetryBudget::new(&BudgetConfig::default(), now).unwrap_or_else(|e| panic!("{e}"))
}

fn withdraw_all(b: &RetryBudget, now: Instant) -> u64 {
    let mut n = 0;
    while b.try_withdraw(now) {
        n += 1;
        assert!(n <= 1_000_000, "budget never ran out");
    }
    n
}

#[test]
fn reserve_without_traffic() {
    let t0 = Instant::now();
    let b = budget(t0);
    assert_eq!(b.reserve(), 100);
    assert_eq!(b.available(t0), 100);
    assert_eq!(withdraw_all(&b, t0), 100);
    assert_eq!(b.available(t0), 0);
    // Retries expire from the window like requests do.
    assert_eq!(withdraw_all(&b, t0 + TTL - Duration::from_nanos(1)), 0);
    assert_eq!(withdraw_all(&b, t0 + TTL), 100);
}

#[test]
fn ratio_of_requests_with_traffic() {
    let t0 = Instant::now();
    let b = budget(t0);
    for i in 0..1000u32 {
        // Spread over half the window.
        b.deposit(t0 + Duration::from_millis(u64::from(i) * 5));
    }
    let now = t0 + Duration::from_secs(5);
    assert_eq!(b.available(now), 200 + 100);
    assert_eq!(withdraw_all(&b, now), 300);
}

#[test]
fn deposits_expire_after_ttl() {
    let t0 = Instant::now();
    let b = budget(t0);
    for _ in 0..1000 {
        b.deposit(t0);
    }
    assert_eq!(b.available(t0 + TTL - Duration::from_nanos(1)), 300);
    assert_eq!(b.available(t0 + TTL), 100);
    // A deposit made later in the window outlives the earlier ones.
    let t1 = t0 + Duration::from_secs(4);
    for _ in 0..50 {
        b.deposit(t1);
    }
    assert_eq!(b.available(t0 + TTL), 110);
    assert_eq!(b.available(t1 + TTL), 100);
    assert_eq!(b.ttl(), TTL);
}

#[test]
fn refuses_retry_storms() {
    let t0 = Instant::now();
    let b = budget(t0);
    let mut retries = 0u64;
    // 10,000 requests over one window, every one failing and retrying until refused
    // (each retry fails too).
    for i in 0..10_000u64 {
        let now = t0 + Duration::from_micros(i * 900);
        b.deposit(now);
        for _ in 0..3 {
            if b.try_withdraw(now) {
                retries += 1;
            }
        }
    }
    assert!(retries <= 2_000 + 100, "{retries} retries");
    assert!(
        retries >= 1_900,
        "{retries} retries: the budget should be used"
    );
}

#[test]
fn concurrent_withdrawals_never_exceed_the_budget() {
    let t0 = Instant::now();
    let b = Arc::new(budget(t0));
    for _ in 0..500 {
        b.deposit(t0);
    }
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || (0..1000).filter(|_| b.try_withdraw(t0)).count())
        })
        .collect();
    let total: usize = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(usize::MAX))
        .sum();
    assert!(total <= 200, "{total}");
    assert!(total > 0);
}

#[test]
fn late_instants_do_not_wipe_newer_buckets() {
    let t0 = Instant::now();
    let b = budget(t0);
    let late = t0 + Duration::from_secs(12);
    for _ in 0..100 {
        b.deposit(late);
    }
    // An Instant from another thread that is a window behind lands in the same slot.
    b.deposit(t0 + Duration::from_secs(2));
    assert_eq!(b.available(late), 100 + 20);
}

#[test]
fn invalid_configs_are_rejected() {
    let now = Instant::now();
    for ratio in [-0.1, f64::NAN, 1000.5] {
        let config = BudgetConfig {
            retry_ratio: ratio,
            ..BudgetConfig::default()
        };
        assert!(matches!(
            RetryBudget::new(&config, now),
            Err(BudgetError::Ratio(_))
        ));
    }
    let config = BudgetConfig {
        ttl: Duration::ZERO,
        ..BudgetConfig::default()
    };
    assert_eq!(
        RetryBudget::new(&config, now).err(),
        Some(BudgetError::ZeroTtl)
    );
}
