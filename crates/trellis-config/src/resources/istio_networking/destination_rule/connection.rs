//! Circuit breaking in a DestinationRule traffic policy: connection pool limits and outlier
//! detection (ejecting endpoints that keep failing).

use super::super::virtual_service::checks;
use crate::resources::common::Duration;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Limits on connections and requests to each upstream host (`ConnectionPoolSettings`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectionPoolSettings {
    pub tcp: Option<TcpSettings>,
    pub http: Option<HttpSettings>,
}

/// Settings common to TCP and HTTP upstream connections (`TCPSettings`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpSettings {
    pub max_connections: Option<i32>,
    pub connect_timeout: Option<Duration>,
    pub tcp_keepalive: Option<TcpKeepalive>,
    pub max_connection_duration: Option<Duration>,
    /// `0s` disables the idle timeout.
    pub idle_timeout: Option<Duration>,
}

/// SO_KEEPALIVE settings; unset fields use the OS defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpKeepalive {
    pub probes: Option<u32>,
    pub time: Option<Duration>,
    pub interval: Option<Duration>,
}

/// HTTP/1.1 and HTTP/2 limits (`HTTPSettings`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpSettings {
    #[serde(rename = "http1MaxPendingRequests")]
    pub http1_max_pending_requests: Option<i32>,
    #[serde(rename = "http2MaxRequests")]
    pub http2_max_requests: Option<i32>,
    /// 1 disables keep-alive; 0 means unlimited.
    pub max_requests_per_connection: Option<i32>,
    /// Outstanding retries to the whole cluster at once.
    pub max_retries: Option<i32>,
    pub idle_timeout: Option<Duration>,
    #[serde(rename = "h2UpgradePolicy")]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Keep the client's HTTP version upstream (makes h2UpgradePolicy moot).
    pub use_client_protocol: bool,
    pub max_concurrent_streams: Option<i32>,
    #[serde(rename = "http2KeepAlive")]
    pub http2_keep_alive: Option<ConnectionKeepalive>,
}

/// Whether HTTP/1.1 upstream connections are upgraded to HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// The mesh-wide default.
    Default,
    DoNotUpgrade,
    Upgrade,
}

/// HTTP/2 PING keep-alive for upstream connections.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectionKeepalive {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
}

fn non_negative(cx: &mut Cx, name: &str, v: Option<i32>) {
    if let Some(v) = v
        && v < 0
    {
        cx.error_at(name, format!("`{name}` must not be negative, got {v}"));
    }
}

impl Validate for ConnectionPoolSettings {
    fn validate(&self, cx: &mut Cx) {
        if self.tcp.is_none() && self.http.is_none() {
            cx.error("connectionPool needs tcp or http settings");
        }
        cx.opt("tcp", &self.tcp);
        cx.opt("http", &self.http);
    }
}

impl Validate for TcpSettings {
    fn validate(&self, cx: &mut Cx) {
        non_negative(cx, "maxConnections", self.max_connections);
        checks::duration(cx, "connectTimeout", &self.connect_timeout);
        checks::duration(cx, "maxConnectionDuration", &self.max_connection_duration);
        // Istio lets `0s` through here: it turns the idle timeout off.
        checks::duration(
            cx,
            "idleTimeout",
            &self.idle_timeout.filter(|d| d.nanos != 0),
        );
        if let Some(k) = &self.tcp_keepalive {
            cx.field("tcpKeepalive", |cx| {
                checks::duration(cx, "time", &k.time);
                checks::duration(cx, "interval", &k.interval);
            });
        }
    }
}

impl Validate for HttpSettings {
    fn validate(&self, cx: &mut Cx) {
        non_negative(
            cx,
            "http1MaxPendingRequests",
            self.http1_max_pending_requests,
        );
        non_negative(cx, "http2MaxRequests", self.http2_max_requests);
        non_negative(
            cx,
            "maxRequestsPerConnection",
            self.max_requests_per_connection,
        );
        non_negative(cx, "maxRetries", self.max_retries);
        non_negative(cx, "maxConcurrentStreams", self.max_concurrent_streams);
        checks::duration(cx, "idleTimeout", &self.idle_timeout);
        if self.use_client_protocol && self.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) {
            cx.error_at(
                "useClientProtocol",
                "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE",
            );
        }
        if let Some(k) = &self.http2_keep_alive {
            cx.field("http2KeepAlive", |cx| {
                cx.require("interval", k.interval.is_some());
                cx.require("timeout", k.timeout.is_some());
                checks::duration(cx, "interval", &k.interval);
                checks::duration(cx, "timeout", &k.timeout);
            });
        }
    }
}

/// Eject endpoints that keep failing (`OutlierDetection`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutlierDetection {
    /// Deprecated; means consecutive5xxErrors.
    pub consecutive_errors: Option<i32>,
    /// Count local failures (connect errors, timeouts) apart from upstream responses.
    pub split_external_local_origin_errors: bool,
    pub consecutive_local_origin_failures: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    pub interval: Option<Duration>,
    pub base_ejection_time: Option<Duration>,
    pub max_ejection_percent: Option<i32>,
    pub min_health_percent: Option<i32>,
    /// Status codes that count as errors instead of 5xx.
    pub outlier_detection_http_error_codes: Vec<u32>,
}

impl OutlierDetection {
    /// The 5xx threshold in effect: `consecutive5xxErrors`, else the deprecated
    /// `consecutiveErrors` when positive.
    pub fn effective_consecutive_5xx_errors(&self) -> Option<u32> {
        self.consecutive_5xx_errors.or_else(|| {
            self.consecutive_errors
                .and_then(|e| u32::try_from(e).ok())
                .filter(|e| *e > 0)
        })
    }
}

impl Validate for OutlierDetection {
    fn validate(&self, cx: &mut Cx) {
        if let Some(e) = self.consecutive_errors {
            cx.deprecated(
                "consecutiveErrors",
                "consecutive5xxErrors (or consecutiveGatewayErrors)",
            );
            non_negative(cx, "consecutiveErrors", Some(e));
        }
        if !self.split_external_local_origin_errors
            && self
                .consecutive_local_origin_failures
                .is_some_and(|n| n > 0)
        {
            cx.error_at(
                "consecutiveLocalOriginFailures",
                "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true",
            );
        }
        checks::duration(cx, "interval", &self.interval);
        checks::duration(cx, "baseEjectionTime", &self.base_ejection_time);
        for (name, v) in [
            ("maxEjectionPercent", self.max_ejection_percent),
            ("minHealthPercent", self.min_health_percent),
        ] {
            if let Some(v) = v
                && !(0..=100).contains(&v)
            {
                cx.error_at(name, format!("`{name}` must be between 0 and 100, got {v}"));
            }
        }
        cx.field("outlierDetectionHttpErrorCodes", |cx| {
            for (i, c) in self.outlier_detection_http_error_codes.iter().enumerate() {
                if !(100..=599).contains(c) {
                    cx.index(i, |cx| {
                        cx.error(format!("{c} is not an HTTP status code (100..599)"))
                    });
                }
            }
        });
    }
}
