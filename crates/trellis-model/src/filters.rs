//! What a route does to a request besides choosing a backend: header edits, rewrites,
//! mirroring, fault injection and CORS.
//!
//! Istio's VirtualService fields and Gateway API `HTTPRouteFilter`s compile into these;
//! both express the same operations, so the proxy implements each once.

use std::time::Duration;

use crate::matching::StringMatch;
use crate::route::Destination;

/// Header edits applied to a request or response.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HeaderOps {
    /// Headers set, replacing existing values (`name`, `value`).
    pub set: Vec<(String, String)>,
    /// Headers appended to existing values (`name`, `value`).
    pub add: Vec<(String, String)>,
    /// Header names removed.
    pub remove: Vec<String>,
}

impl HeaderOps {
    /// Whether there is nothing to do, so the proxy can skip the header pass.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// Request rewrite before forwarding (Istio `rewrite`, Gateway `URLRewrite`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Rewrite {
    /// New path, derived from the original.
    pub path: Option<PathRewrite>,
    /// New `:authority`/`Host`.
    pub authority: Option<String>,
}

/// How a path is rewritten.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathRewrite {
    /// Replace the part of the path matched by the route's prefix match with this
    /// (Istio `rewrite.uri` on a prefix match, Gateway `ReplacePrefixMatch`). On an exact
    /// match the whole path is replaced.
    ReplacePrefix(String),
    /// Replace the whole path (Gateway `ReplaceFullPath`).
    ReplaceFull(String),
    /// Replace every match of `pattern` with `substitution` (Istio `uriRegexRewrite`);
    /// `\1`-style group references are allowed. Compiled by the proxy.
    Regex {
        /// RE2 pattern.
        pattern: String,
        /// Replacement text.
        substitution: String,
    },
}

/// Send a copy of the request to another backend, fire-and-forget: the response is
/// discarded, so shadow deployments see production traffic without affecting clients.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Mirror {
    /// Where copies go.
    pub destination: Destination,
    /// Share of requests mirrored, 0–100 (default 100, as Istio).
    pub percent: f64,
}

impl Default for Mirror {
    fn default() -> Self {
        Mirror {
            destination: Destination::default(),
            percent: 100.0,
        }
    }
}

/// Fault injection, for testing how clients cope with slow or failing backends. Injected
/// faults are flagged `DI`/`FI` in access logs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Delay before forwarding.
    pub delay: Option<FaultDelay>,
    /// Answer locally with an error instead of forwarding.
    pub abort: Option<FaultAbort>,
}

/// Injected latency.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FaultDelay {
    /// How long the request is held.
    #[serde(with = "crate::serde_millis")]
    pub fixed: Duration,
    /// Share of requests delayed, 0–100. Istio delays no request when the percentage is
    /// left out, so the compiler writes what the user wrote.
    pub percent: f64,
}

/// Injected error.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaultAbort {
    /// What error the client sees.
    pub kind: AbortKind,
    /// Share of requests aborted, 0–100.
    #[serde(default)]
    pub percent: f64,
}

/// The error an aborted request gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortKind {
    /// HTTP response with this status.
    HttpStatus(u16),
    /// gRPC trailers-only response with this status (name such as `UNAVAILABLE`, or the
    /// number as text).
    GrpcStatus(String),
    /// HTTP/2 stream reset.
    Http2Error,
}

/// CORS: how the proxy answers preflights and which cross-origin responses browsers may
/// read. Handled in the proxy so applications need not implement it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CorsPolicy {
    /// Origins allowed to make requests; a request from any other origin gets no CORS
    /// headers.
    pub allow_origins: Vec<StringMatch>,
    /// `Access-Control-Allow-Methods`.
    pub allow_methods: Vec<String>,
    /// `Access-Control-Allow-Headers`.
    pub allow_headers: Vec<String>,
    /// `Access-Control-Expose-Headers`.
    pub expose_headers: Vec<String>,
    /// `Access-Control-Max-Age`: how long browsers cache a preflight answer.
    #[serde(with = "crate::serde_millis::option")]
    pub max_age: Option<Duration>,
    /// `Access-Control-Allow-Credentials`.
    pub allow_credentials: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_ops_empty() {
        assert!(HeaderOps::default().is_empty());
        let ops = HeaderOps {
            remove: vec!["x-debug".into()],
            ..HeaderOps::default()
        };
        assert!(!ops.is_empty());
    }

    #[test]
    fn mirror_defaults_to_all_requests() -> Result<(), serde_json::Error> {
        assert_eq!(Mirror::default().percent, 100.0);
        let m: Mirror = serde_json::from_str(r#"{"destination":{"host":"shadow"}}"#)?;
        assert_eq!((m.destination.host.as_str(), m.percent), ("shadow", 100.0));
        Ok(())
    }

    #[test]
    fn fault_serde() -> Result<(), serde_json::Error> {
        let f = Fault {
            delay: Some(FaultDelay {
                fixed: Duration::from_secs(7),
                percent: 100.0,
            }),
            abort: Some(FaultAbort {
                kind: AbortKind::HttpStatus(500),
                percent: 10.0,
            }),
        };
        let json = serde_json::to_string(&f)?;
        assert!(json.contains(r#""fixed":7000"#), "{json}");
        assert_eq!(serde_json::from_str::<Fault>(&json)?, f);
        Ok(())
    }
}
