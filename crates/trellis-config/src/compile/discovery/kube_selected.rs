//! Endpoints a Kubernetes Service gets by its selector: from Endpoints/EndpointSlices when the
//! input has them, else from the running pods it selects; plus the WorkloadEntries it selects,
//! which Istio adds to Kubernetes services too. Named target ports resolve per pod and per entry.

use super::inventory::{Inventory, condition, entry_endpoint, entry_ports, named_container_port};
use super::kube_endpoints;
use crate::compile::Ctx;
use crate::diag::{Code, Severity};
use crate::resources::Resource;
use crate::resources::core;
use std::collections::BTreeMap;
use trellis_model::{Endpoint, ServicePort, selector_matches};

/// A service port and, when its `targetPort` is a name, that name (resolved per endpoint).
pub(super) struct KubePort {
    pub port: ServicePort,
    pub target_name: Option<String>,
}

/// The number a named `targetPort` has in every selected pod and pod template, if they agree.
pub(super) fn resolve_named_target(
    inv: &Inventory<'_>,
    r: &Resource,
    s: &core::Service,
    name: &str,
) -> Option<u16> {
    if s.selector.is_empty() {
        return None;
    }
    let pods = inv
        .pods
        .iter()
        .filter(|p| p.r.namespace == r.namespace && selector_matches(&s.selector, &p.r.meta.labels))
        .map(|p| p.spec);
    let templates = inv
        .templates
        .iter()
        .filter(|(t, tpl)| {
            t.namespace == r.namespace && selector_matches(&s.selector, &tpl.metadata.labels)
        })
        .map(|(_, tpl)| &tpl.spec);
    let mut found = pods
        .chain(templates)
        .filter_map(|spec| named_container_port(spec, name));
    let first = found.next()?;
    found.all(|n| n == first).then_some(first)
}

/// Endpoints from Endpoints/EndpointSlices when the input has them, else from the selected pods;
/// plus the selected WorkloadEntries, which Istio adds to Kubernetes services too.
pub(super) fn endpoints(
    cx: &mut Ctx<'_>,
    inv: &Inventory<'_>,
    r: &Resource,
    s: &core::Service,
    ports: &[KubePort],
) -> Vec<Endpoint> {
    let mut out = match kube_endpoints::collect(cx, inv, r) {
        Some(eps) => eps,
        None if s.selector.is_empty() => Vec::new(),
        None => pod_endpoints(cx, inv, r, s, ports),
    };
    if s.selector.is_empty() {
        return out;
    }
    for (we_r, we) in &inv.workload_entries {
        if we_r.namespace != r.namespace || !selector_matches(&s.selector, &we.labels) {
            continue;
        }
        let own = entry_ports(we);
        // The entry's port for a service port: by the service port's name, else by a named targetPort.
        let mapped: BTreeMap<String, u16> = ports
            .iter()
            .filter_map(|p| {
                let n = own
                    .get(&p.port.name)
                    .or_else(|| p.target_name.as_ref().and_then(|t| own.get(t)))?;
                Some((p.port.name.clone(), *n))
            })
            .collect();
        let healthy = condition(we_r, "Healthy") != Some("False");
        out.push(entry_endpoint(
            we,
            &we_r.namespace,
            Some(&we_r.name),
            mapped,
            healthy,
        ));
    }
    out
}

/// One endpoint per IP of every running pod the selector picks. A named `targetPort` the pod
/// does not declare is reported: Kubernetes would not route that port to the pod, while the
/// model can only fall back to the port number.
fn pod_endpoints(
    cx: &mut Ctx<'_>,
    inv: &Inventory<'_>,
    r: &Resource,
    s: &core::Service,
    ports: &[KubePort],
) -> Vec<Endpoint> {
    let publish_not_ready = s.publish_not_ready_addresses == Some(true);
    let mut out = Vec::new();
    let mut unresolved: Vec<(usize, &str)> = Vec::new();
    for pod in &inv.pods {
        if pod.r.namespace != r.namespace
            || pod.terminal
            || pod.ips.is_empty()
            || !selector_matches(&s.selector, &pod.r.meta.labels)
        {
            continue;
        }
        let mut map = BTreeMap::new();
        for (i, p) in ports.iter().enumerate() {
            let Some(t) = &p.target_name else { continue };
            match named_container_port(pod.spec, t) {
                Some(n) => {
                    map.insert(p.port.name.clone(), n);
                }
                None if !unresolved.iter().any(|(j, _)| *j == i) => {
                    unresolved.push((i, &pod.r.name))
                }
                None => {}
            }
        }
        out.extend(inv.pod_endpoints(pod, &map, publish_not_ready));
    }
    for (i, pod) in unresolved {
        let p = &ports[i];
        let t = p.target_name.as_deref().unwrap_or_default();
        let number = p.port.target_port.unwrap_or(p.port.number);
        cx.report.with_severity(
            r,
            &format!("spec.ports[{i}].targetPort"),
            Code::ReferencedResourceNotFound,
            Severity::Warning,
            format!("targetPort {t:?} names no container port of selected pod {pod}; Kubernetes sends this port no traffic for such pods, Trellis sends it to port {number}"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{line_of, run};
    use crate::diag::{Code, Severity};
    use trellis_model::{HashKey, LoadBalancer, Protocol, Resolution, ServiceLocation};

    const MESH: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: reviews
  annotations: {networking.istio.io/exportTo: ". , istio-system"}
spec:
  selector: {app: reviews}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00::10"]
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 9080, targetPort: web}
  - {name: grpc-api, port: 9090, targetPort: 19090}
  - {name: metrics, port: 9102, appProtocol: http}
  - {name: db, port: 3306}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: app, image: r, ports: [{name: web, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-a, labels: {app: reviews, version: v1}}
spec:
  serviceAccountName: reviews
  containers: [{name: app, image: r, ports: [{name: web, containerPort: 8080}]}]
status: {podIP: 10.1.0.1, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v2-a, labels: {app: reviews, version: v2}}
spec: {containers: [{name: app, image: r, ports: [{name: web, containerPort: 8081}]}]}
status: {podIP: 10.1.0.2, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-done, labels: {app: reviews}}
spec: {containers: [{name: app, image: r}]}
status: {podIP: 10.1.0.3, phase: Succeeded}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-pending, labels: {app: reviews}}
spec: {containers: [{name: app, image: r}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other-ns, namespace: prod, labels: {app: reviews}}
spec: {containers: [{name: app, image: r}]}
status: {podIP: 10.1.0.4}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-vm}
spec:
  address: 192.0.2.10
  labels: {app: reviews, version: vm}
  ports: {web: 7070, grpc-api: 7090}
  serviceAccount: reviews-vm
"#;

    #[test]
    fn service_with_pods_and_workload_entries() {
        let c = run(MESH);
        let svc = c
            .mesh
            .service("reviews.default.svc.cluster.local")
            .expect("service");
        assert_eq!(
            (svc.name.as_str(), svc.namespace.as_str()),
            ("reviews", "default")
        );
        assert_eq!(
            (svc.location, svc.resolution),
            (ServiceLocation::MeshInternal, Resolution::Static)
        );
        assert_eq!(svc.addresses, ["10.96.0.10", "fd00::10"]);
        assert_eq!(svc.export_to, [".", "istio-system"]);
        let ports: Vec<_> = svc
            .ports
            .iter()
            .map(|p| (p.number, p.name.as_str(), p.protocol, p.target_port))
            .collect();
        assert_eq!(
            ports,
            [
                (9080, "http", Protocol::Http, None),
                (9090, "grpc-api", Protocol::Grpc, Some(19090)),
                (9102, "metrics", Protocol::Http, None),
                (3306, "db", Protocol::Tcp, None),
            ],
            "pods disagree on `web` (8080 and 8081), so the service keeps no target port"
        );
        assert!(
            matches!(&svc.policy.load_balancer, Some(LoadBalancer::ConsistentHash(h)) if h.key == HashKey::SourceIp)
        );

        let eps: Vec<_> = svc
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.address.as_str(),
                    e.ready,
                    e.labels.get("version").map(String::as_str),
                )
            })
            .collect();
        assert_eq!(
            eps,
            [
                ("10.1.0.1", true, Some("v1")),
                ("10.1.0.2", false, Some("v2")),
                ("192.0.2.10", true, Some("vm"))
            ],
            "terminal pods, pods without IP and pods of other namespaces are not endpoints"
        );
        let (v1, v2, vm) = (&svc.endpoints[0], &svc.endpoints[1], &svc.endpoints[2]);
        assert_eq!(
            v1.identity("cluster.local").as_deref(),
            Some("spiffe://cluster.local/ns/default/sa/reviews")
        );
        assert_eq!(v2.service_account.as_deref(), Some("default"));
        assert_eq!(
            (v1.target_port(&svc.ports[0]), v2.target_port(&svc.ports[0])),
            (8080, 8081),
            "named targetPort per pod"
        );
        assert_eq!(v1.target_port(&svc.ports[1]), 19090);
        assert_eq!(vm.workload.as_deref(), Some("reviews-vm"));
        assert_eq!(vm.service_account.as_deref(), Some("reviews-vm"));
        assert_eq!(
            (vm.target_port(&svc.ports[0]), vm.target_port(&svc.ports[1])),
            (7070, 7090),
            "by targetPort name, then by port name"
        );

        let udp = c
            .diagnostics
            .iter()
            .find(|d| d.code == Code::IgnoredSetting)
            .expect("UDP reported");
        assert_eq!(udp.line, line_of(MESH, "protocol: UDP"));
    }

    #[test]
    fn named_target_port_resolved_from_templates_and_unresolved_reported() {
        let text = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  clusterIP: None
  publishNotReadyAddresses: true
  ports: [{name: http, port: 80, targetPort: http-web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: w, ports: [{name: http-web, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {containers: [{name: app, image: w}]}
status: {podIP: 10.3.0.1, conditions: [{type: Ready, status: "False"}]}
"#;
        let c = run(text);
        let svc = c
            .mesh
            .service("web.shop.svc.cluster.local")
            .expect("service");
        assert_eq!(svc.resolution, Resolution::Passthrough, "headless");
        assert!(svc.addresses.is_empty());
        assert_eq!(svc.ports[0].target_port, Some(8080));
        assert_eq!(svc.endpoints.len(), 1);
        assert!(svc.endpoints[0].ready, "publishNotReadyAddresses");
        assert!(svc.endpoints[0].ports.is_empty());
        let d = c
            .diagnostics
            .iter()
            .find(|d| d.code == Code::ReferencedResourceNotFound)
            .expect("unresolved targetPort");
        assert_eq!(
            (d.severity, d.line),
            (Severity::Warning, line_of(text, "targetPort: http-web"))
        );
        assert!(
            d.message.contains("web-0") && d.message.contains("8080"),
            "{}",
            d.message
        );
    }
}
