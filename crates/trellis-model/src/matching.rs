//! Request and connection matching: which route a request or connection takes.
//!
//! The fields mirror Istio's `HTTPMatchRequest`, `L4MatchAttributes` and
//! `TLSMatchAttributes`, which are a superset of what Gateway API `HTTPRouteMatch`,
//! Linkerd `ServiceProfile` conditions and SMI express. Regexes stay text: compiling
//! them is the proxy's job, so the model stays cheap to build, compare and ship.

use crate::labels::Labels;

/// How a string value (path, header, authority, ...) is matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatch {
    /// The whole value equals this.
    Exact(String),
    /// The value starts with this, byte for byte (Istio `prefix`: `/api` matches
    /// `/apis`).
    Prefix(String),
    /// Gateway API `PathPrefix`: matches whole `/`-separated segments, ignoring a
    /// trailing `/` in the prefix, so `/api` matches `/api` and `/api/v1` but not
    /// `/apis`.
    PathPrefix(String),
    /// RE2 syntax, anchored at both ends (as Envoy `safe_regex`); compiled by the proxy.
    Regex(String),
}

impl StringMatch {
    /// Whether `value` matches, or `None` for [`StringMatch::Regex`], which this crate
    /// deliberately does not evaluate (the proxy holds the compiled regex). With
    /// `ignore_case` the comparison is ASCII case-insensitive (Istio `ignoreUriCase`).
    pub fn matches(&self, value: &str, ignore_case: bool) -> Option<bool> {
        let eq = |a: &[u8], b: &[u8]| {
            if ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let starts_with =
            |v: &str, p: &str| v.len() >= p.len() && eq(&v.as_bytes()[..p.len()], p.as_bytes());
        match self {
            StringMatch::Exact(s) => Some(eq(value.as_bytes(), s.as_bytes())),
            StringMatch::Prefix(p) => Some(starts_with(value, p)),
            StringMatch::PathPrefix(p) => {
                let p = p.trim_end_matches('/');
                Some(
                    starts_with(value, p)
                        && (value.len() == p.len() || value.as_bytes()[p.len()] == b'/'),
                )
            }
            StringMatch::Regex(_) => None,
        }
    }

    /// The pattern text, whatever the kind.
    pub fn value(&self) -> &str {
        match self {
            StringMatch::Exact(s)
            | StringMatch::Prefix(s)
            | StringMatch::PathPrefix(s)
            | StringMatch::Regex(s) => s,
        }
    }
}

/// Conditions on an HTTP request; all set conditions must hold. A route's match list is
/// an OR of these; an empty `HttpMatch` matches every request.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HttpMatch {
    /// Request path, matched without the query string.
    pub uri: Option<StringMatch>,
    /// Request method, e.g. `Exact("GET")`.
    pub method: Option<StringMatch>,
    /// `:authority`/`Host` without the port.
    pub authority: Option<StringMatch>,
    /// `http` or `https` as the client used it.
    pub scheme: Option<StringMatch>,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions, all of which must hold.
    pub query_params: Vec<QueryMatch>,
    /// Destination port the request arrived on (Istio `port`, Gateway `parentRef.port`).
    pub port: Option<u16>,
    /// The calling workload must carry these labels (sidecar-side matching only).
    pub source_labels: Labels,
    /// The calling workload must be in this namespace.
    pub source_namespace: Option<String>,
    /// Only on these gateways (`namespace/name`, or `mesh` for sidecars); empty means
    /// wherever the route is attached.
    pub gateways: Vec<String>,
    /// Compare `uri` ASCII case-insensitively.
    pub ignore_uri_case: bool,
}

impl HttpMatch {
    /// Whether this match has no condition at all, i.e. matches every request.
    pub fn is_catch_all(&self) -> bool {
        *self == HttpMatch::default()
    }
}

/// A condition on one request header.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HeaderMatch {
    /// Header name, compared case-insensitively.
    pub name: String,
    /// Required value; `None` means the header only has to be present.
    pub value: Option<StringMatch>,
    /// Negate the condition (Istio `withoutHeaders`): the header must be absent or not
    /// match.
    pub invert: bool,
}

/// A condition on one URL query parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueryMatch {
    /// Parameter name, compared exactly.
    pub name: String,
    /// Required value.
    pub value: StringMatch,
}

/// Conditions on a TCP connection; all set conditions must hold. Empty matches every
/// connection.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct L4Match {
    /// Destination port.
    pub port: Option<u16>,
    /// Destination IP must fall in one of these CIDRs (or equal one of these IPs).
    pub destination_subnets: Vec<String>,
    /// The calling workload must carry these labels.
    pub source_labels: Labels,
    /// Only on these gateways (`namespace/name`, or `mesh`).
    pub gateways: Vec<String>,
    /// The calling workload must be in this namespace.
    pub source_namespace: Option<String>,
}

/// Conditions on a TLS connection the proxy does not terminate; all set conditions must
/// hold.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TlsMatch {
    /// SNI of the ClientHello must match one of these (wildcards allowed, see
    /// [`crate::host::host_matches`]); empty means any SNI.
    pub sni_hosts: Vec<String>,
    /// Destination port.
    pub port: Option<u16>,
    /// Destination IP must fall in one of these CIDRs.
    pub destination_subnets: Vec<String>,
    /// The calling workload must carry these labels.
    pub source_labels: Labels,
    /// Only on these gateways (`namespace/name`, or `mesh`).
    pub gateways: Vec<String>,
    /// The calling workload must be in this namespace.
    pub source_namespace: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::StringMatch::*;
    use super::*;

    #[test]
    fn string_matches() {
        let cases = [
            (Exact("/api".into()), "/api", false, Some(true)),
            (Exact("/api".into()), "/API", false, Some(false)),
            (Exact("/api".into()), "/API", true, Some(true)),
            (Prefix("/api".into()), "/apis", false, Some(true)),
            (Prefix("/api".into()), "/ap", false, Some(false)),
            (Prefix("/API".into()), "/api/v1", true, Some(true)),
            (PathPrefix("/api".into()), "/api", false, Some(true)),
            (PathPrefix("/api".into()), "/api/v1", false, Some(true)),
            (PathPrefix("/api/".into()), "/api", false, Some(true)),
            (PathPrefix("/api".into()), "/apis", false, Some(false)),
            (PathPrefix("/".into()), "/anything", false, Some(true)),
            (Prefix("é".into()), "e", false, Some(false)),
            (Regex("/api/.*".into()), "/api/v1", false, None),
        ];
        for (m, value, ignore_case, want) in cases {
            assert_eq!(m.matches(value, ignore_case), want, "{m:?} vs {value:?}");
        }
    }

    #[test]
    fn catch_all() {
        assert!(HttpMatch::default().is_catch_all());
        let m = HttpMatch {
            port: Some(80),
            ..HttpMatch::default()
        };
        assert!(!m.is_catch_all());
    }
}
