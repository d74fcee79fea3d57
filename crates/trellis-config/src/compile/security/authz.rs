//! Istio AuthorizationPolicy -> [`AuthzPolicy`].
//!
//! The model's rule semantics are Istio's, so most fields map one to one. The conversions:
//! `serviceAccounts` become SPIFFE principals (`<trust-domain>/ns/<ns>/sa/<sa>`), exact and prefix
//! `trustDomains` become principal patterns (`<td>/*`), ports become numbers, and the `when` keys
//! `source.serviceAccount` / `source.trustDomain` become `source.principal` conditions. Rules are
//! kept as written, including none at all: ALLOW without rules denies everything in scope (also
//! for `spec: {}`), DENY without rules has no effect, as the model documents.

use super::{selector, targets};
use crate::compile::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::istio_security::{
    AuthorizationAction, AuthorizationPolicy, Condition, Operation, Rule, Source,
};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::{
    AuthzAction, AuthzCondition, AuthzOperation, AuthzPolicy, AuthzRule, AuthzSource,
};

/// Append the Istio AuthorizationPolicies after whatever earlier passes (Linkerd) put into
/// `mesh.security.authorization`. A policy with several target references becomes one model
/// policy per reference, since the model attaches a policy to at most one target.
pub(super) fn compile(cx: &mut Ctx<'_>) {
    let resources: Vec<&Resource> = cx.of_kind(Kind::IstioAuthorizationPolicy).collect();
    for r in resources {
        let Spec::IstioAuthorizationPolicy(ap) = &r.spec else {
            continue;
        };
        let policy = policy(cx, r, ap);
        let attached = targets(&r.namespace, &ap.target_ref, &ap.target_refs);
        let out = &mut cx.mesh.security.authorization;
        if attached.is_empty() {
            out.push(policy);
        } else {
            out.extend(attached.into_iter().map(|t| AuthzPolicy {
                target: Some(t),
                ..policy.clone()
            }));
        }
    }
}

/// The policy without its target. A CUSTOM policy without a provider (a validation error) keeps
/// an empty provider name, which names no extension provider, so the proxy cannot ask anyone;
/// that is Istio's handling of an unknown provider as well (matching requests are denied).
fn policy(cx: &mut Ctx<'_>, r: &Resource, ap: &AuthorizationPolicy) -> AuthzPolicy {
    let action = match ap.action {
        AuthorizationAction::Allow => AuthzAction::Allow,
        AuthorizationAction::Deny => AuthzAction::Deny,
        AuthorizationAction::Audit => AuthzAction::Audit,
        AuthorizationAction::Custom => AuthzAction::Custom {
            provider: ap
                .provider
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
        },
    };
    let rules = ap
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| self::rule(cx, r, &format!("spec.rules[{i}]"), rule))
        .collect();
    AuthzPolicy {
        origin: source_ref(r),
        namespace: r.namespace.clone(),
        selector: selector(&ap.selector),
        target: None,
        action,
        rules,
    }
}

/// One rule. A `from` entry without `source` (or a `to` entry without `operation`), which
/// validation rejects, matches every caller (operation), like an empty source.
fn rule(cx: &mut Ctx<'_>, r: &Resource, path: &str, rule: &Rule) -> AuthzRule {
    AuthzRule {
        from: rule
            .from
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.source.as_ref().map_or_else(AuthzSource::default, |s| {
                    source(cx, r, &format!("{path}.from[{i}].source"), s)
                })
            })
            .collect(),
        to: rule
            .to
            .iter()
            .map(|t| t.operation.as_ref().map(operation).unwrap_or_default())
            .collect(),
        when: rule
            .when
            .iter()
            .enumerate()
            .map(|(i, c)| condition(cx, r, &format!("{path}.when[{i}]"), c))
            .collect(),
    }
}

/// A source. `serviceAccounts` and `notServiceAccounts` join `principals`/`notPrincipals`: Istio
/// forbids `serviceAccounts` next to `principals`, so the union keeps the meaning. Trust domains
/// become principal patterns where that is exact (see [`trust_domain_principal`]); a negative list
/// always can join `notPrincipals` (none may match, so a union is an AND), a positive one only when
/// the source names no principal itself (the fields would be ANDed, the list is ORed). What cannot
/// be converted is reported as not enforced.
fn source(cx: &mut Ctx<'_>, r: &Resource, path: &str, s: &Source) -> AuthzSource {
    let td = &cx.opts.trust_domain;
    let sa = |v: &String| service_account_principal(td, &r.namespace, v);
    let mut principals: Vec<String> = s
        .principals
        .iter()
        .cloned()
        .chain(s.service_accounts.iter().map(sa))
        .collect();
    let mut not_principals: Vec<String> = s
        .not_principals
        .iter()
        .cloned()
        .chain(s.not_service_accounts.iter().map(sa))
        .collect();

    for (i, v) in s.not_trust_domains.iter().enumerate() {
        match trust_domain_principal(v) {
            Some(p) => not_principals.push(p),
            None => cx.report.at(
                r,
                &format!("{path}.notTrustDomains[{i}]"),
                Code::IgnoredSetting,
                format!("notTrustDomains suffix pattern {v:?} is not supported and is not enforced; list the trust domains exactly"),
            ),
        }
    }
    if !s.trust_domains.is_empty() {
        let converted: Option<Vec<String>> = s
            .trust_domains
            .iter()
            .map(|v| trust_domain_principal(v))
            .collect();
        match converted {
            Some(ps) if principals.is_empty() => principals = ps,
            Some(_) => cx.report.at(
                r,
                &format!("{path}.trustDomains"),
                Code::IgnoredSetting,
                "trustDomains next to principals or serviceAccounts is not supported and is not enforced; \
                 write the trust domain into the principals instead",
            ),
            None => cx.report.at(
                r,
                &format!("{path}.trustDomains"),
                Code::IgnoredSetting,
                "trustDomains with a suffix pattern (`*example.org`) is not supported and is not enforced; \
                 list the trust domains exactly or as prefixes",
            ),
        }
    }
    AuthzSource {
        principals,
        not_principals,
        request_principals: s.request_principals.clone(),
        not_request_principals: s.not_request_principals.clone(),
        namespaces: s.namespaces.clone(),
        not_namespaces: s.not_namespaces.clone(),
        ip_blocks: s.ip_blocks.clone(),
        not_ip_blocks: s.not_ip_blocks.clone(),
        remote_ip_blocks: s.remote_ip_blocks.clone(),
        not_remote_ip_blocks: s.not_remote_ip_blocks.clone(),
    }
}

/// An operation; ports are written as strings and the model wants numbers. Values that are not
/// ports were reported by validation and are left out.
fn operation(o: &Operation) -> AuthzOperation {
    let ports = |v: &[String]| {
        v.iter()
            .filter_map(|p| p.trim().parse::<u16>().ok())
            .collect()
    };
    AuthzOperation {
        hosts: o.hosts.clone(),
        not_hosts: o.not_hosts.clone(),
        ports: ports(&o.ports),
        not_ports: ports(&o.not_ports),
        methods: o.methods.clone(),
        not_methods: o.not_methods.clone(),
        paths: o.paths.clone(),
        not_paths: o.not_paths.clone(),
    }
}

/// A `when` condition. The model has no `source.serviceAccount` or `source.trustDomain`
/// attribute, so they become `source.principal` conditions with the equivalent patterns; a
/// trust-domain suffix pattern cannot, and the condition is then kept as written and reported.
fn condition(cx: &mut Ctx<'_>, r: &Resource, path: &str, c: &Condition) -> AuthzCondition {
    let as_written = || AuthzCondition {
        key: c.key.clone(),
        values: c.values.clone(),
        not_values: c.not_values.clone(),
    };
    let convert = |f: &dyn Fn(&String) -> Option<String>| -> Option<AuthzCondition> {
        Some(AuthzCondition {
            key: "source.principal".into(),
            values: c.values.iter().map(f).collect::<Option<_>>()?,
            not_values: c.not_values.iter().map(f).collect::<Option<_>>()?,
        })
    };
    match c.key.as_str() {
        "source.serviceAccount" => {
            let td = &cx.opts.trust_domain;
            convert(&|v| Some(service_account_principal(td, &r.namespace, v))).unwrap_or_else(as_written)
        }
        "source.trustDomain" => convert(&|v| trust_domain_principal(v)).unwrap_or_else(|| {
            cx.report.at(
                r,
                &format!("{path}.key"),
                Code::IgnoredSetting,
                "source.trustDomain conditions with a suffix pattern (`*example.org`) are not supported; \
                 the condition is kept but not enforced",
            );
            as_written()
        }),
        _ => as_written(),
    }
}

/// `sa` or `ns/sa` (namespace defaulting to the policy's) as the principal of that service
/// account in the mesh's trust domain, the form `principals` use.
fn service_account_principal(trust_domain: &str, policy_namespace: &str, value: &str) -> String {
    let (ns, sa) = value.split_once('/').unwrap_or((policy_namespace, value));
    format!("{trust_domain}/ns/{ns}/sa/{sa}")
}

/// A trust-domain pattern as a principal pattern with the same matches: principals are
/// `<td>/ns/..`, so exact `td` is the prefix `td/*`, prefix `td*` stays `td*` and presence `*` stays
/// `*`. A suffix pattern (`*td`) has no principal equivalent.
fn trust_domain_principal(pattern: &str) -> Option<String> {
    if pattern == "*" || (pattern.ends_with('*') && !pattern.starts_with('*')) {
        Some(pattern.to_owned())
    } else if pattern.contains('*') {
        None
    } else {
        Some(format!("{pattern}/*"))
    }
}

#[cfg(test)]
mod tests;
