//! Istio ServiceEntries: one service per host, with the entry's ports, addresses, location,
//! resolution and visibility, and endpoints written inline or selected (WorkloadEntries and pods
//! of the entry's namespace) by `workloadSelector`.

use super::inventory::{Inventory, condition, entry_endpoint, entry_ports, port_u16};
use crate::compile::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::istio_networking::{
    ServiceEntry, ServiceEntryLocation, ServiceEntryResolution,
};
use crate::resources::{Resource, Spec};
use std::collections::BTreeMap;
use trellis_model::{
    Endpoint, Protocol, Resolution, Service, ServiceLocation, ServicePort, selector_matches,
};

/// Compile every ServiceEntry, in input order (after Kubernetes Services, which keep a host they
/// share with an entry; the entry's ports and endpoints are added to it).
pub(super) fn compile(cx: &mut Ctx<'_>, inv: &Inventory<'_>) {
    let resources = cx.resources;
    for r in resources {
        if let Spec::ServiceEntry(se) = &r.spec {
            service_entry(cx, inv, r, se);
        }
    }
}

/// One service per host, all sharing the entry's ports, addresses and endpoints.
fn service_entry(cx: &mut Ctx<'_>, inv: &Inventory<'_>, r: &Resource, se: &ServiceEntry) {
    let ports = ports(cx, r, se);
    let resolution = match se.resolution {
        ServiceEntryResolution::None => Resolution::Passthrough,
        ServiceEntryResolution::Static => Resolution::Static,
        // DYNAMIC_DNS resolves the host each request names; for the model that is DNS resolution
        // of the host itself, which for a wildcard entry is the requested host.
        ServiceEntryResolution::Dns | ServiceEntryResolution::DynamicDns => Resolution::Dns,
        ServiceEntryResolution::DnsRoundRobin => Resolution::DnsRoundRobin,
    };
    let location = match se.location {
        ServiceEntryLocation::MeshExternal => ServiceLocation::MeshExternal,
        ServiceEntryLocation::MeshInternal => ServiceLocation::MeshInternal,
    };
    // Resolution NONE forwards to the address the client dialed; endpoints would never be used.
    let endpoints = if resolution == Resolution::Passthrough {
        Vec::new()
    } else {
        endpoints(inv, r, se)
    };
    if !se.subject_alt_names.is_empty() {
        cx.report.at(
            r,
            "spec.subjectAltNames",
            Code::IgnoredSetting,
            "subjectAltNames is not enforced: mesh mTLS verifies the endpoints' SPIFFE identities instead (set SANs with a DestinationRule tls.subjectAltNames)",
        );
    }
    for (i, host) in se.hosts.iter().enumerate() {
        let fqdn = cx.fqdn(host, &r.namespace);
        if fqdn.is_empty() {
            cx.report.at(
                r,
                &format!("spec.hosts[{i}]"),
                Code::IgnoredSetting,
                "empty host; no service is created for it",
            );
            continue;
        }
        let svc = Service {
            name: fqdn.clone(),
            host: fqdn,
            namespace: r.namespace.clone(),
            ports: ports.clone(),
            addresses: se
                .addresses
                .iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            location,
            resolution,
            endpoints: endpoints.clone(),
            export_to: se.export_to.clone(),
            origins: vec![source_ref(r)],
            ..Service::default()
        };
        cx.add_service(svc);
    }
}

/// The entry's ports. `protocol` decides alone, as in Istio (the name does not); unset means
/// detect, except on well-known server-first ports. UDP is left out, HTTP_PROXY becomes HTTP.
fn ports(cx: &mut Ctx<'_>, r: &Resource, se: &ServiceEntry) -> Vec<ServicePort> {
    let mut out: Vec<ServicePort> = Vec::new();
    for (i, p) in se.ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let Some(number) =
            super::service_port_number(cx, r, &format!("{at}.number"), i64::from(p.number))
        else {
            continue;
        };
        let declared = p
            .protocol
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let protocol = match declared.map(str::to_ascii_lowercase).as_deref() {
            None => Protocol::from_service_port(number, "", None),
            Some("udp") => {
                cx.report.at(r, &format!("{at}.protocol"), Code::IgnoredSetting, format!("UDP port {number} is not proxied: the mesh carries TCP only, so the port is left out"));
                continue;
            }
            Some("http_proxy") => {
                cx.report.at(r, &format!("{at}.protocol"), Code::IgnoredSetting, "HTTP_PROXY (forward-proxy CONNECT/absolute-form handling on this port) is not modelled; the port is treated as HTTP");
                Protocol::Http
            }
            Some(other) => Protocol::parse(other),
        };
        let target_port = p
            .target_port
            .and_then(|t| port_u16(i64::from(t)))
            .filter(|t| *t != number);
        if out.iter().any(|q| q.number == number) {
            continue;
        }
        out.push(ServicePort {
            number,
            name: p.name.clone(),
            protocol,
            target_port,
        });
    }
    out
}

/// Inline endpoints, else (with `workloadSelector`) the WorkloadEntries and running pods of the
/// entry's namespace whose labels match.
fn endpoints(inv: &Inventory<'_>, r: &Resource, se: &ServiceEntry) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = se
        .endpoints
        .iter()
        .map(|we| entry_endpoint(we, &r.namespace, None, entry_ports(we), true))
        .collect();
    let Some(selector) = se
        .workload_selector
        .as_ref()
        .filter(|_| se.endpoints.is_empty())
    else {
        return out;
    };
    for (we_r, we) in &inv.workload_entries {
        if we_r.namespace == r.namespace && selector_matches(&selector.labels, &we.labels) {
            let healthy = condition(we_r, "Healthy") != Some("False");
            out.push(entry_endpoint(
                we,
                &we_r.namespace,
                Some(&we_r.name),
                entry_ports(we),
                healthy,
            ));
        }
    }
    for pod in &inv.pods {
        if pod.r.namespace == r.namespace
            && !pod.terminal
            && selector_matches(&selector.labels, &pod.r.meta.labels)
        {
            out.extend(inv.pod_endpoints(pod, &BTreeMap::new(), false));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{line_of, run};
    use crate::diag::Code;
    use trellis_model::{Protocol, Resolution, ServiceLocation};

    #[test]
    fn inline_endpoints_and_every_host() {
        let text = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: egress}
spec:
  hosts: [api.payments.example, "*.payments.example"]
  addresses: [198.51.100.0/24]
  location: MESH_EXTERNAL
  resolution: STATIC
  exportTo: ["."]
  subjectAltNames: [spiffe://payments.example/api]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
  - {number: 8080, name: web, protocol: HTTP, targetPort: 80}
  - {number: 3128, name: proxy, protocol: HTTP_PROXY}
  endpoints:
  - address: 198.51.100.7
    ports: {https: 8443}
    labels: {region: a}
    locality: us-east/us-east-1a
    weight: 5
    network: external
    serviceAccount: payments
  - address: 198.51.100.8
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: egress}
spec:
  hosts: [db.payments.example]
  resolution: DNS
  ports:
  - {number: 3306, name: db}
  - {number: 5353, name: mdns, protocol: UDP}
  - {number: 8080, name: web}
"#;
        let c = run(text);
        for host in ["api.payments.example", "*.payments.example"] {
            let svc = c.mesh.service(host).expect(host);
            assert_eq!(
                (svc.name.as_str(), svc.namespace.as_str()),
                (host, "egress")
            );
            assert_eq!(
                (svc.location, svc.resolution),
                (ServiceLocation::MeshExternal, Resolution::Static)
            );
            assert_eq!(svc.addresses, ["198.51.100.0/24"]);
            assert_eq!(svc.export_to, ["."]);
            let ports: Vec<_> = svc
                .ports
                .iter()
                .map(|p| (p.number, p.protocol, p.target_port))
                .collect();
            assert_eq!(
                ports,
                [
                    (443, Protocol::Https, None),
                    (8080, Protocol::Http, Some(80)),
                    (3128, Protocol::Http, None)
                ]
            );
            assert_eq!(svc.endpoints.len(), 2);
            let ep = &svc.endpoints[0];
            assert_eq!(ep.target_port(&svc.ports[0]), 8443);
            assert_eq!(ep.target_port(&svc.ports[1]), 80);
            assert_eq!(
                (ep.weight, ep.locality.as_deref(), ep.network.as_deref()),
                (5, Some("us-east/us-east-1a"), Some("external"))
            );
            assert_eq!(
                ep.identity("cluster.local").as_deref(),
                Some("spiffe://cluster.local/ns/egress/sa/payments")
            );
            assert_eq!(
                (ep.namespace.as_str(), ep.workload.as_deref()),
                ("egress", None)
            );
            assert_eq!(ep.labels.get("region").map(String::as_str), Some("a"));
            assert_eq!(
                (
                    svc.endpoints[1].weight,
                    svc.endpoints[1].service_account.as_deref()
                ),
                (1, None)
            );
        }
        let db = c.mesh.service("db.payments.example").expect("db");
        let ports: Vec<_> = db.ports.iter().map(|p| (p.number, p.protocol)).collect();
        assert_eq!(
            ports,
            [(3306, Protocol::Tcp), (8080, Protocol::Unknown)],
            "no protocol: detect, except server-first ports"
        );
        assert_eq!((db.resolution, db.endpoints.len()), (Resolution::Dns, 0));
        let lines: Vec<u32> = c
            .diagnostics
            .iter()
            .filter(|d| d.code == Code::IgnoredSetting)
            .map(|d| d.line)
            .collect();
        let want = [
            line_of(text, "HTTP_PROXY"),
            line_of(text, "subjectAltNames"),
            line_of(text, "protocol: UDP"),
        ];
        assert_eq!(lines, want, "{:#?}", c.diagnostics);
    }

    #[test]
    fn workload_selector_picks_entries_and_pods() {
        let text = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy}
spec:
  hosts: [legacy.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: legacy}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1}
spec:
  address: 192.0.2.1
  labels: {app: legacy, version: v1}
  ports: {http: 9080}
  serviceAccount: legacy
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-sick}
spec: {address: 192.0.2.2, labels: {app: legacy}}
status: {conditions: [{type: Healthy, status: "False"}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-elsewhere, namespace: prod}
spec: {address: 192.0.2.3, labels: {app: legacy}}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy-pod, labels: {app: legacy, version: v2}}
spec: {serviceAccountName: legacy, containers: [{name: app, image: l}]}
status: {podIP: 10.4.0.1}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough}
spec:
  hosts: [db.internal]
  resolution: NONE
  ports: [{number: 5432, name: tcp-db, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns}
spec:
  hosts: [api.example.com]
  resolution: DNS_ROUND_ROBIN
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cdn}
spec:
  hosts: ["*.cdn.example.com"]
  resolution: DYNAMIC_DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
"#;
        let c = run(text);
        let svc = c.mesh.service("legacy.internal").expect("service");
        assert_eq!(svc.location, ServiceLocation::MeshInternal);
        let eps: Vec<_> = svc
            .endpoints
            .iter()
            .map(|e| (e.address.as_str(), e.ready, e.workload.as_deref()))
            .collect();
        assert_eq!(
            eps,
            [
                ("192.0.2.1", true, Some("vm-1")),
                ("192.0.2.2", false, Some("vm-sick")),
                ("10.4.0.1", true, Some("legacy-pod"))
            ]
        );
        assert_eq!(svc.endpoints[0].target_port(&svc.ports[0]), 9080);
        assert_eq!(
            svc.endpoints[2].labels.get("version").map(String::as_str),
            Some("v2")
        );
        assert_eq!(svc.endpoints[2].service_account.as_deref(), Some("legacy"));
        let db = c.mesh.service("db.internal").expect("passthrough");
        assert_eq!(
            (db.resolution, db.ports[0].protocol, db.endpoints.len()),
            (Resolution::Passthrough, Protocol::Tcp, 0)
        );
        let cdn = c
            .mesh
            .service_for_host("img.cdn.example.com")
            .expect("wildcard kept");
        assert_eq!(
            (cdn.host.as_str(), cdn.resolution),
            ("*.cdn.example.com", Resolution::Dns)
        );
        let api = c.mesh.service("api.example.com").expect("dns round robin");
        assert_eq!(
            (api.resolution, api.location),
            (Resolution::DnsRoundRobin, ServiceLocation::MeshExternal)
        );
        assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    }
}
