//! The Trellis mesh model: one typed internal representation of mesh configuration.
//!
//! Istio, Gateway API, Linkerd and SMI resources all compile into a [`Mesh`]; the data
//! plane proxy consumes it (and dumps it at `/config_dump`), and the control plane cuts
//! per-proxy views from it. Keeping one model means every feature is implemented once in
//! the proxy, whichever API the user wrote it in, and every API is a compiler into it.
//!
//! Ground rules:
//!
//! - No I/O and no Kubernetes types: the model is plain data any component can build,
//!   compare and serialize.
//! - Hosts are fully qualified and lowercase ([`HostResolver::fqdn`]) so the proxy only
//!   does exact and wildcard comparisons.
//! - Regexes are kept as text; the proxy compiles them.
//! - Durations serialize as integer milliseconds ([`serde_millis`]).
//! - Defaults are those of the API users know (Istio, Envoy, Linkerd) and are
//!   documented where they apply.
//!
//! Layout: [`mesh`] is the root; [`service`] and [`endpoint`] describe destinations;
//! [`route`], [`matching`], [`filters`] and [`retry`] describe routing; [`policy`] and
//! [`balance`] describe how backends are reached; [`workload`], [`gateway`],
//! [`security`], [`authz`], [`jwt`], [`telemetry`] and [`visibility`] (which services each
//! proxy sees) the rest; [`host`], [`protocol`],
//! [`labels`] and [`origin`] are shared vocabulary.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authz;
pub mod balance;
pub mod endpoint;
pub mod filters;
pub mod gateway;
pub mod host;
pub mod jwt;
pub mod labels;
pub mod matching;
pub mod mesh;
pub mod origin;
pub mod policy;
pub mod protocol;
pub mod retry;
pub mod route;
pub mod security;
pub mod serde_millis;
pub mod service;
pub mod telemetry;
pub mod visibility;
pub mod workload;

pub use authz::{AuthzAction, AuthzCondition, AuthzOperation, AuthzPolicy, AuthzRule, AuthzSource};
pub use balance::{
    ConsistentHash, HashAlgorithm, HashKey, LoadBalancer, LocalityDistribute, LocalityFailover,
    LocalityLb,
};
pub use endpoint::Endpoint;
pub use filters::{
    AbortKind, CorsPolicy, Fault, FaultAbort, FaultDelay, HeaderOps, Mirror, PathRewrite, Rewrite,
};
pub use gateway::{Gateway, GatewayHost, GatewayServer, ServerTls, ServerTlsMode, VirtualHost};
pub use host::{DEFAULT_DOMAIN, HostResolver, host_match_rank, host_matches, spiffe_id};
pub use jwt::{ClaimToHeader, JwtHeader, JwtPolicy, JwtRule};
pub use labels::{Labels, selector_matches};
pub use matching::{HeaderMatch, HttpMatch, L4Match, QueryMatch, StringMatch, TlsMatch};
pub use mesh::Mesh;
pub use origin::SourceRef;
pub use policy::{
    BackendPolicy, ConnectionPool, OutlierDetection, PortPolicy, TcpKeepalive, TlsMode, UpstreamTls,
};
pub use protocol::Protocol;
pub use retry::{RetryBudget, RetryCondition, RetryOn, RetryPolicy};
pub use route::{
    Destination, HttpRoute, Redirect, ResponseClass, RouteAction, TcpRoute, TlsRoute,
    WeightedDestination,
};
pub use security::{DEFAULT_ROOT_NAMESPACE, MtlsMode, PeerAuthn, SecurityPolicies};
pub use service::{Resolution, Service, ServiceLocation, ServicePort, Subset};
pub use telemetry::{
    AccessLogPolicy, CustomTag, ResolvedTelemetry, TelemetryPolicy, TracingPolicy,
    resolve_telemetry,
};
pub use visibility::SidecarScope;
pub use workload::{Workload, WorkloadKind};
