//! `security.istio.io`: PeerAuthentication (mTLS mode), AuthorizationPolicy (who may call what)
//! and RequestAuthentication (JWT validation). The policy scope (selector, targetRef, targetRefs)
//! defined here is shared with Telemetry.

mod authorization_policy;
mod request_authentication;
#[cfg(test)]
mod tests;

pub use authorization_policy::*;
pub use request_authentication::*;

use crate::diag::{Code, Severity};
use crate::resources::common::WorkloadSelector;
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Istio PeerAuthentication spec: which mTLS mode workloads accept, per workload and per port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerAuthentication {
    /// No selector: the policy covers the namespace (the mesh, in the root namespace).
    pub selector: Option<WorkloadSelector>,
    pub mtls: Option<PeerAuthenticationMutualTls>,
    /// Workload port number to mode; needs a selector.
    pub port_level_mtls: BTreeMap<u32, PeerAuthenticationMutualTls>,
}

/// The mTLS setting of a PeerAuthentication (or of one of its ports).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerAuthenticationMutualTls {
    pub mode: MutualTlsMode,
}

/// UNSET inherits from the parent scope (port -> workload -> namespace -> mesh).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MutualTlsMode {
    #[default]
    Unset,
    Disable,
    Permissive,
    Strict,
}

impl Validate for PeerAuthentication {
    fn validate(&self, cx: &mut Cx) {
        validate_selector(cx, &self.selector);
        let has_labels = self
            .selector
            .as_ref()
            .is_some_and(|s| !s.match_labels.is_empty());
        if !self.port_level_mtls.is_empty() && !has_labels {
            cx.error_at(
                "portLevelMtls",
                "portLevelMtls requires a selector with matchLabels: mesh- and namespace-wide policies cannot set per-port modes",
            );
        }
        cx.field("portLevelMtls", |cx| {
            for port in self.port_level_mtls.keys() {
                if !(1..=65535).contains(port) {
                    cx.error_at(
                        &port.to_string(),
                        format!("port {port} must be in the range 1..65535"),
                    );
                }
            }
        });
    }
}

/// A reference to the resource a policy attaches to (a Service, ServiceEntry or Gateway API
/// Gateway/GatewayClass), used by waypoints and gateways instead of a workload selector.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyTargetReference {
    /// Empty (or `core`) for the core API group.
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
    /// Must be empty: cross-namespace references are not supported.
    pub namespace: Option<String>,
}

/// The (group, kind) pairs Istio accepts as policy targets.
const TARGET_KINDS: &[(&str, &str)] = &[
    ("", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
];

impl Validate for PolicyTargetReference {
    fn validate(&self, cx: &mut Cx) {
        cx.require("kind", !self.kind.is_empty());
        cx.require("name", !self.name.is_empty());
        if self.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
            cx.error_at(
                "namespace",
                "targetRef namespace must not be set: cross-namespace references are not supported",
            );
        }
        let group = match self.group.as_deref().unwrap_or_default() {
            "core" => "",
            g => g,
        };
        if !self.kind.is_empty() && !TARGET_KINDS.contains(&(group, self.kind.as_str())) {
            cx.error(format!(
                "targetRef must be a Service, networking.istio.io ServiceEntry, or gateway.networking.k8s.io Gateway or GatewayClass; got group {group:?} kind {:?}",
                self.kind
            ));
        }
    }
}

/// Istio's `validateWorkloadSelector` for `selector` (the `matchLabels` form).
pub(crate) fn validate_selector(cx: &mut Cx, selector: &Option<WorkloadSelector>) {
    let Some(sel) = selector else { return };
    cx.field("selector", |cx| {
        cx.field("matchLabels", |cx| {
            for (k, v) in &sel.match_labels {
                if k.is_empty() {
                    cx.error(format!("label keys must not be empty (value {v:?})"));
                } else if k.contains('*') || v.contains('*') {
                    cx.error_at(k, format!("wildcards are not supported in selectors: {k}={v}"));
                }
            }
        });
        if sel.match_labels.is_empty() {
            cx.report(
                Severity::Warning,
                Code::SchemaValidation,
                "selector without matchLabels: the policy applies to every workload in the namespace",
            );
        }
    });
}

/// `selector`, `targetRef` and `targetRefs` are alternative ways to scope a policy.
pub(crate) fn validate_scope(
    cx: &mut Cx,
    selector: &Option<WorkloadSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
) {
    cx.one_of(
        &["selector", "targetRef", "targetRefs"],
        &[
            selector.is_some(),
            target_ref.is_some(),
            !target_refs.is_empty(),
        ],
        false,
    );
    validate_selector(cx, selector);
    cx.opt("targetRef", target_ref);
    cx.list("targetRefs", target_refs);
}

/// Report an error at `field[i]` of the current path.
fn error_at_index(cx: &mut Cx, field: &str, i: usize, message: String) {
    cx.field(field, |cx| cx.index(i, |cx| cx.error(message)));
}

/// Entries of a string list that must not be empty strings.
fn check_no_empty(cx: &mut Cx, field: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() {
            error_at_index(
                cx,
                field,
                i,
                format!("empty value not allowed in `{field}`"),
            );
        }
    }
}
