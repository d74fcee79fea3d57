//! Per-proxy visibility: which services a workload's proxy is configured for.
//!
//! Istio narrows a proxy's configuration in two ways, and the control plane's per-proxy view
//! applies both: a service's `exportTo` says which namespaces may see it
//! ([`Service::visible_from`]), and the `Sidecar` in effect for the workload lists, per egress
//! listener, the `namespace/dnsName` hosts it imports. Seeing fewer services keeps large meshes'
//! proxies small, and is also how users fence a namespace off (`./*` and `istio-system/*` only).

use crate::host::host_matches;
use crate::labels::{Labels, selector_matches};
use crate::mesh::Mesh;
use crate::origin::SourceRef;
use crate::service::Service;

/// Egress host entry that imports every service of every namespace; what Istio uses when a
/// Sidecar has no egress listener.
pub const IMPORT_ALL: &str = "*/*";

/// One Istio `Sidecar`: the workloads it applies to and the services their proxies import.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SidecarScope {
    /// The Sidecar resource.
    pub origin: SourceRef,
    /// Namespace of the Sidecar; it applies to workloads of this namespace only, except a
    /// selector-less Sidecar in the root namespace, which is the default for namespaces that
    /// have none of their own.
    pub namespace: String,
    /// `workloadSelector.labels`; `None` makes it the namespace's default. An empty map still
    /// counts as a selector (matching every workload), as Istio treats a present selector.
    pub selector: Option<Labels>,
    /// The `hosts` of every egress listener, in `namespace/dnsName` form. The namespace part is
    /// a name, `*` (any), `~` (none) or `.` (the workload's own namespace: the compiler
    /// replaces it by the Sidecar's namespace, except in the root namespace's default, where
    /// it stands for each workload's namespace as in Istio). A Sidecar without egress
    /// listeners has [`IMPORT_ALL`]; an empty list imports nothing.
    pub egress_hosts: Vec<String>,
}

impl SidecarScope {
    /// Whether this Sidecar's egress hosts import `service` for a workload in
    /// `workload_namespace`.
    pub fn imports(&self, service: &Service, workload_namespace: &str) -> bool {
        self.egress_hosts
            .iter()
            .any(|h| host_entry_matches(h, service, workload_namespace))
    }
}

/// Whether one `namespace/dnsName` egress host imports `service`. Entries without a `/` are
/// ignored, as Istio ignores them (validation rejects them).
fn host_entry_matches(entry: &str, service: &Service, workload_namespace: &str) -> bool {
    let Some((ns, dns)) = entry.split_once('/') else {
        return false;
    };
    let ns_ok = match ns {
        "*" => true,
        "." => service.namespace == workload_namespace,
        // `~` (and anything starting with it) names no namespace: nothing is imported.
        n if n.starts_with('~') => false,
        n => service.namespace == n,
    };
    // Hosts overlap either way round: `*.wikipedia.org` imports the ServiceEntry
    // `*.wikipedia.org`, and `de.wikipedia.org` imports (that part of) it too, as Istio does.
    ns_ok && (dns == "*" || host_matches(dns, &service.host) || host_matches(&service.host, dns))
}

impl Mesh {
    /// The Sidecar in effect for a workload in `namespace` with `labels`, as Istio picks it:
    /// the oldest Sidecar of the namespace whose workload selector matches, else the
    /// namespace's selector-less Sidecar, else the root namespace's selector-less Sidecar, else
    /// none. Age is list order (the compiler keeps input order).
    pub fn sidecar_for(&self, namespace: &str, labels: &Labels) -> Option<&SidecarScope> {
        let own = || {
            self.sidecars
                .iter()
                .filter(move |s| s.namespace == namespace)
        };
        own()
            .find(|s| {
                s.selector
                    .as_ref()
                    .is_some_and(|sel| selector_matches(sel, labels))
            })
            .or_else(|| own().find(|s| s.selector.is_none()))
            .or_else(|| {
                self.sidecars
                    .iter()
                    .find(|s| s.namespace == self.root_namespace && s.selector.is_none())
            })
    }

    /// The services a workload in `namespace` with `labels` sees: those exported to its
    /// namespace and, when a Sidecar applies to it ([`Mesh::sidecar_for`]), imported by one of
    /// that Sidecar's egress hosts. In host order.
    pub fn visible_to<'a>(
        &'a self,
        namespace: &str,
        labels: &Labels,
    ) -> impl Iterator<Item = &'a Service> + use<'a> {
        let scope = self.sidecar_for(namespace, labels);
        let namespace = namespace.to_owned();
        self.services.iter().filter(move |s| {
            s.visible_from(&namespace) && scope.is_none_or(|sc| sc.imports(s, &namespace))
        })
    }
}

#[cfg(test)]
mod tests;
