//! DestinationRule: decoding a full example, and each validation rule firing (or not).

use super::*;
use crate::diag::{Code, Diagnostic, Severity};
use crate::load::{LoadOptions, load_str};
use crate::resources::Spec;

/// Load a DestinationRule whose `spec` is `spec` (written without indentation).
fn load(spec: &str) -> (Option<DestinationRule>, Vec<Diagnostic>) {
    let body: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    let text = format!(
        "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  name: t\nspec:\n{body}"
    );
    let loaded = load_str("dr.yaml", &text, &LoadOptions::default());
    let dr = loaded.resources.into_iter().find_map(|r| match r.spec {
        Spec::DestinationRule(dr) => Some(*dr),
        _ => None,
    });
    (dr, loaded.diagnostics)
}

#[track_caller]
fn assert_clean(spec: &str) -> DestinationRule {
    let (dr, diags) = load(spec);
    assert!(diags.is_empty(), "expected no diagnostics, got: {diags:#?}");
    dr.expect("resource loads")
}

#[track_caller]
fn assert_error(spec: &str, needle: &str) {
    let (_, diags) = load(spec);
    assert!(
        diags
            .iter()
            .any(|d| d.severity == Severity::Error && d.message.contains(needle)),
        "expected an error containing {needle:?}, got: {diags:#?}"
    );
}

#[track_caller]
fn assert_warning(spec: &str, code: Code, needle: &str) {
    let (_, diags) = load(spec);
    assert!(
        diags.iter().any(|d| d.severity == Severity::Warning
            && d.code == code
            && d.message.contains(needle)),
        "expected a {code} warning containing {needle:?}, got: {diags:#?}"
    );
}

/// `host: r` plus a traffic policy.
fn policy(p: &str) -> String {
    format!("host: r\ntrafficPolicy: {p}")
}

const FULL: &str = r#"host: reviews.prod.svc.cluster.local
exportTo: ["."]
workloadSelector:
  matchLabels:
    app: productpage
trafficPolicy:
  loadBalancer:
    consistentHash:
      httpCookie:
        name: user
        path: /
        ttl: 3600s
        attributes:
        - name: SameSite
          value: Strict
      ringHash:
        minimumRingSize: 1024
    localityLbSetting:
      enabled: true
      failover:
      - from: us-east
        to: us-west
      failoverPriority:
      - topology.istio.io/network
    warmup:
      duration: 30s
      minimumPercent: 10
      aggression: 1.5
  connectionPool:
    tcp:
      maxConnections: 100
      connectTimeout: 30ms
      tcpKeepalive:
        probes: 3
        time: 7200s
        interval: 75s
      maxConnectionDuration: 1h
      idleTimeout: 0s
    http:
      http1MaxPendingRequests: 10
      http2MaxRequests: 1000
      maxRequestsPerConnection: 10
      maxRetries: 3
      idleTimeout: 30s
      h2UpgradePolicy: UPGRADE
      useClientProtocol: false
      maxConcurrentStreams: 100
      http2KeepAlive:
        interval: 10s
        timeout: 3s
  outlierDetection:
    splitExternalLocalOriginErrors: true
    consecutiveLocalOriginFailures: 5
    consecutiveGatewayErrors: 7
    consecutive5xxErrors: 5
    interval: 10s
    baseEjectionTime: 30s
    maxEjectionPercent: 50
    minHealthPercent: 20
    outlierDetectionHttpErrorCodes: [500, 503]
  tls:
    mode: ISTIO_MUTUAL
    sni: reviews.prod.svc.cluster.local
    subjectAltNames: ["spiffe://cluster.local/ns/prod/sa/reviews"]
  portLevelSettings:
  - port: {number: 9080}
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 10}
    outlierDetection: {consecutive5xxErrors: 3}
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/client.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem
      caCrl: /etc/certs/crl.pem
      insecureSkipVerify: false
  proxyProtocol: {version: V2}
  retryBudget:
    percent: 25
    minRetryConcurrency: 5
    budgetInterval: 10s
subsets:
- name: v1
  labels: {version: v1}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    tunnel:
      protocol: CONNECT
      targetHost: egress.example.com
      targetPort: 443
"#;

#[test]
fn full_example_decodes_every_field() {
    let dr = assert_clean(FULL);
    assert_eq!(dr.host, "reviews.prod.svc.cluster.local");
    assert_eq!(dr.export_to, ["."]);
    assert_eq!(
        dr.workload_selector
            .as_ref()
            .map(|w| w.match_labels["app"].as_str()),
        Some("productpage")
    );

    let tp = dr.traffic_policy.as_ref().expect("trafficPolicy");
    let lb = tp.load_balancer.as_ref().expect("loadBalancer");
    let ch = lb.consistent_hash.as_ref().expect("consistentHash");
    let cookie = ch.http_cookie.as_ref().expect("cookie");
    assert_eq!(
        (cookie.name.as_str(), cookie.path.as_deref()),
        ("user", Some("/"))
    );
    assert_eq!(cookie.ttl, Some(Duration::from_millis(3_600_000)));
    assert_eq!(cookie.attributes[0].name, "SameSite");
    assert_eq!(cookie.attributes[0].value.as_deref(), Some("Strict"));
    assert_eq!(ch.effective_minimum_ring_size(), Some(1024));
    let loc = lb.locality_lb_setting.as_ref().expect("locality");
    assert_eq!(loc.enabled, Some(true));
    assert_eq!(
        (loc.failover[0].from.as_str(), loc.failover[0].to.as_str()),
        ("us-east", "us-west")
    );
    assert_eq!(loc.failover_priority, ["topology.istio.io/network"]);
    let warm = lb.warmup.as_ref().expect("warmup");
    assert_eq!(warm.duration, Some(Duration::from_millis(30_000)));
    assert_eq!(
        (warm.minimum_percent, warm.aggression),
        (Some(10.0), Some(1.5))
    );

    let pool = tp.connection_pool.as_ref().expect("connectionPool");
    let tcp = pool.tcp.as_ref().expect("tcp");
    assert_eq!(tcp.max_connections, Some(100));
    assert_eq!(tcp.connect_timeout, Some(Duration::from_millis(30)));
    let ka = tcp.tcp_keepalive.as_ref().expect("keepalive");
    assert_eq!(
        (ka.probes, ka.time, ka.interval),
        (
            Some(3),
            Some(Duration::from_millis(7_200_000)),
            Some(Duration::from_millis(75_000))
        )
    );
    assert_eq!(
        tcp.max_connection_duration,
        Some(Duration::from_millis(3_600_000))
    );
    assert_eq!(tcp.idle_timeout, Some(Duration::default()));
    let http = pool.http.as_ref().expect("http");
    assert_eq!(http.http1_max_pending_requests, Some(10));
    assert_eq!(http.http2_max_requests, Some(1000));
    assert_eq!(http.max_requests_per_connection, Some(10));
    assert_eq!(http.max_retries, Some(3));
    assert_eq!(http.idle_timeout, Some(Duration::from_millis(30_000)));
    assert_eq!(http.h2_upgrade_policy, Some(H2UpgradePolicy::Upgrade));
    assert!(!http.use_client_protocol);
    assert_eq!(http.max_concurrent_streams, Some(100));
    let h2ka = http.http2_keep_alive.as_ref().expect("http2KeepAlive");
    assert_eq!(
        (h2ka.interval, h2ka.timeout),
        (
            Some(Duration::from_millis(10_000)),
            Some(Duration::from_millis(3_000))
        )
    );

    let od = tp.outlier_detection.as_ref().expect("outlierDetection");
    assert!(od.split_external_local_origin_errors);
    assert_eq!(od.consecutive_local_origin_failures, Some(5));
    assert_eq!(od.consecutive_gateway_errors, Some(7));
    assert_eq!(od.consecutive_5xx_errors, Some(5));
    assert_eq!(od.effective_consecutive_5xx_errors(), Some(5));
    assert_eq!(od.interval, Some(Duration::from_millis(10_000)));
    assert_eq!(od.base_ejection_time, Some(Duration::from_millis(30_000)));
    assert_eq!(
        (od.max_ejection_percent, od.min_health_percent),
        (Some(50), Some(20))
    );
    assert_eq!(od.outlier_detection_http_error_codes, [500, 503]);

    let tls = tp.tls.as_ref().expect("tls");
    assert_eq!(tls.mode, Some(ClientTlsMode::IstioMutual));
    assert_eq!(tls.sni.as_deref(), Some("reviews.prod.svc.cluster.local"));
    assert_eq!(
        tls.subject_alt_names,
        ["spiffe://cluster.local/ns/prod/sa/reviews"]
    );

    let port = tp.for_port(9080).expect("port-level settings");
    assert_eq!(
        port.load_balancer.as_ref().and_then(|l| l.simple),
        Some(SimpleLb::RoundRobin)
    );
    assert_eq!(
        port.connection_pool
            .as_ref()
            .and_then(|p| p.tcp.as_ref())
            .and_then(|t| t.max_connections),
        Some(10)
    );
    assert_eq!(
        port.outlier_detection
            .as_ref()
            .and_then(|o| o.consecutive_5xx_errors),
        Some(3)
    );
    let ptls = port.tls.as_ref().expect("port tls");
    assert_eq!(ptls.mode, Some(ClientTlsMode::Mutual));
    assert_eq!(
        ptls.client_certificate.as_deref(),
        Some("/etc/certs/client.pem")
    );
    assert_eq!(ptls.private_key.as_deref(), Some("/etc/certs/key.pem"));
    assert_eq!(ptls.ca_certificates.as_deref(), Some("/etc/certs/ca.pem"));
    assert_eq!(ptls.ca_crl.as_deref(), Some("/etc/certs/crl.pem"));
    assert_eq!(ptls.insecure_skip_verify, Some(false));
    assert!(tp.for_port(80).is_none());

    assert_eq!(
        tp.proxy_protocol.as_ref().and_then(|p| p.version),
        Some(ProxyProtocolVersion::V2)
    );
    let rb = tp.retry_budget.as_ref().expect("retryBudget");
    assert_eq!(
        (rb.percent, rb.min_retry_concurrency, rb.budget_interval),
        (Some(25.0), Some(5), Some(Duration::from_millis(10_000)))
    );

    assert_eq!(dr.subsets.len(), 2);
    assert_eq!(
        dr.subset("v1").map(|s| s.labels["version"].as_str()),
        Some("v1")
    );
    let v2 = dr
        .subset("v2")
        .and_then(|s| s.traffic_policy.as_ref())
        .expect("subset policy");
    assert_eq!(
        v2.load_balancer.as_ref().and_then(|l| l.simple),
        Some(SimpleLb::LeastRequest)
    );
    let tunnel = v2.tunnel.as_ref().expect("tunnel");
    assert_eq!(
        (
            tunnel.protocol.as_deref(),
            tunnel.target_host.as_str(),
            tunnel.target_port
        ),
        (Some("CONNECT"), "egress.example.com", Some(443))
    );
    assert!(dr.subset("v3").is_none());
}

#[test]
fn other_shapes_decode() {
    let dr = assert_clean(
        "host: '*.example.com'
trafficPolicy:
  loadBalancer:
    consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}
    zoneAwareLbSetting: {enabled: true, failover: [{from: us-east, to: us-west}], minClusterSize: 3}
    warmupDurationSecs: 60s
  outlierDetection: {consecutive5xxErrors: 5}
  tls: {mode: SIMPLE, credentialName: ext-cert, insecureSkipVerify: false}",
    );
    let lb = dr
        .traffic_policy
        .as_ref()
        .and_then(|t| t.load_balancer.as_ref())
        .expect("lb");
    let ch = lb.consistent_hash.as_ref().expect("hash");
    assert_eq!(ch.http_header_name.as_deref(), Some("x-user"));
    assert_eq!(ch.maglev.as_ref().and_then(|m| m.table_size), Some(65537));
    let za = lb.zone_aware_lb_setting.as_ref().expect("zone aware");
    assert_eq!(
        (za.enabled, za.min_cluster_size, za.failover.len()),
        (Some(true), Some(3), 1)
    );
    assert_eq!(lb.warmup_duration_secs, Some(Duration::from_millis(60_000)));

    let dr = assert_clean(
        "host: r
trafficPolicy:
  loadBalancer:
    localityLbSetting:
      distribute:
      - from: us-west/zone1/*
        to: {us-west/zone1/*: 80, us-west/zone2/*: 20}",
    );
    let loc = dr
        .traffic_policy
        .and_then(|t| t.load_balancer)
        .and_then(|l| l.locality_lb_setting)
        .expect("locality");
    assert_eq!(loc.distribute[0].to["us-west/zone1/*"], 80);
    assert_clean(&policy(
        "{loadBalancer: {consistentHash: {useSourceIp: true}}}",
    ));
    assert_clean(&policy(
        "{loadBalancer: {consistentHash: {httpQueryParameterName: user}}}",
    ));
}

#[test]
fn host_and_subsets_are_checked() {
    assert_error(
        "subsets: [{name: v1}]",
        "missing required field `spec.host`",
    );
    assert_error("host: 'reviews:9080'", "not a DNS-1123 label");
    assert_error(
        "host: r\nsubsets: [{labels: {version: v1}}]",
        "`spec.subsets[0].name`",
    );
    assert_error("host: r\nsubsets: [{name: v_1}]", "DNS-1123 label");
    assert_clean("host: r\nsubsets: [{name: v1}, {name: v1}]");
    assert_error(
        "host: r\nsubsets: [{name: v1, trafficPolicy: {}}]",
        "at least one setting",
    );
    assert_error("host: r\nexportTo: [., .]", "duplicate exportTo");
    assert_error(
        "host: r\nworkloadSelector: {matchLabels: {app: 'web-*'}}",
        "wildcards are not allowed",
    );
}

#[test]
fn load_balancer_is_checked() {
    assert_error(
        &policy("{loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}"),
        "only one of simple, consistentHash",
    );
    assert_error(
        &policy("{loadBalancer: {consistentHash: {}}}"),
        "one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName is required",
    );
    assert_error(
        &policy("{loadBalancer: {consistentHash: {httpHeaderName: a, useSourceIp: true}}}"),
        "found httpHeaderName and useSourceIp",
    );
    assert_error(
        &policy(
            "{loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {}, maglev: {tableSize: 65537}}}}",
        ),
        "only one of ringHash, maglev",
    );
    assert_error(
        &policy("{loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}}}"),
        "prime",
    );
    assert_error(
        &policy("{loadBalancer: {consistentHash: {useSourceIp: true, maglev: {}}}}"),
        "maglev.tableSize",
    );
    assert_error(
        &policy(
            "{loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 5000011}}}}",
        ),
        "below 5000011",
    );
    assert_error(
        &policy("{loadBalancer: {consistentHash: {httpCookie: {path: /}}}}"),
        "httpCookie.name",
    );
    assert_error(
        &policy(
            "{loadBalancer: {consistentHash: {httpCookie: {name: c, attributes: [{name: a}, {name: a}]}}}}",
        ),
        "duplicate cookie attribute",
    );
    assert_warning(
        &policy("{loadBalancer: {simple: LEAST_CONN}}"),
        Code::DeprecatedField,
        "LEAST_CONN",
    );
    let dr = assert_clean(&policy("{loadBalancer: {simple: PASSTHROUGH}}"));
    let simple = dr
        .traffic_policy
        .and_then(|t| t.load_balancer)
        .and_then(|l| l.simple);
    assert_eq!(simple, Some(SimpleLb::Passthrough));
    assert_eq!(SimpleLb::LeastConn.canonical(), SimpleLb::LeastRequest);
    assert_warning(
        &policy("{loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 1024}}}"),
        Code::DeprecatedField,
        "minimumRingSize",
    );
    assert_error(
        &policy(
            "{loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 1024, ringHash: {}}}}",
        ),
        "cannot be combined with ringHash",
    );
    let (dr, diags) = load(&policy("{loadBalancer: {simple: FASTEST}}"));
    assert!(dr.is_none());
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("FASTEST") && d.line == 7),
        "{diags:#?}"
    );
}

#[test]
fn locality_and_warmup_are_checked() {
    let od = "outlierDetection: {consecutive5xxErrors: 1}";
    let lb = |l: &str| {
        policy(&format!(
            "{{loadBalancer: {{localityLbSetting: {l}}}, {od}}}"
        ))
    };
    assert_error(
        &lb("{distribute: [{from: a, to: {b: 60, c: 30}}]}"),
        "add up to 100, got 90",
    );
    assert_error(
        &lb("{distribute: [{from: a, to: {b: 0, c: 100}}]}"),
        "between 1 and 100",
    );
    assert_error(
        &lb("{distribute: [{from: 'a/*/c', to: {b: 100}}]}"),
        "only one `*`, at the end",
    );
    assert_error(
        &lb("{distribute: [{from: a, to: {b: 100}}], failover: [{from: a, to: b}]}"),
        "cannot both be set",
    );
    assert_error(&lb("{failover: [{from: a, to: a}]}"), "same region");
    assert_error(&lb("{failover: [{from: a/z1, to: b}]}"), "regions only");
    assert_error(
        &lb("{failover: [{from: a, to: b}], failoverPriority: [topology.kubernetes.io/zone]}"),
        "cannot be in failoverPriority",
    );
    assert_clean(&lb(
        "{failover: [{from: a, to: b}], failoverPriority: [topology.istio.io/network]}",
    ));
    assert_warning(
        &policy("{loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}]}}}"),
        Code::IgnoredSetting,
        "needs outlierDetection",
    );
    assert_error(
        &policy(
            "{loadBalancer: {localityLbSetting: {enabled: true}, zoneAwareLbSetting: {enabled: true}}}",
        ),
        "only one of localityLbSetting, zoneAwareLbSetting",
    );
    assert_error(
        &policy(&format!(
            "{{loadBalancer: {{zoneAwareLbSetting: {{failoverPriority: [topology.kubernetes.io/region]}}}}, {od}}}"
        )),
        "zone-aware",
    );
    assert_error(
        &policy("{loadBalancer: {warmup: {minimumPercent: 10}}}"),
        "warmup.duration",
    );
    assert_error(
        &policy("{loadBalancer: {warmup: {duration: 10s, minimumPercent: 120}}}"),
        "minimumPercent",
    );
    assert_error(
        &policy("{loadBalancer: {warmup: {duration: 10s, aggression: 0}}}"),
        "aggression must be greater than 0",
    );
    assert_error(
        &policy("{loadBalancer: {warmupDurationSecs: 10s, warmup: {duration: 10s}}}"),
        "only one of warmupDurationSecs, warmup",
    );
}

#[test]
fn connection_pool_is_checked() {
    assert_error(
        &policy("{connectionPool: {}}"),
        "needs tcp or http settings",
    );
    assert_error(
        &policy("{connectionPool: {tcp: {maxConnections: -1}}}"),
        "`maxConnections` must not be negative",
    );
    for f in [
        "http1MaxPendingRequests",
        "http2MaxRequests",
        "maxRequestsPerConnection",
        "maxRetries",
        "maxConcurrentStreams",
    ] {
        assert_error(
            &policy(&format!("{{connectionPool: {{http: {{{f}: -5}}}}}}")),
            &format!("`{f}` must not be negative"),
        );
    }
    assert_error(
        &policy("{connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}"),
        "useClientProtocol cannot be true",
    );
    assert_error(
        &policy("{connectionPool: {http: {http2KeepAlive: {interval: 10s}}}}"),
        "http2KeepAlive.timeout",
    );
    assert_error(
        &policy("{connectionPool: {tcp: {connectTimeout: 0s}}}"),
        "at least 1ms",
    );
    assert_error(
        &policy("{connectionPool: {tcp: {tcpKeepalive: {time: 500us}}}}"),
        "at least 1ms",
    );
    assert_clean(&policy(
        "{connectionPool: {tcp: {idleTimeout: 0s}, http: {h2UpgradePolicy: DO_NOT_UPGRADE, useClientProtocol: true}}}",
    ));
}

#[test]
fn outlier_detection_is_checked() {
    assert_error(
        &policy("{outlierDetection: {maxEjectionPercent: 101}}"),
        "`maxEjectionPercent` must be between 0 and 100",
    );
    assert_error(
        &policy("{outlierDetection: {minHealthPercent: -1}}"),
        "`minHealthPercent` must be between 0 and 100",
    );
    assert_error(
        &policy("{outlierDetection: {consecutiveLocalOriginFailures: 3}}"),
        "needs splitExternalLocalOriginErrors",
    );
    assert_error(
        &policy("{outlierDetection: {outlierDetectionHttpErrorCodes: [600]}}"),
        "600 is not an HTTP status code",
    );
    assert_error(
        &policy("{outlierDetection: {interval: 0s}}"),
        "at least 1ms",
    );
    assert_warning(
        &policy("{outlierDetection: {consecutiveErrors: 5}}"),
        Code::DeprecatedField,
        "`consecutiveErrors` is deprecated",
    );
    let dr = {
        let (dr, _) = load(&policy("{outlierDetection: {consecutiveErrors: 5}}"));
        dr.expect("loads")
    };
    let od = dr
        .traffic_policy
        .and_then(|t| t.outlier_detection)
        .expect("outlier");
    assert_eq!(od.effective_consecutive_5xx_errors(), Some(5));
}

#[test]
fn tls_is_checked() {
    assert_error(
        &policy("{tls: {mode: MUTUAL}}"),
        "MUTUAL needs `clientCertificate`",
    );
    assert_error(
        &policy("{tls: {mode: MUTUAL, clientCertificate: /c.pem}}"),
        "MUTUAL needs `privateKey`",
    );
    assert_clean(&policy(
        "{tls: {mode: MUTUAL, credentialName: client-secret}}",
    ));
    assert_error(
        &policy("{tls: {mode: MUTUAL, credentialName: s, clientCertificate: /c.pem}}"),
        "cannot be combined with credentialName",
    );
    assert_error(
        &policy("{tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca.pem}}"),
        "insecureSkipVerify",
    );
    assert_error(
        &policy(
            "{tls: {mode: MUTUAL, insecureSkipVerify: true, credentialName: s, subjectAltNames: [a]}}",
        ),
        "`subjectAltNames` has no effect",
    );
    assert_clean(&policy(
        "{tls: {mode: MUTUAL, insecureSkipVerify: true, credentialName: s}}",
    ));
    assert_clean(&policy("{tls: {mode: DISABLE}}"));
}

#[test]
fn policies_need_content_and_ports() {
    assert_error(&policy("{}"), "at least one setting");
    assert_error(
        &policy("{portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}"),
        "`spec.trafficPolicy.portLevelSettings[0].port`",
    );
    assert_error(
        &policy("{portLevelSettings: [{port: {number: 80}}]}"),
        "port-level policy needs",
    );
    assert_error(
        &policy("{portLevelSettings: [{port: {number: 0}, tls: {mode: DISABLE}}]}"),
        "port number 0",
    );
    assert_error(
        &policy("{tunnel: {targetHost: a.com, targetPort: 443}, proxyProtocol: {version: V1}}"),
        "only one of tunnel, proxyProtocol",
    );
    assert_error(
        &policy("{tunnel: {protocol: GET, targetHost: a.com, targetPort: 443}}"),
        "CONNECT or POST",
    );
    assert_error(&policy("{tunnel: {targetPort: 443}}"), "tunnel.targetHost");
    assert_error(
        &policy("{tunnel: {targetHost: a.com}}"),
        "tunnel.targetPort",
    );
    assert_error(
        &policy("{tunnel: {targetHost: 'not a host', targetPort: 1}}"),
        "DNS name or an IP",
    );
    assert_clean(&policy(
        "{tunnel: {protocol: POST, targetHost: 10.0.0.1, targetPort: 8080}}",
    ));
    assert_error(
        &policy("{retryBudget: {percent: 120}}"),
        "percent must be between 0 and 100",
    );
}
