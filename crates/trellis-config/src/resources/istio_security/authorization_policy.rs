//! Istio `AuthorizationPolicy`: allow, deny, audit or delegate (CUSTOM) requests by source
//! identity, operation and conditions, with the checks Istio's webhook applies.

mod checks;
#[cfg(test)]
mod tests;

use super::{PolicyTargetReference, check_no_empty, validate_scope};
use crate::diag::{Code, Severity};
use crate::resources::common::WorkloadSelector;
use crate::validate::{Cx, Validate};
use checks::{
    check_condition, check_ips, check_path_templates, check_ports, check_service_accounts,
    check_trust_domains,
};
use serde::Deserialize;

/// Istio AuthorizationPolicy spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthorizationPolicy {
    pub selector: Option<WorkloadSelector>,
    pub target_ref: Option<PolicyTargetReference>,
    pub target_refs: Vec<PolicyTargetReference>,
    /// A request matching any rule triggers the action. No rules: ALLOW denies everything.
    pub rules: Vec<Rule>,
    pub action: AuthorizationAction,
    /// The external authorizer for CUSTOM.
    pub provider: Option<ExtensionProvider>,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizationAction {
    #[default]
    Allow,
    Deny,
    /// Only marks the request for audit logging; never allows or denies.
    Audit,
    /// Asks the named extension provider (ext_authz).
    Custom,
}

/// An extension provider declared in mesh config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExtensionProvider {
    pub name: String,
}

/// One rule: all of `from`, `to` and `when` must match (each list matches if any entry does).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    pub from: Vec<RuleFrom>,
    pub to: Vec<RuleTo>,
    pub when: Vec<Condition>,
}

/// A `from` entry (upstream `Rule.From`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleFrom {
    pub source: Option<Source>,
}

/// A `to` entry (upstream `Rule.To`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleTo {
    pub operation: Option<Operation>,
}

/// Who sends the request. Fields are ANDed; values within a field are ORed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Source {
    /// Peer identities, `<trust-domain>/ns/<namespace>/sa/<service-account>`, `*` wildcards.
    pub principals: Vec<String>,
    pub not_principals: Vec<String>,
    /// JWT `<iss>/<sub>`.
    pub request_principals: Vec<String>,
    pub not_request_principals: Vec<String>,
    pub namespaces: Vec<String>,
    pub not_namespaces: Vec<String>,
    /// `<service-account>` or `<namespace>/<service-account>`.
    pub service_accounts: Vec<String>,
    pub not_service_accounts: Vec<String>,
    pub ip_blocks: Vec<String>,
    pub not_ip_blocks: Vec<String>,
    pub remote_ip_blocks: Vec<String>,
    pub not_remote_ip_blocks: Vec<String>,
    pub trust_domains: Vec<String>,
    pub not_trust_domains: Vec<String>,
}

/// What the request does. Fields are ANDed; values within a field are ORed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operation {
    pub hosts: Vec<String>,
    pub not_hosts: Vec<String>,
    pub ports: Vec<String>,
    pub not_ports: Vec<String>,
    pub methods: Vec<String>,
    pub not_methods: Vec<String>,
    pub paths: Vec<String>,
    pub not_paths: Vec<String>,
}

/// An extra condition on a request attribute (`request.headers[x-token]`, `source.ip`, ...).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    pub key: String,
    pub values: Vec<String>,
    pub not_values: Vec<String>,
}

impl Validate for AuthorizationPolicy {
    fn validate(&self, cx: &mut Cx) {
        validate_scope(cx, &self.selector, &self.target_ref, &self.target_refs);
        let custom = self.action == AuthorizationAction::Custom;
        match (&self.provider, custom) {
            (None, true) if !self.rules.is_empty() => cx.error(
                "action CUSTOM needs `provider.name` (an extension provider from mesh config)",
            ),
            (Some(p), true) if p.name.is_empty() => cx.require("provider.name", false),
            (Some(_), false) => {
                cx.error_at("provider", "`provider` is only allowed with action CUSTOM")
            }
            _ => {}
        }
        if self.rules.is_empty()
            && matches!(
                self.action,
                AuthorizationAction::Custom | AuthorizationAction::Deny
            )
        {
            let action = if custom { "CUSTOM" } else { "DENY" };
            cx.error(format!(
                "action {action} without `rules` never triggers; add an empty rule `rules: [{{}}]` to apply it to every request"
            ));
        }
        cx.field("rules", |cx| {
            for (i, rule) in self.rules.iter().enumerate() {
                cx.index(i, |cx| {
                    rule.validate(cx);
                    if custom {
                        rule.check_custom(cx);
                    }
                    if self.action == AuthorizationAction::Deny && rule.denies_all_tcp() {
                        cx.report(
                            Severity::Warning,
                            Code::SchemaValidation,
                            "this DENY rule uses only HTTP attributes, so it denies all TCP traffic in scope; \
                             add `to.operation.ports` to limit it",
                        );
                    }
                });
            }
        });
    }
}

impl Rule {
    /// Istio's warning: HTTP-only attributes cannot be evaluated on TCP, so a DENY matches.
    fn denies_all_tcp(&self) -> bool {
        let sources: Vec<&Source> = self.from.iter().filter_map(|f| f.source.as_ref()).collect();
        let ops: Vec<&Operation> = self
            .to
            .iter()
            .filter_map(|t| t.operation.as_ref())
            .collect();
        let tcp_from = sources.iter().any(|s| s.has_tcp_attributes());
        let tcp_to = ops
            .iter()
            .any(|o| !o.ports.is_empty() || !o.not_ports.is_empty());
        (!sources.is_empty() && ops.is_empty() && !tcp_from) || (!ops.is_empty() && !tcp_to)
    }

    /// CUSTOM policies are evaluated before peer and request authentication results exist.
    fn check_custom(&self, cx: &mut Cx) {
        cx.field("from", |cx| {
            for (i, src) in self.from.iter().enumerate() {
                let Some(src) = &src.source else { continue };
                for (field, set) in src.identity_fields() {
                    if set {
                        let msg = format!("`{field}` is not supported with action CUSTOM");
                        cx.index(i, |cx| cx.error_at(&format!("source.{field}"), msg));
                    }
                }
            }
        });
        cx.field("when", |cx| {
            for (i, c) in self.when.iter().enumerate() {
                let k = c.key.as_str();
                let identity = matches!(
                    k,
                    "source.namespace"
                        | "source.serviceAccount"
                        | "source.trustDomain"
                        | "source.principal"
                ) || k.starts_with("request.auth.");
                if identity {
                    cx.index(i, |cx| {
                        cx.error_at(
                            "key",
                            format!("condition key {k:?} is not supported with action CUSTOM"),
                        )
                    });
                }
            }
        });
    }
}

impl Validate for Rule {
    fn validate(&self, cx: &mut Cx) {
        cx.field("from", |cx| {
            for (i, f) in self.from.iter().enumerate() {
                cx.index(i, |cx| match &f.source {
                    None => cx.require("source", false),
                    Some(s) => cx.field("source", |cx| s.validate(cx)),
                });
            }
        });
        cx.field("to", |cx| {
            for (i, t) in self.to.iter().enumerate() {
                cx.index(i, |cx| match &t.operation {
                    None => cx.require("operation", false),
                    Some(o) => cx.field("operation", |cx| o.validate(cx)),
                });
            }
        });
        cx.list("when", &self.when);
    }
}

impl Source {
    fn identity_fields(&self) -> [(&'static str, bool); 10] {
        [
            ("principals", !self.principals.is_empty()),
            ("notPrincipals", !self.not_principals.is_empty()),
            ("requestPrincipals", !self.request_principals.is_empty()),
            (
                "notRequestPrincipals",
                !self.not_request_principals.is_empty(),
            ),
            ("namespaces", !self.namespaces.is_empty()),
            ("notNamespaces", !self.not_namespaces.is_empty()),
            ("serviceAccounts", !self.service_accounts.is_empty()),
            ("notServiceAccounts", !self.not_service_accounts.is_empty()),
            ("trustDomains", !self.trust_domains.is_empty()),
            ("notTrustDomains", !self.not_trust_domains.is_empty()),
        ]
    }

    fn has_tcp_attributes(&self) -> bool {
        [
            &self.principals,
            &self.not_principals,
            &self.ip_blocks,
            &self.not_ip_blocks,
            &self.namespaces,
            &self.not_namespaces,
            &self.remote_ip_blocks,
            &self.not_remote_ip_blocks,
            &self.service_accounts,
            &self.not_service_accounts,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }
}

impl Validate for Source {
    fn validate(&self, cx: &mut Cx) {
        let accounts = !self.service_accounts.is_empty() || !self.not_service_accounts.is_empty();
        let others = !self.principals.is_empty()
            || !self.not_principals.is_empty()
            || !self.namespaces.is_empty()
            || !self.not_namespaces.is_empty();
        if accounts && others {
            cx.error("serviceAccounts cannot be combined with principals or namespaces (they overlap); use one or the other");
        }
        let empty = !self.identity_fields().iter().any(|(_, set)| *set)
            && self.ip_blocks.is_empty()
            && self.not_ip_blocks.is_empty()
            && self.remote_ip_blocks.is_empty()
            && self.not_remote_ip_blocks.is_empty();
        if empty {
            cx.error(
                "`source` must set at least one field (e.g. principals, namespaces, ipBlocks)",
            );
        }
        for (field, v) in [
            ("ipBlocks", &self.ip_blocks),
            ("notIpBlocks", &self.not_ip_blocks),
            ("remoteIpBlocks", &self.remote_ip_blocks),
            ("notRemoteIpBlocks", &self.not_remote_ip_blocks),
        ] {
            check_ips(cx, field, v);
        }
        for (field, v) in [
            ("principals", &self.principals),
            ("notPrincipals", &self.not_principals),
            ("requestPrincipals", &self.request_principals),
            ("notRequestPrincipals", &self.not_request_principals),
            ("namespaces", &self.namespaces),
            ("notNamespaces", &self.not_namespaces),
        ] {
            check_no_empty(cx, field, v);
        }
        check_service_accounts(cx, "serviceAccounts", &self.service_accounts);
        check_service_accounts(cx, "notServiceAccounts", &self.not_service_accounts);
        check_trust_domains(cx, "trustDomains", &self.trust_domains);
        check_trust_domains(cx, "notTrustDomains", &self.not_trust_domains);
    }
}

impl Validate for Operation {
    fn validate(&self, cx: &mut Cx) {
        let all = [
            ("hosts", &self.hosts),
            ("notHosts", &self.not_hosts),
            ("ports", &self.ports),
            ("notPorts", &self.not_ports),
            ("methods", &self.methods),
            ("notMethods", &self.not_methods),
            ("paths", &self.paths),
            ("notPaths", &self.not_paths),
        ];
        if all.iter().all(|(_, v)| v.is_empty()) {
            cx.error("`operation` must set at least one field (e.g. paths, methods, ports)");
        }
        for (field, v) in all {
            check_no_empty(cx, field, v);
        }
        check_ports(cx, "ports", &self.ports);
        check_ports(cx, "notPorts", &self.not_ports);
        check_path_templates(cx, "paths", &self.paths);
        check_path_templates(cx, "notPaths", &self.not_paths);
    }
}

impl Validate for Condition {
    fn validate(&self, cx: &mut Cx) {
        if self.key.is_empty() {
            cx.require("key", false);
            return;
        }
        if self.values.is_empty() && self.not_values.is_empty() {
            cx.error(format!(
                "condition on {:?} needs `values` or `notValues`",
                self.key
            ));
        }
        check_condition(cx, self);
    }
}
