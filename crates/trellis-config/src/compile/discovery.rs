//! Discovery, the first pass: which workloads run (Pods, Deployments, StatefulSets, Istio
//! WorkloadEntries, LocalWorkloads) and which services exist (Kubernetes Services, Istio
//! ServiceEntries) with their endpoints. Every later pass attaches policies and routes to what
//! this one finds.
//!
//! Resources are read in input order and the model is normalized at the end, so the result does
//! not depend on map iteration order.

mod inventory;
mod kube;
mod kube_endpoints;
mod kube_selected;
mod service_entry;

use super::Ctx;
use crate::diag::Code;
use crate::resources::core::{Container, PodSpec, Protocol as L4};
use crate::resources::{Kind, Resource, Spec};
use inventory::{Inventory, PodView, inject, locality, port_u16};
use trellis_model::{Workload, WorkloadKind};

/// Fill `cx.mesh.workloads` and the services with their endpoints.
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    let resources = cx.resources;
    let inv = Inventory::new(resources, &mut cx.report);
    for pod in &inv.pods {
        let w = pod_workload(cx, &inv, pod);
        cx.mesh.workloads.push(w);
    }
    for (r, template) in &inv.templates {
        let kind = if r.kind() == Kind::StatefulSet {
            WorkloadKind::StatefulSet
        } else {
            WorkloadKind::Deployment
        };
        let labels = &template.metadata.labels;
        let w = Workload {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            kind,
            service_account: template.spec.service_account_name().map(str::to_owned),
            labels: labels.clone(),
            addresses: Vec::new(),
            ports: workload_ports(cx, r, &template.spec, "spec.template.spec"),
            locality: locality(labels),
            network: inv.network(&r.namespace, labels),
            inject: inject(labels, &template.metadata.annotations),
        };
        cx.mesh.workloads.push(w);
    }
    for (r, we) in &inv.workload_entries {
        let w = Workload {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            kind: WorkloadKind::WorkloadEntry,
            service_account: we.service_account.clone().filter(|s| !s.is_empty()),
            labels: we.labels.clone(),
            addresses: (!we.address.is_empty())
                .then(|| we.address.clone())
                .into_iter()
                .collect(),
            ports: dedup(we.ports.values().filter_map(|n| port_u16(i64::from(*n)))),
            locality: we.locality.clone().filter(|l| !l.is_empty()),
            network: we.network.clone().filter(|n| !n.is_empty()),
            inject: None,
        };
        cx.mesh.workloads.push(w);
    }
    for (r, lw) in &inv.local_workloads {
        // Like a Deployment's template: labels and identity, no address. The launcher's
        // running replicas come in as Pods (`crate::local::pods_for`), which Services select.
        cx.mesh.workloads.push(Workload {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            kind: WorkloadKind::Local,
            service_account: lw.service_account.clone().filter(|s| !s.is_empty()),
            labels: lw.labels.clone(),
            addresses: Vec::new(),
            ports: lw.port().into_iter().collect(),
            locality: locality(&lw.labels),
            network: inv.network(&r.namespace, &lw.labels),
            inject: None,
        });
    }
    for r in resources
        .iter()
        .filter(|r| matches!(r.spec, Spec::WorkloadGroup(_)))
    {
        cx.report.at(
            r,
            "spec",
            Code::IgnoredSetting,
            "a WorkloadGroup is the template VMs auto-register from; Trellis does not auto-register workloads, so it adds none (write one WorkloadEntry per VM)",
        );
    }
    kube::compile(cx, &inv);
    service_entry::compile(cx, &inv);
}

/// A pod as a workload: its labels, identity, addresses and listening ports.
fn pod_workload(cx: &mut Ctx<'_>, inv: &Inventory<'_>, pod: &PodView<'_>) -> Workload {
    let r = pod.r;
    Workload {
        name: r.name.clone(),
        namespace: r.namespace.clone(),
        kind: WorkloadKind::Pod,
        service_account: pod.spec.service_account_name().map(str::to_owned),
        labels: r.meta.labels.clone(),
        addresses: pod.ips.clone(),
        ports: workload_ports(cx, r, pod.spec, "spec"),
        locality: locality(&r.meta.labels),
        network: inv.network(&r.namespace, &r.meta.labels),
        inject: inject(&r.meta.labels, &r.meta.annotations),
    }
}

/// The TCP ports the pod's containers (and native sidecars) listen on. UDP and SCTP ports are
/// reported: the proxy carries TCP only, so their traffic bypasses the mesh.
fn workload_ports(cx: &mut Ctx<'_>, r: &Resource, spec: &PodSpec, at: &str) -> Vec<u16> {
    let lists: [(&str, &[Container]); 2] = [
        ("containers", &spec.containers),
        ("initContainers", &spec.init_containers),
    ];
    let mut ports = Vec::new();
    for (field, list) in lists {
        for (i, c) in list.iter().enumerate() {
            if field == "initContainers" && c.restart_policy.as_deref() != Some("Always") {
                continue;
            }
            for (j, p) in c.ports.iter().enumerate() {
                let proto = p.protocol.unwrap_or_default();
                if proto != L4::Tcp {
                    cx.report.at(
                        r,
                        &format!("{at}.{field}[{i}].ports[{j}].protocol"),
                        Code::IgnoredSetting,
                        format!(
                            "{} port {} is not proxied: the mesh carries TCP only",
                            l4_name(proto),
                            p.container_port
                        ),
                    );
                } else if let Some(n) = port_u16(i64::from(p.container_port)) {
                    ports.push(n);
                }
            }
        }
    }
    dedup(ports)
}

/// The protocol as Kubernetes spells it.
pub(super) fn l4_name(p: L4) -> &'static str {
    match p {
        L4::Tcp => "TCP",
        L4::Udp => "UDP",
        L4::Sctp => "SCTP",
    }
}

/// A service's own port number (Service `port`, ServiceEntry `number`, at `at`); one out of
/// range (or 0) is reported and the port skipped.
fn service_port_number(cx: &mut Ctx<'_>, r: &Resource, at: &str, n: i64) -> Option<u16> {
    let number = port_u16(n);
    if number.is_none() {
        cx.report.at(
            r,
            at,
            Code::IgnoredSetting,
            format!("port {n} is out of range; the port is skipped"),
        );
    }
    number
}

/// Distinct values in first-seen order.
fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::compile::{CompileOptions, Compiled, compile};
    use crate::diag::Code;
    use trellis_model::WorkloadKind;

    pub(super) fn run(text: &str) -> Compiled {
        let loaded = crate::load::load_str("t.yaml", text, &crate::load::LoadOptions::default());
        assert!(
            !loaded.has_errors(),
            "test input is invalid: {:#?}",
            loaded.diagnostics
        );
        compile(&loaded.resources, &CompileOptions::default())
    }

    /// 1-based line of the first line of `text` containing `needle`.
    pub(super) fn line_of(text: &str, needle: &str) -> u32 {
        text.lines()
            .position(|l| l.contains(needle))
            .map_or(0, |i| i as u32 + 1)
    }

    const WORKLOADS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1-abc
  labels: {app: reviews, version: v1, istio-locality: us-east.us-east-1a, topology.istio.io/network: net1}
  annotations: {sidecar.istio.io/inject: "true"}
spec:
  serviceAccountName: bookinfo-reviews
  containers:
  - name: app
    image: reviews
    ports:
    - {containerPort: 9080, name: http}
    - {containerPort: 53, protocol: UDP}
  initContainers:
  - {name: proxy, image: proxy, restartPolicy: Always, ports: [{containerPort: 15090}]}
  - {name: init, image: init, ports: [{containerPort: 9999}]}
status:
  podIP: 10.1.0.5
  podIPs: [{ip: 10.1.0.5}, {ip: "fd00::5"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings, namespace: shop}
spec:
  selector: {matchLabels: {app: ratings}}
  template:
    metadata:
      labels: {app: ratings}
      annotations: {linkerd.io/inject: disabled}
    spec:
      serviceAccount: ratings
      containers: [{name: app, image: ratings, ports: [{containerPort: 8080}]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  selector: {matchLabels: {app: db}}
  serviceName: db
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: db, ports: [{containerPort: 5432}]}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1}
spec:
  address: 192.0.2.7
  labels: {app: legacy}
  ports: {http: 8080, grpc: 9090}
  locality: eu/eu-west-1
  network: vpc1
  weight: 3
  serviceAccount: legacy
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: vms}
spec:
  metadata: {labels: {app: legacy}}
  template: {serviceAccount: legacy}
"#;

    #[test]
    fn workloads_from_every_kind() {
        let c = run(WORKLOADS);
        let pod = c
            .mesh
            .workload("default", "reviews-v1-abc")
            .expect("pod workload");
        assert_eq!(pod.kind, WorkloadKind::Pod);
        assert_eq!(pod.service_account.as_deref(), Some("bookinfo-reviews"));
        assert_eq!(pod.addresses, ["10.1.0.5", "fd00::5"]);
        assert_eq!(
            pod.ports,
            [9080, 15090],
            "UDP and plain init container ports are not listening ports"
        );
        assert_eq!(pod.inject, Some(true));
        assert_eq!(pod.locality.as_deref(), Some("us-east/us-east-1a"));
        assert_eq!(pod.network.as_deref(), Some("net1"));
        assert_eq!(pod.labels.get("version").map(String::as_str), Some("v1"));
        assert_eq!(
            pod.identity("cluster.local"),
            "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
        );

        let dep = c
            .mesh
            .workload("shop", "ratings")
            .expect("deployment workload");
        assert_eq!(dep.kind, WorkloadKind::Deployment);
        assert_eq!(dep.service_account.as_deref(), Some("ratings"));
        assert_eq!(
            (dep.ports.as_slice(), dep.addresses.is_empty()),
            (&[8080u16][..], true)
        );
        assert_eq!(dep.inject, Some(false));

        let sts = c
            .mesh
            .workload("default", "db")
            .expect("statefulset workload");
        assert_eq!(
            (sts.kind, sts.ports.as_slice(), sts.inject),
            (WorkloadKind::StatefulSet, &[5432u16][..], None)
        );
        assert_eq!(sts.service_account(), "default");

        let vm = c.mesh.workload("default", "vm-1").expect("workload entry");
        assert_eq!(vm.kind, WorkloadKind::WorkloadEntry);
        assert_eq!(vm.addresses, ["192.0.2.7"]);
        assert_eq!(vm.ports, [9090, 8080], "ports in port-name order");
        assert_eq!(
            (vm.locality.as_deref(), vm.network.as_deref()),
            (Some("eu/eu-west-1"), Some("vpc1"))
        );
        assert_eq!(vm.service_account.as_deref(), Some("legacy"));
        assert_eq!(
            c.mesh.workloads.len(),
            4,
            "a WorkloadGroup adds no workload"
        );

        let info = |line: u32| {
            c.diagnostics
                .iter()
                .any(|d| d.code == Code::IgnoredSetting && d.line == line)
        };
        assert!(
            info(line_of(WORKLOADS, "protocol: UDP")),
            "UDP port reported: {:#?}",
            c.diagnostics
        );
        assert!(
            info(line_of(WORKLOADS, "  metadata: {labels: {app: legacy}}")),
            "WorkloadGroup reported: {:#?}",
            c.diagnostics
        );
        assert_eq!(c.diagnostics.len(), 2, "{:#?}", c.diagnostics);
    }

    #[test]
    fn pod_status_inside_a_list() {
        let c = run(r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: prod}
  spec: {containers: [{name: app, image: app}]}
  status: {podIP: 10.2.0.1}
- apiVersion: v1
  kind: Pod
  metadata: {name: b, namespace: prod}
  spec: {containers: [{name: app, image: app}]}
  status: {podIP: not-an-ip}
"#);
        assert_eq!(
            c.mesh.workload("prod", "a").map(|w| w.addresses.clone()),
            Some(vec!["10.2.0.1".to_string()])
        );
        assert_eq!(
            c.mesh.workload("prod", "b").map(|w| w.addresses.len()),
            Some(0)
        );
        let d = c
            .diagnostics
            .iter()
            .find(|d| d.code == Code::IgnoredSetting)
            .expect("bad IP reported");
        assert_eq!((d.line, d.name.as_str()), (13, "b"), "{d:?}");
    }
}
