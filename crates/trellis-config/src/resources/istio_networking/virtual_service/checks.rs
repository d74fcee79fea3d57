//! Value checks Istio's validation webhook applies to networking resources: host coverage, ports,
//! durations, header names, gateway references and `exportTo`. Shared by VirtualService and
//! DestinationRule (and free for the other `networking.istio.io` kinds). Host names and subnets
//! are checked by [`crate::resources::names`], worded with [`Wording::Brief`].

use crate::diag::{Code, Severity};
use crate::resources::common::Duration;
use crate::resources::names::{Wording, check_fqdn, is_dns1123_label_any_case};
use crate::validate::Cx;

/// Istio's mesh-internal gateway name: rules bound to it apply to sidecars.
pub(crate) const MESH_GATEWAY: &str = "mesh";

/// Durations Istio accepts must be at least 1ms and whole milliseconds (the CRD schema and the
/// webhook both say so; Envoy would otherwise truncate silently).
pub(crate) fn duration(cx: &mut Cx, name: &str, d: &Option<Duration>) {
    if let Some(d) = d {
        if d.nanos < 1_000_000 {
            cx.error_at(name, format!("`{name}` must be at least 1ms, got {d}"));
        } else if d.nanos % 1_000_000 != 0 {
            cx.error_at(
                name,
                format!("`{name}` must be a whole number of milliseconds, got {d}"),
            );
        }
    }
}

/// A port number, when written, is 1..=65535.
pub(crate) fn port(cx: &mut Cx, name: &str, p: Option<u32>) {
    if let Some(p) = p
        && !(1..=65535).contains(&p)
    {
        cx.error_at(
            name,
            format!("port number {p} must be in the range 1..65535"),
        );
    }
}

/// Is host `a` covered by host `b`? Mirrors Istio's `host.Name.SubsetOf`: `a.foo.com` and
/// `*.a.foo.com` are covered by `*.foo.com`; everything by `*`; a wildcard never by a plain name.
pub(crate) fn host_subset_of(a: &str, b: &str) -> bool {
    // Byte-wise so a multi-byte character can never split a slice.
    let ends = |s: &[u8], suffix: &[u8]| {
        s.len() >= suffix.len() && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(a_rest), Some(b_rest)) => ends(a_rest.as_bytes(), b_rest.as_bytes()),
        (Some(_), None) => false,
        (None, Some(b_rest)) => ends(a.as_bytes(), b_rest.as_bytes()),
        (None, None) => a.eq_ignore_ascii_case(b),
    }
}

/// RFC 7230 token characters.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A header token (`x-user`, `X-User`).
pub(crate) fn is_header_token(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_tchar)
}

/// `@request.auth.claims.<name>` keys route on JWT claims (gateways only).
pub(crate) fn is_jwt_claim_key(name: &str) -> bool {
    name.starts_with("@request.auth.claims.") || name.starts_with("@request.auth.claims[")
}

/// A header name in a match: a token, an HTTP/2 pseudo-header or a JWT-claim key. Case does not
/// matter: Istio accepts upper case since 1.0 and header names match case-insensitively.
pub(crate) fn match_header_name(name: &str) -> Result<(), String> {
    const PSEUDO: &[&str] = &[":method", ":scheme", ":authority", ":path", ":status"];
    if name.is_empty() {
        return Err("header name cannot be empty".into());
    }
    if is_jwt_claim_key(name) || PSEUDO.contains(&name) || is_header_token(name) {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid header name"))
    }
}

/// A header value Envoy accepts: no control characters other than tab.
pub(crate) fn header_value(value: &str) -> Result<(), String> {
    if value
        .chars()
        .any(|c| (c.is_ascii_control() && c != '\t') || c == '\u{7f}')
    {
        Err(format!(
            "header value {value:?} contains control characters"
        ))
    } else {
        Ok(())
    }
}

/// `gateways:` entries: `mesh`, `<namespace>/<name>`, or a name in the config's namespace.
pub(crate) fn gateway_names(cx: &mut Cx, field: &str, names: &[String]) {
    cx.field(field, |cx| {
        for (i, g) in names.iter().enumerate() {
            cx.index(i, |cx| {
                if g == MESH_GATEWAY {
                    return;
                }
                match g.split_once('/') {
                    Some((ns, name)) => {
                        if ns.is_empty() || name.is_empty() {
                            cx.error(format!("gateway {g:?}: namespace and name cannot be empty"));
                        } else if !is_dns1123_label_any_case(ns) {
                            cx.error(format!("gateway {g:?}: {ns:?} is not a valid namespace"));
                        } else if !is_dns1123_label_any_case(name) {
                            cx.error(format!(
                                "gateway {g:?}: {name:?} is not a valid gateway name"
                            ));
                        }
                    }
                    None => {
                        if let Err(e) = check_fqdn(g) {
                            cx.error(format!("gateway {g:?}: {}", e.message(Wording::Brief)));
                        } else if let Some((name, ns)) = g.split_once('.') {
                            let ns = ns.split('.').next().unwrap_or(ns);
                            cx.report(
                                Severity::Warning,
                                Code::SchemaValidation,
                                format!(
                                    "gateway {g:?} uses the legacy FQDN form; write \"{ns}/{name}\""
                                ),
                            );
                        }
                    }
                }
            })
        }
    });
}

/// `exportTo`: `.`, `*` or namespace names, no duplicates, `*` alone. `~` (export to nobody)
/// only on ServiceEntry.
pub(crate) fn export_to(cx: &mut Cx, entries: &[String], allow_none: bool) {
    cx.field("exportTo", |cx| {
        let mut seen: Vec<&str> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            cx.index(i, |cx| {
                let ok = e == "."
                    || e == "*"
                    || (e == "~" && allow_none)
                    || is_dns1123_label_any_case(e);
                if !ok {
                    let what = if e == "~" {
                        "`~` is only allowed on ServiceEntry"
                    } else {
                        "expected `.`, `*` or a namespace name"
                    };
                    cx.error(format!("invalid exportTo entry {e:?}: {what}"));
                } else if seen.contains(&e.as_str()) {
                    cx.error(format!("duplicate exportTo entry {e:?}"));
                }
                seen.push(e);
            });
        }
        if entries.len() > 1 && seen.contains(&"*") {
            cx.error(
                "`*` exports to every namespace; it cannot be combined with other exportTo entries",
            );
        }
        if entries.len() > 1 && seen.contains(&"~") {
            cx.error("`~` exports to nobody; it cannot be combined with other exportTo entries");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_subsets() {
        assert!(host_subset_of("a.foo.com", "*.foo.com"));
        assert!(host_subset_of("*.a.foo.com", "*.foo.com"));
        assert!(host_subset_of("anything", "*"));
        assert!(!host_subset_of("*.foo.com", "a.foo.com"));
        assert!(!host_subset_of("foo.com", "*.foo.com"));
    }

    #[test]
    fn header_names() {
        assert!(match_header_name("x-user").is_ok());
        assert!(match_header_name("X-User").is_ok());
        assert!(match_header_name(":authority").is_ok());
        assert!(match_header_name("@request.auth.claims.group").is_ok());
        assert!(match_header_name("bad header").is_err());
        assert!(match_header_name("").is_err());
        assert!(header_value("ok\tvalue").is_ok());
        assert!(header_value("bad\nvalue").is_err());
    }
}
