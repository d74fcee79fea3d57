//! Deployment and StatefulSet: a selector plus a pod template. Trellis reads the template's
//! labels and spec to know which workloads exist, what they are called and which ports they serve.

use super::pod::{PodSpec, RestartPolicy};
use crate::resources::common::{LabelSelector, ObjectMeta, Opaque};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Deployment spec (apps/v1).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Deployment {
    pub replicas: Option<i32>,
    pub selector: Option<LabelSelector>,
    pub template: PodTemplateSpec,
    pub strategy: Option<Opaque>,
    pub min_ready_seconds: Option<i32>,
    pub revision_history_limit: Option<i32>,
    pub progress_deadline_seconds: Option<i32>,
    pub paused: Option<bool>,
}

/// StatefulSet spec (apps/v1).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatefulSet {
    pub replicas: Option<i32>,
    pub selector: Option<LabelSelector>,
    pub template: PodTemplateSpec,
    /// The headless Service that gives each pod a stable DNS name.
    pub service_name: Option<String>,
    pub volume_claim_templates: Vec<Opaque>,
    pub pod_management_policy: Option<PodManagementPolicy>,
    pub update_strategy: Option<Opaque>,
    pub persistent_volume_claim_retention_policy: Option<Opaque>,
    pub ordinals: Option<Opaque>,
    pub min_ready_seconds: Option<i32>,
    pub revision_history_limit: Option<i32>,
}

/// The pods a workload creates: their metadata (labels, sidecar annotations) and spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodTemplateSpec {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

/// StatefulSet `podManagementPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum PodManagementPolicy {
    #[default]
    OrderedReady,
    Parallel,
}

/// Rules the API server applies to every workload with a selector and a template.
fn check_workload(
    cx: &mut Cx,
    kind: &str,
    replicas: Option<i32>,
    selector: &Option<LabelSelector>,
    template: &PodTemplateSpec,
) {
    if let Some(r) = replicas
        && r < 0
    {
        cx.error_at(
            "replicas",
            format!("replicas must not be negative, got {r}"),
        );
    }
    match selector {
        None => cx.require("selector", false),
        Some(sel) if sel.match_labels.is_empty() && sel.match_expressions.is_empty() => {
            cx.error_at(
                "selector",
                format!("an empty selector is invalid for a {kind}; select the template's labels"),
            );
        }
        Some(sel) => {
            cx.field("selector", |cx| sel.validate(cx));
            if !sel.matches(&template.metadata.labels) {
                cx.error_at(
                    "template.metadata.labels",
                    "`selector` does not match template `labels`; the template's labels must include every label the selector requires",
                );
            }
        }
    }
    cx.field("template", |cx| {
        cx.field("spec", |cx| {
            template.spec.validate(cx);
            if let Some(p) = template.spec.restart_policy
                && p != RestartPolicy::Always
            {
                cx.error_at(
                    "restartPolicy",
                    format!("a {kind}'s pods must use restartPolicy Always, got {p:?}"),
                );
            }
        });
    });
}

fn check_non_negative(cx: &mut Cx, fields: &[(&str, Option<i32>)]) {
    for (name, v) in fields {
        if let Some(v) = v
            && *v < 0
        {
            cx.error_at(name, format!("`{name}` must not be negative, got {v}"));
        }
    }
}

impl Validate for Deployment {
    fn validate(&self, cx: &mut Cx) {
        check_workload(
            cx,
            "Deployment",
            self.replicas,
            &self.selector,
            &self.template,
        );
        check_non_negative(
            cx,
            &[
                ("minReadySeconds", self.min_ready_seconds),
                ("revisionHistoryLimit", self.revision_history_limit),
                ("progressDeadlineSeconds", self.progress_deadline_seconds),
            ],
        );
        if let Some(deadline) = self.progress_deadline_seconds
            && deadline <= self.min_ready_seconds.unwrap_or(0)
        {
            cx.error_at(
                "progressDeadlineSeconds",
                "`progressDeadlineSeconds` must be greater than `minReadySeconds`",
            );
        }
    }
}

impl Validate for StatefulSet {
    fn validate(&self, cx: &mut Cx) {
        check_workload(
            cx,
            "StatefulSet",
            self.replicas,
            &self.selector,
            &self.template,
        );
        check_non_negative(
            cx,
            &[
                ("minReadySeconds", self.min_ready_seconds),
                ("revisionHistoryLimit", self.revision_history_limit),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Diagnostic};
    use crate::resources::Spec;
    use crate::resources::common::IntOrString;
    use crate::resources::core::ServiceType;
    use crate::resources::core::tests::load_all;

    fn has(diags: &[Diagnostic], line: u32, text: &str) -> bool {
        diags
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    }

    fn deployment(spec: &str) -> (Option<Deployment>, Vec<Diagnostic>) {
        let (specs, diags) = load_all(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n{spec}"
        ));
        let d = specs.into_iter().find_map(|s| match s {
            Spec::Deployment(d) => Some(*d),
            _ => None,
        });
        (d, diags)
    }

    #[test]
    fn seed_service_and_deployment() {
        let Ok(text) = std::fs::read_to_string("/work/shared/fixtures/seed-configs/000-01.yaml")
        else {
            return;
        };
        let (specs, diags) = load_all(&text);
        assert!(
            diags.iter().all(
                |d| d.code != Code::UnknownField && d.severity < crate::diag::Severity::Warning
            ),
            "{diags:?}"
        );
        assert_eq!(specs.len(), 2);
        let Spec::Service(svc) = &specs[0] else {
            panic!("first is the Service")
        };
        assert_eq!(svc.type_, None);
        assert_eq!(svc.type_.unwrap_or_default(), ServiceType::ClusterIP);
        assert_eq!(svc.ports[0].port, 8080);
        assert_eq!(svc.ports[0].name.as_deref(), Some("http"));
        assert_eq!(
            svc.selector.get("app").map(String::as_str),
            Some("hello-service")
        );
        let Spec::Deployment(d) = &specs[1] else {
            panic!("second is the Deployment")
        };
        assert_eq!(d.replicas, Some(2));
        let labels = &d.template.metadata.labels;
        assert_eq!(labels.get("version").map(String::as_str), Some("v1"));
        assert!(d.selector.as_ref().is_some_and(|s| s.matches(labels)));
        assert_eq!(
            d.template
                .metadata
                .annotations
                .get("sidecar.istio.io/inject")
                .map(String::as_str),
            Some("true")
        );
        let c = &d.template.spec.containers[0];
        assert_eq!(c.name, "hello-service");
        assert_eq!(c.image.as_deref(), Some("your-registry/hello-service:v1"));
        assert_eq!(c.ports[0].container_port, 8080);
        assert_eq!(c.env[0].value.as_deref(), Some("v1"));
        assert!(c.resources.is_some());
        let live = c
            .liveness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("liveness httpGet");
        assert_eq!(
            (live.path.as_deref(), &live.port),
            (Some("/health"), &Some(IntOrString::Int(8080)))
        );
        assert_eq!(
            c.readiness_probe
                .as_ref()
                .and_then(|p| p.initial_delay_seconds),
            Some(5)
        );
    }

    #[test]
    fn selector_must_match_template_labels() {
        let (_, diags) = deployment(
            "  selector:\n    matchLabels: {app: web, version: v2}\n  template:\n    metadata:\n      labels: {app: web, version: v1}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
        );
        assert!(
            has(&diags, 10, "`selector` does not match template `labels`"),
            "{diags:?}"
        );
        let (_, diags) = deployment(
            "  selector:\n    matchExpressions:\n    - {key: app, operator: In, values: [web]}\n  template:\n    metadata:\n      labels: {app: web, version: v1}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn workload_rules() {
        let (_, diags) =
            deployment("  replicas: -1\n  template:\n    spec:\n      restartPolicy: Never\n");
        assert!(has(&diags, 6, "must not be negative"), "{diags:?}");
        assert!(
            diags.iter().any(|d| d.message.contains("`spec.selector`")),
            "{diags:?}"
        );
        assert!(has(&diags, 9, "restartPolicy Always"), "{diags:?}");
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("at least one container")),
            "{diags:?}"
        );
        let (_, diags) = deployment(
            "  selector: {}\n  minReadySeconds: 30\n  progressDeadlineSeconds: 10\n  template:\n    spec:\n      containers: [{name: web, image: nginx}]\n",
        );
        assert!(has(&diags, 6, "empty selector"), "{diags:?}");
        assert!(
            has(&diags, 8, "greater than `minReadySeconds`"),
            "{diags:?}"
        );
        let (_, diags) = deployment(
            "  selector:\n    matchExpressions: [{key: app, operator: Equals}]\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
        );
        assert!(
            diags.iter().any(|d| d.message.contains("unknown operator")),
            "{diags:?}"
        );
    }

    #[test]
    fn full_stateful_set_parses() {
        let text = r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  replicas: 3
  serviceName: db-headless
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      serviceAccountName: db
      containers:
      - name: postgres
        image: postgres:16
        ports: [{name: pg, containerPort: 5432}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Delete}
  ordinals: {start: 1}
  minReadySeconds: 5
  revisionHistoryLimit: 10
"#;
        let (specs, diags) = load_all(text);
        assert!(diags.is_empty(), "{diags:?}");
        let Some(Spec::StatefulSet(s)) = specs.into_iter().next() else {
            panic!("no StatefulSet")
        };
        assert_eq!(s.replicas, Some(3));
        assert_eq!(s.service_name.as_deref(), Some("db-headless"));
        assert_eq!(s.pod_management_policy, Some(PodManagementPolicy::Parallel));
        assert_eq!(s.template.spec.service_account_name(), Some("db"));
        assert_eq!(s.volume_claim_templates.len(), 1);
        assert!(s.ordinals.is_some() && s.update_strategy.is_some());
    }

    #[test]
    fn stateful_set_rules() {
        let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  selector: {matchLabels: {app: db}}\n  podManagementPolicy: parallel\n  template:\n    metadata: {labels: {app: other}}\n    spec:\n      containers: [{name: db, image: pg}]\n";
        let (_, diags) = load_all(text);
        assert!(has(&diags, 7, "unknown variant"), "{diags:?}");
        let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  selector: {matchLabels: {app: db}}\n  minReadySeconds: -5\n  template:\n    metadata: {labels: {app: other}}\n    spec:\n      containers: [{name: db, image: pg}]\n";
        let (_, diags) = load_all(text);
        assert!(has(&diags, 7, "must not be negative"), "{diags:?}");
        assert!(has(&diags, 9, "does not match"), "{diags:?}");
    }
}
