//! Value checks for AuthorizationPolicy fields and `when` conditions, following Istio's
//! `pkg/config/security` (ValidateAttribute, CheckServiceAccount, CheckValidPathTemplate, ...).

use super::Condition;
use crate::resources::istio_security::error_at_index;
use crate::resources::names::{Wording, check_ip_or_cidr};
use crate::validate::Cx;

/// How the values of a condition key are checked.
enum Values {
    Any,
    Ips,
    Ports,
    ServiceAccounts,
    Wildcards,
}

/// `name[inner]` with a non-empty inner part.
fn is_map_key(key: &str) -> bool {
    key.find('[')
        .is_some_and(|open| open > 0 && key.ends_with(']') && open < key.len() - 2)
}

/// Which condition keys Istio knows, and how their values are checked.
fn classify(key: &str) -> Result<Values, String> {
    let map_key = |prefix: &str, example: &str| {
        if is_map_key(key) {
            Ok(Values::Any)
        } else {
            Err(format!(
                "condition key {key:?} must have the form {prefix}[name], e.g. {example}"
            ))
        }
    };
    Ok(match key {
        "source.ip" | "remote.ip" | "destination.ip" => Values::Ips,
        "destination.port" => Values::Ports,
        "source.serviceAccount" => Values::ServiceAccounts,
        "source.trustDomain" => Values::Wildcards,
        "source.namespace"
        | "source.principal"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni" => Values::Any,
        k if k.starts_with("request.headers") => {
            return map_key("request.headers", "request.headers[x-user]");
        }
        k if k.starts_with("request.auth.claims") => {
            return map_key("request.auth.claims", "request.auth.claims[iss]");
        }
        k if k.starts_with("experimental.envoy.filters.") => {
            return map_key(
                "experimental.envoy.filters.<filter>",
                "experimental.envoy.filters.network.mysql_proxy[db.table]",
            );
        }
        "destination.namespace" => {
            return Err("condition key \"destination.namespace\" is replaced by the policy's metadata.namespace".into());
        }
        k if k.starts_with("destination.labels") => {
            return Err(format!(
                "condition key {k:?} is replaced by the policy's selector"
            ));
        }
        "destination.name" | "destination.user" => {
            return Err(format!(
                "condition key {key:?} was only supported by the old v1alpha1 RBAC API"
            ));
        }
        _ => {
            return Err(format!(
                "unknown condition key {key:?}; expected one of request.headers[...], source.ip, remote.ip, \
                 source.namespace, source.principal, source.serviceAccount, source.trustDomain, \
                 request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[...], \
                 destination.ip, destination.port, connection.sni, experimental.envoy.filters.*"
            ));
        }
    })
}

/// The key of a `when` condition and its values and notValues.
pub(super) fn check_condition(cx: &mut Cx, c: &Condition) {
    let kind = match classify(&c.key) {
        Ok(k) => k,
        Err(e) => return cx.error_at("key", e),
    };
    for (field, values) in [("values", &c.values), ("notValues", &c.not_values)] {
        super::check_no_empty(cx, field, values);
        match kind {
            Values::Any => {}
            Values::Ips => check_ips(cx, field, values),
            Values::Ports => check_ports(cx, field, values),
            Values::ServiceAccounts => check_service_accounts(cx, field, values),
            Values::Wildcards => check_wildcards(cx, field, values),
        }
    }
}

/// IP addresses or CIDR blocks.
pub(super) fn check_ips(cx: &mut Cx, field: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        if let Err(e) = check_ip_or_cidr(v) {
            error_at_index(cx, field, i, e.message(Wording::Explain));
        }
    }
}

/// Port numbers written as strings (`"8080"`), 0..=65535 as Istio accepts.
pub(super) fn check_ports(cx: &mut Cx, field: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        if !v.is_empty() && v.parse::<u16>().is_err() {
            error_at_index(
                cx,
                field,
                i,
                format!("bad port {v:?}: must be a number in 0..65535"),
            );
        }
    }
}

/// `serviceAccount` or `namespace/serviceAccount`, no wildcards, at most 16.
pub(super) fn check_service_accounts(cx: &mut Cx, field: &str, values: &[String]) {
    if values.len() > 16 {
        cx.error_at(
            field,
            format!("`{field}` may have at most 16 values, got {}", values.len()),
        );
    }
    let expected = "expected \"<service-account>\" or \"<namespace>/<service-account>\"";
    for (i, v) in values.iter().enumerate() {
        let problem = if v.is_empty() {
            Some(format!("empty value not allowed in `{field}`"))
        } else if v.contains('*') {
            Some(format!("wildcards are not allowed in `{field}`: {v:?}"))
        } else if v.len() > 320 {
            Some(format!(
                "service account {v:?} is longer than 320 characters"
            ))
        } else {
            match v.split_once('/') {
                Some((ns, sa)) if ns.is_empty() || sa.is_empty() || sa.contains('/') => {
                    Some(format!("{v:?}: {expected}"))
                }
                _ => None,
            }
        };
        if let Some(p) = problem {
            error_at_index(cx, field, i, p);
        }
    }
}

/// At most one `*`, at the start or the end.
fn check_wildcards(cx: &mut Cx, field: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        let stars = v.matches('*').count();
        if stars > 1 {
            error_at_index(
                cx,
                field,
                i,
                format!("at most one wildcard is allowed: {v:?}"),
            );
        } else if stars == 1 && v != "*" && !v.starts_with('*') && !v.ends_with('*') {
            error_at_index(
                cx,
                field,
                i,
                format!("a wildcard is only allowed at the start or end: {v:?}"),
            );
        }
    }
}

/// Trust domains: wildcards as above, and no `/`.
pub(super) fn check_trust_domains(cx: &mut Cx, field: &str, values: &[String]) {
    super::check_no_empty(cx, field, values);
    check_wildcards(cx, field, values);
    for (i, v) in values.iter().enumerate() {
        if v.contains('/') {
            error_at_index(
                cx,
                field,
                i,
                format!("trust domain {v:?} must not contain '/'"),
            );
        }
    }
}

/// Paths using Envoy's URI templates (`/foo/{*}/bar`, `/foo/{**}`): `{**}` only last, and
/// literal segments limited to URL-safe characters.
pub(super) fn check_path_templates(cx: &mut Cx, field: &str, paths: &[String]) {
    let literal = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()+,;:@=".contains(c))
    };
    for (i, path) in paths.iter().enumerate() {
        let template = path.contains("{*}") || path.contains("{**}");
        let mut any_seen = false;
        for glob in path.trim_matches('/').split('/') {
            let problem = match glob {
                "{*}" | "{**}" if any_seen => Some("`{**}` must be the last segment".to_owned()),
                "{*}" => None,
                "{**}" => {
                    any_seen = true;
                    None
                }
                g if g.contains(['{', '}']) => Some(format!(
                    "segment {g:?} has '{{' or '}}' outside a {{*}} or {{**}} template"
                )),
                g if template && !literal(g) => Some(format!(
                    "segment {g:?} has characters not allowed in a path template"
                )),
                _ => None,
            };
            if let Some(p) = problem {
                error_at_index(cx, field, i, format!("invalid path {path:?}: {p}"));
                break;
            }
        }
    }
}
