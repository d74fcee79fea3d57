//! End-to-end load balancing and outlier detection over real sockets on 127.0.0.1: every
//! algorithm's distribution through the proxy, consistent-hash stickiness and minimal
//! remapping (header, cookie, source IP, query parameter; ring hash and Maglev), and
//! outlier ejection and return, asserted on what reaches counting backends.

mod support;

#[path = "http_balancing/outlier.rs"]
mod outlier;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::{Backend, Behaviour, LIMIT, TestProxy, client, get, runtime, send};

const HOST: &str = "lb.shop.svc.cluster.local";

type TestClient = Client<HttpConnector, Full<Bytes>>;

/// A ServiceEntry `lb` with one 127.0.0.1 endpoint per `(port, weight)` and a
/// DestinationRule whose trafficPolicy is `policy` (YAML flow mapping; none when empty).
fn config(endpoints: &[(u16, u32)], policy: &str) -> String {
    let eps: String = endpoints
        .iter()
        .map(|(port, w)| {
            format!("  - {{address: 127.0.0.1, ports: {{http: {port}}}, weight: {w}}}\n")
        })
        .collect();
    let entry = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: lb, namespace: shop}}\nspec:\n  hosts: [{HOST}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: 8080, name: http, protocol: HTTP}}\n  endpoints:\n{eps}---\n"
    );
    if policy.is_empty() {
        return entry;
    }
    format!(
        "{entry}apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: lb, namespace: shop}}\nspec:\n  host: {HOST}\n  trafficPolicy: {policy}\n---\n"
    )
}

/// Starts `n` backends with `behaviour` named `b0`, `b1`, ….
async fn backends(behaviours: &[Behaviour]) -> Vec<Backend> {
    const NAMES: [&str; 4] = ["b0", "b1", "b2", "b3"];
    let mut out = Vec::new();
    for (name, b) in NAMES.iter().zip(behaviours) {
        out.push(Backend::start(name, *b).await);
    }
    out
}

fn ports(bs: &[Backend]) -> Vec<(u16, u32)> {
    bs.iter().map(|b| (b.port(), 1)).collect()
}

fn counts(bs: &[Backend]) -> Vec<usize> {
    bs.iter().map(Backend::count).collect()
}

/// Sends `n` GETs, `concurrency` at a time, each on its own pooled client.
async fn load(proxy: SocketAddr, n: usize, concurrency: usize) {
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let share = n / concurrency + usize::from(w < n % concurrency);
        tasks.push(tokio::spawn(async move {
            let c = client();
            for _ in 0..share {
                let a = get(&c, proxy, HOST, "/").await;
                assert_eq!(a.status, 200, "{a:?}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
}

#[tokio::test]
async fn round_robin_is_even() {
    tokio::time::timeout(LIMIT, async {
        let bs = backends(&[Behaviour::default(); 3]).await;
        let proxy = TestProxy::start(&config(
            &ports(&bs),
            "{loadBalancer: {simple: ROUND_ROBIN}}",
        ))
        .await;
        load(proxy.addr, 1200, 1).await;
        for c in counts(&bs) {
            assert!(c.abs_diff(400) <= 2, "{:?}", counts(&bs));
        }
    })
    .await
    .expect("within limit");
}

#[tokio::test]
async fn random_spreads_within_tolerance() {
    tokio::time::timeout(LIMIT, async {
        let bs = backends(&[Behaviour::default(); 3]).await;
        let proxy =
            TestProxy::start(&config(&ports(&bs), "{loadBalancer: {simple: RANDOM}}")).await;
        load(proxy.addr, 3000, 4).await;
        // Binomial sd is ~26; 150 is almost six of them.
        for c in counts(&bs) {
            assert!(c.abs_diff(1000) <= 150, "{:?}", counts(&bs));
        }
    })
    .await
    .expect("within limit");
}

#[tokio::test]
async fn weighted_endpoints_follow_their_weights() {
    tokio::time::timeout(LIMIT, async {
        let bs = backends(&[Behaviour::default(); 2]).await;
        let eps = [(bs[0].port(), 1), (bs[1].port(), 3)];
        let proxy = TestProxy::start(&config(&eps, "{loadBalancer: {simple: RANDOM}}")).await;
        load(proxy.addr, 2000, 4).await;
        // Expect 500 / 1500; binomial sd ~19.
        let c = counts(&bs);
        assert!(c[0].abs_diff(500) <= 120 && c[0] + c[1] == 2000, "{c:?}");
    })
    .await
    .expect("within limit");
}

/// Two fast endpoints and one that takes 100 ms: `policy` must keep most traffic away
/// from the slow one under concurrent load.
async fn slow_endpoint_is_avoided(policy: &str, max_slow_share: f64) {
    let fast = Behaviour::default();
    let slow = Behaviour {
        delay: Duration::from_millis(100),
        ..Behaviour::default()
    };
    let bs = backends(&[fast, fast, slow]).await;
    let proxy = TestProxy::start(&config(&ports(&bs), policy)).await;
    load(proxy.addr, 1200, 8).await;
    let c = counts(&bs);
    let share = c[2] as f64 / 1200.0;
    assert!(share <= max_slow_share, "{policy}: {c:?}");
    // The fast ones share the rest.
    assert!(c[0] > 200 && c[1] > 200, "{policy}: {c:?}");
}

#[tokio::test]
async fn least_request_favours_fast_endpoints() {
    tokio::time::timeout(
        LIMIT,
        slow_endpoint_is_avoided("{loadBalancer: {simple: LEAST_REQUEST}}", 0.15),
    )
    .await
    .expect("within limit");
}

#[tokio::test]
async fn default_peak_ewma_avoids_a_slow_endpoint() {
    // No loadBalancer: the default, latency-aware peak EWMA.
    tokio::time::timeout(LIMIT, slow_endpoint_is_avoided("", 0.05))
        .await
        .expect("within limit");
}

/// Which backend (by `x-backend`) answered each key, sending the key with `request`.
async fn placement<F>(c: &TestClient, proxy: SocketAddr, keys: usize, request: F) -> Vec<String>
where
    F: Fn(usize) -> (String, Vec<(&'static str, String)>),
{
    let mut out = Vec::with_capacity(keys);
    for k in 0..keys {
        let (path, headers) = request(k);
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let a = send(c, proxy, Method::GET, HOST, &path, &h).await;
        assert_eq!(a.status, 200, "{a:?}");
        out.push(a.header("x-backend").to_owned());
    }
    out
}

/// Stickiness over 200 keys (each sent three times), spread over all endpoints, and
/// minimal remapping when the last endpoint leaves.
async fn sticky_and_minimal_remap<F>(algorithm: &str, max_moved_percent: usize, request: F)
where
    F: Fn(usize) -> (String, Vec<(&'static str, String)>) + Copy,
{
    let bs = backends(&[Behaviour::default(); 3]).await;
    let policy = format!("{{loadBalancer: {{consistentHash: {algorithm}}}}}");
    let proxy = TestProxy::start(&config(&ports(&bs), &policy)).await;
    let c = client();
    let first = placement(&c, proxy.addr, 200, request).await;
    for _ in 0..2 {
        assert_eq!(
            placement(&c, proxy.addr, 200, request).await,
            first,
            "{algorithm}: not sticky"
        );
    }
    let mut per: HashMap<&str, usize> = HashMap::new();
    first.iter().for_each(|b| *per.entry(b).or_default() += 1);
    assert_eq!(per.len(), 3, "{algorithm}: {per:?}");
    assert!(per.values().all(|&n| n >= 20), "{algorithm}: {per:?}");

    proxy.update(runtime(&config(&ports(&bs[..2]), &policy), |_| {}));
    let after = placement(&c, proxy.addr, 200, request).await;
    let (mut kept_total, mut moved) = (0, 0);
    for (before, now) in first.iter().zip(&after) {
        assert_ne!(now, "b2", "{algorithm}: removed endpoint still used");
        if before != "b2" {
            kept_total += 1;
            moved += usize::from(before != now);
        }
    }
    // The removed endpoint's keys move; of the others at most `max_moved_percent` (about
    // 1/6 expected for the ring, whose survivors get more entries to keep its size, as in
    // Envoy; about 1% for Maglev; hashing modulo N would move about half).
    assert!(
        moved * 100 <= kept_total * max_moved_percent,
        "{algorithm}: {moved} of {kept_total} moved"
    );
}

const RING: &str = "{httpHeaderName: x-user, ringHash: {minimumRingSize: 1024}}";
const MAGLEV: &str = "{httpHeaderName: x-user, maglev: {tableSize: 65537}}";

fn by_header(k: usize) -> (String, Vec<(&'static str, String)>) {
    ("/".into(), vec![("x-user", format!("user-{k}"))])
}

#[tokio::test]
async fn ring_hash_by_header_is_sticky_and_remaps_minimally() {
    tokio::time::timeout(LIMIT, sticky_and_minimal_remap(RING, 33, by_header))
        .await
        .expect("within limit");
}

#[tokio::test]
async fn maglev_by_header_is_sticky_and_remaps_minimally() {
    tokio::time::timeout(LIMIT, sticky_and_minimal_remap(MAGLEV, 10, by_header))
        .await
        .expect("within limit");
}

#[tokio::test]
async fn query_parameter_hashing_is_sticky() {
    let query = |k: usize| (format!("/items?page=2&user={k}"), Vec::new());
    tokio::time::timeout(
        LIMIT,
        sticky_and_minimal_remap(
            "{httpQueryParameterName: user, maglev: {tableSize: 65537}}",
            10,
            query,
        ),
    )
    .await
    .expect("within limit");
}

#[tokio::test]
async fn cookie_hashing_sets_the_cookie_and_sticks() {
    tokio::time::timeout(LIMIT, async {
        let bs = backends(&[Behaviour::default(); 3]).await;
        let policy =
            "{loadBalancer: {consistentHash: {httpCookie: {name: session, path: /, ttl: 60s}}}}";
        let proxy = TestProxy::start(&config(&ports(&bs), policy)).await;
        let mut seen = HashMap::<String, usize>::new();
        for _ in 0..30 {
            // A fresh client per session: a new connection, so a new generated value.
            let c = client();
            let first = get(&c, proxy.addr, HOST, "/").await;
            let cookie = first.header("set-cookie").to_owned();
            let value = cookie
                .strip_prefix("session=\"")
                .and_then(|r| r.split_once('"'))
                .map(|(v, rest)| (v.to_owned(), rest.to_owned()));
            let Some((value, attrs)) = value else {
                panic!("no generated cookie: {cookie:?}");
            };
            assert_eq!(attrs, "; Max-Age=60; Path=/; HttpOnly");
            assert_eq!(value.len(), 16);
            let backend = first.header("x-backend").to_owned();
            let sent = format!("other=1; session={value}");
            for _ in 0..10 {
                let a = send(&c, proxy.addr, Method::GET, HOST, "/", &[("cookie", &sent)]).await;
                assert_eq!(a.header("x-backend"), backend, "cookie {value} moved");
                assert_eq!(a.header("set-cookie"), "", "cookie set again");
            }
            *seen.entry(backend).or_default() += 1;
        }
        // Sessions spread over the endpoints.
        assert!(seen.len() >= 2, "{seen:?}");
    })
    .await
    .expect("within limit");
}

#[tokio::test]
async fn source_ip_hashing_is_sticky_per_client_address() {
    tokio::time::timeout(LIMIT, async {
        let bs = backends(&[Behaviour::default(); 3]).await;
        let policy = "{loadBalancer: {consistentHash: {useSourceIp: true}}}";
        let proxy = TestProxy::start(&config(&ports(&bs), policy)).await;
        let mut spread = HashMap::<String, usize>::new();
        for i in 2..42u8 {
            // Every 127.0.0.0/8 address is loopback on Linux: one client address per key.
            let mut conn = HttpConnector::new();
            conn.set_local_address(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))));
            let c: TestClient = Client::builder(TokioExecutor::new()).build(conn);
            let mut answered = Vec::new();
            for _ in 0..5 {
                let a = get(&c, proxy.addr, HOST, "/").await;
                answered.push(a.header("x-backend").to_owned());
            }
            assert!(
                answered.iter().all(|b| *b == answered[0]),
                "127.0.0.{i}: {answered:?}"
            );
            *spread.entry(answered[0].clone()).or_default() += 1;
        }
        assert!(spread.len() >= 2, "{spread:?}");
    })
    .await
    .expect("within limit");
}

#[tokio::test]
async fn retries_keep_the_hash() {
    tokio::time::timeout(LIMIT, async {
        // Every endpoint fails its first request: a retry must go back to the same one.
        let flaky = Behaviour {
            fail_first: 1,
            ..Behaviour::default()
        };
        let bs = backends(&[flaky; 3]).await;
        let retries = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: lb, namespace: shop}}\nspec:\n  hosts: [{HOST}]\n  http:\n  - retries: {{attempts: 3, retryOn: 5xx}}\n    route:\n    - destination: {{host: {HOST}}}\n---\n"
        );
        let yaml = config(&ports(&bs), &format!("{{loadBalancer: {{consistentHash: {RING}}}}}"));
        let proxy = TestProxy::start(&format!("{yaml}{retries}")).await;
        let c = client();
        let a = send(&c, proxy.addr, Method::GET, HOST, "/", &[("x-user", "alice")]).await;
        assert_eq!(a.status, 200, "{a:?}");
        let mut c = counts(&bs);
        c.sort_unstable();
        assert_eq!(c, vec![0, 0, 2], "the retry went elsewhere");
    })
    .await
    .expect("within limit");
}

#[tokio::test]
async fn weighted_round_robin_follows_weights() {
    tokio::time::timeout(LIMIT, async {
        let bs = backends(&[Behaviour::default(); 2]).await;
        let eps = [(bs[0].port(), 1), (bs[1].port(), 3)];
        let proxy = TestProxy::start(&config(&eps, "{loadBalancer: {simple: ROUND_ROBIN}}")).await;
        load(proxy.addr, 2000, 4).await;
        // A deterministic 1:3 cycle: 500 / 1500 whatever the interleaving of the clients.
        let c = counts(&bs);
        assert!(c[0].abs_diff(500) <= 60 && c[0] + c[1] == 2000, "{c:?}");
    })
    .await
    .expect("within limit");
}
