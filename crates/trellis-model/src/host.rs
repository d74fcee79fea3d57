//! Host names: short-name expansion, wildcard matching and SPIFFE identities.
//!
//! Users write `reviews`, `reviews.default`, `reviews.default.svc` or the full
//! `reviews.default.svc.cluster.local` and mean the same service (DESIGN.md, "Host
//! names"). The model only ever stores the fully qualified form, so every lookup in the
//! proxy is an exact comparison; the expansion happens once, here, at compile time (and
//! in explicit-proxy mode for the `Host` header a client sent).

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The Kubernetes cluster DNS domain and default SPIFFE trust domain.
pub const DEFAULT_DOMAIN: &str = "cluster.local";

/// Expands short host names into fully qualified service names.
///
/// Expansion needs to know which namespaces exist: `reviews.default` is a service in
/// namespace `default`, while `api.example` is an external name and must be left alone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HostResolver {
    /// Cluster DNS domain appended after `.svc`, `cluster.local` unless the cluster was
    /// set up otherwise.
    pub domain: String,
    /// Namespaces known to exist. A two-label host `name.ns` is only expanded when `ns`
    /// is one of these (or the namespace the reference was written in).
    pub namespaces: BTreeSet<String>,
}

impl Default for HostResolver {
    fn default() -> Self {
        HostResolver {
            domain: DEFAULT_DOMAIN.to_string(),
            namespaces: BTreeSet::new(),
        }
    }
}

impl HostResolver {
    /// A resolver for `domain` with the given known namespaces.
    pub fn new(
        domain: impl Into<String>,
        namespaces: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        HostResolver {
            domain: domain.into(),
            namespaces: namespaces.into_iter().map(Into::into).collect(),
        }
    }

    /// The fully qualified, lowercased form of `host` as written in `from_namespace`:
    ///
    /// - `reviews` → `reviews.<from_namespace>.svc.<domain>`
    /// - `reviews.default` → `reviews.default.svc.<domain>` when `default` is a known
    ///   namespace (or `from_namespace`)
    /// - `reviews.default.svc` → `reviews.default.svc.<domain>`
    /// - anything else (`api.example.com`, `*.example.com`, `*`, IP addresses, names
    ///   already ending in the domain) is returned unchanged apart from lowercasing and
    ///   dropping a trailing root dot.
    pub fn fqdn(&self, host: &str, from_namespace: &str) -> String {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        // Wildcards and addresses are never short names; IPv6 literals have no dots and
        // would otherwise be mistaken for a bare service name.
        if host.is_empty() || host.contains('*') || host.parse::<IpAddr>().is_ok() {
            return host;
        }
        let labels: Vec<&str> = host.split('.').collect();
        match labels.as_slice() {
            [_name] if !from_namespace.is_empty() => {
                format!(
                    "{host}.{}.svc.{}",
                    from_namespace.to_ascii_lowercase(),
                    self.domain
                )
            }
            [_name, ns] if self.is_namespace(ns, from_namespace) => {
                format!("{host}.svc.{}", self.domain)
            }
            [_name, _ns, "svc"] => format!("{host}.{}", self.domain),
            _ => host,
        }
    }

    /// Splits a service FQDN `name.ns.svc.<domain>` into `(name, namespace)`; `None` for
    /// hosts that are not in-cluster service names (external or wildcard hosts). Used to
    /// fill `destination_service_name`/`destination_service_namespace` metric labels.
    pub fn split_service_fqdn<'a>(&self, fqdn: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = fqdn
            .strip_suffix(self.domain.as_str())?
            .strip_suffix(".svc.")?;
        let (name, ns) = rest.split_once('.')?;
        let valid = |s: &str| !s.is_empty() && !s.contains(['.', '*']);
        (valid(name) && valid(ns)).then_some((name, ns))
    }

    fn is_namespace(&self, label: &str, from_namespace: &str) -> bool {
        label.eq_ignore_ascii_case(from_namespace) || self.namespaces.contains(label)
    }
}

/// Whether host `pattern` (as written in a VirtualService, Gateway server, HTTPRoute or
/// ServiceEntry) covers `host`. Comparison is case-insensitive. `*` matches every host;
/// `*.example.com` matches `a.example.com` and `a.b.example.com` (as in Istio and the
/// Gateway API) but not `example.com` itself. Hosts carry no port.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    host_match_rank(pattern, host).is_some()
}

/// How specifically `pattern` matches `host`, or `None` if it does not. Higher is more
/// specific: an exact match beats every wildcard, a longer wildcard suffix beats a
/// shorter one, and `*` ranks lowest. Routing picks the most specific virtual host, so
/// `*.example.com` routes win over `*` routes for `a.example.com`.
pub fn host_match_rank(pattern: &str, host: &str) -> Option<usize> {
    let pattern = pattern.trim_end_matches('.');
    let host = host.trim_end_matches('.');
    if pattern == "*" {
        return Some(0);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        // `suffix` starts with the dot, so at least one label must precede it.
        let matches = host.len() > suffix.len()
            && host.as_bytes()[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes());
        return matches.then_some(suffix.len());
    }
    pattern.eq_ignore_ascii_case(host).then_some(usize::MAX)
}

/// The SPIFFE ID of a workload: `spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>`.
/// This is the URI SAN of every mesh certificate and, without the `spiffe://` scheme, the
/// principal that AuthorizationPolicy rules name.
pub fn spiffe_id(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_table() {
        let r = HostResolver::new(DEFAULT_DOMAIN, ["default", "prod"]);
        let cases = [
            ("reviews", "default", "reviews.default.svc.cluster.local"),
            ("reviews", "prod", "reviews.prod.svc.cluster.local"),
            ("Reviews", "Prod", "reviews.prod.svc.cluster.local"),
            (
                "reviews.default",
                "prod",
                "reviews.default.svc.cluster.local",
            ),
            (
                "reviews.staging",
                "staging",
                "reviews.staging.svc.cluster.local",
            ),
            ("reviews.staging", "prod", "reviews.staging"),
            (
                "reviews.default.svc",
                "prod",
                "reviews.default.svc.cluster.local",
            ),
            (
                "reviews.default.svc.cluster.local",
                "prod",
                "reviews.default.svc.cluster.local",
            ),
            (
                "reviews.default.svc.cluster.local.",
                "prod",
                "reviews.default.svc.cluster.local",
            ),
            ("api.example.com", "default", "api.example.com"),
            ("API.Example.com", "default", "api.example.com"),
            ("example.com", "default", "example.com"),
            ("*.example.com", "default", "*.example.com"),
            ("*", "default", "*"),
            ("10.1.2.3", "default", "10.1.2.3"),
            ("::1", "default", "::1"),
            ("", "default", ""),
        ];
        for (host, ns, want) in cases {
            assert_eq!(r.fqdn(host, ns), want, "fqdn({host:?}, {ns:?})");
        }
        let custom = HostResolver::new("corp.internal", Vec::<String>::new());
        assert_eq!(custom.fqdn("db", "data"), "db.data.svc.corp.internal");
    }

    #[test]
    fn wildcard_matching() {
        let cases = [
            ("*", "anything.at.all", true),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.Example.COM", "A.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", ".example.com", false),
            ("*.example.com", "aexample.com", false),
            ("api.example.com", "API.example.com", true),
            ("api.example.com", "web.example.com", false),
            (
                "reviews.default.svc.cluster.local",
                "reviews.default.svc.cluster.local",
                true,
            ),
        ];
        for (pattern, host, want) in cases {
            assert_eq!(host_matches(pattern, host), want, "{pattern} vs {host}");
        }
        let rank = |p| host_match_rank(p, "a.b.example.com");
        assert!(rank("a.b.example.com") > rank("*.b.example.com"));
        assert!(rank("*.b.example.com") > rank("*.example.com"));
        assert!(rank("*.example.com") > rank("*"));
    }

    #[test]
    fn service_fqdn_split() {
        let r = HostResolver::default();
        assert_eq!(
            r.split_service_fqdn("reviews.default.svc.cluster.local"),
            Some(("reviews", "default"))
        );
        assert_eq!(r.split_service_fqdn("api.example.com"), None);
        assert_eq!(r.split_service_fqdn("a.b.c.svc.cluster.local"), None);
        assert_eq!(r.split_service_fqdn("*.default.svc.cluster.local"), None);
    }

    #[test]
    fn spiffe() {
        assert_eq!(
            spiffe_id("cluster.local", "default", "frontend"),
            "spiffe://cluster.local/ns/default/sa/frontend"
        );
    }
}
