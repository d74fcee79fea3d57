//! Routes: where a request or connection goes and what happens on the way.
//!
//! Istio VirtualService `http`/`tcp`/`tls` rules, Gateway API `HTTPRoute`/`GRPCRoute`/
//! `TCPRoute`/`TLSRoute`, Linkerd `ServiceProfile` routes and SMI `TrafficSplit` all
//! compile into these. Route lists are ordered: the proxy takes the first route whose
//! match list matches, so compilers emit routes in the precedence their API defines.

use std::time::Duration;

use crate::filters::{CorsPolicy, Fault, HeaderOps, Mirror, PathRewrite, Rewrite};
use crate::matching::{HttpMatch, L4Match, TlsMatch};
use crate::origin::SourceRef;
use crate::retry::RetryPolicy;

/// One HTTP routing rule.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HttpRoute {
    /// Route name (Istio `name`, Linkerd route name), shown in access logs and metrics.
    pub name: Option<String>,
    /// The route applies when any of these matches; empty matches every request.
    pub matches: Vec<HttpMatch>,
    /// What happens to a matched request.
    pub action: RouteAction,
    /// Deadline for the whole request including retries; `None` means no deadline (Istio's
    /// default for HTTP routes). Exceeding it gives 504 with flag `UT`.
    #[serde(with = "crate::serde_millis::option")]
    pub timeout: Option<Duration>,
    /// Retry policy; `None` means no retries. The proxy does not invent defaults: the
    /// Istio compiler writes `Some(RetryPolicy::default())` for routes without `retries`,
    /// as Istio retries twice by default.
    pub retry: Option<RetryPolicy>,
    /// Fault injection, applied before forwarding.
    pub fault: Option<Fault>,
    /// Backends that receive a copy of each request.
    pub mirrors: Vec<Mirror>,
    /// Header edits on the request, before any per-destination edits.
    pub request_headers: HeaderOps,
    /// Header edits on the response, after any per-destination edits.
    pub response_headers: HeaderOps,
    /// Path/authority rewrite before forwarding.
    pub rewrite: Option<Rewrite>,
    /// CORS handling.
    pub cors: Option<CorsPolicy>,
    /// The resource this route was compiled from.
    pub origin: SourceRef,
    /// Which responses count as failures for metrics and retries (Linkerd
    /// `responseClasses`); the first class covering a status wins; empty means 5xx are
    /// failures.
    pub response_classes: Vec<ResponseClass>,
}

impl HttpRoute {
    /// Whether the response with `status` is a failure for this route.
    pub fn is_failure(&self, status: u16) -> bool {
        self.response_classes
            .iter()
            .find(|c| c.covers(status))
            .map_or(status >= 500, |c| c.is_failure)
    }
}

/// What a matched HTTP request gets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// Forward to one of these backends, chosen at random in proportion to weight. An
    /// empty list (or all weights 0) leaves nothing to forward to: 503 with flag `UH`.
    Forward(Vec<WeightedDestination>),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer locally with a fixed response.
    DirectResponse {
        /// HTTP status.
        status: u16,
        /// Response body.
        #[serde(default)]
        body: Option<String>,
    },
}

impl Default for RouteAction {
    fn default() -> Self {
        RouteAction::Forward(Vec::new())
    }
}

impl RouteAction {
    /// The backends this action may send to; empty for local responses. Used for the
    /// topology view and for building the backend set a proxy needs.
    pub fn destinations(&self) -> &[WeightedDestination] {
        match self {
            RouteAction::Forward(d) => d,
            _ => &[],
        }
    }
}

/// An HTTP redirect (Istio `redirect`, Gateway `RequestRedirect`); unset parts keep the
/// request's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Redirect {
    /// New scheme (`http`/`https`).
    pub scheme: Option<String>,
    /// New authority (host without port).
    pub authority: Option<String>,
    /// New port.
    pub port: Option<u16>,
    /// New path.
    pub path: Option<PathRewrite>,
    /// Status: 301 (Istio's default), 302 (Gateway API's default), 303, 307 or 308.
    pub code: u16,
}

impl Default for Redirect {
    fn default() -> Self {
        Redirect {
            scheme: None,
            authority: None,
            port: None,
            path: None,
            code: 301,
        }
    }
}

/// A backend: a service host, optionally narrowed to a subset and a port. It is also the
/// key under which the proxy keeps one balancer and one connection pool.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(default)]
pub struct Destination {
    /// Fully qualified service host (see [`crate::host::HostResolver::fqdn`]).
    pub host: String,
    /// Subset of the service's endpoints ([`crate::service::Subset`]); `None` means all.
    pub subset: Option<String>,
    /// Service port; `None` means the port the request came in on, or the service's only
    /// port.
    pub port: Option<u16>,
}

impl Destination {
    /// All endpoints of `host`.
    pub fn new(host: impl Into<String>) -> Self {
        Destination {
            host: host.into(),
            subset: None,
            port: None,
        }
    }
}

/// A backend with a traffic share, as in weighted canary routing.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WeightedDestination {
    /// The backend.
    pub destination: Destination,
    /// Relative weight (not necessarily percent); 0 takes no traffic (default 1).
    pub weight: u32,
    /// Header edits on requests sent to this backend.
    pub request_headers: HeaderOps,
    /// Header edits on responses from this backend.
    pub response_headers: HeaderOps,
}

impl Default for WeightedDestination {
    fn default() -> Self {
        WeightedDestination {
            destination: Destination::default(),
            weight: 1,
            request_headers: HeaderOps::default(),
            response_headers: HeaderOps::default(),
        }
    }
}

impl WeightedDestination {
    /// `destination` with weight `weight` and no header edits.
    pub fn new(destination: Destination, weight: u32) -> Self {
        WeightedDestination {
            destination,
            weight,
            ..WeightedDestination::default()
        }
    }
}

/// A range of statuses and whether they are failures (Linkerd response classes), so a
/// 404 from a lookup API need not count against success rate, or a 200 with an error body
/// convention can.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ResponseClass {
    /// Lowest status in the class, inclusive.
    pub status_min: u16,
    /// Highest status in the class, inclusive.
    pub status_max: u16,
    /// Whether responses in the class are failures.
    pub is_failure: bool,
}

impl ResponseClass {
    /// Whether `status` falls in this class.
    pub fn covers(&self, status: u16) -> bool {
        (self.status_min..=self.status_max).contains(&status)
    }
}

/// One rule for opaque TCP traffic.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TcpRoute {
    /// The route applies when any of these matches; empty matches every connection.
    pub matches: Vec<L4Match>,
    /// Backends, chosen per connection in proportion to weight (header edits unused).
    pub destinations: Vec<WeightedDestination>,
    /// The resource this route was compiled from.
    pub origin: SourceRef,
}

/// One rule for TLS traffic the proxy passes through, routed by SNI.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TlsRoute {
    /// The route applies when any of these matches.
    pub matches: Vec<TlsMatch>,
    /// Backends, chosen per connection in proportion to weight.
    pub destinations: Vec<WeightedDestination>,
    /// The resource this route was compiled from.
    pub origin: SourceRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(RouteAction::default().destinations(), &[]);
        assert_eq!(WeightedDestination::default().weight, 1);
        assert_eq!(Redirect::default().code, 301);
    }

    #[test]
    fn response_classes() {
        let route = HttpRoute {
            response_classes: vec![
                ResponseClass {
                    status_min: 404,
                    status_max: 404,
                    is_failure: false,
                },
                ResponseClass {
                    status_min: 400,
                    status_max: 499,
                    is_failure: true,
                },
            ],
            ..HttpRoute::default()
        };
        assert!(!route.is_failure(404));
        assert!(route.is_failure(429));
        assert!(route.is_failure(503));
        assert!(!route.is_failure(200));
        assert!(!HttpRoute::default().is_failure(404));
    }

    #[test]
    fn action_serde() -> Result<(), serde_json::Error> {
        let a = RouteAction::DirectResponse {
            status: 418,
            body: None,
        };
        let json = serde_json::to_string(&a)?;
        assert_eq!(json, r#"{"direct_response":{"status":418,"body":null}}"#);
        assert_eq!(
            serde_json::from_str::<RouteAction>(r#"{"direct_response":{"status":418}}"#)?,
            a
        );
        let w: WeightedDestination = serde_json::from_str(r#"{"destination":{"host":"a"}}"#)?;
        assert_eq!(w.weight, 1);
        Ok(())
    }
}
