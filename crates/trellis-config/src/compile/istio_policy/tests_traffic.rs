//! Tests of the traffic-policy mappings: load balancing, locality, connection pools, outlier
//! detection, upstream TLS and port-level settings.

use super::tests::{diags, run, service, svc};
use crate::compile::Compiled;
use crate::diag::Code;
use std::time::Duration;
use trellis_model::{
    BackendPolicy, ConsistentHash, HashAlgorithm, HashKey, LoadBalancer, LocalityDistribute,
    LocalityFailover, LocalityLb, TcpKeepalive, TlsMode,
};

/// The service policy of `r` with a DestinationRule whose `trafficPolicy` is `tp` (flow YAML).
fn policy_of(tp: &str) -> (Compiled, BackendPolicy) {
    let c = run(&(service("r", "default")
        + &format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r}}\nspec:\n  host: r\n  trafficPolicy: {tp}\n"
        )));
    let p = svc(&c, "r.default.svc.cluster.local").policy.clone();
    (c, p)
}

#[test]
fn load_balancers() {
    for (simple, want) in [
        ("ROUND_ROBIN", Some(LoadBalancer::RoundRobin)),
        ("LEAST_REQUEST", Some(LoadBalancer::LeastRequest)),
        ("LEAST_CONN", Some(LoadBalancer::LeastRequest)),
        ("RANDOM", Some(LoadBalancer::Random)),
        ("PASSTHROUGH", Some(LoadBalancer::Passthrough)),
        ("UNSPECIFIED", None),
    ] {
        let (_, p) = policy_of(&format!("{{loadBalancer: {{simple: {simple}}}}}"));
        assert_eq!(p.load_balancer, want, "{simple}");
    }
    let hash = |ch: &str| {
        let (_, p) = policy_of(&format!("{{loadBalancer: {{consistentHash: {ch}}}}}"));
        match p.load_balancer {
            Some(LoadBalancer::ConsistentHash(h)) => h,
            other => panic!("{ch}: {other:?}"),
        }
    };
    let cookie =
        hash("{httpCookie: {name: session, path: /app, ttl: 60s}, maglev: {tableSize: 65537}}");
    assert_eq!(
        cookie,
        ConsistentHash {
            key: HashKey::Cookie {
                name: "session".into(),
                path: Some("/app".into()),
                ttl: Some(Duration::from_secs(60))
            },
            algorithm: HashAlgorithm::Maglev { table_size: 65537 },
        }
    );
    assert_eq!(
        hash("{useSourceIp: true, ringHash: {minimumRingSize: 4096}}").key,
        HashKey::SourceIp
    );
    assert_eq!(
        hash("{useSourceIp: true, ringHash: {minimumRingSize: 4096}}").algorithm,
        HashAlgorithm::RingHash {
            minimum_ring_size: 4096
        }
    );
    assert_eq!(
        hash("{httpQueryParameterName: user}").key,
        HashKey::QueryParameter("user".into())
    );
    // Deprecated top-level minimumRingSize.
    assert_eq!(
        hash("{useSourceIp: true, minimumRingSize: 2048}").algorithm,
        HashAlgorithm::RingHash {
            minimum_ring_size: 2048
        }
    );
}

#[test]
fn locality() {
    let (_, p) = policy_of(
        "{loadBalancer: {localityLbSetting: {enabled: true, distribute: [{from: us-west/zone1/*, to: {us-west/zone1/*: 80, us-west/zone2/*: 20}}]}}, outlierDetection: {consecutive5xxErrors: 3}}",
    );
    assert_eq!(p.load_balancer, None);
    let loc = p.locality.expect("locality");
    assert!(loc.enabled);
    assert_eq!(
        loc.distribute,
        [LocalityDistribute {
            from: "us-west/zone1/*".into(),
            to: [
                ("us-west/zone1/*".to_string(), 80),
                ("us-west/zone2/*".to_string(), 20)
            ]
            .into(),
        }]
    );
    let (_, p) = policy_of(
        "{loadBalancer: {simple: ROUND_ROBIN, localityLbSetting: {enabled: false, failover: [{from: us-east, to: eu-west}], failoverPriority: [topology.istio.io/network]}}, outlierDetection: {consecutive5xxErrors: 3}}",
    );
    assert_eq!(p.load_balancer, Some(LoadBalancer::RoundRobin));
    assert_eq!(
        p.locality,
        Some(LocalityLb {
            enabled: false,
            distribute: vec![],
            failover: vec![LocalityFailover {
                from: "us-east".into(),
                to: "eu-west".into()
            }],
            failover_priority: vec!["topology.istio.io/network".into()],
        })
    );
}

#[test]
fn connection_pool() {
    let (c, p) = policy_of(
        "{connectionPool: {tcp: {maxConnections: 10, connectTimeout: 250ms, tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}, maxConnectionDuration: 1h, idleTimeout: 30s}, http: {http1MaxPendingRequests: 1, http2MaxRequests: 2, maxRequestsPerConnection: 0, maxRetries: 4, idleTimeout: 90s, h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 100}}}",
    );
    let pool = p.connection_pool;
    assert_eq!(pool.max_connections, Some(10));
    assert_eq!(pool.connect_timeout, Some(Duration::from_millis(250)));
    assert_eq!(
        pool.tcp_keepalive,
        Some(TcpKeepalive {
            probes: Some(3),
            time: Some(Duration::from_secs(7200)),
            interval: Some(Duration::from_secs(75))
        })
    );
    assert_eq!(
        pool.max_connection_duration,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        (pool.http1_max_pending_requests, pool.http2_max_requests),
        (Some(1), Some(2))
    );
    assert_eq!(pool.max_requests_per_connection, None, "0 means unlimited");
    assert_eq!(pool.max_retries, Some(4));
    assert_eq!(
        pool.idle_timeout,
        Some(Duration::from_secs(90)),
        "the HTTP idle timeout wins"
    );
    assert_eq!(pool.h2_upgrade, Some(true));
    assert_eq!(pool.max_concurrent_streams, Some(100));
    assert!(!pool.use_client_protocol);
    let ignored = diags(&c, Code::IgnoredSetting);
    assert!(
        ignored.iter().any(|(_, m)| m.contains("tcp.idleTimeout")),
        "{ignored:?}"
    );

    let (_, p) = policy_of(
        "{connectionPool: {tcp: {idleTimeout: 0s}, http: {h2UpgradePolicy: DO_NOT_UPGRADE, useClientProtocol: true}}}",
    );
    assert_eq!(
        p.connection_pool.idle_timeout,
        Some(Duration::ZERO),
        "the TCP one applies alone"
    );
    assert_eq!(p.connection_pool.h2_upgrade, Some(false));
    assert!(p.connection_pool.use_client_protocol);
}

#[test]
fn outlier_detection() {
    let (_, p) = policy_of(
        "{outlierDetection: {consecutive5xxErrors: 0, consecutiveGatewayErrors: 3, consecutiveLocalOriginFailures: 2, splitExternalLocalOriginErrors: true, interval: 5s, baseEjectionTime: 1m, maxEjectionPercent: 0, minHealthPercent: 40}}",
    );
    let o = p.outlier_detection.expect("outlier");
    assert_eq!(
        o.consecutive_5xx_errors,
        Some(0),
        "explicit 0 disables the 5xx check"
    );
    assert_eq!(o.consecutive_5xx_threshold(), None);
    assert_eq!(
        (
            o.consecutive_gateway_errors,
            o.consecutive_local_origin_failures
        ),
        (Some(3), Some(2))
    );
    assert!(o.split_external_local_origin_errors);
    assert_eq!(
        (o.interval, o.base_ejection_time),
        (Duration::from_secs(5), Duration::from_secs(60))
    );
    assert_eq!(
        o.max_ejection_percent, 10,
        "0 leaves the default, as in Istio"
    );
    assert_eq!(o.min_health_percent, 40);
    // consecutive5xxErrors wins over the deprecated alias.
    let (_, p) = policy_of("{outlierDetection: {consecutiveErrors: 7, consecutive5xxErrors: 2}}");
    assert_eq!(
        p.outlier_detection.and_then(|o| o.consecutive_5xx_errors),
        Some(2)
    );
}

#[test]
fn upstream_tls() {
    let (_, p) = policy_of(
        "{tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem, subjectAltNames: [a.example.com], sni: a.example.com}}",
    );
    let t = p.tls.expect("tls");
    assert_eq!(t.mode, TlsMode::Mutual);
    assert_eq!(
        (
            t.client_certificate.as_deref(),
            t.private_key.as_deref(),
            t.ca_certificates.as_deref(),
            t.sni.as_deref()
        ),
        (
            Some("/c.pem"),
            Some("/k.pem"),
            Some("/ca.pem"),
            Some("a.example.com")
        )
    );
    assert_eq!(t.subject_alt_names, ["a.example.com"]);
    let (_, p) = policy_of("{tls: {mode: MUTUAL, credentialName: s, insecureSkipVerify: true}}");
    let t = p.tls.expect("tls");
    assert_eq!(
        (t.mode, t.credential_name.as_deref(), t.insecure_skip_verify),
        (TlsMode::Mutual, Some("s"), true)
    );
    for (mode, want) in [
        ("ISTIO_MUTUAL", TlsMode::IstioMutual),
        ("DISABLE", TlsMode::Disable),
    ] {
        let (_, p) = policy_of(&format!("{{tls: {{mode: {mode}}}}}"));
        assert_eq!(p.tls.map(|t| t.mode), Some(want));
    }
}

#[test]
fn port_level_settings_and_subset_ports() {
    let c = run(&(service("r", "default")
        + "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    portLevelSettings:
    - port: {number: 8080}
      loadBalancer: {simple: ROUND_ROBIN}
      tls: {mode: SIMPLE}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 1}}
      portLevelSettings:
      - port: {number: 9090}
        outlierDetection: {consecutiveGatewayErrors: 1}
"));
    let s = svc(&c, "r.default.svc.cluster.local");
    assert_eq!(s.policy.load_balancer, Some(LoadBalancer::Random));
    assert_eq!(s.port_policies.len(), 1);
    assert_eq!(s.port_policies[0].port, 8080);
    assert_eq!(
        s.port_policies[0].policy.load_balancer,
        Some(LoadBalancer::RoundRobin)
    );
    assert_eq!(
        s.port_policies[0].policy.tls.as_ref().map(|t| t.mode),
        Some(TlsMode::Simple)
    );
    let v2 = &s.subsets[0];
    assert_eq!(
        v2.policy
            .as_ref()
            .and_then(|p| p.connection_pool.max_connections),
        Some(1)
    );
    assert_eq!(v2.port_policies.len(), 1);
    assert_eq!(v2.port_policies[0].port, 9090);
    assert_eq!(
        v2.port_policies[0]
            .policy
            .outlier_detection
            .as_ref()
            .and_then(|o| o.consecutive_gateway_errors),
        Some(1)
    );
    // The layering is the model's: subset over service port level.
    assert_eq!(
        s.effective_policy(Some("v2"), Some(8080)).load_balancer,
        Some(LoadBalancer::RoundRobin)
    );
}
