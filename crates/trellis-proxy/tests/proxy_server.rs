//! `trellis proxy` as a library: a configuration directory served with live reload, the
//! admin endpoint and graceful drain, end to end over 127.0.0.1.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use support::{Backend, Behaviour, LIMIT, TempDir, client, get, service_entry, subsets_v1_v2};
use trellis_proxy::server::{ProxyServer, ProxySettings, Stop};

const HOST: &str = "orders.shop.svc.cluster.local";

/// orders with endpoints v1 and v2 and a VirtualService splitting `w1`/`w2` between them.
fn mesh(v1: &Backend, v2: &Backend, w1: u32, w2: u32) -> String {
    service_entry("orders", "HTTP", &[(v1.port(), "v1"), (v2.port(), "v2")])
        + &subsets_v1_v2("orders", HOST)
        + &format!(
            r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: orders, namespace: shop}}
spec:
  hosts: [{HOST}]
  http:
  - route:
    - {{destination: {{host: {HOST}, subset: v1}}, weight: {w1}}}
    - {{destination: {{host: {HOST}, subset: v2}}, weight: {w2}}}
"#
        )
}

fn settings(dir: &TempDir) -> ProxySettings {
    let mut s = ProxySettings::new(vec![dir.0.clone()]);
    s.outbound_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.health_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    s.load.default_namespace = "shop".into();
    s.runtime.client_namespace = "shop".into();
    s
}

/// Writes `text` as the config file the way editors save: a temporary file renamed over it.
fn save(dir: &TempDir, text: &str) {
    let tmp = dir.0.join(".mesh.yaml.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.0.join("mesh.yaml")).expect("rename");
}

async fn admin(server: &ProxyServer, path: &str) -> (StatusCode, String) {
    let c = client();
    let a = get(&c, server.admin_addr(), "admin", path).await;
    (a.status, a.body)
}

/// Polls until `f` holds or `within` passes; returns how long it took.
async fn eventually<F, Fut>(within: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_drops_nothing_and_applies_within_a_second() {
    tokio::time::timeout(LIMIT, async {
        let v1 = Backend::ok("v1").await;
        let v2 = Backend::ok("v2").await;
        let dir = TempDir::new("reload");
        save(&dir, &mesh(&v1, &v2, 100, 0));
        let server = ProxyServer::start(settings(&dir)).await.expect("starts");
        let proxy = server.outbound_addr();

        // Four clients send requests back to back for the whole test.
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let mut load = Vec::new();
        for _ in 0..4 {
            let (stop, failures, sent) = (stop.clone(), failures.clone(), sent.clone());
            load.push(tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let a = get(&c, proxy, HOST, "/").await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    if a.status != StatusCode::OK {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let c = client();
        for (round, (w1, w2, want)) in [(0, 100, "v2"), (100, 0, "v1"), (0, 100, "v2")]
            .into_iter()
            .enumerate()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            save(&dir, &mesh(&v1, &v2, w1, w2));
            let took = eventually(Duration::from_secs(3), || {
                let c = &c;
                async move {
                    // Every answer from now on comes from the new destination.
                    let mut all = true;
                    for _ in 0..5 {
                        all &= get(c, proxy, HOST, "/").await.body == want;
                    }
                    all
                }
            })
            .await
            .unwrap_or_else(|| panic!("round {round}: change to {want} never applied"));
            assert!(
                took < Duration::from_secs(1),
                "round {round}: applied after {took:?}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for l in load {
            l.await.expect("load task");
        }
        assert!(sent.load(Ordering::Relaxed) > 100, "the load ran");
        assert_eq!(
            failures.load(Ordering::Relaxed),
            0,
            "no request failed during reloads"
        );
        let view = server.store().view();
        assert_eq!(view.active.version, 4);
        assert_eq!(view.reloads_accepted, 3);
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_change_is_refused_and_the_old_config_keeps_serving() {
    tokio::time::timeout(LIMIT, async {
        let v1 = Backend::ok("v1").await;
        let v2 = Backend::ok("v2").await;
        let dir = TempDir::new("invalid");
        save(&dir, &mesh(&v1, &v2, 100, 0));
        let server = ProxyServer::start(settings(&dir)).await.expect("starts");
        let c = client();
        // An analyzer error (a route to a subset that does not exist) and a YAML error.
        let bad_subset = mesh(&v1, &v2, 0, 100).replace("subset: v2}", "subset: v3}");
        for (n, (what, text)) in [
            ("unknown subset", bad_subset),
            ("broken YAML", mesh(&v1, &v2, 0, 100) + "spec: [\n"),
        ]
        .into_iter()
        .enumerate()
        {
            save(&dir, &text);
            let refused = eventually(Duration::from_secs(3), || async {
                server.store().view().reloads_rejected > n as u64
            })
            .await;
            assert!(refused.is_some(), "{what}: refused");
            for _ in 0..20 {
                let a = get(&c, server.outbound_addr(), HOST, "/").await;
                assert_eq!(
                    (a.status, a.body.as_str()),
                    (StatusCode::OK, "v1"),
                    "{what}"
                );
            }
        }
        let view = server.store().view();
        assert_eq!(view.active.version, 1, "nothing applied");
        assert_eq!(view.reloads_rejected, 2);
        let why = view
            .last_rejection
            .expect("rejection")
            .diagnostics
            .join("\n");
        assert!(why.contains("mesh.yaml:"), "names the file and line: {why}");
        let (_, metrics) = admin(&server, "/stats/prometheus").await;
        assert!(
            metrics.contains(r#"trellis_config_reloads_total{result="rejected"} 2"#),
            "{metrics}"
        );
        let (_, dump) = admin(&server, "/config_dump").await;
        assert!(
            dump.contains("\"last_rejection\"") && dump.contains("mesh.yaml"),
            "{dump}"
        );
        // A valid change afterwards applies.
        save(&dir, &mesh(&v1, &v2, 0, 100));
        let applied = eventually(Duration::from_secs(3), || async {
            get(&c, server.outbound_addr(), HOST, "/").await.body == "v2"
        })
        .await;
        assert!(applied.is_some());
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_pages() {
    tokio::time::timeout(LIMIT, async {
        let v1 = Backend::ok("v1").await;
        let v2 = Backend::ok("v2").await;
        let dir = TempDir::new("admin");
        save(&dir, &mesh(&v1, &v2, 50, 50));
        let server = ProxyServer::start(settings(&dir)).await.expect("starts");
        assert_eq!(
            admin(&server, "/ready").await,
            (StatusCode::OK, "LIVE\n".into())
        );

        let (status, clusters) = admin(&server, "/clusters").await;
        assert_eq!(status, StatusCode::OK);
        let v1_line = format!(
            "outbound|8080|v1|{HOST}::127.0.0.1:{}::health_flags::healthy",
            v1.port()
        );
        assert!(clusters.contains(&v1_line), "{clusters}");
        let (_, json) = admin(&server, "/clusters?format=json").await;
        let json: serde_json::Value = serde_json::from_str(&json).expect("json");
        let subsets: Vec<&str> = json
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|c| c["subset"].as_str())
            .collect();
        assert_eq!(subsets, ["v1", "v2"]);

        let (_, dump) = admin(&server, "/config_dump").await;
        let dump: serde_json::Value = serde_json::from_str(&dump).expect("json");
        assert_eq!(dump["active"]["version"], 1);
        let hosts: Vec<&str> = dump["active"]["mesh"]["services"]
            .as_array()
            .expect("services")
            .iter()
            .filter_map(|s| s["host"].as_str())
            .collect();
        assert_eq!(hosts, [HOST]);

        let (status, metrics) = admin(&server, "/stats/prometheus").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            metrics.contains("# TYPE istio_requests counter"),
            "{metrics}"
        );

        assert_eq!(admin(&server, "/nope").await.0, StatusCode::NOT_FOUND);
        let health = server.health_addr().expect("health port");
        let c = client();
        let probe = get(&c, health, "health", "/healthz/ready").await;
        assert_eq!(
            (probe.status, probe.body.as_str()),
            (StatusCode::OK, "LIVE\n")
        );
        let other = get(&c, health, "health", "/config_dump").await;
        assert_eq!(
            other.status,
            StatusCode::NOT_FOUND,
            "only the probe on the health port"
        );
        assert_eq!(
            admin(&server, "/quitquitquit").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitquitquit_stops_the_proxy() {
    tokio::time::timeout(LIMIT, async {
        let v1 = Backend::ok("v1").await;
        let v2 = Backend::ok("v2").await;
        let dir = TempDir::new("quit");
        save(&dir, &mesh(&v1, &v2, 100, 0));
        let server = ProxyServer::start(settings(&dir)).await.expect("starts");
        let outbound = server.outbound_addr();
        let req = http::Request::post(format!("http://{}/quitquitquit", server.admin_addr()))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request");
        let resp = client().request(req).await.expect("admin answers");
        assert_eq!(resp.status(), StatusCode::OK);
        tokio::time::timeout(Duration::from_secs(5), server.wait())
            .await
            .expect("stopped");
        assert!(
            tokio::net::TcpStream::connect(outbound).await.is_err(),
            "the outbound listener is closed"
        );
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_in_flight_requests_and_refuses_new_ones() {
    tokio::time::timeout(LIMIT, async {
        let slow = Backend::start(
            "slow",
            Behaviour {
                delay: Duration::from_millis(800),
                ..Behaviour::default()
            },
        )
        .await;
        let dir = TempDir::new("drain");
        save(&dir, &mesh(&slow, &slow, 100, 0));
        let server = ProxyServer::start(settings(&dir)).await.expect("starts");
        let outbound = server.outbound_addr();
        let in_flight = tokio::spawn(async move { get(&client(), outbound, HOST, "/").await });
        // Let the request reach the backend, then ask for a drain.
        let reached = eventually(Duration::from_secs(3), || async { slow.count() == 1 }).await;
        assert!(reached.is_some());
        server.stop(Stop::Drain);
        let refused = eventually(Duration::from_secs(2), || async {
            tokio::net::TcpStream::connect(outbound).await.is_err()
        })
        .await;
        assert!(
            refused.is_some(),
            "new connections are refused while draining"
        );
        let a = in_flight.await.expect("request task");
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "slow"));
        tokio::time::timeout(Duration::from_secs(6), server.wait())
            .await
            .expect("stops after the drain");
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_admin_metrics_and_idle_connections_do_not_hold_the_drain() {
    tokio::time::timeout(LIMIT, async {
        let v1 = Backend::ok("v1").await;
        let v2 = Backend::ok("v2").await;
        let dir = TempDir::new("metrics");
        save(&dir, &mesh(&v1, &v2, 100, 0));
        let mut s = settings(&dir);
        s.drain_timeout = Duration::from_secs(30);
        let server = ProxyServer::start(s).await.expect("starts");
        // A keep-alive client: its pooled connection stays open after the answers.
        let c = client();
        for _ in 0..3 {
            assert_eq!(
                get(&c, server.outbound_addr(), HOST, "/").await.status,
                StatusCode::OK
            );
        }
        // A request is recorded as its last byte leaves, a moment before or after the
        // client has it: poll briefly.
        let v1_series = |metrics: &str| {
            metrics
                .lines()
                .find(|l| {
                    l.starts_with("istio_requests_total{")
                        && l.contains("destination_version=\"v1\"")
                })
                .map(str::to_owned)
        };
        let mut line = None;
        for _ in 0..100 {
            let (_, metrics) = admin(&server, "/stats/prometheus").await;
            line = v1_series(&metrics);
            if line.as_deref().is_some_and(|l| l.ends_with(" 3")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let line = line.expect("a v1 series");
        assert!(line.ends_with(" 3"), "{line}");
        server.stop(Stop::Drain);
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), server.wait())
            .await
            .expect("the idle keep-alive connection is closed, not waited for");
        assert!(started.elapsed() < Duration::from_secs(10));
    })
    .await
    .expect("finished in time");
}
