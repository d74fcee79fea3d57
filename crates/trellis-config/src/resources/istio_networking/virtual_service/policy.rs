//! Per-rule HTTP policies of a VirtualService: retries, fault injection, CORS and mirroring.

use super::{Destination, checks};
use crate::resources::common::{Duration, Percent, StringMatch};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Retry policy (`HTTPRetry`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRetry {
    /// Retries allowed after the first try; 0 (or unset) disables retries.
    pub attempts: Option<i32>,
    pub per_try_timeout: Option<Duration>,
    /// Comma-separated Envoy retry conditions and/or HTTP status codes.
    pub retry_on: Option<String>,
    pub retry_remote_localities: Option<bool>,
    /// Defaults to true.
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Base interval of exponential back-off; Envoy's default is 25ms.
    pub backoff: Option<Duration>,
}

/// Envoy `x-envoy-retry-on` and `x-envoy-retry-grpc-on` conditions Istio accepts.
pub const RETRY_ON_CONDITIONS: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// What Istio retries on when `retryOn` is not given.
pub const DEFAULT_RETRY_ON: &str = "connect-failure,refused-stream,unavailable,cancelled";

/// Status codes Go's `net/http` knows; Istio accepts exactly these as retryOn entries.
fn is_known_status(code: u16) -> bool {
    matches!(
        code,
        100..=103
            | 200..=208
            | 226
            | 300..=308
            | 400..=418
            | 421..=426
            | 428
            | 429
            | 431
            | 451
            | 500..=508
            | 510
            | 511
    ) && code != 306
}

impl HttpRetry {
    /// The retry conditions in effect (the default list when `retryOn` is unset or empty).
    pub fn retry_on_conditions(&self) -> impl Iterator<Item = &str> {
        let s = self
            .retry_on
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_RETRY_ON);
        s.split(',')
    }

    /// Are retries enabled at all?
    pub fn enabled(&self) -> bool {
        self.attempts.unwrap_or(0) > 0
    }
}

impl Validate for HttpRetry {
    fn validate(&self, cx: &mut Cx) {
        let attempts = self.attempts.unwrap_or(0);
        if attempts < 0 {
            cx.error_at(
                "attempts",
                format!("attempts must not be negative, got {attempts}"),
            );
        }
        let tuned = self.per_try_timeout.is_some()
            || self.retry_on.as_deref().is_some_and(|s| !s.is_empty())
            || self.retry_remote_localities.is_some();
        if attempts == 0 && tuned {
            cx.error(
                "retries are disabled (`attempts` is 0 or missing) but perTryTimeout, retryOn or \
                 retryRemoteLocalities is set; set `attempts`",
            );
        }
        checks::duration(cx, "perTryTimeout", &self.per_try_timeout);
        checks::duration(cx, "backoff", &self.backoff);
        if let Some(list) = self.retry_on.as_deref().filter(|s| !s.is_empty()) {
            for policy in list.split(',') {
                let known = RETRY_ON_CONDITIONS.contains(&policy)
                    || policy.parse::<u16>().is_ok_and(is_known_status);
                if known {
                    continue;
                }
                let trimmed = policy.trim();
                let hint = if trimmed != policy
                    && (RETRY_ON_CONDITIONS.contains(&trimmed) || trimmed.parse::<u16>().is_ok())
                {
                    " (remove the spaces around commas)".to_owned()
                } else {
                    format!(
                        "; expected HTTP status codes or {}",
                        RETRY_ON_CONDITIONS.join(", ")
                    )
                };
                cx.error_at(
                    "retryOn",
                    format!("{policy:?} is not a valid retryOn condition{hint}"),
                );
            }
        }
    }
}

/// Fault injection (`HTTPFaultInjection`): delay and/or abort a share of requests.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpFaultInjection {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

/// Delay before forwarding (`HTTPFaultInjection.Delay`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultDelay {
    /// Deprecated integer percentage; use `percentage`.
    pub percent: Option<i32>,
    pub fixed_delay: Option<Duration>,
    /// Hidden in Istio's docs and refused by its webhook; accepted here only to report it.
    pub exponential_delay: Option<Duration>,
    pub percentage: Option<Percent>,
}

/// Fail requests without forwarding (`HTTPFaultInjection.Abort`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultAbort {
    pub http_status: Option<i32>,
    /// gRPC status name, e.g. `UNAVAILABLE`.
    pub grpc_status: Option<String>,
    pub http2_error: Option<String>,
    pub percentage: Option<Percent>,
}

/// gRPC status names Istio accepts for `grpcStatus`.
pub const GRPC_STATUS_NAMES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl FaultDelay {
    /// Share of requests delayed, 0-100. Unset means none, as in Istio.
    pub fn fraction(&self) -> f64 {
        self.percentage
            .map(|p| p.value)
            .or(self.percent.map(f64::from))
            .unwrap_or(0.0)
    }
}

impl FaultAbort {
    /// Share of requests aborted, 0-100. Unset means none, as in Istio.
    pub fn fraction(&self) -> f64 {
        self.percentage.map_or(0.0, |p| p.value)
    }
}

impl Validate for HttpFaultInjection {
    fn validate(&self, cx: &mut Cx) {
        if self.delay.is_none() && self.abort.is_none() {
            cx.error("fault injection needs a delay, an abort or both");
        }
        cx.opt("delay", &self.delay);
        cx.opt("abort", &self.abort);
    }
}

impl Validate for FaultDelay {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["fixedDelay", "exponentialDelay"],
            &[self.fixed_delay.is_some(), self.exponential_delay.is_some()],
            false,
        );
        if self.exponential_delay.is_some() {
            cx.error_at(
                "exponentialDelay",
                "exponentialDelay is not supported (by Istio either); use fixedDelay",
            );
        } else {
            cx.require("fixedDelay", self.fixed_delay.is_some());
        }
        checks::duration(cx, "fixedDelay", &self.fixed_delay);
        if let Some(p) = self.percent {
            cx.deprecated("percent", "`percentage: {value: ...}`");
            if !(0..=100).contains(&p) {
                cx.error_at(
                    "percent",
                    format!("percent must be between 0 and 100, got {p}"),
                );
            }
        }
        cx.opt("percentage", &self.percentage);
    }
}

impl Validate for FaultAbort {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["httpStatus", "grpcStatus", "http2Error"],
            &[
                self.http_status.is_some(),
                self.grpc_status.is_some(),
                self.http2_error.is_some(),
            ],
            true,
        );
        if let Some(s) = self.http_status.filter(|s| !(200..=599).contains(s)) {
            cx.error_at(
                "httpStatus",
                format!("httpStatus {s} is not in the range 200..599"),
            );
        }
        if let Some(g) = self
            .grpc_status
            .as_deref()
            .filter(|g| !GRPC_STATUS_NAMES.contains(g))
        {
            let hint = if g.parse::<u32>().is_ok() {
                " (write the name, e.g. UNAVAILABLE, not the number)"
            } else {
                ""
            };
            cx.error_at(
                "grpcStatus",
                format!("grpcStatus {g:?} is not a gRPC status name{hint}"),
            );
        }
        if self.http2_error.is_some() {
            cx.error_at("http2Error", "http2Error aborts are not supported (by Istio either); use httpStatus or grpcStatus");
        }
        cx.opt("percentage", &self.percentage);
    }
}

/// Cross-origin resource sharing (`CorsPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CorsPolicy {
    pub allow_origins: Vec<StringMatch>,
    /// Deprecated exact-match origins; use `allowOrigins`.
    pub allow_origin: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: Option<bool>,
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

/// What to do with preflight requests whose origin is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// Same as FORWARD.
    Unspecified,
    Forward,
    Ignore,
}

const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

impl Validate for CorsPolicy {
    fn validate(&self, cx: &mut Cx) {
        if !self.allow_origin.is_empty() {
            cx.deprecated("allowOrigin", "`allowOrigins` with `exact:` matches");
        }
        cx.field("allowOrigins", |cx| {
            for (i, o) in self.allow_origins.iter().enumerate() {
                cx.index(i, |cx| {
                    o.validate(cx);
                    let value = o
                        .exact
                        .as_deref()
                        .or(o.prefix.as_deref())
                        .or(o.regex.as_ref().map(|r| r.0.as_str()));
                    if value.is_none_or(str::is_empty) {
                        cx.error("an allowed origin needs a non-empty exact, prefix or regex");
                    }
                });
            }
        });
        cx.field("allowMethods", |cx| {
            for (i, m) in self.allow_methods.iter().enumerate() {
                if !CORS_METHODS.contains(&m.as_str()) {
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "{m:?} is not an HTTP method (write it in upper case, e.g. GET)"
                        ))
                    });
                }
            }
        });
        for (field, list) in [
            ("allowHeaders", &self.allow_headers),
            ("exposeHeaders", &self.expose_headers),
        ] {
            cx.field(field, |cx| {
                for (i, h) in list.iter().enumerate() {
                    if h != "*" && !checks::is_header_token(h) {
                        cx.index(i, |cx| {
                            cx.error(format!("{h:?} is not a valid header name"))
                        });
                    }
                }
            });
        }
        checks::duration(cx, "maxAge", &self.max_age);
        if let Some(d) = self.max_age
            && d.nanos % 1_000_000_000 != 0
        {
            cx.error_at(
                "maxAge",
                format!("maxAge is sent in whole seconds; {d} is not"),
            );
        }
    }
}

/// Copy a share of requests to another destination (`HTTPMirrorPolicy`); responses are dropped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMirrorPolicy {
    pub destination: Option<Destination>,
    /// Defaults to 100%.
    pub percentage: Option<Percent>,
}

impl Validate for HttpMirrorPolicy {
    fn validate(&self, cx: &mut Cx) {
        cx.require("destination", self.destination.is_some());
        cx.opt("destination", &self.destination);
        cx.opt("percentage", &self.percentage);
    }
}
