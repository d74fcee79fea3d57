//! One DestinationRule's `trafficPolicy` (and its subsets' and ports') in the model's terms, with an
//! info diagnostic (TRL2005) for every setting the model cannot hold.

use super::MappedRule;
use crate::compile::Ctx;
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::istio_networking::{
    self as istio, ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRule,
    H2UpgradePolicy, LoadBalancerSettings, SimpleLb,
};
use trellis_model::{
    BackendPolicy, ConnectionPool, ConsistentHash, HashAlgorithm, HashKey, LoadBalancer,
    LocalityDistribute, LocalityFailover, LocalityLb, OutlierDetection, PortPolicy, Subset,
    TcpKeepalive, TlsMode, UpstreamTls,
};

/// Map a whole rule: the top-level policy, its subsets, and the rule-level fields the model has no
/// place for.
pub(super) fn map_rule(cx: &mut Ctx<'_>, r: &Resource, dr: &DestinationRule) -> MappedRule {
    if dr.workload_selector.is_some() {
        ignored(
            cx,
            r,
            "spec.workloadSelector",
            "workloadSelector is not enforced: Trellis applies this DestinationRule to every client of the host",
        );
    }
    if !dr.export_to.is_empty() && !dr.export_to.iter().all(|e| e == "*") {
        ignored(
            cx,
            r,
            "spec.exportTo",
            "exportTo is not enforced: Trellis applies this DestinationRule to clients in every namespace",
        );
    }
    let policy = dr
        .traffic_policy
        .as_ref()
        .map(|tp| traffic_policy(cx, r, "spec.trafficPolicy", tp));
    let subsets =
        dr.subsets
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let mapped = s.traffic_policy.as_ref().map(|tp| {
                    traffic_policy(cx, r, &format!("spec.subsets[{j}].trafficPolicy"), tp)
                });
                let (policy, port_policies) = match mapped {
                    Some((p, ports)) => (Some(p), ports),
                    None => (None, Vec::new()),
                };
                Subset {
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                    policy,
                    port_policies,
                }
            })
            .collect();
    MappedRule { policy, subsets }
}

/// Report a setting that is accepted but not enforced.
fn ignored(cx: &mut Ctx<'_>, r: &Resource, path: &str, msg: &str) {
    cx.report.at(r, path, Code::IgnoredSetting, msg);
}

/// A `TrafficPolicy` at `path`: its own settings and its port-level overrides.
fn traffic_policy(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    tp: &istio::TrafficPolicy,
) -> (BackendPolicy, Vec<PortPolicy>) {
    if tp.tunnel.is_some() {
        ignored(
            cx,
            r,
            &format!("{path}.tunnel"),
            "tunnel is not supported: connections go to the destination directly",
        );
    }
    if tp.proxy_protocol.is_some() {
        ignored(
            cx,
            r,
            &format!("{path}.proxyProtocol"),
            "proxyProtocol is not supported: no PROXY protocol header is sent upstream",
        );
    }
    let policy = parts(
        cx,
        r,
        path,
        &tp.load_balancer,
        &tp.connection_pool,
        &tp.outlier_detection,
        &tp.tls,
    );
    let ports = tp
        .port_level_settings
        .iter()
        .enumerate()
        .filter_map(|(k, p)| {
            let port = p
                .port
                .as_ref()
                .and_then(|s| s.number)
                .and_then(|n| u16::try_from(n).ok())?;
            let at = format!("{path}.portLevelSettings[{k}]");
            let policy = parts(
                cx,
                r,
                &at,
                &p.load_balancer,
                &p.connection_pool,
                &p.outlier_detection,
                &p.tls,
            );
            Some(PortPolicy { port, policy })
        })
        .collect();
    (policy, ports)
}

/// The four settings a policy and a port-level policy share.
fn parts(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    lb: &Option<LoadBalancerSettings>,
    pool: &Option<ConnectionPoolSettings>,
    outlier: &Option<istio::OutlierDetection>,
    tls: &Option<ClientTlsSettings>,
) -> BackendPolicy {
    let (load_balancer, locality) = match lb {
        Some(lb) => load_balancer(cx, r, &format!("{path}.loadBalancer"), lb),
        None => (None, None),
    };
    BackendPolicy {
        load_balancer,
        locality,
        connection_pool: pool
            .as_ref()
            .map(|p| connection_pool(cx, r, &format!("{path}.connectionPool"), p))
            .unwrap_or_default(),
        outlier_detection: outlier
            .as_ref()
            .map(|o| outlier_detection(cx, r, &format!("{path}.outlierDetection"), o)),
        tls: tls
            .as_ref()
            .map(|t| upstream_tls(cx, r, &format!("{path}.tls"), t)),
    }
}

/// `simple` or `consistentHash`, and `localityLbSetting`. `UNSPECIFIED` leaves the algorithm to
/// Trellis' default (peak EWMA) as Istio leaves it to its own (least request).
fn load_balancer(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    lb: &LoadBalancerSettings,
) -> (Option<LoadBalancer>, Option<LocalityLb>) {
    if lb.warmup.is_some() {
        ignored(
            cx,
            r,
            &format!("{path}.warmup"),
            "warmup (slow start) is not supported: new endpoints get their full share at once",
        );
    }
    if lb.warmup_duration_secs.is_some() {
        ignored(
            cx,
            r,
            &format!("{path}.warmupDurationSecs"),
            "warmupDurationSecs (slow start) is not supported: new endpoints get their full share at once",
        );
    }
    if lb.zone_aware_lb_setting.is_some() {
        ignored(
            cx,
            r,
            &format!("{path}.zoneAwareLbSetting"),
            "zoneAwareLbSetting is not supported; use localityLbSetting",
        );
    }
    let algo = match (lb.simple.map(SimpleLb::canonical), &lb.consistent_hash) {
        (Some(SimpleLb::RoundRobin), _) => Some(LoadBalancer::RoundRobin),
        (Some(SimpleLb::LeastRequest | SimpleLb::LeastConn), _) => Some(LoadBalancer::LeastRequest),
        (Some(SimpleLb::Random), _) => Some(LoadBalancer::Random),
        (Some(SimpleLb::Passthrough), _) => Some(LoadBalancer::Passthrough),
        (Some(SimpleLb::Unspecified), _) => None,
        (None, Some(ch)) => Some(LoadBalancer::ConsistentHash(consistent_hash(
            cx,
            r,
            &format!("{path}.consistentHash"),
            ch,
        ))),
        (None, None) => None,
    };
    let locality = lb.locality_lb_setting.as_ref().map(|l| LocalityLb {
        enabled: l.enabled.unwrap_or(true),
        distribute: l
            .distribute
            .iter()
            .map(|d| LocalityDistribute {
                from: d.from.clone(),
                to: d.to.clone(),
            })
            .collect(),
        failover: l
            .failover
            .iter()
            .map(|f| LocalityFailover {
                from: f.from.clone(),
                to: f.to.clone(),
            })
            .collect(),
        failover_priority: l.failover_priority.clone(),
    });
    (algo, locality)
}

/// Session affinity: the hashed key and the ring (Envoy's 1024-entry ring hash unless `maglev`).
fn consistent_hash(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    ch: &istio::ConsistentHashLb,
) -> ConsistentHash {
    let key = if let Some(h) = ch.http_header_name.as_deref().filter(|h| !h.is_empty()) {
        HashKey::Header(h.to_ascii_lowercase())
    } else if let Some(c) = &ch.http_cookie {
        if !c.attributes.is_empty() {
            ignored(
                cx,
                r,
                &format!("{path}.httpCookie.attributes"),
                "cookie attributes are not supported: generated cookies carry only Path and Max-Age",
            );
        }
        HashKey::Cookie {
            name: c.name.clone(),
            path: c.path.clone().filter(|p| !p.is_empty()),
            ttl: c.ttl.map(|t| t.as_std()).filter(|t| !t.is_zero()),
        }
    } else if let Some(q) = ch
        .http_query_parameter_name
        .as_deref()
        .filter(|q| !q.is_empty())
    {
        HashKey::QueryParameter(q.to_owned())
    } else {
        HashKey::SourceIp
    };
    let algorithm = if let Some(m) = &ch.maglev {
        HashAlgorithm::Maglev {
            table_size: m.table_size.filter(|s| *s > 0).unwrap_or(65537),
        }
    } else {
        let size = ch
            .ring_hash
            .as_ref()
            .and_then(|h| h.minimum_ring_size)
            .or(ch.minimum_ring_size);
        HashAlgorithm::RingHash {
            minimum_ring_size: size.filter(|s| *s > 0).unwrap_or(1024),
        }
    };
    ConsistentHash { key, algorithm }
}

/// A positive limit; Istio treats 0 (and negatives, which validation rejects) as "not set".
fn limit(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0)
}

/// `connectionPool.tcp` and `.http` in one pool. The model has one idle timeout: the HTTP one, or
/// the TCP one when only that is set (as Istio falls back).
fn connection_pool(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    p: &ConnectionPoolSettings,
) -> ConnectionPool {
    let mut out = ConnectionPool::default();
    if let Some(tcp) = &p.tcp {
        out.max_connections = limit(tcp.max_connections);
        out.connect_timeout = tcp.connect_timeout.map(|d| d.as_std());
        out.tcp_keepalive = tcp.tcp_keepalive.as_ref().map(|k| TcpKeepalive {
            probes: k.probes,
            time: k.time.map(|d| d.as_std()),
            interval: k.interval.map(|d| d.as_std()),
        });
        out.max_connection_duration = tcp.max_connection_duration.map(|d| d.as_std());
        out.idle_timeout = tcp.idle_timeout.map(|d| d.as_std());
    }
    if let Some(http) = &p.http {
        out.http1_max_pending_requests = limit(http.http1_max_pending_requests);
        out.http2_max_requests = limit(http.http2_max_requests);
        out.max_requests_per_connection = limit(http.max_requests_per_connection);
        out.max_retries = limit(http.max_retries);
        out.max_concurrent_streams = limit(http.max_concurrent_streams);
        if let Some(idle) = http.idle_timeout {
            let tcp_idle = p.tcp.as_ref().and_then(|t| t.idle_timeout);
            if tcp_idle.is_some_and(|t| t != idle) {
                ignored(
                    cx,
                    r,
                    &format!("{path}.tcp.idleTimeout"),
                    "tcp.idleTimeout has no effect next to http.idleTimeout: Trellis has one idle timeout per backend and uses the HTTP one",
                );
            }
            out.idle_timeout = Some(idle.as_std());
        }
        out.h2_upgrade = match http.h2_upgrade_policy {
            Some(H2UpgradePolicy::Upgrade) => Some(true),
            Some(H2UpgradePolicy::DoNotUpgrade) => Some(false),
            Some(H2UpgradePolicy::Default) | None => None,
        };
        out.use_client_protocol = http.use_client_protocol;
        if http.http2_keep_alive.is_some() {
            ignored(
                cx,
                r,
                &format!("{path}.http.http2KeepAlive"),
                "http2KeepAlive is not supported: upstream HTTP/2 connections are not pinged",
            );
        }
    }
    out
}

/// Outlier detection with Istio's defaults. The deprecated `consecutiveErrors` counts as
/// `consecutive5xxErrors` when that is unset.
fn outlier_detection(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    o: &istio::OutlierDetection,
) -> OutlierDetection {
    if !o.outlier_detection_http_error_codes.is_empty() {
        ignored(
            cx,
            r,
            &format!("{path}.outlierDetectionHttpErrorCodes"),
            "outlierDetectionHttpErrorCodes is not supported: 5xx responses count as errors",
        );
    }
    let d = OutlierDetection::default();
    OutlierDetection {
        consecutive_5xx_errors: o.effective_consecutive_5xx_errors(),
        consecutive_gateway_errors: o.consecutive_gateway_errors,
        consecutive_local_origin_failures: o.consecutive_local_origin_failures,
        split_external_local_origin_errors: o.split_external_local_origin_errors,
        interval: o.interval.map(|i| i.as_std()).unwrap_or(d.interval),
        base_ejection_time: o
            .base_ejection_time
            .map(|b| b.as_std())
            .unwrap_or(d.base_ejection_time),
        // Istio only passes positive values; 0 leaves Envoy's default.
        max_ejection_percent: limit(o.max_ejection_percent).unwrap_or(d.max_ejection_percent),
        min_health_percent: o
            .min_health_percent
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
    }
}

/// Upstream TLS; an unset mode is `DISABLE`, as in Istio.
fn upstream_tls(cx: &mut Ctx<'_>, r: &Resource, path: &str, t: &ClientTlsSettings) -> UpstreamTls {
    if t.ca_crl.as_deref().is_some_and(|c| !c.is_empty()) {
        ignored(
            cx,
            r,
            &format!("{path}.caCrl"),
            "caCrl is not supported: server certificates are not checked against a revocation list",
        );
    }
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    UpstreamTls {
        mode: match t.mode {
            None | Some(ClientTlsMode::Disable) => TlsMode::Disable,
            Some(ClientTlsMode::Simple) => TlsMode::Simple,
            Some(ClientTlsMode::Mutual) => TlsMode::Mutual,
            Some(ClientTlsMode::IstioMutual) => TlsMode::IstioMutual,
        },
        sni: nonempty(&t.sni),
        subject_alt_names: t.subject_alt_names.clone(),
        ca_certificates: nonempty(&t.ca_certificates),
        client_certificate: nonempty(&t.client_certificate),
        private_key: nonempty(&t.private_key),
        credential_name: nonempty(&t.credential_name),
        insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
    }
}
