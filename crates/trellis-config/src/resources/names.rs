//! Name and address checks every API family shares: DNS-1123 labels and subdomains, domain names
//! whose first label may be a wildcard, IP addresses and CIDR blocks, and port names.
//!
//! Two spellings of a DNS label exist: Kubernetes object names are lowercase
//! ([`is_dns1123_label`]), Istio's webhook also accepts upper case
//! ([`is_dns1123_label_any_case`]); domain names follow Istio. Rules only one kind has (Gateway API
//! hostnames, Istio `namespace/host` pairs) stay with that kind.
//!
//! The domain and address checks return an [`Invalid`] that callers word with [`Wording`]: the
//! Istio kinds grew two phrasings of the same findings, and both are kept.

use std::net::IpAddr;

/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// Longest domain name Istio accepts.
const MAX_DOMAIN: usize = 255;

/// Longest DNS subdomain (Kubernetes `IsDNS1123Subdomain`).
const MAX_SUBDOMAIN: usize = 253;

fn is_label(s: &str, any_case: bool) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || (any_case && c.is_ascii_uppercase())
    };
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// A DNS-1123 label as Kubernetes checks it, `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$` and at most 63
/// characters: object names, namespaces, service port names.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    is_label(s, false)
}

/// A DNS-1123 label as Istio checks it: like [`is_dns1123_label`] but upper case is accepted.
pub(crate) fn is_dns1123_label_any_case(s: &str) -> bool {
    is_label(s, true)
}

/// Lowercase DNS labels joined by dots, at most 253 characters (API groups, precise hostnames).
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SUBDOMAIN && s.split('.').all(is_dns1123_label)
}

/// Kubernetes `IsValidPortName` (IANA_SVC_NAME): at most 15 lowercase letters, digits and '-',
/// with at least one letter and no leading, trailing or doubled '-'.
pub(crate) fn is_port_name(s: &str) -> bool {
    s.len() <= 15
        && is_dns1123_label(s)
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.contains("--")
}

/// Kubernetes `IsQualifiedName`'s name part, also the shape of a non-empty label value: at most
/// 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit.
pub(crate) fn is_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A Kubernetes label key (`IsQualifiedName`): `[prefix/]name`, the prefix a lowercase DNS
/// subdomain (`app.kubernetes.io/name`), the name as in [`is_qualified_name`].
pub(crate) fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_qualified_name(name),
        None => is_qualified_name(s),
    }
}

/// A Kubernetes label value (`IsValidLabelValue`): empty, or shaped like [`is_qualified_name`].
pub(crate) fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name(s)
}

/// Is `s` an IPv4 or IPv6 address?
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// What is wrong with a domain name or an address; [`Invalid::message`] words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid<'a> {
    EmptyDomain,
    DomainTooLong(&'a str),
    /// The last label is all digits (it would read as an IP address).
    NumericTld {
        domain: &'a str,
        tld: &'a str,
    },
    Label {
        domain: &'a str,
        label: &'a str,
    },
    /// The first label is neither a DNS label nor a wildcard (`*`, `*foo`, `*-foo`).
    WildcardLabel {
        domain: &'a str,
        label: &'a str,
    },
    /// No `/` and not an IP address.
    Address(&'a str),
    /// A `/` but the part before it is not an IP address.
    CidrAddress(&'a str),
    /// The prefix length is not a number in `0..=max`.
    CidrPrefix {
        cidr: &'a str,
        max: u8,
    },
}

/// How a kind words an [`Invalid`]. The texts differ, the findings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wording {
    /// Gateway, Sidecar, ServiceEntry, WorkloadEntry, AuthorizationPolicy: says what a valid
    /// label or block looks like.
    Explain,
    /// VirtualService, DestinationRule: names the rule broken, close to Istio's webhook text.
    Brief,
}

impl Invalid<'_> {
    pub(crate) fn message(&self, wording: Wording) -> String {
        use Wording::{Brief, Explain};
        match (*self, wording) {
            (Invalid::EmptyDomain, _) => "empty domain name not allowed".into(),
            (Invalid::DomainTooLong(d), _) => {
                format!("domain name {d:?} is too long (max {MAX_DOMAIN} characters)")
            }
            (Invalid::NumericTld { domain, tld }, Explain) => format!(
                "domain name {domain:?} is invalid: the top-level label {tld:?} cannot be all-numeric"
            ),
            (Invalid::NumericTld { domain, tld }, Brief) => format!(
                "domain name {domain:?} is invalid: the top-level label {tld:?} cannot be all digits"
            ),
            (Invalid::Label { domain, label }, Explain) => format!(
                "domain name {domain:?} is invalid: label {label:?} must be 1-63 letters, digits or '-', starting and ending with a letter or digit"
            ),
            (Invalid::Label { domain, label }, Brief) => format!(
                "domain name {domain:?} is invalid (label {label:?} is not a DNS-1123 label)"
            ),
            (Invalid::WildcardLabel { domain, label }, Explain) => format!(
                "domain name {domain:?} is invalid: label {label:?} is not a DNS label or a wildcard"
            ),
            (Invalid::WildcardLabel { domain, label }, Brief) => format!(
                "domain name {domain:?} is invalid (label {label:?} is not a DNS-1123 label or wildcard)"
            ),
            (Invalid::Address(s), Explain) => {
                format!("{s:?} is not a valid IP address or CIDR block")
            }
            (Invalid::CidrAddress(s), Explain) => format!("{s:?} is not a valid CIDR block"),
            (Invalid::Address(s) | Invalid::CidrAddress(s), Brief) => {
                format!("{s:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8)")
            }
            (Invalid::CidrPrefix { cidr, max }, Explain) => {
                format!("{cidr:?} is not a valid CIDR block (prefix length must be 0..={max})")
            }
            (Invalid::CidrPrefix { cidr, max }, Brief) => {
                format!("{cidr:?} has an invalid prefix length; expected 0..{max}")
            }
        }
    }
}

fn check_domain_length(name: &str) -> Result<(), Invalid<'_>> {
    if name.is_empty() {
        Err(Invalid::EmptyDomain)
    } else if name.len() > MAX_DOMAIN {
        Err(Invalid::DomainTooLong(name))
    } else {
        Ok(())
    }
}

/// The dot-separated `labels` of `domain` (all of it, or what follows a wildcard first label).
fn check_labels_of<'a>(domain: &'a str, labels: &'a str) -> Result<(), Invalid<'a>> {
    let parts: Vec<&str> = labels.split('.').collect();
    let tld = parts.last().copied().unwrap_or_default();
    if !tld.is_empty() && tld.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Invalid::NumericTld { domain, tld });
    }
    for (i, label) in parts.iter().enumerate() {
        // A trailing dot (`istio.io.`) is an unambiguous absolute name.
        if i == parts.len() - 1 && label.is_empty() {
            return Ok(());
        }
        if !is_dns1123_label_any_case(label) {
            return Err(Invalid::Label { domain, label });
        }
    }
    Ok(())
}

/// A first label that may carry a wildcard: `*`, `*foo`, `*-foo` or a plain label, at most 63
/// characters with the `*`.
fn is_wildcard_label(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let rest = s
        .strip_prefix("*-")
        .or_else(|| s.strip_prefix('*'))
        .unwrap_or(s);
    s.len() <= MAX_LABEL && is_dns1123_label_any_case(rest)
}

/// A fully qualified or short domain name without wildcards (Istio `ValidateFQDN`).
pub(crate) fn check_fqdn(name: &str) -> Result<(), Invalid<'_>> {
    check_domain_length(name)?;
    check_labels_of(name, name)
}

/// A domain name whose first label may be a wildcard: `*`, `*.example.com`, `*foo.example.com`
/// (Istio `ValidateWildcardDomain`).
pub(crate) fn check_wildcard_domain(name: &str) -> Result<(), Invalid<'_>> {
    check_domain_length(name)?;
    let (first, rest) = match name.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (name, None),
    };
    if !is_wildcard_label(first) {
        return Err(Invalid::WildcardLabel {
            domain: name,
            label: first,
        });
    }
    match rest {
        Some(r) => check_labels_of(name, r),
        None => Ok(()),
    }
}

/// An IP address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`).
pub(crate) fn check_ip_or_cidr(s: &str) -> Result<(), Invalid<'_>> {
    let Some((addr, bits)) = s.split_once('/') else {
        return if is_ip(s) {
            Ok(())
        } else {
            Err(Invalid::Address(s))
        };
    };
    let max = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => 32,
        Ok(IpAddr::V6(_)) => 128,
        Err(_) => return Err(Invalid::CidrAddress(s)),
    };
    match bits.parse::<u8>() {
        Ok(b) if b <= max && !bits.starts_with('+') => Ok(()),
        _ => Err(Invalid::CidrPrefix { cidr: s, max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(is_dns1123_label("web-v1") && is_dns1123_label("8080"));
        assert!(!is_dns1123_label("web_v1") && !is_dns1123_label("") && !is_dns1123_label("web-"));
        assert!(is_dns1123_label("bookinfo"));
        assert!(!is_dns1123_label("Bookinfo"));
        assert!(!is_dns1123_label("-a"));
        assert!(is_dns1123_label_any_case("Bookinfo"));
        assert!(!is_dns1123_label_any_case("-a") && !is_dns1123_label_any_case(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("gateway.networking.k8s.io"));
        assert!(!is_dns1123_subdomain("a..b"));
    }

    #[test]
    fn kubernetes_labels() {
        assert!(is_label_key("app") && is_label_key("app.kubernetes.io/name"));
        assert!(is_label_key("trellis.dev/local-workload") && is_label_key("A_b.c"));
        assert!(!is_label_key("") && !is_label_key("/app") && !is_label_key("Example.com/app"));
        assert!(!is_label_key("a/b/c") && !is_label_key("-app") && !is_label_key("bad key"));
        assert!(!is_label_key(&"a".repeat(64)));
        assert!(is_label_value("") && is_label_value("v1.2_3") && is_label_value("V1"));
        assert!(!is_label_value("v1 ") && !is_label_value("-v1") && !is_label_value("a/b"));
        assert!(!is_label_value(&"v".repeat(64)));
    }

    #[test]
    fn port_names() {
        assert!(is_port_name("http") && is_port_name("h2c-8080") && is_port_name("grpc-web"));
        assert!(
            !is_port_name("8080")
                && !is_port_name("http--x")
                && !is_port_name("-http")
                && !is_port_name("Http")
        );
        assert!(!is_port_name("averyveryverylongname"));
    }

    #[test]
    fn domains() {
        assert!(check_wildcard_domain("*.example.com").is_ok());
        assert!(check_wildcard_domain("*").is_ok());
        assert!(check_wildcard_domain("reviews").is_ok());
        assert!(check_wildcard_domain("*.bookinfo.com").is_ok());
        assert!(check_wildcard_domain("reviews.default.svc.cluster.local").is_ok());
        assert!(check_wildcard_domain("istio.io.").is_ok());
        assert!(check_wildcard_domain("reviews:9080").is_err());
        assert!(check_wildcard_domain("http://reviews").is_err());
        assert!(check_wildcard_domain("foo.*.com").is_err());
        assert!(check_wildcard_domain("a.*.com").is_err());
        assert!(check_wildcard_domain("1.2.3.4").is_err());
        assert!(check_wildcard_domain("").is_err());
        assert!(check_fqdn("*.example.com").is_err());
        assert!(check_fqdn("*.foo").is_err());
        assert!(check_fqdn("foo.123").is_err());
    }

    #[test]
    fn addresses() {
        assert!(check_ip_or_cidr("10.0.0.0/8").is_ok());
        assert!(check_ip_or_cidr("10.1.2.3").is_ok());
        assert!(check_ip_or_cidr("2001:db8::/32").is_ok());
        assert!(check_ip_or_cidr("10.0.0.1").is_ok());
        assert!(check_ip_or_cidr("10.0.0.0/33").is_err());
        assert!(check_ip_or_cidr("example.com").is_err());
    }

    #[test]
    fn both_wordings_are_kept() {
        let e = check_wildcard_domain("a.b_c.com").expect_err("bad label");
        assert!(e.message(Wording::Brief).contains("not a DNS-1123 label"));
        assert!(e.message(Wording::Explain).contains("must be 1-63 letters"));
        let e = check_ip_or_cidr("10.0.0.0/33").expect_err("prefix too long");
        assert!(e.message(Wording::Brief).contains("prefix length"));
        assert!(e.message(Wording::Explain).contains("not a valid CIDR"));
    }
}
