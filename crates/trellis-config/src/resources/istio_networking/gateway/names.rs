//! Name checks Istio's webhook applies to Gateway, Sidecar and ServiceEntry fields: `namespace/dnsName`
//! host pairs, partial wildcards, unix socket addresses, ports, protocols and labels. The generic
//! DNS label, domain name and IP/CIDR checks are in [`crate::resources::names`]. Messages quote the
//! value so an SRE can find it.

use crate::diag::{Code, Severity};
use crate::resources::common::Labels;
use crate::resources::names::{
    Wording, check_wildcard_domain, is_dns1123_label_any_case, is_ip, is_qualified_name,
};
use crate::validate::Cx;

/// Prefix of a unix domain socket address in `bind`, `address` and `defaultEndpoint`.
pub(crate) const UNIX_PREFIX: &str = "unix://";

/// The protocols Istio accepts on a port (`protocol.Parse`, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortProtocol {
    Http,
    Https,
    Http2,
    HttpProxy,
    Grpc,
    GrpcWeb,
    Tcp,
    Tls,
    Udp,
    Mongo,
    Redis,
    Mysql,
}

/// Spelling used in messages listing the accepted protocols.
pub(crate) const PROTOCOLS: &str =
    "HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL";

impl PortProtocol {
    /// Parse a `protocol:` value as Istio does; `None` if Istio would not know it.
    pub fn parse(s: &str) -> Option<PortProtocol> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" => PortProtocol::Http,
            "https" => PortProtocol::Https,
            "http2" => PortProtocol::Http2,
            "http_proxy" => PortProtocol::HttpProxy,
            "grpc" => PortProtocol::Grpc,
            "grpc-web" => PortProtocol::GrpcWeb,
            "tcp" => PortProtocol::Tcp,
            "tls" => PortProtocol::Tls,
            "udp" => PortProtocol::Udp,
            "mongo" => PortProtocol::Mongo,
            "redis" => PortProtocol::Redis,
            "mysql" => PortProtocol::Mysql,
            _ => return None,
        })
    }

    /// Carries HTTP once any TLS is removed (routes by host and path apply).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            PortProtocol::Http
                | PortProtocol::Http2
                | PortProtocol::HttpProxy
                | PortProtocol::Grpc
                | PortProtocol::GrpcWeb
        )
    }

    /// TLS on the wire, terminated or passed through by SNI.
    pub fn is_tls(self) -> bool {
        matches!(self, PortProtocol::Https | PortProtocol::Tls)
    }

    /// Opaque TCP as far as routing is concerned.
    pub fn is_tcp(self) -> bool {
        matches!(
            self,
            PortProtocol::Tcp
                | PortProtocol::Https
                | PortProtocol::Tls
                | PortProtocol::Mongo
                | PortProtocol::Redis
                | PortProtocol::Mysql
        )
    }
}

/// Only a whole first label may be a wildcard: `*` or `*.example.com`, not `*foo.example.com`.
pub(crate) fn check_partial_wildcard(host: &str) -> Result<(), String> {
    if host.contains('*') && host != "*" && !host.starts_with("*.") {
        Err(format!(
            "partial wildcard {host:?} is not allowed; use \"*\" or \"*.<domain>\""
        ))
    } else {
        Ok(())
    }
}

/// The path after `unix://`: absolute and not a directory, or an abstract socket (`@name`).
pub(crate) fn check_unix_address(path: &str) -> Result<(), String> {
    if path.is_empty() {
        Err("unix address must not be empty".into())
    } else if path.starts_with('@') || (path.starts_with('/') && !path.ends_with('/')) {
        Ok(())
    } else {
        Err(format!(
            "unix address {path:?} must be an absolute path to a file (or @abstract)"
        ))
    }
}

/// The hostname half of a Gateway or Sidecar host. Gateways also accept an IP address.
fn check_host_part(host: &str, is_gateway: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if host != "*" && !host.contains('.') {
        errs.push(format!("host {host:?} is a short name; use a fully qualified name such as \"{host}.example.com\" or \"*\""));
    }
    if let Err(e) = check_wildcard_domain(host)
        && !(is_gateway && is_ip(host))
    {
        errs.push(e.message(Wording::Explain));
    }
    if let Err(e) = check_partial_wildcard(host) {
        errs.push(e);
    }
    errs.dedup();
    errs
}

/// A Gateway server host (`[namespace/]dnsName`) or a Sidecar egress host (`namespace/dnsName`).
/// Returns the problems found, empty if the host is fine.
pub(crate) fn check_namespaced_host(host: &str, is_gateway: bool) -> Vec<String> {
    let Some((ns, name)) = host.split_once('/') else {
        if is_gateway {
            return check_host_part(host, true);
        }
        return vec![format!(
            "host {host:?} must be of the form namespace/dnsName, e.g. \"istio-system/*\", \"./*\" or \"*/{host}\""
        )];
    };
    let mut errs = Vec::new();
    if ns.is_empty() || name.is_empty() {
        errs.push(format!(
            "host {host:?}: neither the namespace nor the dnsName may be empty"
        ));
        return errs;
    }
    if is_gateway {
        if ns != "*" && ns != "." && !is_dns1123_label_any_case(ns) {
            errs.push(format!(
                "host {host:?}: namespace {ns:?} must be \"*\", \".\" or a namespace name"
            ));
        }
    } else {
        let bare = ns.strip_prefix('~').unwrap_or(ns);
        if !bare.is_empty() && bare != "*" && bare != "." && !is_dns1123_label_any_case(bare) {
            errs.push(format!(
                "host {host:?}: namespace {ns:?} must be \"*\", \".\", \"~\" or a namespace name"
            ));
        }
    }
    errs.extend(check_host_part(name, is_gateway));
    errs
}

/// A port number field: present and in 1..=65535.
pub(crate) fn check_port(cx: &mut Cx, field: &str, number: u32) {
    if number == 0 {
        let full = if cx.path().is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", cx.path())
        };
        cx.error_at(
            field,
            format!("missing required field `{full}`: a port number in 1..65535"),
        );
    } else if number > 65535 {
        cx.error_at(
            field,
            format!("port number {number} must be in the range 1..65535"),
        );
    }
}

/// A port name: a DNS label such as `http-web`.
pub(crate) fn check_port_name(cx: &mut Cx, field: &str, name: &str) {
    if !is_dns1123_label_any_case(name) {
        cx.error_at(
            field,
            format!("invalid port name {name:?}: use letters, digits and '-', e.g. \"http-web\""),
        );
    }
}

/// A `protocol:` value Istio knows; empty means "detect" where the field is optional.
pub(crate) fn check_protocol(cx: &mut Cx, field: &str, protocol: &str) -> Option<PortProtocol> {
    let parsed = PortProtocol::parse(protocol);
    if parsed.is_none() {
        cx.error_at(
            field,
            format!("unsupported protocol {protocol:?}; expected one of {PROTOCOLS}"),
        );
    }
    parsed
}

/// Kubernetes label keys (`[prefix/]name`) and values, as Istio checks workload labels (which,
/// unlike Kubernetes, accepts upper case in the prefix).
pub(crate) fn check_labels(cx: &mut Cx, field: &str, labels: &Labels) {
    cx.field(field, |cx| {
        for (k, v) in labels {
            let key_ok = match k.split_once('/') {
                Some((prefix, name)) => {
                    prefix.len() <= 253 && prefix.split('.').all(is_dns1123_label_any_case) && is_qualified_name(name)
                }
                None => is_qualified_name(k),
            };
            if !key_ok {
                cx.error_at(k, format!("invalid label key {k:?}: expected [dns-prefix/]name of at most 63 characters"));
            } else if !v.is_empty() && !is_qualified_name(v) {
                cx.error_at(k, format!("invalid value {v:?} for label {k:?}: at most 63 letters, digits, '-', '_' or '.'"));
            }
        }
    });
}

/// Report a warning (the webhook accepts the resource but says something is off).
pub(crate) fn warn(cx: &mut Cx, field: &str, message: impl Into<String>) {
    let message = message.into();
    if field.is_empty() {
        cx.report(Severity::Warning, Code::SchemaValidation, message);
    } else {
        cx.report_at(field, Severity::Warning, Code::SchemaValidation, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_wildcards() {
        assert!(check_partial_wildcard("*foo.example.com").is_err());
    }

    #[test]
    fn namespaced_hosts() {
        assert!(check_namespaced_host("istio-system/*", false).is_empty());
        assert!(check_namespaced_host("./*", false).is_empty());
        assert!(check_namespaced_host("~/*", false).is_empty());
        assert!(check_namespaced_host("*/foo.example.com", false).is_empty());
        assert!(!check_namespaced_host("foo.example.com", false).is_empty());
        assert!(check_namespaced_host("foo.example.com", true).is_empty());
        assert!(check_namespaced_host("10.1.2.3", true).is_empty());
        assert!(!check_namespaced_host("bookinfo", true).is_empty());
        assert!(!check_namespaced_host("Bad_NS/foo.com", true).is_empty());
        assert!(!check_namespaced_host("ns/", false).is_empty());
    }

    #[test]
    fn unix_addresses() {
        assert!(check_unix_address("/var/run/app.sock").is_ok());
        assert!(check_unix_address("@abstract").is_ok());
        assert!(check_unix_address("relative.sock").is_err());
        assert!(check_unix_address("/var/run/").is_err());
    }

    #[test]
    fn protocols_parse_case_insensitively() {
        assert_eq!(PortProtocol::parse("grpc-web"), Some(PortProtocol::GrpcWeb));
        assert_eq!(PortProtocol::parse("Mongo"), Some(PortProtocol::Mongo));
        assert!(PortProtocol::parse("HTTP3").is_none());
        assert!(PortProtocol::Https.is_tls() && PortProtocol::Https.is_tcp());
        assert!(PortProtocol::Grpc.is_http());
    }
}
