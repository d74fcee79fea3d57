//! Kubernetes Gateway API (`gateway.networking.k8s.io` v1, v1beta1, v1alpha2, v1alpha3): GatewayClass,
//! Gateway, HTTPRoute, GRPCRoute, TCPRoute, TLSRoute and ReferenceGrant, with the standard and the
//! experimental channel's fields (older experimental spellings such as `backendTLS` and
//! `frontendValidation` included, so manifests written for any release since v1.0 load).
//!
//! Validation follows the CRDs' OpenAPI patterns, limits and CEL rules, so `trellis analyze` rejects
//! what `kubectl apply` would reject, with a position instead of a CEL expression.
//!
//! `policy.linkerd.io` HTTPRoute reuses [`HttpRoute`]; nothing here assumes a parent is a Gateway.

use crate::resources::common::Duration;
use crate::resources::names::{is_dns1123_label, is_dns1123_subdomain};
use crate::validate::Cx;

/// API group of the Gateway API; the default group of a `parentRef`.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// Inherent helpers shared by the backend reference types, which repeat the same fields because
/// the loader cannot support `#[serde(flatten)]`.
macro_rules! backend_object_methods {
    (object $ty:ty) => {
        impl $ty {
            /// Group and kind with upstream defaults applied: the core group `""` (also spelled
            /// `core`) and kind `Service`.
            pub fn group_kind(&self) -> (&str, &str) {
                super::shared::backend_group_kind(self.group.as_deref(), self.kind.as_deref())
            }

            /// Does this refer to a Kubernetes Service (the common case)?
            pub fn is_service(&self) -> bool {
                self.group_kind() == ("", "Service")
            }

            fn validate_object(&self, cx: &mut crate::validate::Cx) {
                super::shared::validate_backend_object(
                    cx,
                    self.group.as_deref(),
                    self.kind.as_deref(),
                    &self.name,
                    self.namespace.as_deref(),
                    self.port,
                );
            }
        }
    };
    (weighted $ty:ty) => {
        backend_object_methods!(object $ty);

        impl $ty {
            /// Weight with the upstream default of 1 applied.
            pub fn effective_weight(&self) -> i32 {
                self.weight.unwrap_or(1)
            }

            fn validate_weight(&self, cx: &mut crate::validate::Cx) {
                if let Some(w) = self.weight
                    && !(0..=super::MAX_WEIGHT).contains(&w)
                {
                    cx.error_at("weight", format!("weight must be between 0 and {}, got {w}", super::MAX_WEIGHT));
                }
            }
        }
    };
}

mod filters;
mod gateway;
mod grpc_route;
mod http_route;
mod l4_route;
mod reference_grant;
mod session;
mod shared;

pub use filters::*;
pub use gateway::*;
pub use grpc_route::*;
pub use http_route::*;
pub use l4_route::*;
pub use reference_grant::*;
pub use session::*;
pub use shared::*;

/// Largest backend weight the CRDs accept.
const MAX_WEIGHT: i32 = 1_000_000;

/// Report `field` when a list is longer than the CRD's `maxItems`.
fn check_max(cx: &mut Cx, field: &str, len: usize, max: usize) {
    if len > max {
        cx.error_at(
            field,
            format!("`{field}` has {len} entries; at most {max} are allowed"),
        );
    }
}

/// Report `field` when a list the CRD marks `minItems: 1` is empty.
fn check_non_empty(cx: &mut Cx, field: &str, len: usize) {
    if len == 0 {
        cx.error_at(field, format!("`{field}` needs at least one entry"));
    }
}

/// Ports are int32 in the CRDs so that a bad value is reported here, with its range, rather than
/// failing to decode the whole resource.
fn check_port(cx: &mut Cx, field: &str, port: Option<i32>) {
    if let Some(p) = port
        && !(1..=65535).contains(&p)
    {
        cx.error_at(field, format!("port must be between 1 and 65535, got {p}"));
    }
}

/// GEP-2257 durations are whole milliseconds at most (`h`, `m`, `s`, `ms`).
fn check_duration(cx: &mut Cx, field: &str, d: Option<&Duration>) {
    if let Some(d) = d
        && d.nanos % 1_000_000 != 0
    {
        cx.error_at(
            field,
            format!(
                "Gateway API durations have millisecond precision (units h, m, s, ms); got {d}"
            ),
        );
    }
}

fn check_max_len(cx: &mut Cx, field: &str, value: &str, max: usize) {
    if value.len() > max {
        cx.error_at(
            field,
            format!(
                "`{field}` is {} characters long; at most {max} are allowed",
                value.len()
            ),
        );
    }
}

/// Gateway API `Hostname`: a DNS subdomain, optionally prefixed by one `*.` wildcard label.
fn is_hostname(s: &str) -> bool {
    is_dns1123_subdomain(s.strip_prefix("*.").unwrap_or(s))
}

/// Gateway API `Group`: empty (core) or a DNS subdomain.
fn is_group(s: &str) -> bool {
    s.is_empty() || is_dns1123_subdomain(s)
}

/// Gateway API `Kind`: `^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`, at most 63 characters.
fn is_kind(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// HTTP header (and cookie) names: RFC 7230 tokens, at most 256 characters.
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

fn check_hostname(cx: &mut Cx, field: &str, value: &str) {
    if !is_hostname(value) {
        cx.error_at(
            field,
            format!("{value:?} is not a valid hostname: use lowercase DNS labels, optionally prefixed by `*.`"),
        );
    }
}

fn check_precise_hostname(cx: &mut Cx, field: &str, value: &str) {
    if !is_dns1123_subdomain(value) {
        cx.error_at(
            field,
            format!("{value:?} is not a valid hostname: use lowercase DNS labels, no wildcard"),
        );
    }
}

fn check_group(cx: &mut Cx, field: &str, value: Option<&str>) {
    if let Some(g) = value
        && !is_group(g)
    {
        cx.error_at(
            field,
            format!("{g:?} is not a valid API group: use \"\" for the core group or a DNS name"),
        );
    }
}

fn check_kind(cx: &mut Cx, field: &str, value: Option<&str>) {
    if let Some(k) = value
        && !is_kind(k)
    {
        cx.error_at(
            field,
            format!("{k:?} is not a valid kind: letters, digits and '-', starting with a letter"),
        );
    }
}

fn check_namespace(cx: &mut Cx, field: &str, value: Option<&str>) {
    if let Some(ns) = value
        && !is_dns1123_label(ns)
    {
        cx.error_at(
            field,
            format!("{ns:?} is not a valid namespace name (lowercase DNS label)"),
        );
    }
}

fn check_section_name(cx: &mut Cx, field: &str, value: Option<&str>) {
    if let Some(s) = value
        && !is_dns1123_subdomain(s)
    {
        cx.error_at(
            field,
            format!("{s:?} is not a valid name: use lowercase letters, digits, '-' and '.'"),
        );
    }
}

fn check_header_name(cx: &mut Cx, field: &str, value: &str) {
    if !value.is_empty() && !is_header_name(value) {
        cx.error_at(
            field,
            format!(
                "{value:?} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
            ),
        );
    }
}

/// Experimental-channel rule: rule names, when given, are unique within a route.
fn check_unique_rule_names<'a>(cx: &mut Cx, names: impl Iterator<Item = Option<&'a str>>) {
    let mut seen = std::collections::BTreeMap::new();
    for (i, name) in names.enumerate() {
        let Some(name) = name else { continue };
        cx.field("rules", |cx| {
            cx.index(i, |cx| check_section_name(cx, "name", Some(name)));
            if let Some(first) = seen.insert(name, i) {
                cx.index(i, |cx| {
                    cx.error_at("name", format!("rule name {name:?} is already used by rules[{first}]; names must be unique"))
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_follow_the_crds() {
        assert!(is_hostname("*.example.com"));
        assert!(!is_hostname("foo.*.com"));
        assert!(!is_hostname("Example.com"));
        assert!(is_group(""));
        assert!(is_kind("HTTPRoute"));
        assert!(!is_kind("9Route"));
        assert!(is_header_name("x-canary"));
        assert!(!is_header_name("x canary"));
        assert!(!is_header_name("x:canary"));
    }

    #[test]
    fn durations_need_millisecond_precision() {
        let mut cx = Cx::new("spec");
        check_duration(&mut cx, "request", Some(&Duration::from_millis(1500)));
        assert!(cx.into_diags().is_empty());
        let mut cx = Cx::new("spec");
        check_duration(&mut cx, "request", Some(&Duration { nanos: 1_500 }));
        assert_eq!(cx.into_diags().len(), 1);
    }
}
