//! Application protocols of ports, as Istio selects them.
//!
//! The protocol of a service port decides which stack the proxy builds for it: an HTTP
//! router with retries and per-request metrics, a TLS SNI router, or an opaque TCP
//! proxy. Users declare it the Istio way, through the port name prefix or the Kubernetes
//! `appProtocol` field; when they do not, the proxy sniffs the first bytes.

use std::fmt;

/// The application protocol carried on a port.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1 (upgradable to WebSocket); routed by HTTP rules.
    Http,
    /// HTTP/2 with prior knowledge (h2c) or negotiated; routed by HTTP rules.
    Http2,
    /// gRPC: HTTP/2 with gRPC status codes taken into account for metrics and retries.
    Grpc,
    /// gRPC-Web: HTTP/1.1 or HTTP/2 carrying gRPC-Web framing.
    GrpcWeb,
    /// HTTPS terminated by the application: the proxy sees TLS and routes by SNI.
    Https,
    /// Opaque TLS, routed by SNI.
    Tls,
    /// Opaque TCP: no L7 features, L4 metrics only.
    Tcp,
    /// MongoDB wire protocol; proxied as TCP (Istio's Mongo filter is not reproduced).
    Mongo,
    /// Not declared: the proxy detects HTTP/1, HTTP/2 or TLS from the first bytes and
    /// falls back to TCP.
    #[default]
    Unknown,
}

/// Ports whose clients wait for the server to speak first (or that carry DNS); sniffing
/// them would stall the connection, so undeclared ports here are TCP, as in Istio.
const SERVER_FIRST_PORTS: [u16; 5] = [22, 25, 53, 3306, 27017];

impl Protocol {
    /// Parses an Istio protocol name (`HTTP`, `http2`, `GRPC-Web`, `TCP`, ...), as written
    /// in a Gateway server, a ServiceEntry port or an `appProtocol`, case-insensitively.
    /// Names Istio proxies as plain TCP (`mysql`, `redis`) give `Tcp`; unknown names
    /// (including `udp`, which the proxy cannot carry) give `Unknown`.
    pub fn parse(name: &str) -> Protocol {
        match name.trim().to_ascii_lowercase().as_str() {
            "http" => Protocol::Http,
            "http2" | "h2c" => Protocol::Http2,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "tcp" | "mysql" | "redis" => Protocol::Tcp,
            "mongo" => Protocol::Mongo,
            _ => Protocol::Unknown,
        }
    }

    /// The protocol of a Kubernetes service port from its name and `appProtocol`,
    /// following Istio's protocol selection:
    ///
    /// - a set `appProtocol` decides alone (`http`, `http2`, `grpc`, `tcp`, ... and the
    ///   Kubernetes standard names `kubernetes.io/h2c` → HTTP/2, `kubernetes.io/ws` →
    ///   HTTP, `kubernetes.io/wss` → HTTPS);
    /// - otherwise the port name: `<protocol>` or `<protocol>-<suffix>`, e.g. `http`,
    ///   `http-web`, `grpc-api`, `grpc-web-ui`, `tcp-db`;
    /// - anything else is `Unknown`, which means "detect".
    pub fn from_port_name(name: &str, app_protocol: Option<&str>) -> Protocol {
        let declared = match app_protocol.map(str::trim).filter(|p| !p.is_empty()) {
            Some(app) => match app.to_ascii_lowercase().as_str() {
                "kubernetes.io/h2c" => return Protocol::Http2,
                "kubernetes.io/ws" => return Protocol::Http,
                "kubernetes.io/wss" => return Protocol::Https,
                _ => app.to_ascii_lowercase(),
            },
            None => name.trim().to_ascii_lowercase(),
        };
        // `grpc-web` contains the separator itself, so it is checked before splitting.
        if declared.starts_with("grpc-web") {
            return Protocol::GrpcWeb;
        }
        let prefix = declared.split('-').next().unwrap_or_default();
        Protocol::parse(prefix)
    }

    /// [`Protocol::from_port_name`], plus Istio's rule that undeclared well-known
    /// server-first ports (SSH 22, SMTP 25, DNS 53, MySQL 3306, MongoDB 27017) are TCP
    /// rather than sniffed.
    pub fn from_service_port(number: u16, name: &str, app_protocol: Option<&str>) -> Protocol {
        match Protocol::from_port_name(name, app_protocol) {
            Protocol::Unknown if SERVER_FIRST_PORTS.contains(&number) => Protocol::Tcp,
            p => p,
        }
    }

    /// Whether traffic on this port is HTTP that the proxy routes per request.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb
        )
    }

    /// Whether the upstream connection should use HTTP/2 without negotiation.
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }

    /// Whether the port carries TLS the proxy does not terminate (routed by SNI).
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }

    /// Whether the port is proxied as an opaque byte stream.
    pub fn is_opaque(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Mongo)
    }

    /// The Istio spelling, also used for the `request_protocol` metric label family.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::Https => "https",
            Protocol::Tls => "tls",
            Protocol::Tcp => "tcp",
            Protocol::Mongo => "mongo",
            Protocol::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Protocol::{self, *};

    #[test]
    fn from_port_names() {
        let cases = [
            ("http", Http),
            ("HTTP", Http),
            ("http-web", Http),
            ("http2", Http2),
            ("http2-api", Http2),
            ("grpc", Grpc),
            ("grpc-api", Grpc),
            ("grpc-web", GrpcWeb),
            ("grpc-web-ui", GrpcWeb),
            ("https", Https),
            ("https-admin", Https),
            ("tls-passthrough", Tls),
            ("tcp", Tcp),
            ("tcp-db", Tcp),
            ("mongo-primary", Mongo),
            ("redis", Tcp),
            ("web", Unknown),
            ("httpx", Unknown),
            ("", Unknown),
        ];
        for (name, want) in cases {
            assert_eq!(Protocol::from_port_name(name, None), want, "{name}");
        }
    }

    #[test]
    fn app_protocol_wins() {
        let cases = [
            ("tcp-db", Some("http"), Http),
            ("web", Some("http2"), Http2),
            ("http", Some("grpc"), Grpc),
            ("http", Some("kubernetes.io/h2c"), Http2),
            ("tcp", Some("kubernetes.io/ws"), Http),
            ("tcp", Some("kubernetes.io/wss"), Https),
            ("http", Some("tcp"), Tcp),
            ("http", Some("example.com/custom"), Unknown),
            ("http", Some(""), Http),
        ];
        for (name, app, want) in cases {
            assert_eq!(Protocol::from_port_name(name, app), want, "{name} {app:?}");
        }
    }

    #[test]
    fn server_first_ports_are_tcp() {
        assert_eq!(Protocol::from_service_port(3306, "db", None), Tcp);
        assert_eq!(Protocol::from_service_port(3306, "http", None), Http);
        assert_eq!(Protocol::from_service_port(8080, "db", None), Unknown);
    }

    #[test]
    fn classes() {
        assert!(Grpc.is_http() && Grpc.is_http2());
        assert!(!Https.is_http() && Https.is_tls());
        assert!(Mongo.is_opaque());
        assert_eq!(Protocol::parse("GRPC-Web"), GrpcWeb);
    }
}
