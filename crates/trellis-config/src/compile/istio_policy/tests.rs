//! Tests of the DestinationRule pass: the seed example, rule selection and merging, and the
//! settings reported as not carried. The individual traffic-policy mappings are in
//! `tests_traffic.rs`.

use crate::compile::{CompileOptions, Compiled, compile};
use crate::diag::{Code, Severity};
use crate::load::{LoadOptions, load_str};
use std::time::Duration;
use trellis_model::{
    ConsistentHash, HashAlgorithm, HashKey, LoadBalancer, OutlierDetection, Service, TlsMode,
};

/// A Service named `name` in `ns` with one HTTP port.
pub(super) fn service(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: 8080}}]\n---\n"
    )
}

/// Load (asserting the input is valid) and compile.
pub(super) fn run(text: &str) -> Compiled {
    let loaded = load_str("t.yaml", text, &LoadOptions::default());
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "test input is invalid: {errors:#?}");
    compile(&loaded.resources, &CompileOptions::default())
}

pub(super) fn svc<'a>(c: &'a Compiled, host: &str) -> &'a Service {
    c.mesh
        .service(host)
        .unwrap_or_else(|| panic!("no service {host}: {:#?}", c.mesh.services))
}

/// Diagnostics with `code`, as (line, message).
pub(super) fn diags(c: &Compiled, code: Code) -> Vec<(u32, String)> {
    c.diagnostics
        .iter()
        .filter(|d| d.code == code)
        .map(|d| (d.line, d.message.clone()))
        .collect()
}

const ORDERS: &str = "order-service.default.svc.cluster.local";

/// Seed 004-02: connection pool, outlier detection with the deprecated `consecutiveErrors`,
/// subsets, consistent hashing on a subset.
#[test]
fn seed_004_02_circuit_breaking_and_subsets() {
    let c = run(&(service("order-service", "default")
        + "apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: order-service
spec:
  host: order-service
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 100
      http:
        http1MaxPendingRequests: 50
        http2MaxRequests: 100
        maxRequestsPerConnection: 2
    outlierDetection:
      consecutiveErrors: 5
      interval: 30s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpHeaderName: \"x-user-id\"
"));
    let s = svc(&c, ORDERS);
    let pool = &s.policy.connection_pool;
    assert_eq!(pool.max_connections, Some(100));
    assert_eq!(pool.http1_max_pending_requests, Some(50));
    assert_eq!(pool.http2_max_requests, Some(100));
    assert_eq!(pool.max_requests_per_connection, Some(2));
    assert_eq!(
        s.policy.outlier_detection,
        Some(OutlierDetection {
            consecutive_5xx_errors: Some(5),
            interval: Duration::from_secs(30),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 50,
            ..OutlierDetection::default()
        })
    );
    assert_eq!(s.subsets.len(), 2);
    assert_eq!(
        (
            s.subsets[0].name.as_str(),
            s.subsets[0].labels["version"].as_str()
        ),
        ("v1", "v1")
    );
    assert_eq!(s.subsets[0].policy, None);
    let v2 = s.subsets[1]
        .policy
        .as_ref()
        .and_then(|p| p.load_balancer.clone());
    assert_eq!(
        v2,
        Some(LoadBalancer::ConsistentHash(ConsistentHash {
            key: HashKey::Header("x-user-id".into()),
            algorithm: HashAlgorithm::RingHash {
                minimum_ring_size: 1024
            },
        }))
    );
    assert!(
        s.origins
            .iter()
            .any(|o| o.kind == "DestinationRule" && o.name == "order-service")
    );
    assert!(
        diags(&c, Code::ConflictingHosts).is_empty() && diags(&c, Code::IgnoredSetting).is_empty()
    );
}

/// Several rules for one host: the first trafficPolicy wins, subsets merge by name, losers warn.
#[test]
fn merging_rules_for_one_host() {
    let text = service("r", "default")
        + "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: subsets-only}
spec:
  host: r
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: first-policy}
spec:
  host: r.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets:
  - {name: v1, labels: {version: one}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: second-policy}
spec:
  host: r.default
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
";
    let c = run(&text);
    let s = svc(&c, "r.default.svc.cluster.local");
    assert_eq!(s.policy.load_balancer, Some(LoadBalancer::Random));
    let names: Vec<(&str, &str)> = s
        .subsets
        .iter()
        .map(|x| (x.name.as_str(), x.labels["version"].as_str()))
        .collect();
    assert_eq!(names, [("v1", "v1"), ("v2", "v2")]);
    let conflicts: Vec<_> = c
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::ConflictingHosts)
        .collect();
    assert_eq!(conflicts.len(), 2, "{conflicts:#?}");
    assert!(conflicts.iter().all(|d| d.severity == Severity::Warning));
    let line = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u32 + 1)
    };
    let sub = conflicts
        .iter()
        .find(|d| d.name == "first-policy")
        .expect("subset conflict");
    assert_eq!(Some(sub.line), line("{name: v1, labels: {version: one}}"));
    assert!(
        sub.message.contains("subset \"v1\"") && sub.message.contains("subsets-only"),
        "{}",
        sub.message
    );
    let pol = conflicts
        .iter()
        .find(|d| d.name == "second-policy")
        .expect("policy conflict");
    assert_eq!(
        Some(pol.line),
        line("trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}")
    );
    assert!(
        pol.message.contains("DestinationRule default/first-policy"),
        "{}",
        pol.message
    );
}

/// Wildcard hosts apply to every service they cover, unless a more specific rule exists (Istio
/// never merges the two); unknown hosts are skipped silently.
#[test]
fn wildcard_and_unknown_hosts() {
    let c = run(&(service("a", "default")
        + &service("b", "default")
        + "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all, namespace: istio-system}
spec:
  host: '*.svc.cluster.local'
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: any, labels: {x: y}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec:
  host: b
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: nowhere}
spec:
  host: nowhere.example.com
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  workloadSelector: {matchLabels: {app: x}}
"));
    let a = svc(&c, "a.default.svc.cluster.local");
    assert_eq!(
        a.policy.tls.as_ref().map(|t| t.mode),
        Some(TlsMode::IstioMutual)
    );
    assert_eq!(a.subsets.len(), 1);
    let b = svc(&c, "b.default.svc.cluster.local");
    assert_eq!(
        (b.policy.load_balancer.clone(), b.policy.tls.clone()),
        (Some(LoadBalancer::Random), None)
    );
    assert!(b.subsets.is_empty());
    assert!(
        c.diagnostics.iter().all(|d| d.name != "nowhere"),
        "{:#?}",
        c.diagnostics
    );
}

/// Every DestinationRule setting the model cannot hold is reported (TRL2005, info) at its field.
#[test]
fn settings_not_carried_are_reported() {
    let text = service("r", "default")
        + "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  exportTo: [.]
  workloadSelector: {matchLabels: {app: web}}
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpCookie: {name: c, ttl: 10s, attributes: [{name: SameSite, value: Strict}]}}
      warmup: {duration: 30s}
    connectionPool: {http: {http2KeepAlive: {interval: 10s, timeout: 1s}}}
    outlierDetection: {outlierDetectionHttpErrorCodes: [500]}
    tls: {mode: SIMPLE, caCrl: /crl.pem}
    tunnel: {targetHost: proxy.example.com, targetPort: 3128}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      proxyProtocol: {version: V2}
      loadBalancer: {warmupDurationSecs: 10s}
";
    let c = run(&text);
    let got: Vec<(u32, String)> = diags(&c, Code::IgnoredSetting);
    assert!(
        c.diagnostics
            .iter()
            .filter(|d| d.code == Code::IgnoredSetting)
            .all(|d| d.severity == Severity::Info)
    );
    for (needle, word) in [
        ("exportTo: [.]", "exportTo"),
        ("workloadSelector:", "workloadSelector"),
        ("attributes:", "cookie attributes"),
        ("warmup: {duration", "warmup"),
        ("http2KeepAlive", "http2KeepAlive"),
        (
            "outlierDetectionHttpErrorCodes",
            "outlierDetectionHttpErrorCodes",
        ),
        ("caCrl", "caCrl"),
        ("tunnel:", "tunnel"),
        ("proxyProtocol", "proxyProtocol"),
        ("warmupDurationSecs", "warmupDurationSecs"),
    ] {
        let line = text
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u32 + 1)
            .expect(needle);
        assert!(
            got.iter().any(|(l, m)| *l == line && m.contains(word)),
            "{word} at line {line}: {got:#?}"
        );
    }
    assert_eq!(got.len(), 10, "{got:#?}");
    // The rest still applies.
    let s = svc(&c, "r.default.svc.cluster.local");
    assert_eq!(s.policy.tls.as_ref().map(|t| t.mode), Some(TlsMode::Simple));
}
