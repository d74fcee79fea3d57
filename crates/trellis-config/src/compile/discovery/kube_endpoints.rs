//! Endpoints and EndpointSlices of a Kubernetes Service. When the input holds them (a cluster
//! dump, the API server) they are the truth about which addresses back the service, on which
//! ports and whether they are ready; the pods they reference add labels and identities.

use super::inventory::{Inventory, SERVICE_NAME_LABEL, locality, port_u16};
use crate::compile::Ctx;
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::core::{AddressType, EndpointPort, ObjectReference, Protocol as L4};
use std::collections::BTreeMap;
use trellis_model::Endpoint;

/// The endpoints the Endpoints object and EndpointSlices of service `svc` list, merged by
/// address (a cluster dump holds both, mirroring each other); `None` when the input has neither.
pub(super) fn collect(
    cx: &mut Ctx<'_>,
    inv: &Inventory<'_>,
    svc: &Resource,
) -> Option<Vec<Endpoint>> {
    let objects: Vec<_> = inv
        .endpoints
        .iter()
        .filter(|(r, _)| r.namespace == svc.namespace && r.name == svc.name)
        .collect();
    let slices: Vec<_> = inv
        .slices
        .iter()
        .filter(|(r, _)| {
            r.namespace == svc.namespace && r.meta.labels.get(SERVICE_NAME_LABEL) == Some(&svc.name)
        })
        .collect();
    if objects.is_empty() && slices.is_empty() {
        return None;
    }
    let mut out: Vec<Endpoint> = Vec::new();
    for (_, e) in objects {
        for subset in &e.subsets {
            let ports = port_map(&subset.ports);
            let all = subset
                .addresses
                .iter()
                .map(|a| (a, true))
                .chain(subset.not_ready_addresses.iter().map(|a| (a, false)));
            for (a, ready) in all {
                merge(
                    &mut out,
                    endpoint(
                        inv,
                        &a.ip,
                        a.target_ref.as_ref(),
                        &svc.namespace,
                        &ports,
                        ready,
                    ),
                );
            }
        }
    }
    for (r, slice) in slices {
        if slice.address_type == Some(AddressType::Fqdn) {
            cx.report.at(r, "addressType", Code::IgnoredSetting, "FQDN EndpointSlices are not used (as in Istio); only IPv4 and IPv6 slices provide endpoints");
            continue;
        }
        let ports = port_map(&slice.ports);
        for e in &slice.endpoints {
            // An unset `ready` means unknown, which Kubernetes says to treat as ready.
            let ready = e.conditions.ready.unwrap_or(true);
            for ip in &e.addresses {
                merge(
                    &mut out,
                    endpoint(
                        inv,
                        ip,
                        e.target_ref.as_ref(),
                        &svc.namespace,
                        &ports,
                        ready,
                    ),
                );
            }
        }
    }
    Some(out)
}

/// Service port name -> endpoint port number, for the TCP ports listed.
fn port_map(ports: &[EndpointPort]) -> BTreeMap<String, u16> {
    ports
        .iter()
        .filter(|p| p.protocol.unwrap_or_default() == L4::Tcp)
        .filter_map(|p| {
            Some((
                p.name.clone().unwrap_or_default(),
                port_u16(i64::from(p.port?))?,
            ))
        })
        .collect()
}

/// One address, with the labels and identity of its pod (the `targetRef`, else the pod with that
/// IP) when the input has it.
fn endpoint(
    inv: &Inventory<'_>,
    ip: &str,
    target: Option<&ObjectReference>,
    svc_namespace: &str,
    ports: &BTreeMap<String, u16>,
    ready: bool,
) -> Endpoint {
    let target = target.filter(|t| t.kind.as_deref().is_none_or(|k| k == "Pod"));
    let namespace = target
        .and_then(|t| t.namespace.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(svc_namespace);
    let target_name = target
        .and_then(|t| t.name.as_deref())
        .filter(|n| !n.is_empty());
    let pod = target_name
        .and_then(|n| inv.pod(namespace, n))
        .or_else(|| inv.pod_by_ip(ip));
    let mut ep = Endpoint {
        address: ip.trim().to_owned(),
        ports: ports.clone(),
        workload: target_name.map(str::to_owned),
        namespace: namespace.to_owned(),
        ready,
        ..Endpoint::default()
    };
    if let Some(pod) = pod {
        let labels = &pod.r.meta.labels;
        ep.labels = labels.clone();
        ep.locality = locality(labels);
        ep.network = inv.network(&pod.r.namespace, labels);
        ep.service_account = Some(
            pod.spec
                .service_account_name()
                .unwrap_or("default")
                .to_owned(),
        );
        ep.workload = Some(pod.r.name.clone());
        ep.namespace = pod.r.namespace.clone();
    }
    ep
}

/// Add `ep`, or add its ports to the endpoint already listed at that address.
fn merge(out: &mut Vec<Endpoint>, ep: Endpoint) {
    if ep.address.is_empty() {
        return;
    }
    match out.iter_mut().find(|e| e.address == ep.address) {
        Some(existing) => {
            for (name, n) in ep.ports {
                existing.ports.entry(name).or_insert(n);
            }
        }
        None => out.push(ep),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;
    use crate::diag::Code;

    const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http-alt}
  - {name: admin, port: 9000}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web, version: v1}}
spec:
  serviceAccountName: web
  containers: [{name: app, image: web, ports: [{name: http-alt, containerPort: 8080}]}]
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-stale, labels: {app: web}}
spec: {containers: [{name: app, image: web}]}
status: {podIP: 10.0.0.99}
---
"#;

    #[test]
    fn endpoints_and_slices_take_priority_over_pods() {
        let c = run(&format!(
            r#"{SERVICE}apiVersion: v1
kind: Endpoints
metadata: {{name: web}}
subsets:
- addresses: [{{ip: 10.0.0.1, targetRef: {{kind: Pod, name: web-1}}}}]
  notReadyAddresses: [{{ip: 10.0.0.2}}]
  ports: [{{name: http, port: 8080}}, {{name: admin, port: 9000}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: http, port: 8080}}, {{name: metrics, port: 9102}}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {{ready: true}}
- addresses: [10.0.0.3]
  conditions: {{ready: false}}
  targetRef: {{kind: Pod, name: web-gone}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-fqdn
  labels: {{kubernetes.io/service-name: web}}
addressType: FQDN
endpoints: [{{addresses: [web.example.com]}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: other
  labels: {{kubernetes.io/service-name: other}}
addressType: IPv4
endpoints: [{{addresses: [10.9.9.9]}}]
"#
        ));
        let svc = c
            .mesh
            .service("web.default.svc.cluster.local")
            .expect("service");
        let addrs: Vec<(&str, bool)> = svc
            .endpoints
            .iter()
            .map(|e| (e.address.as_str(), e.ready))
            .collect();
        assert_eq!(
            addrs,
            [("10.0.0.1", true), ("10.0.0.2", false), ("10.0.0.3", false)],
            "no pod-derived 10.0.0.99"
        );
        let first = &svc.endpoints[0];
        assert_eq!(first.labels.get("version").map(String::as_str), Some("v1"));
        assert_eq!(first.service_account.as_deref(), Some("web"));
        assert_eq!(first.workload.as_deref(), Some("web-1"));
        let ports: Vec<(&str, u16)> = first.ports.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            ports,
            [("admin", 9000), ("http", 8080), ("metrics", 9102)],
            "slice ports merged in"
        );
        // An address with no pod in the input has no identity, but keeps its workload name.
        let gone = &svc.endpoints[2];
        assert_eq!(
            (gone.service_account.as_deref(), gone.workload.as_deref()),
            (None, Some("web-gone"))
        );
        assert!(gone.labels.is_empty());
        let fqdn = c
            .diagnostics
            .iter()
            .find(|d| d.code == Code::IgnoredSetting)
            .expect("FQDN slice reported");
        assert_eq!(fqdn.name, "web-fqdn");
    }

    #[test]
    fn slice_alone_and_pod_found_by_ip() {
        let c = run(&format!(
            r#"{SERVICE}apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: http, port: 8080}}, {{name: dns, port: 53, protocol: UDP}}]
endpoints: [{{addresses: [10.0.0.1]}}]
"#
        ));
        let svc = c
            .mesh
            .service("web.default.svc.cluster.local")
            .expect("service");
        assert_eq!(svc.endpoints.len(), 1);
        let ep = &svc.endpoints[0];
        assert!(ep.ready, "unset ready means ready");
        assert_eq!(
            (ep.workload.as_deref(), ep.service_account.as_deref()),
            (Some("web-1"), Some("web"))
        );
        assert_eq!(ep.ports.len(), 1, "UDP ports are not carried");
        assert_eq!(ep.target_port(&svc.ports[0]), 8080);
        assert_eq!(ep.target_port(&svc.ports[1]), 9000);
    }
}
