//! Authorization: which callers may do what to a workload.
//!
//! Istio `AuthorizationPolicy` maps onto this directly. Linkerd's `Server`,
//! `ServerAuthorization`, `AuthorizationPolicy`, `MeshTLSAuthentication` and
//! `NetworkAuthentication` compile into it too: a `Server` makes its port default-deny,
//! so the compiler emits an `Allow` policy selecting the Server's pods whose rules name
//! that port in `to.ports` and the authorized identities in `from.principals` (or CIDRs
//! in `from.ip_blocks`), plus a rule with `not_ports` listing the Server ports so that
//! the workload's other ports keep their default. Linkerd identities are converted to
//! SPIFFE principals on the way.
//!
//! Semantics follow Istio: the proxy evaluates `Custom` policies, then `Deny`, then
//! `Allow`: a request matching any `Deny` rule is refused (403, flag `RBAC`); if any
//! `Allow` policy applies to the workload, the request must match one of its rules.
//! Within a rule, `from`, `to` and `when` must all match; each list matches if any entry
//! does, and each entry if all its set fields do. A value list matches if any value
//! does; a `not_` list matches if no value does.

use crate::labels::Labels;
use crate::origin::SourceRef;

/// An authorization policy.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuthzPolicy {
    /// The resource it was compiled from.
    pub origin: SourceRef,
    /// Namespace of the policy; in the root namespace it applies mesh-wide.
    pub namespace: String,
    /// Workloads it applies to; `None` or empty means every workload in scope.
    pub selector: Option<Labels>,
    /// Attachment to a gateway or waypoint (Istio/Gateway API `targetRef`); when set,
    /// `selector` is ignored and the policy applies only to that target's proxies.
    pub target: Option<SourceRef>,
    /// What a match does.
    pub action: AuthzAction,
    /// Rules; for `Allow`, no rules matches no request (deny all), while one empty rule
    /// matches every request (allow all).
    pub rules: Vec<AuthzRule>,
}

/// What happens when a request matches a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthzAction {
    /// Matching requests are allowed; once any Allow policy applies, others are denied.
    #[default]
    Allow,
    /// Matching requests are denied.
    Deny,
    /// Matching requests are flagged for audit logging; does not affect the decision.
    Audit,
    /// The decision is delegated to an external authorizer.
    Custom {
        /// Extension provider name from mesh config.
        provider: String,
    },
}

/// One rule: who (`from`), what (`to`) and under which conditions (`when`). Empty lists
/// match everything.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuthzRule {
    /// Callers, any of which matches.
    pub from: Vec<AuthzSource>,
    /// Operations, any of which matches.
    pub to: Vec<AuthzOperation>,
    /// Extra conditions, all of which must hold.
    pub when: Vec<AuthzCondition>,
}

/// Caller attributes. Principals are SPIFFE IDs without the scheme
/// (`cluster.local/ns/default/sa/frontend`), prefix/suffix `*` allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuthzSource {
    /// Peer identities from mTLS.
    pub principals: Vec<String>,
    /// Peer identities that must not match.
    pub not_principals: Vec<String>,
    /// JWT `iss/sub` of the request principal.
    pub request_principals: Vec<String>,
    /// Request principals that must not match.
    pub not_request_principals: Vec<String>,
    /// Namespaces of the peer identity.
    pub namespaces: Vec<String>,
    /// Peer namespaces that must not match.
    pub not_namespaces: Vec<String>,
    /// Peer IPs or CIDRs of the direct connection.
    pub ip_blocks: Vec<String>,
    /// Connection peer IPs/CIDRs that must not match.
    pub not_ip_blocks: Vec<String>,
    /// Original client IPs/CIDRs (from `X-Forwarded-For` per trusted hops).
    pub remote_ip_blocks: Vec<String>,
    /// Original client IPs/CIDRs that must not match.
    pub not_remote_ip_blocks: Vec<String>,
}

/// Request attributes. Hosts and paths allow prefix/suffix `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuthzOperation {
    /// `Host`/`:authority` values.
    pub hosts: Vec<String>,
    /// Hosts that must not match.
    pub not_hosts: Vec<String>,
    /// Destination ports of the workload (Linkerd Server ports land here).
    pub ports: Vec<u16>,
    /// Ports that must not match.
    pub not_ports: Vec<u16>,
    /// HTTP methods (or gRPC methods for gRPC).
    pub methods: Vec<String>,
    /// Methods that must not match.
    pub not_methods: Vec<String>,
    /// Request paths without the query string.
    pub paths: Vec<String>,
    /// Paths that must not match.
    pub not_paths: Vec<String>,
}

impl AuthzOperation {
    /// Whether the operation needs HTTP attributes, so a rule with it cannot match plain
    /// TCP traffic (Istio: such ALLOW rules match nothing for TCP, DENY rules match all).
    pub fn needs_http(&self) -> bool {
        !(self.hosts.is_empty()
            && self.not_hosts.is_empty()
            && self.methods.is_empty()
            && self.not_methods.is_empty()
            && self.paths.is_empty()
            && self.not_paths.is_empty())
    }
}

/// A condition on a request attribute (Istio `when`), e.g. key `request.auth.claims[iss]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuthzCondition {
    /// Attribute name: `request.headers[x]`, `source.ip`, `remote.ip`,
    /// `source.namespace`, `source.principal`, `request.auth.principal`,
    /// `request.auth.audiences`, `request.auth.presenter`, `request.auth.claims[c]`,
    /// `destination.ip`, `destination.port`, `connection.sni`, `experimental.*`.
    pub key: String,
    /// Acceptable values; any may match.
    pub values: Vec<String>,
    /// Values that must not match.
    pub not_values: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_operations() {
        assert!(
            !AuthzOperation {
                ports: vec![8080],
                ..AuthzOperation::default()
            }
            .needs_http()
        );
        assert!(
            AuthzOperation {
                methods: vec!["GET".into()],
                ..AuthzOperation::default()
            }
            .needs_http()
        );
    }

    #[test]
    fn custom_action_serde() -> Result<(), serde_json::Error> {
        let a = AuthzAction::Custom {
            provider: "opa".into(),
        };
        let json = serde_json::to_string(&a)?;
        assert_eq!(json, r#"{"custom":{"provider":"opa"}}"#);
        assert_eq!(serde_json::from_str::<AuthzAction>(&json)?, a);
        assert_eq!(serde_json::to_string(&AuthzAction::Deny)?, r#""deny""#);
        Ok(())
    }
}
