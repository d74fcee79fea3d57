use super::*;
use crate::diag::{Diagnostic, Severity};
use crate::load::{LoadOptions, Loaded, load_str};
use crate::resources::Spec;

fn load(yaml: &str) -> Loaded {
    load_str("test.yaml", yaml, &LoadOptions::default())
}

fn se(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: se\nspec:\n{spec}"
    )
}

fn errors(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect()
}

fn assert_error(yaml: &str, needle: &str) {
    let l = load(yaml);
    assert!(
        errors(&l.diagnostics).iter().any(|m| m.contains(needle)),
        "expected {needle:?} in {:#?}",
        l.diagnostics
    );
}

fn assert_clean(yaml: &str) {
    let l = load(yaml);
    assert!(l.diagnostics.is_empty(), "{yaml}\n{:#?}", l.diagnostics);
    assert_eq!(l.resources.len(), 1);
}

/// Examples from Istio's ServiceEntry reference.
const EXAMPLES: &str = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-https
spec:
  hosts:
  - api.dropboxapi.com
  - www.googleapis.com
  - api.facebook.com
  location: MESH_EXTERNAL
  ports:
  - number: 443
    name: https
    protocol: TLS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-mongocluster
spec:
  hosts:
  - mymongodb.somedomain # not used
  addresses:
  - 192.192.192.192/24 # VIPs
  ports:
  - number: 27018
    name: mongodb
    protocol: MONGO
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - address: 2.2.2.2
  - address: 3.3.3.3
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: details-svc
spec:
  hosts:
  - details.bookinfo.com
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: 8080
  resolution: STATIC
  workloadSelector:
    labels:
      app: details-legacy
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-dns
spec:
  hosts:
  - foo.bar.com
  location: MESH_EXTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  endpoints:
  - address: us.foo.bar.com
    ports:
      http: 8080
  - address: uk.foo.bar.com
    ports:
      http: 9080
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: unix-domain-socket-example
spec:
  hosts:
  - "example.unix.local"
  location: MESH_EXTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: unix:///var/run/example/socket
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: details-svc
spec:
  serviceAccount: details-legacy
  address: 2.2.2.2
  labels:
    app: details-legacy
    instance-id: vm1
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata:
  name: reviews
  namespace: bookinfo
spec:
  metadata:
    labels:
      app.kubernetes.io/name: reviews
      app.kubernetes.io/version: "1.3.4"
  template:
    ports:
      grpc: 3550
      http: 8080
    serviceAccount: default
  probe:
    initialDelaySeconds: 5
    timeoutSeconds: 3
    periodSeconds: 4
    successThreshold: 3
    failureThreshold: 3
    httpGet:
     path: /foo/bar
     host: 127.0.0.1
     port: 3100
     scheme: HTTPS
     httpHeaders:
     - name: Lit-Header
       value: Im-The-Best
"#;

#[test]
fn reference_examples_parse_and_are_valid() {
    let l = load(EXAMPLES);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    assert_eq!(l.resources.len(), 7);
    let entries: Vec<&ServiceEntry> = l
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::ServiceEntry(s) => Some(&**s),
            _ => None,
        })
        .collect();
    assert_eq!(entries[0].hosts.len(), 3);
    assert_eq!(entries[0].resolution, ServiceEntryResolution::Dns);
    assert_eq!(entries[0].ports[0].protocol(), Some(PortProtocol::Tls));
    assert_eq!(entries[1].location, ServiceEntryLocation::MeshInternal);
    assert_eq!(entries[1].addresses, vec!["192.192.192.192/24"]);
    assert_eq!(entries[1].endpoints[1].address, "3.3.3.3");
    assert_eq!(entries[2].ports[0].target_port, Some(8080));
    let sel = entries[2].workload_selector.as_ref().expect("selector");
    assert_eq!(
        sel.labels.get("app").map(String::as_str),
        Some("details-legacy")
    );
    assert_eq!(entries[3].endpoints[0].ports.get("http"), Some(&8080));
    assert_eq!(
        entries[4].endpoints[0].address,
        "unix:///var/run/example/socket"
    );
    let Spec::WorkloadEntry(we) = &l.resources[5].spec else {
        panic!("not a WorkloadEntry")
    };
    assert_eq!(we.service_account.as_deref(), Some("details-legacy"));
    let Spec::WorkloadGroup(wg) = &l.resources[6].spec else {
        panic!("not a WorkloadGroup")
    };
    let probe = wg.probe.as_ref().expect("probe");
    assert_eq!(probe.period_seconds, Some(4));
    let get = probe.http_get.as_ref().expect("httpGet");
    assert_eq!((get.port, get.scheme.as_deref()), (3100, Some("HTTPS")));
    assert_eq!(get.http_headers[0].value, "Im-The-Best");
    assert_eq!(wg.template.as_ref().map(|t| t.ports.len()), Some(2));
}

const PORT: &str = "  ports:\n  - {number: 443, name: https, protocol: TLS}\n";

#[test]
fn hosts_are_required_and_checked() {
    assert_error(&se("  resolution: DNS\n"), "at least one host");
    assert_error(
        &se(&format!("  hosts: ['*']\n{PORT}")),
        "host \"*\" is not allowed",
    );
    assert_error(
        &se(&format!("  hosts: ['bad_host.com']\n{PORT}")),
        "bad_host",
    );
    // Partial wildcards are only a warning outside DYNAMIC_DNS.
    let l = load(&se(&format!("  hosts: ['*foo.example.com']\n{PORT}")));
    assert!(
        l.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Warning && d.message.contains("partial wildcard"))
    );
    assert!(errors(&l.diagnostics).is_empty(), "{:#?}", l.diagnostics);
}

#[test]
fn ports_are_checked() {
    assert_error(
        &se("  hosts: [a.example.com]\n  ports:\n  - {number: 80, protocol: HTTP}\n"),
        "`spec.ports[0].name`",
    );
    assert_error(
        &se("  hosts: [a.example.com]\n  ports:\n  - {number: 0, name: http}\n"),
        "`spec.ports[0].number`",
    );
    assert_error(
        &se("  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: Bad_Name}\n"),
        "invalid port name",
    );
    assert_error(
        &se("  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http, protocol: QUIC}\n"),
        "unsupported protocol",
    );
    assert_error(
        &se(
            "  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http, targetPort: 99999}\n",
        ),
        "99999",
    );
    let dup = "  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http}\n  - {number: 80, name: http}\n";
    assert_error(&se(dup), "already used");
    assert_error(&se(dup), "already defined");
    assert_clean(&se(
        "  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http}\n",
    ));
}

#[test]
fn selector_and_endpoints_are_exclusive() {
    let yaml = "  hosts: [a.example.com]\n  resolution: STATIC\n  workloadSelector:\n    labels: {app: a}\n  endpoints:\n  - address: 1.1.1.1\n";
    assert_error(&se(yaml), "only one of workloadSelector or endpoints");
    assert_error(
        &se(
            "  hosts: [a.example.com]\n  resolution: STATIC\n  workloadSelector:\n    labels: {app: '*'}\n",
        ),
        "wildcards",
    );
}

#[test]
fn resolution_rules() {
    assert_error(
        &se("  hosts: [a.example.com]\n  endpoints:\n  - address: 1.1.1.1\n"),
        "resolution NONE",
    );
    assert_error(
        &se(
            "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints:\n  - address: db.example.com\n",
        ),
        "must be an IP address",
    );
    assert_error(
        &se(
            "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints:\n  - labels: {app: db}\n",
        ),
        "`spec.endpoints[0].address`",
    );
    assert_error(
        &se(
            "  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http}\n  resolution: STATIC\n  endpoints:\n  - address: 1.1.1.1\n    ports: {grpc: 9090}\n",
        ),
        "not one of the ServiceEntry's port names",
    );
    assert_error(
        &se("  hosts: ['*.example.com']\n  resolution: DNS\n"),
        "fully qualified",
    );
    assert_error(
        &se(
            "  hosts: [a.example.com]\n  resolution: DNS_ROUND_ROBIN\n  endpoints:\n  - address: a.example.com\n  - address: b.example.com\n",
        ),
        "at most one endpoint",
    );
    assert_error(
        &se("  hosts: [a.example.com]\n  resolution: DNS\n  endpoints:\n  - address: not_a_host\n"),
        "not a valid hostname",
    );
    assert_error(
        &se("  hosts: [a.example.com]\n  addresses: [10.0.0.0/8]\n  resolution: DNS\n"),
        "CIDR addresses",
    );
    assert_error(
        &se("  hosts: [a.example.com]\n  addresses: [10.0.0.300]\n"),
        "not a valid IP address",
    );
    // Endpoints reached through a network gateway may omit the address.
    let l = load(&se(
        "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints:\n  - network: west\n",
    ));
    assert!(errors(&l.diagnostics).is_empty(), "{:#?}", l.diagnostics);
}

#[test]
fn dynamic_dns_rules() {
    let ok = "  hosts: ['*.example.com']\n  resolution: DYNAMIC_DNS\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n";
    assert_clean(&se(ok));
    assert_error(
        &se("  hosts: [a.example.com]\n  resolution: DYNAMIC_DNS\n"),
        "must be a wildcard",
    );
    assert_error(
        &se(
            "  hosts: ['*.example.com']\n  resolution: DYNAMIC_DNS\n  ports:\n  - {number: 27017, name: m, protocol: MONGO}\n",
        ),
        "supports only",
    );
}

#[test]
fn several_hosts_need_http_or_tls_ports() {
    let yaml = "  hosts: [a.example.com, b.example.com]\n  resolution: DNS\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n";
    assert_error(&se(yaml), "several hosts share a non-HTTP");
    let none = "  hosts: [a.example.com, b.example.com]\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n";
    assert_clean(&se(none));
}

#[test]
fn export_to_is_checked() {
    assert_error(
        &se(&format!(
            "  hosts: [a.example.com]\n{PORT}  exportTo: ['*', '.']\n"
        )),
        "cannot be combined",
    );
    assert_error(
        &se(&format!(
            "  hosts: [a.example.com]\n{PORT}  exportTo: ['.', '.']\n"
        )),
        "duplicate",
    );
    assert_error(
        &se(&format!(
            "  hosts: [a.example.com]\n{PORT}  exportTo: [Not_A_Namespace]\n"
        )),
        "must be",
    );
    assert_clean(&se(&format!(
        "  hosts: [a.example.com]\n{PORT}  exportTo: ['.', istio-system]\n"
    )));
}
