//! Outlier detection through the proxy: ejection after consecutive 5xx and return after
//! the (growing) ejection time, local-origin failures of a dead endpoint, and
//! `maxEjectionPercent`, asserted on backend counts and on the backend's outlier state as
//! the admin `/clusters` page reads it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use trellis_proxy::http::{ServeOptions, serve};
use trellis_proxy::runtime::Runtime;

use super::support::{Backend, Behaviour, LIMIT, client, dead_port, get, runtime};
use super::{HOST, TestClient, backends, config, counts, ports};

/// A proxy over `yaml` that also hands back the runtime, so the test can read the
/// backend's outlier state as the admin page would.
async fn proxy_with_state(yaml: &str) -> (SocketAddr, Arc<Runtime>, watch::Sender<Arc<Runtime>>) {
    let rt = Arc::new(runtime(yaml, |_| {}));
    let (tx, rx) = watch::channel(Arc::clone(&rt));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(serve(listener, rx, ServeOptions::default()));
    (addr, rt, tx)
}

/// The backend of the only cluster's only port.
fn backend_of(rt: &Runtime) -> Arc<trellis_proxy::runtime::Backend> {
    let cluster = rt.clusters().first().expect("one cluster");
    let (_, b) = cluster.set.ports().next().expect("one port");
    Arc::clone(b)
}

/// Sends `n` GETs one after another; returns how many got `status`.
async fn serial(c: &TestClient, proxy: SocketAddr, n: usize, status: u16) -> usize {
    let mut hits = 0;
    for _ in 0..n {
        hits += usize::from(get(c, proxy, HOST, "/").await.status == status);
    }
    hits
}

#[tokio::test]
async fn consecutive_5xx_ejects_and_the_endpoint_returns() {
    tokio::time::timeout(LIMIT, async {
        let bad = Behaviour {
            always_fail: true,
            status: 500,
            ..Behaviour::default()
        };
        let bs = backends(&[Behaviour::default(), bad]).await;
        let policy = "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 3, interval: 100ms, baseEjectionTime: 1s, maxEjectionPercent: 100}}";
        let (proxy, rt, _tx) = proxy_with_state(&config(&ports(&bs), policy)).await;
        let backend = backend_of(&rt);
        let c = client();
        // Round robin alternates: the bad endpoint answers three 500s, then is ejected.
        assert_eq!(serial(&c, proxy, 20, 500).await, 3);
        assert_eq!(counts(&bs), vec![17, 3]);
        assert!(backend.is_ejected(1) && !backend.is_ejected(0));
        assert_eq!(backend.ejection_count(1), 1);
        // Traffic over the next half second all goes to the healthy endpoint.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while tokio::time::Instant::now() < deadline {
            assert_eq!(serial(&c, proxy, 10, 200).await, 10);
        }
        assert_eq!(bs[1].count(), 3);
        // After the 1 s ejection it is back, fails three more times and is ejected for
        // longer (2 s: the backoff grew).
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(serial(&c, proxy, 20, 500).await, 3);
        assert_eq!(bs[1].count(), 6);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(serial(&c, proxy, 20, 200).await, 20);
        assert_eq!(bs[1].count(), 6, "second ejection lasted under 2 s");
        let stats = backend.outlier_stats().expect("outlier detection on");
        assert_eq!((stats.ejections_total, stats.ejections_active), (2, 1));
        assert_eq!(backend.ejection_count(1), 2);
    })
    .await
    .expect("within limit");
}

#[tokio::test]
async fn local_origin_failures_eject_a_dead_endpoint() {
    tokio::time::timeout(LIMIT, async {
        let good = Backend::ok("good").await;
        let dead = dead_port();
        let eps = [(good.port(), 1), (dead.port(), 1)];
        let policy = "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, interval: 100ms, baseEjectionTime: 30s, maxEjectionPercent: 100}}";
        let (proxy, rt, _tx) = proxy_with_state(&config(&eps, policy)).await;
        let c = client();
        let mut flags = Vec::new();
        for _ in 0..30 {
            let a = get(&c, proxy, HOST, "/").await;
            if a.status != 200 {
                flags.push(a.flag().to_owned());
            }
        }
        // Two connect failures (UF), then the dead endpoint is out.
        assert_eq!(flags, vec!["UF", "UF"]);
        assert_eq!(good.count(), 28);
        let backend = backend_of(&rt);
        assert!(backend.is_ejected(1));
    })
    .await
    .expect("within limit");
}

#[tokio::test]
async fn max_ejection_percent_keeps_one_bad_endpoint_in() {
    tokio::time::timeout(LIMIT, async {
        let bad = Behaviour {
            always_fail: true,
            status: 500,
            ..Behaviour::default()
        };
        let bs = backends(&[Behaviour::default(), bad, bad]).await;
        let policy = "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 3, interval: 100ms, baseEjectionTime: 30s, maxEjectionPercent: 50}}";
        let (proxy, rt, _tx) = proxy_with_state(&config(&ports(&bs), policy)).await;
        let c = client();
        serial(&c, proxy, 30, 200).await;
        let before = counts(&bs);
        serial(&c, proxy, 30, 200).await;
        let after = counts(&bs);
        // One bad endpoint is ejected (its count froze), the other still gets traffic.
        let grew: Vec<bool> = before.iter().zip(&after).map(|(b, a)| a > b).collect();
        assert!(grew[0], "{before:?} -> {after:?}");
        assert!(grew[1] != grew[2], "exactly one bad endpoint ejected: {before:?} -> {after:?}");
        let backend = backend_of(&rt);
        let stats = backend.outlier_stats().expect("outlier detection on");
        assert_eq!(stats.ejections_active, 1);
        assert!(stats.ejections_overflow >= 1, "{stats:?}");
    })
    .await
    .expect("within limit");
}
