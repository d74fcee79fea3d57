//! Pod spec and containers. Trellis reads the service account (identity), container ports
//! (inbound listeners), probes (rewritten when a sidecar is injected) and host networking; the
//! rest is carried as written so injection can hand it back unchanged.

use super::probe::Probe;
use super::{Protocol, check_port_number};
use crate::resources::common::{Labels, Opaque};
use crate::resources::names::is_port_name;
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Pod spec; a Pod's `spec` and a workload template's `spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
    pub ephemeral_containers: Vec<Opaque>,
    pub service_account_name: Option<String>,
    /// Deprecated alias of `serviceAccountName`; the API server still fills it in.
    pub service_account: Option<String>,
    pub automount_service_account_token: Option<bool>,
    pub node_name: Option<String>,
    pub host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    pub host_users: Option<bool>,
    pub share_process_namespace: Option<bool>,
    pub hostname: Option<String>,
    pub hostname_override: Option<String>,
    pub subdomain: Option<String>,
    #[serde(rename = "setHostnameAsFQDN")]
    pub set_hostname_as_fqdn: Option<bool>,
    pub host_aliases: Vec<Opaque>,
    pub dns_policy: Option<DnsPolicy>,
    pub dns_config: Option<Opaque>,
    pub enable_service_links: Option<bool>,
    pub restart_policy: Option<RestartPolicy>,
    pub termination_grace_period_seconds: Option<i64>,
    pub active_deadline_seconds: Option<i64>,
    pub node_selector: Labels,
    pub affinity: Option<Opaque>,
    pub tolerations: Vec<Opaque>,
    pub topology_spread_constraints: Vec<Opaque>,
    pub scheduler_name: Option<String>,
    pub scheduling_gates: Vec<Opaque>,
    pub priority: Option<i32>,
    pub priority_class_name: Option<String>,
    pub preemption_policy: Option<String>,
    pub runtime_class_name: Option<String>,
    pub overhead: Option<Opaque>,
    pub readiness_gates: Vec<Opaque>,
    pub security_context: Option<Opaque>,
    pub image_pull_secrets: Vec<Opaque>,
    pub volumes: Vec<Opaque>,
    pub os: Option<Opaque>,
    pub resource_claims: Vec<Opaque>,
    /// Pod-level resource requests and limits.
    pub resources: Option<Opaque>,
}

/// The Pod kind's content is its spec.
pub type Pod = PodSpec;

/// One container.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    pub image_pull_policy: Option<PullPolicy>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env: Vec<EnvVar>,
    pub env_from: Vec<Opaque>,
    pub ports: Vec<ContainerPort>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub resources: Option<Opaque>,
    pub resize_policy: Vec<Opaque>,
    /// `Always` marks a native sidecar among init containers.
    pub restart_policy: Option<String>,
    pub restart_policy_rules: Vec<Opaque>,
    pub volume_mounts: Vec<Opaque>,
    pub volume_devices: Vec<Opaque>,
    pub lifecycle: Option<Opaque>,
    pub security_context: Option<Opaque>,
    pub termination_message_path: Option<String>,
    pub termination_message_policy: Option<String>,
    pub stdin: Option<bool>,
    pub stdin_once: Option<bool>,
    pub tty: Option<bool>,
}

/// An environment variable; `valueFrom` (secrets, field refs) is carried as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub value_from: Option<Opaque>,
}

/// A port the container listens on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: i32,
    pub protocol: Option<Protocol>,
    pub host_port: Option<i32>,
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
}

/// Container `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// Pod `restartPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// Pod `dnsPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum DnsPolicy {
    #[default]
    ClusterFirst,
    ClusterFirstWithHostNet,
    Default,
    None,
}

impl PodSpec {
    /// The service account the pod runs as (its mesh identity), honouring the deprecated alias.
    pub fn service_account_name(&self) -> Option<&str> {
        self.service_account_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.service_account.as_deref())
    }
}

impl Validate for PodSpec {
    fn validate(&self, cx: &mut Cx) {
        if self.containers.is_empty() {
            cx.error_at("containers", "a pod needs at least one container");
        }
        cx.list("containers", &self.containers);
        cx.list("initContainers", &self.init_containers);
        let mut names = BTreeSet::new();
        for (field, list) in [
            ("containers", &self.containers),
            ("initContainers", &self.init_containers),
        ] {
            for (i, c) in list.iter().enumerate() {
                if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                    cx.field(field, |cx| {
                        cx.index(i, |cx| {
                            cx.error_at("name", format!("duplicate container name {:?}", c.name))
                        })
                    });
                }
            }
        }
        if self.service_account.is_some() && self.service_account_name.is_none() {
            cx.deprecated("serviceAccount", "`serviceAccountName`");
        }
    }
}

impl Validate for Container {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        cx.require(
            "image",
            self.image.as_deref().is_some_and(|i| !i.is_empty()),
        );
        cx.list("ports", &self.ports);
        let mut port_names = BTreeSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(n) = p.name.as_deref()
                && !port_names.insert(n)
            {
                cx.field("ports", |cx| {
                    cx.index(i, |cx| {
                        cx.error_at("name", format!("duplicate port name {n:?}"))
                    })
                });
            }
        }
        cx.field("env", |cx| {
            for (i, e) in self.env.iter().enumerate() {
                cx.index(i, |cx| cx.require("name", !e.name.is_empty()));
            }
        });
        cx.opt("livenessProbe", &self.liveness_probe);
        cx.opt("readinessProbe", &self.readiness_probe);
        cx.opt("startupProbe", &self.startup_probe);
    }
}

impl Validate for ContainerPort {
    fn validate(&self, cx: &mut Cx) {
        check_port_number(cx, "containerPort", i64::from(self.container_port));
        if let Some(h) = self.host_port.filter(|h| *h != 0) {
            check_port_number(cx, "hostPort", i64::from(h));
        }
        if let Some(n) = self.name.as_deref()
            && !is_port_name(n)
        {
            cx.error_at(
                "name",
                format!("{n:?} is not a valid port name: up to 15 lowercase letters, digits and '-', with at least one letter"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::resources::Spec;
    use crate::resources::common::IntOrString;
    use crate::resources::core::UriScheme;
    use crate::resources::core::tests::load_all;

    fn pod(spec: &str) -> (Option<PodSpec>, Vec<Diagnostic>) {
        let (specs, diags) = load_all(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n{spec}"
        ));
        let p = specs.into_iter().find_map(|s| match s {
            Spec::Pod(p) => Some(*p),
            _ => None,
        });
        (p, diags)
    }

    fn has(diags: &[Diagnostic], line: u32, text: &str) -> bool {
        diags
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    }

    #[test]
    fn full_pod_parses() {
        let (p, diags) = pod(r#"  serviceAccountName: web
  hostNetwork: false
  nodeName: node-1
  dnsPolicy: ClusterFirst
  restartPolicy: Always
  hostPID: false
  hostIPC: false
  setHostnameAsFQDN: false
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{operator: Exists}]
  volumes: [{name: data, emptyDir: {}}]
  securityContext: {runAsNonRoot: true}
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, "true"]
  containers:
  - name: web
    image: nginx:1.27
    imagePullPolicy: IfNotPresent
    args: ["--port", "8080"]
    env:
    - name: MODE
      value: "prod"
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    ports:
    - name: http
      containerPort: 8080
      protocol: TCP
      hostPort: 18080
      hostIP: 127.0.0.1
    readinessProbe:
      httpGet:
        path: /ready
        port: http
        scheme: HTTPS
        httpHeaders: [{name: X-Probe, value: "1"}]
      periodSeconds: 5
      failureThreshold: 3
    livenessProbe:
      tcpSocket: {port: 8080}
      terminationGracePeriodSeconds: 10
    startupProbe:
      grpc: {port: 9090, service: health}
    resources: {limits: {cpu: 500m}}
    volumeMounts: [{name: data, mountPath: /data}]
    securityContext: {readOnlyRootFilesystem: true}
    lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}
"#);
        assert!(diags.is_empty(), "{diags:?}");
        let p = p.expect("loaded");
        assert_eq!(p.service_account_name(), Some("web"));
        assert_eq!(p.host_network, Some(false));
        assert_eq!(p.restart_policy, Some(RestartPolicy::Always));
        assert_eq!(p.init_containers[0].command, vec!["sh", "-c", "true"]);
        let c = &p.containers[0];
        assert_eq!(c.image_pull_policy, Some(PullPolicy::IfNotPresent));
        assert_eq!(c.env[0].value.as_deref(), Some("prod"));
        assert!(c.env[1].value_from.is_some());
        assert_eq!(c.ports[0].container_port, 8080);
        assert_eq!(c.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
        let http = c
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("httpGet");
        assert_eq!(http.port, Some(IntOrString::String("http".into())));
        assert_eq!(http.scheme, Some(UriScheme::Https));
        assert_eq!(http.http_headers[0].name, "X-Probe");
        let tcp = c
            .liveness_probe
            .as_ref()
            .and_then(|p| p.tcp_socket.as_ref())
            .expect("tcpSocket");
        assert_eq!(tcp.port, Some(IntOrString::Int(8080)));
        assert_eq!(
            c.startup_probe
                .as_ref()
                .and_then(|p| p.grpc.as_ref())
                .and_then(|g| g.port),
            Some(9090)
        );
    }

    #[test]
    fn deprecated_service_account() {
        let (p, diags) = pod("  serviceAccount: legacy\n  containers: [{name: a, image: x}]\n");
        assert_eq!(
            p.as_ref().and_then(|p| p.service_account_name()),
            Some("legacy")
        );
        assert!(has(&diags, 6, "deprecated"), "{diags:?}");
        let (_, diags) = pod(
            "  serviceAccount: web\n  serviceAccountName: web\n  containers: [{name: a, image: x}]\n",
        );
        assert!(diags.is_empty(), "API server output sets both: {diags:?}");
    }

    #[test]
    fn container_rules() {
        let (_, diags) = pod("  hostNetwork: true\n");
        assert!(has(&diags, 6, "at least one container"), "{diags:?}");
        let (_, diags) = pod(
            "  containers:\n  - image: x\n  - name: a\n    ports:\n    - {containerPort: 0, name: HTTP}\n    - {containerPort: 80, name: web, hostPort: 70000}\n    - {containerPort: 81, name: web}\n  - name: a\n    image: y\n",
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`spec.containers[0].name`")),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`spec.containers[1].image`")),
            "{diags:?}"
        );
        assert!(
            has(&diags, 10, "out of range") && has(&diags, 10, "not a valid port name"),
            "{diags:?}"
        );
        assert!(
            has(&diags, 11, "hostPort 70000") || has(&diags, 11, "port 70000"),
            "{diags:?}"
        );
        assert!(has(&diags, 12, "duplicate port name"), "{diags:?}");
        assert!(has(&diags, 13, "duplicate container name"), "{diags:?}");
    }
}
