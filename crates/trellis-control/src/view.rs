//! A proxy's view: only what that workload needs from the mesh.
//!
//! - services: those its namespace may see (Istio `exportTo`) and, when a `Sidecar` applies
//!   to the workload, only its egress hosts, with their endpoints;
//! - gateways: for a gateway proxy, the gateways whose selector matches its labels;
//! - settings: the trust and DNS domains, the namespaces, and only the security and telemetry
//!   policies that can apply to this workload (its namespace's and the root namespace's).

use std::sync::Arc;

use trellis_model::{Labels, Mesh, SecurityPolicies, Service, Workload, WorkloadKind};
use trellis_xds::node::{ProxyIdentity, ProxyKind};
use trellis_xds::resources::{Encoded, Settings, TYPE_URLS, encode_settings};

use crate::snapshot::Snapshot;

/// The resources of one proxy's view, per type, in [`TYPE_URLS`] order.
#[derive(Debug, Default)]
pub struct View {
    per_type: [Vec<Arc<Encoded>>; TYPE_URLS.len()],
}

impl View {
    /// Cuts `proxy`'s view out of `snap`.
    pub fn compute(snap: &Snapshot, proxy: &ProxyIdentity) -> View {
        let mesh = &snap.mesh;
        let settings = Arc::new(encode_settings(&settings_for(mesh, proxy)));
        let mut endpoints = Vec::new();
        let mut services = Vec::new();
        for s in visible_services(mesh, &proxy.namespace, &proxy.labels) {
            if let Some(e) = snap.cache.endpoints.get(&s.host) {
                endpoints.push(Arc::clone(e));
            }
            if let Some(e) = snap.cache.services.get(&s.host) {
                services.push(Arc::clone(e));
            }
        }
        let gateways = match proxy.kind {
            ProxyKind::Sidecar => Vec::new(),
            ProxyKind::Gateway => mesh
                .gateways
                .iter()
                .filter(|g| g.selects(&proxy.labels))
                .filter_map(|g| {
                    snap.cache
                        .gateways
                        .get(&format!("{}/{}", g.namespace, g.name))
                        .cloned()
                })
                .collect(),
        };
        View {
            per_type: [vec![settings], endpoints, services, gateways],
        }
    }

    /// The resources of `type_url` (empty for unknown types).
    pub fn resources(&self, type_url: &str) -> &[Arc<Encoded>] {
        TYPE_URLS
            .iter()
            .position(|t| *t == type_url)
            .and_then(|i| self.per_type.get(i))
            .map_or(&[], Vec::as_slice)
    }
}

/// The services a workload in `namespace` with `labels` may call: Istio's `exportTo` and
/// the `Sidecar` in effect (see [`Mesh::visible_to`]).
pub fn visible_services<'m>(
    mesh: &'m Mesh,
    namespace: &str,
    labels: &Labels,
) -> impl Iterator<Item = &'m Service> + use<'m> {
    mesh.visible_to(namespace, labels)
}

/// Settings with only the policies that can apply to `proxy`.
fn settings_for(mesh: &Mesh, proxy: &ProxyIdentity) -> Settings {
    let scoped = |ns: &str| ns == proxy.namespace || ns == mesh.root_namespace;
    let selects = |sel: &Option<Labels>| {
        sel.as_ref()
            .is_none_or(|s| trellis_model::selector_matches(s, &proxy.labels))
    };
    let sec = &mesh.security;
    let security = SecurityPolicies {
        peer_authentication: sec
            .peer_authentication
            .iter()
            .filter(|p| scoped(&p.namespace) && selects(&p.selector))
            .cloned()
            .collect(),
        authorization: sec
            .authorization
            .iter()
            .filter(|p| scoped(&p.namespace) && (p.target.is_some() || selects(&p.selector)))
            .cloned()
            .collect(),
        request_authentication: sec
            .request_authentication
            .iter()
            .filter(|p| scoped(&p.namespace) && selects(&p.selector))
            .cloned()
            .collect(),
    };
    let workload = mesh
        .workload(&proxy.namespace, &proxy.workload)
        .cloned()
        .unwrap_or_else(|| Workload {
            name: proxy.workload.clone(),
            namespace: proxy.namespace.clone(),
            kind: WorkloadKind::Local,
            service_account: Some(proxy.service_account.clone()),
            labels: proxy.labels.clone(),
            addresses: proxy.addresses.clone(),
            ..Workload::default()
        });
    Settings {
        trust_domain: mesh.trust_domain.clone(),
        domain: mesh.domain.clone(),
        root_namespace: mesh.root_namespace.clone(),
        namespaces: mesh.namespaces.iter().cloned().collect(),
        security,
        telemetry: mesh
            .telemetry
            .iter()
            .filter(|t| scoped(&t.namespace) && selects(&t.selector))
            .cloned()
            .collect(),
        workload: Some(workload),
    }
}
