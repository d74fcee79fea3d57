//! Retries: when a failed request is tried again, how often and how fast.
//!
//! Istio states retries per route (`attempts`, `perTryTimeout`, `retryOn`); Linkerd
//! states them per route too (`isRetryable`) but caps them mesh-wide with a retry budget
//! so retries cannot multiply load during an outage. The model carries both.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How a route retries failed requests.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Retries allowed after the first try (Istio `attempts`); `0` disables retries.
    pub attempts: u32,
    /// Deadline of each try; unset means each try may use what is left of the route
    /// timeout.
    #[serde(with = "crate::serde_millis::option")]
    pub per_try_timeout: Option<Duration>,
    /// Which failures are retried.
    pub retry_on: RetryOn,
    /// Caps retries relative to regular traffic (Linkerd); unset means only `attempts`
    /// limits them.
    pub budget: Option<RetryBudget>,
    /// Base interval of the jittered exponential backoff between tries (Envoy: 25 ms).
    #[serde(with = "crate::serde_millis")]
    pub backoff_base: Duration,
    /// Upper bound of the backoff interval (Envoy: 10 × base = 250 ms).
    #[serde(with = "crate::serde_millis")]
    pub backoff_max: Duration,
    /// Whether requests with non-idempotent methods (POST, PATCH, ...) are retried after
    /// they may have reached the server. Defaults to `false`: only idempotent methods
    /// (RFC 9110: GET, HEAD, OPTIONS, TRACE, PUT, DELETE) are retried then, while a failure
    /// that provably happened before the request was sent (connect failure, refused
    /// stream) is retried for any method. Linkerd's `isRetryable` and the annotation
    /// `retry.trellis.dev/non-idempotent: "true"` on a VirtualService set it.
    pub retry_non_idempotent: bool,
}

impl Default for RetryPolicy {
    /// Istio's policy for HTTP routes that do not configure retries: 2 retries on the
    /// default conditions with Envoy's backoff.
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: RetryOn::default(),
            budget: None,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            retry_non_idempotent: false,
        }
    }
}

/// A failure class that triggers a retry; the names are Envoy's `retry_on` values, which
/// Istio's `retryOn` passes through.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum RetryCondition {
    /// Any 5xx response, connect failure, reset or refused stream.
    #[serde(rename = "5xx")]
    FiveXx,
    /// 502, 503 or 504 responses, plus connect failures and resets.
    GatewayError,
    /// The upstream reset or disconnected, or timed out before responding.
    Reset,
    /// Reset before the request was sent, so any method is safe to retry.
    ResetBeforeRequest,
    /// Connecting to the endpoint failed.
    ConnectFailure,
    /// The upstream answered with `x-envoy-ratelimited`.
    EnvoyRatelimited,
    /// 409 Conflict.
    #[serde(rename = "retriable-4xx")]
    Retriable4xx,
    /// The HTTP/2 stream was refused (`REFUSED_STREAM`): never processed.
    RefusedStream,
    /// A status listed in [`RetryOn::status_codes`].
    RetriableStatusCodes,
    /// The response carried a header configured as retriable.
    RetriableHeaders,
    /// HTTP/3 failure after connecting.
    Http3PostConnectFailure,
    /// gRPC status CANCELLED (1).
    Cancelled,
    /// gRPC status DEADLINE_EXCEEDED (4).
    DeadlineExceeded,
    /// gRPC status INTERNAL (13).
    Internal,
    /// gRPC status RESOURCE_EXHAUSTED (8).
    ResourceExhausted,
    /// gRPC status UNAVAILABLE (14).
    Unavailable,
}

impl RetryCondition {
    /// Every condition, for parsing and documentation.
    pub const ALL: [RetryCondition; 16] = [
        RetryCondition::FiveXx,
        RetryCondition::GatewayError,
        RetryCondition::Reset,
        RetryCondition::ResetBeforeRequest,
        RetryCondition::ConnectFailure,
        RetryCondition::EnvoyRatelimited,
        RetryCondition::Retriable4xx,
        RetryCondition::RefusedStream,
        RetryCondition::RetriableStatusCodes,
        RetryCondition::RetriableHeaders,
        RetryCondition::Http3PostConnectFailure,
        RetryCondition::Cancelled,
        RetryCondition::DeadlineExceeded,
        RetryCondition::Internal,
        RetryCondition::ResourceExhausted,
        RetryCondition::Unavailable,
    ];

    /// The `retryOn` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryCondition::FiveXx => "5xx",
            RetryCondition::GatewayError => "gateway-error",
            RetryCondition::Reset => "reset",
            RetryCondition::ResetBeforeRequest => "reset-before-request",
            RetryCondition::ConnectFailure => "connect-failure",
            RetryCondition::EnvoyRatelimited => "envoy-ratelimited",
            RetryCondition::Retriable4xx => "retriable-4xx",
            RetryCondition::RefusedStream => "refused-stream",
            RetryCondition::RetriableStatusCodes => "retriable-status-codes",
            RetryCondition::RetriableHeaders => "retriable-headers",
            RetryCondition::Http3PostConnectFailure => "http3-post-connect-failure",
            RetryCondition::Cancelled => "cancelled",
            RetryCondition::DeadlineExceeded => "deadline-exceeded",
            RetryCondition::Internal => "internal",
            RetryCondition::ResourceExhausted => "resource-exhausted",
            RetryCondition::Unavailable => "unavailable",
        }
    }

    /// The gRPC status code this condition retries, for gRPC-specific conditions.
    pub fn grpc_status(self) -> Option<u32> {
        match self {
            RetryCondition::Cancelled => Some(1),
            RetryCondition::DeadlineExceeded => Some(4),
            RetryCondition::ResourceExhausted => Some(8),
            RetryCondition::Internal => Some(13),
            RetryCondition::Unavailable => Some(14),
            _ => None,
        }
    }
}

/// The set of failures a route retries (Istio `retryOn`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RetryOn {
    /// Failure classes that trigger a retry.
    pub conditions: BTreeSet<RetryCondition>,
    /// Response statuses retried under [`RetryCondition::RetriableStatusCodes`].
    pub status_codes: Vec<u16>,
}

impl Default for RetryOn {
    /// Istio's default when `retryOn` is unset:
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with
    /// status 503 — failures where the request most likely never reached the application.
    fn default() -> Self {
        RetryOn {
            conditions: BTreeSet::from([
                RetryCondition::ConnectFailure,
                RetryCondition::RefusedStream,
                RetryCondition::Unavailable,
                RetryCondition::Cancelled,
                RetryCondition::RetriableStatusCodes,
            ]),
            status_codes: vec![503],
        }
    }
}

impl RetryOn {
    /// Parses Istio's comma-separated `retryOn`, e.g. `5xx,reset,503`. Numbers are
    /// retriable status codes (and imply `retriable-status-codes`, as Istio does). An
    /// empty string means Istio's default. Unknown names and out-of-range codes are
    /// errors, so the analyzer can report them instead of silently not retrying.
    pub fn parse(s: &str) -> Result<RetryOn, String> {
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(RetryOn::default());
        }
        let mut out = RetryOn {
            conditions: BTreeSet::new(),
            status_codes: Vec::new(),
        };
        for item in items {
            if item.bytes().all(|b| b.is_ascii_digit()) {
                let code = item
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| format!("retryOn: {item:?} is not an HTTP status code"))?;
                if !out.status_codes.contains(&code) {
                    out.status_codes.push(code);
                }
                out.conditions.insert(RetryCondition::RetriableStatusCodes);
                continue;
            }
            let cond = RetryCondition::ALL
                .into_iter()
                .find(|c| c.as_str().eq_ignore_ascii_case(item))
                .ok_or_else(|| format!("retryOn: unknown retry condition {item:?}"))?;
            out.conditions.insert(cond);
        }
        Ok(out)
    }

    /// Whether a response with HTTP `status` should be retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.conditions.iter().any(|c| match c {
            RetryCondition::FiveXx => (500..=599).contains(&status),
            RetryCondition::GatewayError => matches!(status, 502..=504),
            RetryCondition::Retriable4xx => status == 409,
            RetryCondition::RetriableStatusCodes => self.status_codes.contains(&status),
            _ => false,
        })
    }

    /// Whether a response with gRPC status `code` should be retried.
    pub fn retries_grpc_status(&self, code: u32) -> bool {
        self.conditions
            .iter()
            .any(|c| c.grpc_status() == Some(code))
    }
}

impl FromStr for RetryOn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RetryOn::parse(s)
    }
}

/// The Istio `retryOn` string form; status codes follow the named conditions.
impl fmt::Display for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.conditions.iter().map(|c| c.as_str().to_string());
        let codes = self.status_codes.iter().map(u16::to_string);
        let all: Vec<String> = names.chain(codes).collect();
        f.write_str(&all.join(","))
    }
}

/// Linkerd's retry budget: retries may add at most `retry_ratio` extra load on top of
/// regular requests (plus a small floor), so a failing backend does not get hit by a
/// retry storm.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RetryBudget {
    /// Retries allowed per original request, averaged over `ttl` (0.2 = 20% extra load).
    pub retry_ratio: f64,
    /// Retries per second always allowed, so low-traffic routes can still retry.
    pub min_retries_per_second: u32,
    /// Window over which requests and retries are counted.
    #[serde(with = "crate::serde_millis")]
    pub ttl: Duration,
}

impl Default for RetryBudget {
    /// Linkerd's default budget: 20% extra, 10 retries/s floor, 10 s window.
    fn default() -> Self {
        RetryBudget {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RetryCondition::*;
    use super::*;

    #[test]
    fn parse_retry_on() -> Result<(), String> {
        let r = RetryOn::parse("5xx, gateway-error,reset,connect-failure,503,429")?;
        assert_eq!(
            r.conditions,
            BTreeSet::from([
                FiveXx,
                GatewayError,
                Reset,
                ConnectFailure,
                RetriableStatusCodes
            ])
        );
        assert_eq!(r.status_codes, vec![503, 429]);
        let all = RetryCondition::ALL.map(RetryCondition::as_str).join(",");
        assert_eq!(
            RetryOn::parse(&all)?.conditions.len(),
            RetryCondition::ALL.len()
        );
        assert_eq!(RetryOn::parse("")?, RetryOn::default());
        assert_eq!(RetryOn::parse(" , ")?, RetryOn::default());
        assert_eq!(
            RetryOn::parse("Retriable-4XX")?.conditions,
            BTreeSet::from([Retriable4xx])
        );
        Ok(())
    }

    #[test]
    fn parse_errors() {
        for bad in ["5xx,bogus", "99", "600", "99999999", "-1", "5xx;reset"] {
            assert!(RetryOn::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn defaults_and_display() -> Result<(), String> {
        let d = RetryOn::default();
        assert!(d.retries_status(503) && !d.retries_status(500));
        assert!(d.retries_grpc_status(14) && !d.retries_grpc_status(13));
        let round: RetryOn = d.to_string().parse()?;
        assert_eq!(round, d);
        let p = RetryPolicy::default();
        assert_eq!(p.attempts, 2);
        assert_eq!(
            (p.backoff_base, p.backoff_max),
            (Duration::from_millis(25), Duration::from_millis(250))
        );
        let b = RetryBudget::default();
        assert_eq!(
            (b.retry_ratio, b.min_retries_per_second, b.ttl),
            (0.2, 10, Duration::from_secs(10))
        );
        Ok(())
    }

    #[test]
    fn status_classes() -> Result<(), String> {
        let r = RetryOn::parse("gateway-error,retriable-4xx")?;
        assert!(r.retries_status(502) && r.retries_status(504) && r.retries_status(409));
        assert!(!r.retries_status(500));
        assert!(RetryOn::parse("5xx")?.retries_status(500));
        Ok(())
    }

    #[test]
    fn serde_names_match_retry_on_spelling() -> Result<(), serde_json::Error> {
        for c in RetryCondition::ALL {
            assert_eq!(serde_json::to_string(&c)?, format!("\"{}\"", c.as_str()));
        }
        Ok(())
    }
}
