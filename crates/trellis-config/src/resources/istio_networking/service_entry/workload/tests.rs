//! WorkloadEntry and WorkloadGroup rules (the reference examples load in `service_entry::tests`).

use crate::diag::{Diagnostic, Severity};
use crate::load::{LoadOptions, Loaded, load_str};

fn load(yaml: &str) -> Loaded {
    load_str("test.yaml", yaml, &LoadOptions::default())
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

fn we(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: vm1\nspec:\n{spec}"
    )
}

#[test]
fn workload_entry_rules() {
    assert_error(
        &we("  labels: {app: vm}\n"),
        "missing required field `spec.address`",
    );
    assert_error(
        &we("  address: unix:///var/run/a.sock\n  ports: {http: 80}\n"),
        "must not list ports",
    );
    assert_error(&we("  address: unix://relative.sock\n"), "absolute path");
    assert_error(
        &we("  address: 10.0.0.1\n  ports: {http: 0}\n"),
        "`spec.ports.http`",
    );
    assert_error(
        &we("  address: 10.0.0.1\n  labels: {'bad key!': x}\n"),
        "invalid label key",
    );
    assert_clean(&we(
        "  address: vm1.example.com\n  ports: {http: 8080}\n  network: west\n  locality: us-east1/us-east1-b\n  weight: 10\n",
    ));
    let l = load(&we("  network: west\n"));
    assert!(errors(&l.diagnostics).is_empty());
    assert!(
        l.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Warning && d.message.contains("address is unset"))
    );
}

fn wg(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata:\n  name: g\nspec:\n{spec}"
    )
}

#[test]
fn workload_group_rules() {
    assert_error(
        &wg("  metadata:\n    labels: {app: x}\n"),
        "missing required field `spec.template`",
    );
    let template = "  template:\n    serviceAccount: default\n";
    assert_clean(&wg(template));
    assert_clean(&wg(&format!(
        "{template}  probe:\n    grpc: {{port: 50051, service: health}}\n"
    )));
    assert_clean(&wg(&format!(
        "{template}  probe:\n    exec: {{command: [cat, /tmp/healthy]}}\n"
    )));
    let cases = [
        (
            "  probe:\n    periodSeconds: 10\n",
            "one of httpGet, tcpSocket, exec, grpc is required",
        ),
        (
            "  probe:\n    tcpSocket: {port: 80}\n    exec: {command: [true]}\n",
            "only one of",
        ),
        (
            "  probe:\n    periodSeconds: -1\n    tcpSocket: {port: 80}\n",
            "must not be negative",
        ),
        (
            "  probe:\n    tcpSocket: {host: localhost}\n",
            "`spec.probe.tcpSocket.port`",
        ),
        (
            "  probe:\n    httpGet: {port: 80, scheme: FTP}\n",
            "HTTP or HTTPS",
        ),
        (
            "  probe:\n    httpGet:\n      port: 80\n      httpHeaders: [{name: 'bad header', value: x}]\n",
            "header name",
        ),
        ("  probe:\n    exec: {}\n", "`spec.probe.exec.command`"),
    ];
    for (probe, needle) in cases {
        assert_error(&wg(&format!("{template}{probe}")), needle);
    }
}
