//! The borrowed view of a request that route matching reads.
//!
//! Matching runs once per request, so the view borrows everything from the request and
//! the connection instead of copying: building one costs a few pointer copies and a scan
//! of the authority for its port.

use http::{HeaderMap, Method, Uri, header};
use trellis_model::Labels;

/// An empty label set, so a view without a known caller needs no allocation.
static NO_LABELS: Labels = Labels::new();

/// What a sidecar (as opposed to a gateway) calls itself in `HttpMatch::gateways`.
pub const MESH_GATEWAY: &str = "mesh";

/// Everything [`super::RouteTable::find`] needs from one request, borrowed.
///
/// Fields are public so the HTTP layer can fill them from whatever it holds; [`Self::new`]
/// derives the request-line parts from a URI and headers, and the `with_*` methods add
/// what only the connection knows (caller identity, listener port, gateway).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// URI path without the query string; what `HttpMatch::uri` is matched against.
    pub path: &'a str,
    /// Raw query string (without `?`), scanned only when a route has query conditions.
    pub query: Option<&'a str>,
    /// `http` or `https` as the client used it.
    pub scheme: &'a str,
    /// `:authority`/`Host` without the port.
    pub authority: &'a str,
    /// Destination port the request is addressed to; `None` when unknown, in which case
    /// no match with a `port` condition holds.
    pub port: Option<u16>,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Labels of the calling workload (empty when unknown).
    pub source_labels: &'a Labels,
    /// Namespace of the calling workload, when known.
    pub source_namespace: Option<&'a str>,
    /// `namespace/name` of the gateway this proxy runs as, or [`MESH_GATEWAY`].
    pub gateway: &'a str,
}

impl<'a> RequestView<'a> {
    /// A view of a request as received: path and query from `uri`; authority from the
    /// URI (HTTP/2 `:authority`, absolute-form HTTP/1) or else the `Host` header; port
    /// from the authority or else the scheme's default; scheme from the URI or else
    /// `http`. The caller is unknown and the proxy is a sidecar until the `with_*`
    /// methods say otherwise.
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        Self::with_raw_authority(method, uri, headers, raw_authority(uri, headers))
    }

    /// [`Self::new`] for a caller that already took the authority out of the request
    /// (with [`raw_authority`]), so the `Host` header is not looked up twice.
    pub fn with_raw_authority(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        raw_authority: &'a str,
    ) -> Self {
        let scheme = uri.scheme_str().unwrap_or("http");
        let (authority, port) = split_authority(raw_authority);
        let port = port.or_else(|| default_port(scheme));
        RequestView {
            method,
            path: uri.path(),
            query: uri.query(),
            scheme,
            authority,
            port,
            headers,
            source_labels: &NO_LABELS,
            source_namespace: None,
            gateway: MESH_GATEWAY,
        }
    }

    /// Sets the destination port, e.g. the listener's or the original destination's port
    /// when the proxy knows it better than the `Host` header does.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the scheme, e.g. `https` when the proxy terminated TLS.
    pub fn with_scheme(mut self, scheme: &'a str) -> Self {
        self.scheme = scheme;
        self
    }

    /// Sets the calling workload's labels and namespace (known from its identity or the
    /// local workload table) for `source_labels`/`source_namespace` conditions.
    pub fn with_source(mut self, labels: &'a Labels, namespace: Option<&'a str>) -> Self {
        self.source_labels = labels;
        self.source_namespace = namespace;
        self
    }

    /// Sets the gateway this proxy runs as (`namespace/name`) for `gateways` conditions.
    pub fn with_gateway(mut self, gateway: &'a str) -> Self {
        self.gateway = gateway;
        self
    }

    /// The first value of query parameter `name`, undecoded, or `None` if absent. A
    /// parameter without `=` has the empty value. Scans the query string without
    /// allocating; Envoy likewise matches the first occurrence of a parameter.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        let query = self.query?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}

/// The authority a request addresses, port included: the URI's (HTTP/2 `:authority`,
/// absolute-form HTTP/1), else the `Host` header's, else empty.
pub fn raw_authority<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> &'a str {
    match uri.authority() {
        Some(a) => a.as_str(),
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    }
}

/// Splits an authority into host (without port, IPv6 literals keep their brackets) and
/// port. Userinfo is dropped; a port that is not a number is treated as absent.
pub fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let start = memchr::memrchr(b'@', authority.as_bytes()).map_or(0, |i| i + 1);
    let authority = &authority[start..];
    let bytes = authority.as_bytes();
    let host_end = if bytes.first() == Some(&b'[') {
        memchr::memchr(b']', bytes).map_or(bytes.len(), |i| i + 1)
    } else {
        memchr::memchr(b':', bytes).unwrap_or(bytes.len())
    };
    let (host, rest) = authority.split_at(host_end);
    let port = rest.strip_prefix(':').and_then(|p| p.parse().ok());
    (host, port)
}

/// The port a URL without an explicit port addresses.
fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_split() {
        let cases = [
            ("reviews", ("reviews", None)),
            ("reviews:9080", ("reviews", Some(9080))),
            ("[::1]:8080", ("[::1]", Some(8080))),
            ("[::1]", ("[::1]", None)),
            ("user:pw@host:81", ("host", Some(81))),
            ("host:notaport", ("host", None)),
            ("", ("", None)),
        ];
        for (input, want) in cases {
            assert_eq!(split_authority(input), want, "{input:?}");
        }
    }

    #[test]
    fn view_from_parts() {
        let method = Method::GET;
        let headers = {
            let mut h = HeaderMap::new();
            h.insert(
                header::HOST,
                http::HeaderValue::from_static("Shop.example:8443"),
            );
            h
        };
        let uri: Uri = "/cart/items?id=7&flag&id=8".parse().expect("valid uri");
        let view = RequestView::new(&method, &uri, &headers);
        assert_eq!(view.path, "/cart/items");
        assert_eq!(view.authority, "Shop.example");
        assert_eq!(view.port, Some(8443));
        assert_eq!(view.scheme, "http");
        assert_eq!(view.gateway, MESH_GATEWAY);
        assert_eq!(view.query_param("id"), Some("7"));
        assert_eq!(view.query_param("flag"), Some(""));
        assert_eq!(view.query_param("missing"), None);

        let uri: Uri = "https://api.example/v1".parse().expect("valid uri");
        let view = RequestView::new(&method, &uri, &headers);
        assert_eq!(view.authority, "api.example");
        assert_eq!(view.port, Some(443));
        assert_eq!(view.query_param("id"), None);
        assert_eq!(view.with_port(15001).port, Some(15001));
    }
}
