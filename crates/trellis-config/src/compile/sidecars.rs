//! Istio Sidecar -> [`SidecarScope`]: which workloads a Sidecar applies to and the
//! `namespace/dnsName` hosts its egress listeners import. The model's `Mesh::visible_to` picks
//! the Sidecar in effect for a workload and filters services with it and `exportTo`; the control
//! plane cuts each proxy's view that way.
//!
//! Only the egress hosts are carried. What else a Sidecar configures (ingress listeners, the
//! inbound connection pool, the outbound traffic policy, and an egress listener's port, bind
//! address and capture mode) is reported with TRL2005 where it is written.

use super::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::istio_networking::{CaptureMode, OutboundTrafficPolicyMode, Sidecar};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::SidecarScope;
use trellis_model::visibility::IMPORT_ALL;

/// Append one [`SidecarScope`] per Sidecar, in input order (the model lets the oldest win).
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    let resources: Vec<&Resource> = cx.of_kind(Kind::Sidecar).collect();
    for r in resources {
        let Spec::Sidecar(sc) = &r.spec else {
            continue;
        };
        report_not_carried(cx, r, sc);
        if sc.workload_selector.is_none()
            && let Some(first) = cx
                .mesh
                .sidecars
                .iter()
                .find(|s| s.namespace == r.namespace && s.selector.is_none())
        {
            let msg = format!(
                "{} is already the default Sidecar of namespace {}; this one is ignored (Istio uses the oldest)",
                first.origin, r.namespace
            );
            cx.report.at(r, "metadata.name", Code::IgnoredSetting, msg);
        }
        let scope = scope(cx, r, sc);
        cx.mesh.sidecars.push(scope);
    }
}

fn scope(cx: &Ctx<'_>, r: &Resource, sc: &Sidecar) -> SidecarScope {
    // The root namespace's selector-less Sidecar is every other namespace's default, and there
    // Istio reads `.` as the namespace of the workload it applies to; so `.` is kept for it.
    let root_default = r.namespace == cx.opts.root_namespace && sc.workload_selector.is_none();
    let mut egress_hosts: Vec<String> = Vec::new();
    for h in sc.egress.iter().flat_map(|l| &l.hosts) {
        let h = normalize_host(h, &r.namespace, root_default);
        if !egress_hosts.contains(&h) {
            egress_hosts.push(h);
        }
    }
    // Istio gives a Sidecar without egress listeners a default one importing everything.
    if sc.egress.is_empty() {
        egress_hosts.push(IMPORT_ALL.to_owned());
    }
    SidecarScope {
        origin: source_ref(r),
        namespace: r.namespace.clone(),
        selector: sc.workload_selector.as_ref().map(|s| s.labels.clone()),
        egress_hosts,
    }
}

/// `./x` becomes `<namespace>/x` (unless `keep_dot`); the host part is lowercased without a
/// trailing dot, as model hosts are. Entries without `/` (rejected by validation) stay as
/// written, and the model ignores them.
fn normalize_host(host: &str, namespace: &str, keep_dot: bool) -> String {
    let Some((ns, dns)) = host.trim().split_once('/') else {
        return host.to_owned();
    };
    let ns = if ns == "." && !keep_dot {
        namespace
    } else {
        ns
    };
    let dns = dns.trim_end_matches('.').to_ascii_lowercase();
    format!("{ns}/{dns}")
}

/// TRL2005 for every part of the Sidecar the model does not carry.
fn report_not_carried(cx: &mut Ctx<'_>, r: &Resource, sc: &Sidecar) {
    if !sc.ingress.is_empty() {
        cx.report.at(r, "spec.ingress", Code::IgnoredSetting, "Sidecar ingress listeners are not carried into the model: the inbound side serves the workload's discovered ports");
    }
    if sc.inbound_connection_pool.is_some() {
        cx.report.at(r, "spec.inboundConnectionPool", Code::IgnoredSetting, "inboundConnectionPool is not carried into the model: inbound connections are not limited");
    }
    if let Some(p) = &sc.outbound_traffic_policy
        && (p.mode != OutboundTrafficPolicyMode::AllowAny || p.egress_proxy.is_some())
    {
        cx.report.at(r, "spec.outboundTrafficPolicy", Code::IgnoredSetting, "outboundTrafficPolicy is not carried into the model: traffic to hosts the mesh does not know passes through to its original destination (ALLOW_ANY)");
    }
    for (i, l) in sc.egress.iter().enumerate() {
        let at = format!("spec.egress[{i}]");
        if let Some(port) = &l.port {
            cx.report.at(
                r,
                &format!("{at}.port"),
                Code::IgnoredSetting,
                format!("the hosts of this listener are imported for every port, not only port {} (per-port egress listeners are not carried into the model)", port.number),
            );
        }
        if l.bind.as_deref().is_some_and(|b| !b.is_empty()) {
            cx.report.at(
                r,
                &format!("{at}.bind"),
                Code::IgnoredSetting,
                "an egress listener's bind address is not carried into the model",
            );
        }
        if l.capture_mode != CaptureMode::Default {
            cx.report.at(
                r,
                &format!("{at}.captureMode"),
                Code::IgnoredSetting,
                "an egress listener's captureMode is not carried into the model",
            );
        }
    }
}

#[cfg(test)]
mod tests;
