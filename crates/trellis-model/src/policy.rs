//! Backend policy: how the proxy talks to the endpoints of a service.
//!
//! This is Istio's DestinationRule `trafficPolicy` (connection pools, outlier detection,
//! load balancing, upstream TLS), which also receives Linkerd's defaults. Policies are
//! layered (service, port, subset, subset port); [`BackendPolicy::merge_over`] is the
//! one place that defines how layers combine.

use std::time::Duration;

use crate::balance::{LoadBalancer, LocalityLb};

/// Everything configurable about reaching one backend (a service, subset or port).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BackendPolicy {
    /// Endpoint selection; unset means [`LoadBalancer::default`] (peak EWMA).
    pub load_balancer: Option<LoadBalancer>,
    /// Locality-aware routing and failover.
    pub locality: Option<LocalityLb>,
    /// Circuit-breaking limits and connection settings. A pool with no field set means
    /// "not configured at this layer".
    pub connection_pool: ConnectionPool,
    /// Passive health checking: eject endpoints that keep failing.
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS towards the endpoints; unset means automatic mTLS to mesh workloads and
    /// plaintext otherwise.
    pub tls: Option<UpstreamTls>,
}

impl BackendPolicy {
    /// This (more specific) policy layered over `base`, as Istio merges DestinationRule
    /// layers: each top-level setting that is set here replaces the base one *as a
    /// whole*; unset ones are inherited. In particular a connection pool set here does not
    /// inherit individual limits from `base` — Istio documents that omitted fields of an
    /// overriding `connectionPool` fall back to defaults, not to the outer layer.
    pub fn merge_over(&self, base: &BackendPolicy) -> BackendPolicy {
        fn pick<T: Clone>(over: &Option<T>, base: &Option<T>) -> Option<T> {
            over.as_ref().or(base.as_ref()).cloned()
        }
        BackendPolicy {
            load_balancer: pick(&self.load_balancer, &base.load_balancer),
            locality: pick(&self.locality, &base.locality),
            connection_pool: if self.connection_pool.is_empty() {
                base.connection_pool.clone()
            } else {
                self.connection_pool.clone()
            },
            outlier_detection: pick(&self.outlier_detection, &base.outlier_detection),
            tls: pick(&self.tls, &base.tls),
        }
    }

    /// The load balancer in effect: the configured one or peak EWMA.
    pub fn load_balancer_or_default(&self) -> LoadBalancer {
        self.load_balancer.clone().unwrap_or_default()
    }
}

/// A backend policy that applies only to one port of a service (Istio
/// `portLevelSettings`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PortPolicy {
    /// Service port number the policy applies to.
    pub port: u16,
    /// The settings for that port, layered over the enclosing policy.
    pub policy: BackendPolicy,
}

/// Connection limits and settings (Istio `connectionPool.tcp` and `.http`). Limits that
/// are reached make the proxy fail fast with 503 and response flag `UO` instead of
/// queueing — this is circuit breaking. Unset fields take the noted defaults.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ConnectionPool {
    /// Maximum connections to all endpoints of the backend together (default unlimited).
    pub max_connections: Option<u32>,
    /// TCP connect timeout (default 10 s).
    #[serde(with = "crate::serde_millis::option")]
    pub connect_timeout: Option<Duration>,
    /// TCP keepalive on upstream connections (default off).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Connections are closed after this age, spreading load after scale-ups
    /// (default unlimited).
    #[serde(with = "crate::serde_millis::option")]
    pub max_connection_duration: Option<Duration>,
    /// Requests allowed to wait for a connection (default unlimited).
    pub http1_max_pending_requests: Option<u32>,
    /// Concurrent requests to the backend (default unlimited).
    pub http2_max_requests: Option<u32>,
    /// Requests per connection before it is closed; 1 disables keep-alive
    /// (default unlimited).
    pub max_requests_per_connection: Option<u32>,
    /// Concurrent retries to the backend across all requests (default unlimited).
    pub max_retries: Option<u32>,
    /// Idle connections are closed after this long (default 1 h).
    #[serde(with = "crate::serde_millis::option")]
    pub idle_timeout: Option<Duration>,
    /// Whether HTTP/1.1 client requests are upgraded to HTTP/2 towards the backend
    /// (default: the mesh-wide setting, off).
    pub h2_upgrade: Option<bool>,
    /// Speak to the backend in whatever HTTP version the client used.
    pub use_client_protocol: bool,
    /// Concurrent HTTP/2 streams per upstream connection (default unlimited).
    pub max_concurrent_streams: Option<u32>,
}

impl ConnectionPool {
    /// Whether nothing is configured, so an outer layer's pool applies.
    pub fn is_empty(&self) -> bool {
        *self == ConnectionPool::default()
    }
}

/// TCP keepalive probing of upstream connections, to notice dead peers behind NATs and
/// load balancers that silently drop idle connections.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TcpKeepalive {
    /// Unanswered probes before the connection is dropped (OS default when unset).
    pub probes: Option<u32>,
    /// Idle time before the first probe (OS default, usually 2 h, when unset).
    #[serde(with = "crate::serde_millis::option")]
    pub time: Option<Duration>,
    /// Interval between probes (OS default when unset).
    #[serde(with = "crate::serde_millis::option")]
    pub interval: Option<Duration>,
}

/// Outlier detection: endpoints that return consecutive errors are ejected from the
/// balancing pool for a while, so one bad replica stops failing a share of requests.
/// Defaults are Istio's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OutlierDetection {
    /// Consecutive 5xx responses (and connect failures) that eject an endpoint. Unset
    /// means 5, as in Envoy; `Some(0)` disables this check.
    pub consecutive_5xx_errors: Option<u32>,
    /// Consecutive 502/503/504 (and connect failures) that eject an endpoint; unset or
    /// 0 disables this check.
    pub consecutive_gateway_errors: Option<u32>,
    /// Consecutive locally observed failures (connect errors, timeouts, resets) that
    /// eject an endpoint; only counted separately with `split_external_local_origin_errors`.
    pub consecutive_local_origin_failures: Option<u32>,
    /// Count failures the proxy observed itself separately from error responses the
    /// application sent.
    pub split_external_local_origin_errors: bool,
    /// How often ejection decisions are made (default 10 s).
    #[serde(with = "crate::serde_millis")]
    pub interval: Duration,
    /// Ejection time, multiplied by the number of times an endpoint was ejected
    /// (default 30 s).
    #[serde(with = "crate::serde_millis")]
    pub base_ejection_time: Duration,
    /// At most this percentage of endpoints is ejected at once (default 10).
    pub max_ejection_percent: u32,
    /// Ejection is suspended while fewer than this percentage of endpoints is healthy
    /// (default 0: always allowed, as Istio sets it).
    pub min_health_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_5xx_errors: None,
            consecutive_gateway_errors: None,
            consecutive_local_origin_failures: None,
            split_external_local_origin_errors: false,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    }
}

impl OutlierDetection {
    /// The consecutive-5xx threshold in effect, `None` when the check is disabled.
    pub fn consecutive_5xx_threshold(&self) -> Option<u32> {
        match self.consecutive_5xx_errors {
            None => Some(5),
            Some(0) => None,
            Some(n) => Some(n),
        }
    }
}

/// TLS the proxy originates towards a backend (Istio DestinationRule `tls`). File
/// references are paths the proxy reads; the model does no I/O.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct UpstreamTls {
    /// What kind of TLS, if any.
    pub mode: TlsMode,
    /// SNI sent in the ClientHello; defaults to the destination host for `Simple`/`Mutual`.
    pub sni: Option<String>,
    /// Acceptable server certificate SANs; empty means any SAN signed by the CA (or, for
    /// `IstioMutual`, the destination service's mesh identities).
    pub subject_alt_names: Vec<String>,
    /// CA bundle file to verify the server with; unset means the system roots.
    pub ca_certificates: Option<String>,
    /// Client certificate file for `Mutual`.
    pub client_certificate: Option<String>,
    /// Client private key file for `Mutual`.
    pub private_key: Option<String>,
    /// Kubernetes secret holding the client certificate, key and CA (gateways only).
    pub credential_name: Option<String>,
    /// Skip verifying the server certificate; only for testing against self-signed
    /// servers.
    pub insecure_skip_verify: bool,
}

/// Kind of upstream TLS.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plaintext (also disables automatic mTLS).
    #[default]
    Disable,
    /// Server-authenticated TLS, e.g. to an external HTTPS API.
    Simple,
    /// TLS with a user-provided client certificate.
    Mutual,
    /// Mesh mTLS with the workload's SPIFFE certificate (Istio `ISTIO_MUTUAL`).
    IstioMutual,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_connections: u32) -> ConnectionPool {
        ConnectionPool {
            max_connections: Some(max_connections),
            ..ConnectionPool::default()
        }
    }

    #[test]
    fn merge_replaces_set_fields_and_inherits_unset() {
        let base = BackendPolicy {
            load_balancer: Some(LoadBalancer::RoundRobin),
            connection_pool: ConnectionPool {
                http1_max_pending_requests: Some(1),
                ..pool(10)
            },
            outlier_detection: Some(OutlierDetection::default()),
            ..BackendPolicy::default()
        };
        let over = BackendPolicy {
            load_balancer: Some(LoadBalancer::LeastRequest),
            connection_pool: pool(2),
            ..BackendPolicy::default()
        };
        let merged = over.merge_over(&base);
        assert_eq!(merged.load_balancer, Some(LoadBalancer::LeastRequest));
        assert_eq!(merged.outlier_detection, base.outlier_detection);
        // The overriding pool replaces the base pool whole, as in Istio.
        assert_eq!(merged.connection_pool, pool(2));
        // An empty layer changes nothing.
        assert_eq!(BackendPolicy::default().merge_over(&base), base);
    }

    #[test]
    fn outlier_defaults() {
        let o = OutlierDetection::default();
        assert_eq!(o.interval, Duration::from_secs(10));
        assert_eq!(o.base_ejection_time, Duration::from_secs(30));
        assert_eq!((o.max_ejection_percent, o.min_health_percent), (10, 0));
        assert_eq!(o.consecutive_5xx_threshold(), Some(5));
        let off = OutlierDetection {
            consecutive_5xx_errors: Some(0),
            ..o
        };
        assert_eq!(off.consecutive_5xx_threshold(), None);
    }

    #[test]
    fn default_load_balancer_is_peak_ewma() {
        assert_eq!(
            BackendPolicy::default().load_balancer_or_default(),
            LoadBalancer::PeakEwma
        );
    }
}
