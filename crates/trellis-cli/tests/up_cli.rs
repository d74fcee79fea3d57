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
        &[
            "--mode",
            "explicit",
            "--explicit-range",
            "127.78.0.0/16",
            "--metrics-names",
            "both",
        ],
    );
    let gw = run.gateway;

    // The whole chain answers: orders called inventory and payments.
    let (status, body) = http_get(gw, "shop.local", "/orders", &[]);
    assert_eq!(status, 200, "{body}\n{}", run.logs());
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["service"], "orders");
    assert_eq!(upstream_services(&v), ["inventory", "payments"], "{body}");
    // `/` goes to the frontend, which calls orders.
    let (_, body) = http_get(gw, "shop.local", "/", &[]);
    assert_eq!(service_of(&body), "frontend", "{body}");
    // `--metrics-names both` reached the sidecars: the frontend's reports its call to orders
    // under Istio's names and Linkerd's.
    let stats = run.sidecar_stats("frontend-0");
    let reports = |prefix: &str, label: &str| {
        stats
            .lines()
            .any(|l| l.starts_with(prefix) && l.contains(label))
    };
    assert!(
        reports(
            "istio_requests_total{",
            "destination_service_name=\"orders\""
        ),
        "{stats}"
    );
    assert!(
        reports("response_total{", "dst_service=\"orders\""),
        "{stats}"
    );
    // Its inbound side reports the gateway's calls as the destination, naming the caller
    // (recorded as the last byte leaves: poll briefly).
    let from_gateway = "reporter=\"destination\",source_workload=\"ingressgateway\"";
    let named = (0..100).any(|_| {
        let stats = run.sidecar_stats("frontend-0");
        let found = stats.lines().any(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains(from_gateway)
                && l.contains("destination_workload=\"frontend-0\"")
        });
        if !found {
            std::thread::sleep(Duration::from_millis(20));
        }
        found
    });
    assert!(named, "{stats}");

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

#[test]
fn detached_up_runs_in_the_background_until_down() {
    let base = std::env::temp_dir().join(format!("trellis-up-test-detach-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (dir, gw) = shop_copy(&base.join("shop"));
    let state = base.join("state");
    let out = std::process::Command::new(BIN)
        .arg("up")
        .arg(&dir)
        .arg("--detach")
        .args(["--mode", "explicit", "--explicit-range", "127.79.0.0/16"])
        .args(["--xds-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--monitoring-addr", &format!("127.0.0.1:{}", free_port())])
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("run trellis up --detach");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("orders-v1-1") && stdout.contains("in the background"),
        "{stdout}"
    );
    // `trellis up --detach` returned, the mesh still serves.
    let (status, body) = http_get(gw, "shop.local", "/orders", &[]);
    assert_eq!(
        (status, service_of(&body).as_str()),
        (200, "orders"),
        "{body}"
    );
    let pids = pids_in(&state);
    assert_eq!(
        pids.len(),
        14,
        "the supervisor, 6 apps, 6 sidecars and a gateway: {pids:?}"
    );

    down(&[], &state);
    wait_all_gone(&pids);
    assert!(!state.join("state.json").exists());
    assert_eq!(
        http_get(gw, "shop.local", "/orders", &[]).0,
        0,
        "the gateway still answers"
    );
}

#[test]
fn transparent_mode_meshes_an_unmodified_client_and_leaves_nothing_behind() {
    if let Err(why) = transparent_possible() {
        eprintln!("skipped: {why}");
        return;
    }
    let run = UpRun::start(
        "transparent",
        &[
            "--mode",
            "transparent",
            "--pod-range",
            "10.79.0.0/16",
            "--net-prefix",
            "trlup",
        ],
    );
    // An unmodified client in the frontend's namespace calls a service by name: the name is
    // a virtual IP only capture makes reachable.
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "trlup-frontend-0",
            "curl",
            "-s",
            "--max-time",
            "10",
            "http://orders:8080/inside",
        ])
        .output()
        .expect("curl in the namespace");
    let body = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}\n{}", run.logs()));
    assert_eq!(
        (v["service"].as_str(), v["path"].as_str()),
        (Some("orders"), Some("/inside"))
    );
    assert_eq!(upstream_services(&v), ["inventory", "payments"], "{body}");
    // The frontend's sidecar saw the call (it was captured, not passed by).
    let stats = run.sidecar_stats("frontend-0");
    assert!(
        stats.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("reporter=\"source\"")
            && l.contains("destination_service=\"orders.shop.svc.cluster.local\"")),
        "{stats}"
    );
    // The gateway on the host reaches the namespaces too.
    assert_eq!(
        service_of(&http_get(run.gateway, "shop.local", "/orders", &[]).1),
        "orders"
    );

    let pids = run.pids();
    run.stop_and_check(&pids);
    assert_no_leftovers("trlup");
}

#[test]
fn down_cleans_up_after_a_killed_up() {
    if let Err(why) = transparent_possible() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut run = UpRun::start(
        "killed",
        &[
            "--mode",
            "transparent",
            "--pod-range",
            "10.80.0.0/16",
            "--net-prefix",
            "trlkill",
        ],
    );
    let pids = run.pids();
    let mut child = run.child.take().expect("running");
    child.kill().expect("SIGKILL trellis up");
    let _ = child.wait();
    // The namespaces outlive it; `trellis down` removes them and any process left.
    down(&["--net-prefix", "trlkill"], &run.state);
    wait_all_gone(&pids);
    assert_no_leftovers("trlkill");
}

/// The services a demo answer says it called, in order.
fn upstream_services(answer: &serde_json::Value) -> Vec<&str> {
    answer["upstream"]
        .as_array()
        .expect("an upstream list")
        .iter()
        .filter_map(|u| u["service"].as_str())
        .collect()
}
