//! Kubernetes Services: host `name.ns.svc.<domain>`, ports with their Istio-selected protocol,
//! ClusterIPs, visibility and session affinity. Endpoints are chosen in [`super::kube_selected`].

use super::inventory::{Inventory, port_u16};
use super::kube_selected::{KubePort, endpoints, resolve_named_target};
use crate::compile::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::common::IntOrString;
use crate::resources::core::{self, Protocol as L4, ServiceType, SessionAffinity, TrafficPolicy};
use trellis_model::{
    ConsistentHash, Endpoint, HashKey, LoadBalancer, Protocol, Resolution, Service,
    ServiceLocation, ServicePort,
};

/// Istio's annotation restricting which namespaces see a Service.
const EXPORT_TO: &str = "networking.istio.io/exportTo";

/// Compile every Kubernetes Service, in input order.
pub(super) fn compile(cx: &mut Ctx<'_>, inv: &Inventory<'_>) {
    let resources = cx.resources;
    for r in resources {
        if let crate::resources::Spec::Service(s) = &r.spec {
            service(cx, inv, r, s);
        }
    }
}

/// One Service. ExternalName services are DNS-resolved aliases outside the mesh (Istio marks
/// them mesh-external); headless ones pass connections through to the pod the client chose, as
/// Istio does, because clients address individual pods (`db-0.db`).
fn service(cx: &mut Ctx<'_>, inv: &Inventory<'_>, r: &Resource, s: &core::Service) {
    let ports = ports(cx, inv, r, s);
    let external_name = match s.type_ {
        Some(ServiceType::ExternalName) => s.external_name.as_deref().map(str::trim),
        _ => None,
    };
    let mut svc = Service {
        host: cx.fqdn(&r.name, &r.namespace),
        name: r.name.clone(),
        namespace: r.namespace.clone(),
        ports: ports.iter().map(|p| p.port.clone()).collect(),
        export_to: export_to(r),
        origins: vec![source_ref(r)],
        ..Service::default()
    };
    if let Some(name) = external_name {
        svc.location = ServiceLocation::MeshExternal;
        svc.resolution = Resolution::Dns;
        if !name.is_empty() {
            svc.endpoints.push(Endpoint {
                address: name.trim_end_matches('.').to_owned(),
                namespace: r.namespace.clone(),
                ..Endpoint::default()
            });
        }
    } else {
        for ip in s.cluster_ips.iter().chain(&s.cluster_ip) {
            let ip = ip.trim();
            if !ip.is_empty() && ip != "None" && !svc.addresses.iter().any(|a| a == ip) {
                svc.addresses.push(ip.to_owned());
            }
        }
        if s.is_headless() {
            svc.resolution = Resolution::Passthrough;
        }
        svc.endpoints = endpoints(cx, inv, r, s, &ports);
    }
    traffic_settings(cx, r, s, &mut svc);
    cx.add_service(svc);
}

/// The service ports the mesh can carry. A numeric `targetPort` is kept when it differs from
/// the port; a named one is resolved through the selected pods and pod templates when they all
/// agree on its number (endpoints carry their own number otherwise).
fn ports(cx: &mut Ctx<'_>, inv: &Inventory<'_>, r: &Resource, s: &core::Service) -> Vec<KubePort> {
    let mut out = Vec::new();
    for (i, p) in s.ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let l4 = p.protocol.unwrap_or_default();
        if l4 != L4::Tcp {
            cx.report.at(
                r,
                &format!("{at}.protocol"),
                Code::IgnoredSetting,
                format!("{} port {} is not proxied: the mesh carries TCP only, so this port is left out of the service", super::l4_name(l4), p.port),
            );
            continue;
        }
        let Some(number) =
            super::service_port_number(cx, r, &format!("{at}.port"), i64::from(p.port))
        else {
            continue;
        };
        let name = p.name.clone().unwrap_or_default();
        let protocol = Protocol::from_service_port(number, &name, p.app_protocol.as_deref());
        let (target_port, target_name) = match &p.target_port {
            Some(IntOrString::Int(0)) | None => (None, None),
            Some(IntOrString::Int(n)) => match port_u16(*n) {
                Some(t) => ((t != number).then_some(t), None),
                None => {
                    cx.report.at(
                        r,
                        &format!("{at}.targetPort"),
                        Code::IgnoredSetting,
                        format!("targetPort {n} is out of range; port {number} is used"),
                    );
                    (None, None)
                }
            },
            Some(IntOrString::String(t)) if t.is_empty() => (None, None),
            Some(IntOrString::String(t)) => {
                let resolved = resolve_named_target(inv, r, s, t).filter(|n| *n != number);
                (resolved, Some(t.clone()))
            }
        };
        out.push(KubePort {
            port: ServicePort {
                number,
                name,
                protocol,
                target_port,
            },
            target_name,
        });
    }
    out
}

/// Service-level settings with a meaning for mesh traffic: ClientIP session affinity becomes
/// source-IP consistent hashing; what the model cannot express is reported.
fn traffic_settings(cx: &mut Ctx<'_>, r: &Resource, s: &core::Service, svc: &mut Service) {
    if s.session_affinity == Some(SessionAffinity::ClientIp) {
        svc.policy.load_balancer = Some(LoadBalancer::ConsistentHash(ConsistentHash {
            key: HashKey::SourceIp,
            ..ConsistentHash::default()
        }));
        if s.session_affinity_config.is_some() {
            cx.report.at(r, "spec.sessionAffinityConfig", Code::IgnoredSetting, "the affinity timeout is not enforced: a client stays with its endpoint while the endpoint set is stable");
        }
    }
    if s.internal_traffic_policy == Some(TrafficPolicy::Local) {
        cx.report.at(r, "spec.internalTrafficPolicy", Code::IgnoredSetting, "internalTrafficPolicy Local is not enforced: the mesh balances over endpoints on every node");
    }
    if let Some(d) = &s.traffic_distribution {
        cx.report.at(r, "spec.trafficDistribution", Code::IgnoredSetting, format!("trafficDistribution {d} is not enforced; use a DestinationRule localityLbSetting for locality-aware routing"));
    }
}

/// Namespaces named by the `networking.istio.io/exportTo` annotation (comma-separated).
fn export_to(r: &Resource) -> Vec<String> {
    r.meta
        .annotations
        .get(EXPORT_TO)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{line_of, run};
    use crate::diag::Code;
    use trellis_model::{Protocol, Resolution, ServiceLocation};

    #[test]
    fn external_name_and_settings_not_enforced() {
        let text = r#"apiVersion: v1
kind: Service
metadata: {name: payments}
spec:
  type: ExternalName
  externalName: api.payments.example.
  ports: [{name: https, port: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  selector: {app: local}
  ports: [{port: 80}]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  internalTrafficPolicy: Local
  trafficDistribution: PreferClose
"#;
        let c = run(text);
        let ext = c
            .mesh
            .service("payments.default.svc.cluster.local")
            .expect("external name");
        assert_eq!(
            (ext.location, ext.resolution),
            (ServiceLocation::MeshExternal, Resolution::Dns)
        );
        assert_eq!(ext.endpoints.len(), 1);
        assert_eq!(ext.endpoints[0].address, "api.payments.example");
        assert_eq!(ext.endpoints[0].service_account, None);
        assert_eq!(ext.ports[0].protocol, Protocol::Https);
        let local = c
            .mesh
            .service("local.default.svc.cluster.local")
            .expect("service");
        assert!(local.endpoints.is_empty(), "no pods, no Endpoints");
        assert_eq!(local.ports[0].name, "");
        let lines: Vec<u32> = c
            .diagnostics
            .iter()
            .filter(|d| d.code == Code::IgnoredSetting)
            .map(|d| d.line)
            .collect();
        let want: Vec<u32> = [
            "sessionAffinityConfig",
            "internalTrafficPolicy",
            "trafficDistribution",
        ]
        .iter()
        .map(|n| line_of(text, n))
        .collect();
        assert_eq!(lines, want, "{:#?}", c.diagnostics);
    }
}
