//! Gateways: proxies at the edge of the mesh that accept traffic on declared ports.
//!
//! Istio `Gateway` servers and Gateway API `Gateway` listeners both become
//! [`GatewayServer`]s; the routes bound to them (VirtualServices naming the gateway,
//! HTTPRoutes with the gateway as parent) become [`VirtualHost`]s, already filtered to
//! the hosts the server admits.

use crate::host::host_match_rank;
use crate::labels::{Labels, selector_matches};
use crate::origin::SourceRef;
use crate::protocol::Protocol;
use crate::route::{HttpRoute, TcpRoute, TlsRoute};

/// A gateway: a set of listeners run by the proxies it selects.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Gateway {
    /// Gateway name.
    pub name: String,
    /// Gateway namespace.
    pub namespace: String,
    /// The resource it was compiled from.
    pub origin: SourceRef,
    /// Labels of the gateway proxies that serve it (Istio `selector`; for the Gateway
    /// API the compiler selects the deployment it manages for the Gateway). Empty
    /// selects every gateway proxy, as in Istio.
    pub selector: Labels,
    /// GatewayClass name (Gateway API only).
    pub class: Option<String>,
    /// Listeners.
    pub servers: Vec<GatewayServer>,
    /// Routes bound to the listeners.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// One listener: a port, a protocol and the hosts it admits.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GatewayServer {
    /// Server/listener name, referenced by route `sectionName`s and in diagnostics.
    pub name: String,
    /// Port the gateway listens on.
    pub port: u16,
    /// Protocol spoken by clients on that port.
    pub protocol: Protocol,
    /// Hosts admitted; requests for other hosts get 404 (HTTP) or are closed (TLS).
    pub hosts: Vec<GatewayHost>,
    /// TLS settings for HTTPS/TLS servers (and `https_redirect` for HTTP ones).
    pub tls: Option<ServerTls>,
}

/// A host admitted by a server, optionally only for routes from one namespace (Istio's
/// `namespace/host` form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GatewayHost {
    /// Only routes from this namespace may bind; `None` means any namespace.
    pub namespace: Option<String>,
    /// Host name, possibly a wildcard.
    pub host: String,
}

impl GatewayHost {
    /// Parses Istio's `[namespace/]host`, where `./host` means the gateway's own
    /// namespace and `*/host` (or no prefix) any namespace.
    pub fn parse(s: &str, gateway_namespace: &str) -> GatewayHost {
        let (namespace, host) = match s.split_once('/') {
            Some(("*", host)) => (None, host),
            Some((".", host)) => (Some(gateway_namespace.to_string()), host),
            Some((ns, host)) => (Some(ns.to_string()), host),
            None => (None, s),
        };
        GatewayHost {
            namespace,
            host: host.trim().to_ascii_lowercase(),
        }
    }

    /// Whether routes from `namespace` may bind to this host.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
}

/// TLS on a gateway server.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServerTls {
    /// How TLS is handled.
    pub mode: ServerTlsMode,
    /// Kubernetes secrets with the certificate and key (several for RSA + ECDSA).
    pub credential_names: Vec<String>,
    /// Certificate file, when not using a secret.
    pub server_certificate: Option<String>,
    /// Private key file, when not using a secret.
    pub private_key: Option<String>,
    /// CA bundle for verifying client certificates in `Mutual`/`OptionalMutual`.
    pub ca_certificates: Option<String>,
    /// Answer plain HTTP requests on this server with a 301 to HTTPS.
    pub https_redirect: bool,
}

/// How a gateway server handles TLS.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ServerTlsMode {
    /// Do not terminate: route by SNI to the backend, which terminates.
    Passthrough,
    /// Terminate with the server certificate.
    #[default]
    Simple,
    /// Terminate and require a client certificate signed by `ca_certificates`.
    Mutual,
    /// Passthrough, routing by SNI to the service encoded in it, without routes (Istio
    /// multi-network east-west gateways).
    AutoPassthrough,
    /// Terminate with mesh mTLS (workload certificate, SPIFFE peers).
    IstioMutual,
    /// Terminate and request, but not require, a client certificate.
    OptionalMutual,
}

/// Routes served on one gateway port for a set of hosts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VirtualHost {
    /// Gateway port the routes are bound to.
    pub port: u16,
    /// Hosts (possibly wildcards) the routes answer for.
    pub hosts: Vec<String>,
    /// HTTP routes, in match order.
    pub http_routes: Vec<HttpRoute>,
    /// TCP routes, in match order.
    pub tcp_routes: Vec<TcpRoute>,
    /// TLS passthrough routes, in match order.
    pub tls_routes: Vec<TlsRoute>,
}

impl Gateway {
    /// Whether the gateway proxy with `labels` serves this gateway.
    pub fn selects(&self, labels: &Labels) -> bool {
        selector_matches(&self.selector, labels)
    }

    /// The servers listening on `port`.
    pub fn servers_on(&self, port: u16) -> impl Iterator<Item = &GatewayServer> {
        self.servers.iter().filter(move |s| s.port == port)
    }

    /// The virtual host for a request to `host` on `port`: the one with the most
    /// specific matching host (exact beats `*.example.com` beats `*`).
    pub fn virtual_host(&self, port: u16, host: &str) -> Option<&VirtualHost> {
        self.virtual_hosts
            .iter()
            .filter(|vh| vh.port == port)
            .filter_map(|vh| {
                let rank = vh
                    .hosts
                    .iter()
                    .filter_map(|p| host_match_rank(p, host))
                    .max()?;
                Some((rank, vh))
            })
            // `max_by_key` keeps the last maximum; reversing keeps the first, so earlier
            // (older) bindings win ties.
            .rev()
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, vh)| vh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_gateway_hosts() {
        let cases = [
            ("bookinfo.example.com", None, "bookinfo.example.com"),
            ("*/Bookinfo.example.com", None, "bookinfo.example.com"),
            ("./*.example.com", Some("ingress"), "*.example.com"),
            ("prod/api.example.com", Some("prod"), "api.example.com"),
        ];
        for (s, ns, host) in cases {
            let h = GatewayHost::parse(s, "ingress");
            assert_eq!((h.namespace.as_deref(), h.host.as_str()), (ns, host), "{s}");
        }
        assert!(GatewayHost::parse("prod/a", "x").allows_namespace("prod"));
        assert!(!GatewayHost::parse("prod/a", "x").allows_namespace("dev"));
        assert!(GatewayHost::parse("a", "x").allows_namespace("dev"));
    }

    #[test]
    fn most_specific_virtual_host() {
        let vh = |port, host: &str, name: &str| VirtualHost {
            port,
            hosts: vec![host.into()],
            http_routes: vec![HttpRoute {
                name: Some(name.into()),
                ..HttpRoute::default()
            }],
            ..VirtualHost::default()
        };
        let gw = Gateway {
            virtual_hosts: vec![
                vh(80, "*", "catch-all"),
                vh(80, "*.example.com", "wildcard"),
                vh(80, "api.example.com", "exact"),
                vh(443, "api.example.com", "tls"),
                vh(80, "*", "later-catch-all"),
            ],
            ..Gateway::default()
        };
        let pick = |port, host| -> Option<&str> {
            gw.virtual_host(port, host)?
                .http_routes
                .first()?
                .name
                .as_deref()
        };
        assert_eq!(pick(80, "api.example.com"), Some("exact"));
        assert_eq!(pick(80, "web.example.com"), Some("wildcard"));
        assert_eq!(pick(80, "other.org"), Some("catch-all"));
        assert_eq!(pick(443, "api.example.com"), Some("tls"));
        assert_eq!(pick(8080, "api.example.com"), None);
    }
}
