//! Injected failures and latency. Statistical bounds are wide (±6 standard deviations)
//! and time is only bounded from below, so a busy machine cannot make these flake.

use std::time::{Duration, Instant};

use trellis_demo::DemoFlags;

use crate::support::{get, start};

#[tokio::test]
async fn half_the_requests_fail_at_rate_one_half() {
    let flags = DemoFlags {
        service: Some("orders".into()),
        fail_rate: Some("0.5".into()),
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    let mut failed = 0;
    for _ in 0..400 {
        match get(server.addr, "/", &[]).await.status {
            500 => failed += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // Binomial(400, 0.5): mean 200, standard deviation 10.
    assert!((140..=260).contains(&failed), "{failed} of 400 failed");
}

#[tokio::test]
async fn rate_one_always_fails_with_the_configured_status() {
    let flags = DemoFlags {
        service: Some("payments".into()),
        version: Some("v2".into()),
        pod: Some("payments-7".into()),
        ..DemoFlags::default()
    };
    // From the environment, as `trellis up` would set it.
    let env = [
        ("TRELLIS_DEMO_FAIL_RATE", "1"),
        ("TRELLIS_DEMO_FAIL_STATUS", "503"),
    ];
    let server = start(flags, &env).await;
    for _ in 0..20 {
        let answer = get(server.addr, "/pay", &[]).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let expected = serde_json::json!({
            "service": "payments", "version": "v2", "pod": "payments-7",
            "error": "injected failure",
        });
        assert_eq!(answer.json(), expected);
    }
    assert_eq!(get(server.addr, "/healthz", &[]).await.status, 200);
}

#[tokio::test]
async fn rate_zero_never_fails() {
    let flags = DemoFlags {
        fail_rate: Some("0".into()),
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    for _ in 0..50 {
        assert_eq!(get(server.addr, "/", &[]).await.status, 200);
    }
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let flags = DemoFlags {
        latency: Some("200ms".into()),
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    for _ in 0..3 {
        let started = Instant::now();
        let answer = get(server.addr, "/", &[]).await;
        assert_eq!(answer.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
    // Probes are never delayed; nothing to assert on time for them, only that they answer.
    assert_eq!(get(server.addr, "/healthz", &[]).await.status, 200);
}

#[tokio::test]
async fn jitter_adds_to_latency() {
    let flags = DemoFlags {
        latency: Some("0.1s".into()),
        latency_jitter: Some("100ms".into()),
        fail_rate: Some("1".into()),
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    for _ in 0..3 {
        let started = Instant::now();
        // Failures are delayed too: a slow, failing service is what timeouts are for.
        assert_eq!(get(server.addr, "/", &[]).await.status, 500);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
