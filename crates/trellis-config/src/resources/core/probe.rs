//! Container probes. Trellis reads them because an injected sidecar must rewrite HTTP, TCP and
//! gRPC probes to pass through the proxy's health port; `exec` probes run in the container.

use super::{check_port_number, check_port_ref};
use crate::resources::common::IntOrString;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Liveness, readiness or startup probe: exactly one handler plus timing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Probe {
    pub http_get: Option<HttpGetAction>,
    pub tcp_socket: Option<TcpSocketAction>,
    pub grpc: Option<GrpcAction>,
    pub exec: Option<ExecAction>,
    pub initial_delay_seconds: Option<i32>,
    pub period_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub success_threshold: Option<i32>,
    pub failure_threshold: Option<i32>,
    pub termination_grace_period_seconds: Option<i64>,
}

/// HTTP GET probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpGetAction {
    pub path: Option<String>,
    pub port: Option<IntOrString>,
    pub host: Option<String>,
    pub scheme: Option<UriScheme>,
    pub http_headers: Vec<HttpHeader>,
}

/// A header sent by an HTTP probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// TCP connect probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpSocketAction {
    pub port: Option<IntOrString>,
    pub host: Option<String>,
}

/// gRPC health-check probe (numeric port only).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcAction {
    pub port: Option<i32>,
    pub service: Option<String>,
}

/// Command probe; runs inside the container, so the mesh leaves it alone.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecAction {
    pub command: Vec<String>,
}

/// Probe `scheme`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum UriScheme {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl Validate for Probe {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["httpGet", "tcpSocket", "grpc", "exec"],
            &[
                self.http_get.is_some(),
                self.tcp_socket.is_some(),
                self.grpc.is_some(),
                self.exec.is_some(),
            ],
            true,
        );
        if let Some(h) = &self.http_get {
            cx.field("httpGet", |cx| match &h.port {
                Some(p) => check_port_ref(cx, "port", p),
                None => cx.require("port", false),
            });
        }
        if let Some(t) = &self.tcp_socket {
            cx.field("tcpSocket", |cx| match &t.port {
                Some(p) => check_port_ref(cx, "port", p),
                None => cx.require("port", false),
            });
        }
        if let Some(g) = &self.grpc {
            cx.field("grpc", |cx| match g.port {
                Some(p) => check_port_number(cx, "port", i64::from(p)),
                None => cx.require("port", false),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::Diagnostic;
    use crate::resources::Spec;
    use crate::resources::core::tests::load_all;

    fn pod(spec: &str) -> (Option<Spec>, Vec<Diagnostic>) {
        let (specs, diags) = load_all(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n{spec}"
        ));
        (specs.into_iter().next(), diags)
    }

    fn has(diags: &[Diagnostic], line: u32, text: &str) -> bool {
        diags
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    }

    #[test]
    fn probe_rules() {
        let probe = |p: &str| {
            pod(&format!(
                "  containers:\n  - name: a\n    image: x\n    readinessProbe:\n{p}"
            ))
        };
        let (_, diags) = probe("      periodSeconds: 5\n");
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("one of httpGet, tcpSocket, grpc, exec is required")),
            "{diags:?}"
        );
        let (_, diags) = probe("      httpGet: {path: /}\n      exec: {command: [true]}\n");
        assert!(
            diags.iter().any(|d| d.message.contains("only one of")),
            "{diags:?}"
        );
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("`spec.containers[0].readinessProbe.httpGet.port`")),
            "{diags:?}"
        );
        let (_, diags) = probe("      tcpSocket: {port: 99999}\n");
        assert!(has(&diags, 10, "out of range"), "{diags:?}");
        let (_, diags) = probe("      httpGet: {port: 8080, scheme: http}\n");
        assert!(has(&diags, 10, "unknown variant"), "{diags:?}");
    }
}
