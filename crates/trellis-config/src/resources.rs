//! Typed resources for every API family Trellis reads, and the table that maps
//! `(apiVersion, kind)` to a type.

pub mod common;
pub mod core;
pub mod gateway_api;
pub mod istio_networking;
pub mod istio_security;
pub mod istio_telemetry;
pub mod linkerd;
pub(crate) mod names;
pub mod smi;
pub mod trellis;

use crate::yaml::Node;
use common::ObjectMeta;
use std::sync::Arc;

macro_rules! kinds {
    ($($variant:ident => $group:literal, $kind:literal, [$($ver:literal),*], $ty:ty;)*) => {
        /// Every kind Trellis understands.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind { $($variant),* }

        /// A resource's typed content. Boxed so the enum stays small.
        #[derive(Debug, Clone)]
        pub enum Spec { $($variant(Box<$ty>)),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// API group; empty for the core group.
            pub fn group(self) -> &'static str {
                match self { $(Kind::$variant => $group),* }
            }

            /// The `kind:` value users write.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$variant => $kind),* }
            }

            /// Versions accepted for this kind.
            pub fn versions(self) -> &'static [&'static str] {
                match self { $(Kind::$variant => &[$($ver),*]),* }
            }

            /// Look up by group and kind name.
            pub fn lookup(group: &str, kind: &str) -> Option<Kind> {
                match (group, kind) {
                    $(($group, $kind) => Some(Kind::$variant),)*
                    _ => None,
                }
            }
        }

        impl Spec {
            pub fn kind(&self) -> Kind {
                match self { $(Spec::$variant(_) => Kind::$variant),* }
            }

            /// Run the kind's field validation.
            pub fn validate(&self, cx: &mut crate::validate::Cx) {
                use crate::validate::Validate;
                match self { $(Spec::$variant(s) => s.validate(cx)),* }
            }
        }

        /// Deserialize the typed content of `kind` from the document's root mapping.
        pub(crate) fn decode(kind: Kind, d: &mut crate::yaml::de::Decoder<'_>) -> Result<(ObjectMeta, Spec), crate::yaml::de::DeError> {
            match kind {
                $(Kind::$variant => {
                    let (meta, body) = d.decode::<$ty>()?;
                    Ok((meta, Spec::$variant(Box::new(body))))
                })*
            }
        }
    };
}

kinds! {
    // networking.istio.io
    VirtualService => "networking.istio.io", "VirtualService", ["v1", "v1beta1", "v1alpha3"], istio_networking::VirtualService;
    DestinationRule => "networking.istio.io", "DestinationRule", ["v1", "v1beta1", "v1alpha3"], istio_networking::DestinationRule;
    IstioGateway => "networking.istio.io", "Gateway", ["v1", "v1beta1", "v1alpha3"], istio_networking::Gateway;
    ServiceEntry => "networking.istio.io", "ServiceEntry", ["v1", "v1beta1", "v1alpha3"], istio_networking::ServiceEntry;
    WorkloadEntry => "networking.istio.io", "WorkloadEntry", ["v1", "v1beta1", "v1alpha3"], istio_networking::WorkloadEntry;
    WorkloadGroup => "networking.istio.io", "WorkloadGroup", ["v1", "v1beta1", "v1alpha3"], istio_networking::WorkloadGroup;
    Sidecar => "networking.istio.io", "Sidecar", ["v1", "v1beta1", "v1alpha3"], istio_networking::Sidecar;
    EnvoyFilter => "networking.istio.io", "EnvoyFilter", ["v1alpha3"], common::Opaque;
    // security.istio.io
    PeerAuthentication => "security.istio.io", "PeerAuthentication", ["v1", "v1beta1"], istio_security::PeerAuthentication;
    IstioAuthorizationPolicy => "security.istio.io", "AuthorizationPolicy", ["v1", "v1beta1"], istio_security::AuthorizationPolicy;
    RequestAuthentication => "security.istio.io", "RequestAuthentication", ["v1", "v1beta1"], istio_security::RequestAuthentication;
    // telemetry.istio.io
    Telemetry => "telemetry.istio.io", "Telemetry", ["v1", "v1alpha1"], istio_telemetry::Telemetry;
    // gateway.networking.k8s.io
    GatewayClass => "gateway.networking.k8s.io", "GatewayClass", ["v1", "v1beta1", "v1alpha2"], gateway_api::GatewayClass;
    K8sGateway => "gateway.networking.k8s.io", "Gateway", ["v1", "v1beta1", "v1alpha2"], gateway_api::Gateway;
    HttpRoute => "gateway.networking.k8s.io", "HTTPRoute", ["v1", "v1beta1", "v1alpha2"], gateway_api::HttpRoute;
    GrpcRoute => "gateway.networking.k8s.io", "GRPCRoute", ["v1", "v1alpha2"], gateway_api::GrpcRoute;
    TcpRoute => "gateway.networking.k8s.io", "TCPRoute", ["v1alpha2"], gateway_api::TcpRoute;
    TlsRoute => "gateway.networking.k8s.io", "TLSRoute", ["v1alpha2", "v1alpha3"], gateway_api::TlsRoute;
    ReferenceGrant => "gateway.networking.k8s.io", "ReferenceGrant", ["v1beta1", "v1alpha2"], gateway_api::ReferenceGrant;
    // linkerd.io and policy.linkerd.io
    ServiceProfile => "linkerd.io", "ServiceProfile", ["v1alpha2", "v1alpha1"], linkerd::ServiceProfile;
    LinkerdServer => "policy.linkerd.io", "Server", ["v1beta3", "v1beta2", "v1beta1", "v1alpha1"], linkerd::Server;
    ServerAuthorization => "policy.linkerd.io", "ServerAuthorization", ["v1beta1", "v1alpha1"], linkerd::ServerAuthorization;
    LinkerdAuthorizationPolicy => "policy.linkerd.io", "AuthorizationPolicy", ["v1alpha1"], linkerd::AuthorizationPolicy;
    MeshTlsAuthentication => "policy.linkerd.io", "MeshTLSAuthentication", ["v1alpha1"], linkerd::MeshTlsAuthentication;
    NetworkAuthentication => "policy.linkerd.io", "NetworkAuthentication", ["v1alpha1"], linkerd::NetworkAuthentication;
    LinkerdHttpRoute => "policy.linkerd.io", "HTTPRoute", ["v1beta3", "v1beta2", "v1beta1", "v1alpha1"], gateway_api::HttpRoute;
    // split.smi-spec.io
    TrafficSplit => "split.smi-spec.io", "TrafficSplit", ["v1alpha4", "v1alpha3", "v1alpha2", "v1alpha1"], smi::TrafficSplit;
    // core, apps, discovery.k8s.io
    Namespace => "", "Namespace", ["v1"], core::Namespace;
    Service => "", "Service", ["v1"], core::Service;
    Endpoints => "", "Endpoints", ["v1"], core::Endpoints;
    Pod => "", "Pod", ["v1"], core::Pod;
    ServiceAccount => "", "ServiceAccount", ["v1"], core::ServiceAccount;
    EndpointSlice => "discovery.k8s.io", "EndpointSlice", ["v1", "v1beta1"], core::EndpointSlice;
    Deployment => "apps", "Deployment", ["v1"], core::Deployment;
    StatefulSet => "apps", "StatefulSet", ["v1"], core::StatefulSet;
    // trellis.dev
    LocalWorkload => "trellis.dev", "LocalWorkload", ["v1alpha1"], trellis::LocalWorkload;
}

impl Kind {
    /// Cluster-scoped kinds have no namespace.
    pub fn is_cluster_scoped(self) -> bool {
        matches!(self, Kind::Namespace | Kind::GatewayClass)
    }

    /// Where the kind's content lives in the document: under `spec`, or at the top level next to
    /// `metadata` (core kinds such as Endpoints and EndpointSlice).
    pub fn body_at_top_level(self) -> bool {
        matches!(
            self,
            Kind::Endpoints | Kind::EndpointSlice | Kind::ServiceAccount
        )
    }

    /// `group/version` strings accepted, e.g. `networking.istio.io/v1beta1` or `v1`.
    pub fn api_version_ok(self, api_version: &str) -> bool {
        let (g, v) = split_api_version(api_version);
        g == self.group() && self.versions().contains(&v)
    }
}

/// `networking.istio.io/v1` -> (`networking.istio.io`, `v1`); `v1` -> (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Where a resource came from: the file, the parsed document (kept for positions) and the path of
/// the resource inside it (empty, or `items[3]` inside a `kind: List`).
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<str>,
    pub root: Arc<Node>,
    pub base: String,
}

impl Origin {
    /// Position of the field at `path` (relative to the resource), or the closest existing parent.
    pub fn pos(&self, path: &str) -> crate::diag::Pos {
        let node = self.root.lookup(&self.base).unwrap_or(&self.root);
        node.lookup_closest(path).pos
    }

    /// Position of the key of the field at `path`, falling back to [`pos`](Self::pos): for findings
    /// about a field itself (deprecated, misplaced) rather than its value.
    pub fn key_pos(&self, path: &str) -> crate::diag::Pos {
        let node = self.root.lookup(&self.base).unwrap_or(&self.root);
        node.lookup_key(path)
            .map_or_else(|| self.pos(path), |k| k.pos)
    }
}

/// One loaded resource.
#[derive(Debug, Clone)]
pub struct Resource {
    pub api_version: String,
    pub meta: ObjectMeta,
    /// Effective namespace (metadata.namespace, or the default given to the loader).
    pub namespace: String,
    pub name: String,
    pub spec: Spec,
    pub origin: Origin,
}

impl Resource {
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
