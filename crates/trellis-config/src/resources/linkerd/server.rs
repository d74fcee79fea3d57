//! Linkerd `Server` (a port on a set of workloads, with its protocol and default access policy)
//! and the older `ServerAuthorization` (which clients may talk to which servers).

use super::authz::check_identity;
use super::network::Network;
use crate::resources::common::{IntOrString, LabelSelector};
use crate::resources::core::check_port_ref;
use crate::resources::names::is_dns1123_label;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Server spec (policy.linkerd.io v1alpha1 to v1beta3).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Server {
    /// Pods in the server's namespace.
    pub pod_selector: Option<LabelSelector>,
    /// ExternalWorkloads in the server's namespace (v1beta2 and later), instead of pods.
    pub external_workload_selector: Option<LabelSelector>,
    /// A container port number or name.
    pub port: Option<IntOrString>,
    pub proxy_protocol: Option<ProxyProtocol>,
    /// v1beta3: what happens to traffic no authorization matches.
    pub access_policy: Option<AccessPolicy>,
}

/// How the proxy treats inbound connections on the port; `unknown` means detect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum ProxyProtocol {
    #[default]
    #[serde(rename = "unknown")]
    Unknown,
    #[serde(rename = "HTTP/1")]
    Http1,
    #[serde(rename = "HTTP/2")]
    Http2,
    #[serde(rename = "gRPC")]
    Grpc,
    #[serde(rename = "opaque")]
    Opaque,
    #[serde(rename = "TLS")]
    Tls,
}

/// Default policy for traffic that no authorization matches (Linkerd's `DefaultPolicy` names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum AccessPolicy {
    #[default]
    #[serde(rename = "deny")]
    Deny,
    #[serde(rename = "all-authenticated")]
    AllAuthenticated,
    #[serde(rename = "all-unauthenticated")]
    AllUnauthenticated,
    #[serde(rename = "cluster-authenticated")]
    ClusterAuthenticated,
    #[serde(rename = "cluster-unauthenticated")]
    ClusterUnauthenticated,
    /// Allow everything but record what `deny` would have refused.
    #[serde(rename = "audit")]
    Audit,
}

/// ServerAuthorization spec: authorizes `client`s to reach the servers chosen by `server`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerAuthorization {
    pub server: ServerRef,
    pub client: Client,
}

/// Servers in the same namespace, by name or by label.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerRef {
    pub name: Option<String>,
    pub selector: Option<LabelSelector>,
}

/// Which clients are authorized: by network, and either any client or meshed (mTLS) ones.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Client {
    /// Narrows the source addresses; unset means the server's default networks.
    pub networks: Vec<Network>,
    pub unauthenticated: Option<bool>,
    #[serde(rename = "meshTLS")]
    pub mesh_tls: Option<MeshTls>,
}

/// Meshed clients: any TLS client, or the listed identities and service accounts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshTls {
    /// No client identity required (the identity controller needs this for new proxies).
    #[serde(rename = "unauthenticatedTLS")]
    pub unauthenticated_tls: Option<bool>,
    /// Proxy identity names, e.g. `web.default.serviceaccount.identity.linkerd.cluster.local`;
    /// `*` and `*.domain` are wildcards.
    pub identities: Vec<String>,
    pub service_accounts: Vec<ServiceAccountRef>,
}

/// A service account; the namespace defaults to the authorization's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceAccountRef {
    pub name: String,
    pub namespace: Option<String>,
}

impl Validate for Server {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["podSelector", "externalWorkloadSelector"],
            &[
                self.pod_selector.is_some(),
                self.external_workload_selector.is_some(),
            ],
            true,
        );
        cx.opt("podSelector", &self.pod_selector);
        cx.opt("externalWorkloadSelector", &self.external_workload_selector);
        cx.require("port", self.port.is_some());
        if let Some(port) = &self.port {
            check_port_ref(cx, "port", port);
        }
    }
}

impl Validate for ServerAuthorization {
    fn validate(&self, cx: &mut Cx) {
        cx.field("server", |cx| self.server.validate(cx));
        cx.field("client", |cx| self.client.validate(cx));
    }
}

impl Validate for ServerRef {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["name", "selector"],
            &[self.name.is_some(), self.selector.is_some()],
            true,
        );
        if let Some(name) = &self.name
            && !is_dns1123_label(name)
        {
            cx.error_at(
                "name",
                format!("{name:?} is not a valid Server name (lowercase letters, digits and '-')"),
            );
        }
        cx.opt("selector", &self.selector);
    }
}

impl Validate for Client {
    fn validate(&self, cx: &mut Cx) {
        let unauthenticated = self.unauthenticated == Some(true);
        match (&self.mesh_tls, unauthenticated) {
            (Some(_), true) => cx.error_at(
                "unauthenticated",
                "`unauthenticated` must be false when `meshTLS` is set; choose one way to authorize clients",
            ),
            (None, false) => {
                let why = if self.networks.is_empty() { "" } else { "; `networks` alone only narrows source addresses" };
                cx.error(format!("client must set `meshTLS` or `unauthenticated: true`{why}"));
            }
            _ => {}
        }
        cx.list("networks", &self.networks);
        cx.opt("meshTLS", &self.mesh_tls);
    }
}

impl Validate for MeshTls {
    fn validate(&self, cx: &mut Cx) {
        let named = !self.identities.is_empty() || !self.service_accounts.is_empty();
        if self.unauthenticated_tls == Some(true) {
            if named {
                cx.error_at(
                    "unauthenticatedTLS",
                    "`unauthenticatedTLS` must be false when `identities` or `serviceAccounts` are set",
                );
            }
        } else if !named {
            cx.error("meshTLS authorizes no clients; set `identities`, `serviceAccounts` or `unauthenticatedTLS: true`");
        }
        cx.field("identities", |cx| {
            for (i, id) in self.identities.iter().enumerate() {
                cx.index(i, |cx| check_identity(cx, id));
            }
        });
        cx.list("serviceAccounts", &self.service_accounts);
    }
}

impl Validate for ServiceAccountRef {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        for (field, v) in [
            ("name", Some(&self.name)),
            ("namespace", self.namespace.as_ref()),
        ] {
            if let Some(v) = v
                && !v.is_empty()
                && !is_dns1123_label(v)
            {
                cx.error_at(
                    field,
                    format!("{v:?} is not a valid {field} (lowercase letters, digits and '-')"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    fn load(kind: &str, version: &str, spec: &str) -> (Option<Spec>, Vec<Diagnostic>) {
        let text = format!(
            "apiVersion: policy.linkerd.io/{version}\nkind: {kind}\nmetadata:\n  name: x\n  namespace: emojivoto\nspec:\n{spec}"
        );
        let loaded = load_str("test.yaml", &text, &LoadOptions::default());
        (
            loaded.resources.into_iter().next().map(|r| r.spec),
            loaded.diagnostics,
        )
    }

    fn server(spec: &str) -> (Option<Server>, Vec<Diagnostic>) {
        let (s, d) = load("Server", "v1beta3", spec);
        let s = match s {
            Some(Spec::LinkerdServer(s)) => Some(*s),
            _ => None,
        };
        (s, d)
    }

    fn saz(spec: &str) -> (Option<ServerAuthorization>, Vec<Diagnostic>) {
        let (s, d) = load("ServerAuthorization", "v1beta1", spec);
        let s = match s {
            Some(Spec::ServerAuthorization(s)) => Some(*s),
            _ => None,
        };
        (s, d)
    }

    fn has(diags: &[Diagnostic], line: u32, text: &str) -> bool {
        diags
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    }

    #[test]
    fn server_parses() {
        let (s, diags) = server(
            "  podSelector:\n    matchLabels:\n      app: web\n  port: http\n  proxyProtocol: HTTP/2\n  accessPolicy: cluster-authenticated\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let s = s.expect("loaded");
        assert_eq!(s.pod_selector.map(|p| p.match_labels.len()), Some(1));
        assert_eq!(s.port, Some(IntOrString::String("http".into())));
        assert_eq!(s.proxy_protocol, Some(ProxyProtocol::Http2));
        assert_eq!(s.access_policy, Some(AccessPolicy::ClusterAuthenticated));
        for (text, want) in [
            ("unknown", ProxyProtocol::Unknown),
            ("gRPC", ProxyProtocol::Grpc),
            ("opaque", ProxyProtocol::Opaque),
            ("TLS", ProxyProtocol::Tls),
            ("HTTP/1", ProxyProtocol::Http1),
        ] {
            let (s, diags) = server(&format!(
                "  podSelector: {{}}\n  port: 8080\n  proxyProtocol: {text}\n"
            ));
            assert!(diags.is_empty(), "{diags:?}");
            assert_eq!(s.and_then(|s| s.proxy_protocol), Some(want));
        }
    }

    #[test]
    fn server_enum_spellings_are_exact() {
        let (_, diags) = server("  podSelector: {}\n  port: 8080\n  proxyProtocol: http/2\n");
        assert!(has(&diags, 9, "unknown variant"), "{diags:?}");
        let (_, diags) = server("  podSelector: {}\n  port: 8080\n  accessPolicy: allow\n");
        assert!(has(&diags, 9, "unknown variant"), "{diags:?}");
    }

    #[test]
    fn server_rules() {
        let (_, diags) = server("  proxyProtocol: opaque\n");
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("one of podSelector, externalWorkloadSelector is required")),
            "{diags:?}"
        );
        assert!(
            diags.iter().any(|d| d.message.contains("`spec.port`")),
            "{diags:?}"
        );
        let (_, diags) = server("  podSelector: {}\n  externalWorkloadSelector: {}\n  port: 0\n");
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("only one of podSelector, externalWorkloadSelector")),
            "{diags:?}"
        );
        assert!(has(&diags, 9, "out of range"), "{diags:?}");
        let (_, diags) =
            server("  externalWorkloadSelector:\n    matchLabels: {app: vm}\n  port: Not_A_Name\n");
        assert!(has(&diags, 9, "port name"), "{diags:?}");
    }

    #[test]
    fn server_authorization_parses() {
        let (s, diags) = saz(
            "  server:\n    selector:\n      matchLabels: {app: web}\n  client:\n    networks:\n    - cidr: 10.0.0.0/8\n      except: [10.0.0.1]\n    meshTLS:\n      identities: ['*.emojivoto.serviceaccount.identity.linkerd.cluster.local']\n      serviceAccounts:\n      - name: web\n      - name: vote-bot\n        namespace: bots\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let s = s.expect("loaded");
        let mtls = s.client.mesh_tls.expect("meshTLS");
        assert_eq!(mtls.identities.len(), 1);
        assert_eq!(mtls.service_accounts[1].namespace.as_deref(), Some("bots"));
        assert_eq!(s.client.networks[0].except, vec!["10.0.0.1"]);
        let (s, diags) =
            saz("  server:\n    name: web-http\n  client:\n    unauthenticated: true\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(s.and_then(|s| s.client.unauthenticated), Some(true));
        let (_, diags) = saz(
            "  server:\n    name: web\n  client:\n    meshTLS:\n      unauthenticatedTLS: true\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn server_authorization_rules() {
        let (_, diags) = saz("  server: {}\n  client:\n    networks:\n    - cidr: 10.0.0.0/8\n");
        assert!(
            has(&diags, 7, "one of name, selector is required"),
            "{diags:?}"
        );
        assert!(has(&diags, 9, "`networks` alone"), "{diags:?}");
        let (_, diags) = saz(
            "  server:\n    name: web\n    selector: {}\n  client:\n    unauthenticated: true\n    meshTLS:\n      identities: ['*']\n",
        );
        assert!(has(&diags, 8, "only one of name, selector"), "{diags:?}");
        assert!(
            has(&diags, 11, "`unauthenticated` must be false"),
            "{diags:?}"
        );
        let (_, diags) = saz(
            "  server:\n    name: web\n  client:\n    meshTLS:\n      unauthenticatedTLS: true\n      serviceAccounts: [{name: web}]\n",
        );
        assert!(
            has(&diags, 11, "`unauthenticatedTLS` must be false"),
            "{diags:?}"
        );
        let (_, diags) = saz("  server:\n    name: Web\n  client:\n    meshTLS: {}\n");
        assert!(has(&diags, 8, "not a valid Server name"), "{diags:?}");
        assert!(has(&diags, 10, "authorizes no clients"), "{diags:?}");
        let (_, diags) = saz(
            "  server:\n    name: web\n  client:\n    meshTLS:\n      identities: ['web.*.cluster.local']\n      serviceAccounts: [{namespace: x}]\n",
        );
        assert!(has(&diags, 11, "not a valid identity"), "{diags:?}");
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("`spec.client.meshTLS.serviceAccounts[0].name`")),
            "{diags:?}"
        );
    }
}
