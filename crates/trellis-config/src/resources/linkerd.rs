//! Linkerd resources: `linkerd.io` ServiceProfile (routes, retry budget, traffic-split overrides)
//! and the `policy.linkerd.io` server policy kinds (Server, ServerAuthorization,
//! AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication).
//!
//! Field lists follow Linkerd's CRDs and Go/Rust API types; the rules in `Validate` are the ones
//! `linkerd profile --validate`, the CRD schemas and the policy controller's admission webhook
//! enforce. The policy.linkerd.io HTTPRoute is the Gateway API HTTPRoute type (`gateway_api`).

mod authz;
mod network;
mod server;

pub use authz::{AuthorizationPolicy, MeshTlsAuthentication, NamespacedTargetRef, TargetRef};
pub use network::{Cidr, Network, NetworkAuthentication};
pub use server::{
    AccessPolicy, Client, MeshTls, ProxyProtocol, Server, ServerAuthorization, ServerRef,
    ServiceAccountRef,
};

use crate::resources::common::{Duration, Quantity, RegexString};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// ServiceProfile spec: per-route metrics, timeouts and retryability for one service, its retry
/// budget and (for traffic splits) weighted destination overrides.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceProfile {
    pub routes: Vec<RouteSpec>,
    /// One budget for the whole service: routes only say whether they may be retried.
    pub retry_budget: Option<RetryBudget>,
    pub dst_overrides: Vec<WeightedDst>,
    pub opaque_ports: Vec<u32>,
}

/// One named route: the requests it matches, how responses are classified, timeout, retryability.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteSpec {
    pub name: String,
    pub condition: Option<RequestMatch>,
    pub response_classes: Vec<ResponseClass>,
    pub is_retryable: Option<bool>,
    pub timeout: Option<Duration>,
}

/// Request condition; every field that is set must match (`all`/`any`/`not` nest).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestMatch {
    pub all: Vec<RequestMatch>,
    pub any: Vec<RequestMatch>,
    pub not: Option<Box<RequestMatch>>,
    /// Matched against the whole path (Linkerd anchors it).
    pub path_regex: Option<RegexString>,
    pub method: Option<String>,
}

/// Classifies responses matching `condition` as failures (or explicitly as successes).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponseClass {
    pub condition: Option<ResponseMatch>,
    pub is_failure: Option<bool>,
}

/// Response condition; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponseMatch {
    pub all: Vec<ResponseMatch>,
    pub any: Vec<ResponseMatch>,
    pub not: Option<Box<ResponseMatch>>,
    pub status: Option<StatusRange>,
}

/// Inclusive HTTP status range; an unset (or zero) bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusRange {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

/// How many retries the service may add on top of its regular traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryBudget {
    /// Retries allowed per original request, e.g. 0.2 for 20% extra load.
    pub retry_ratio: Option<f64>,
    pub min_retries_per_second: Option<u32>,
    /// How long requests count towards the ratio.
    pub ttl: Option<Duration>,
}

/// A weighted alternative destination (what TrafficSplit compiles into).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WeightedDst {
    pub authority: String,
    pub weight: Option<Quantity>,
}

impl Validate for ServiceProfile {
    fn validate(&self, cx: &mut Cx) {
        cx.list("routes", &self.routes);
        cx.opt("retryBudget", &self.retry_budget);
        cx.list("dstOverrides", &self.dst_overrides);
        cx.field("opaquePorts", |cx| {
            for (i, p) in self.opaque_ports.iter().enumerate() {
                if !(1..=65535).contains(p) {
                    cx.index(i, |cx| {
                        cx.error(format!("port {p} is out of range; expected 1 to 65535"))
                    });
                }
            }
        });
    }
}

impl Validate for RouteSpec {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        cx.require("condition", self.condition.is_some());
        cx.opt("condition", &self.condition);
        cx.field("responseClasses", |cx| {
            for (i, rc) in self.response_classes.iter().enumerate() {
                cx.index(i, |cx| {
                    cx.require("condition", rc.condition.is_some());
                    cx.opt("condition", &rc.condition);
                });
            }
        });
    }
}

impl Validate for RequestMatch {
    fn validate(&self, cx: &mut Cx) {
        let set = !self.all.is_empty()
            || !self.any.is_empty()
            || self.not.is_some()
            || self.path_regex.as_ref().is_some_and(|r| !r.0.is_empty())
            || self.method.as_deref().is_some_and(|m| !m.is_empty());
        if !set {
            cx.error("a request condition needs at least one of pathRegex, method, all, any, not");
        }
        cx.list("all", &self.all);
        cx.list("any", &self.any);
        cx.opt("not", &self.not);
        cx.opt("pathRegex", &self.path_regex);
    }
}

impl Validate for ResponseMatch {
    fn validate(&self, cx: &mut Cx) {
        if self.all.is_empty() && self.any.is_empty() && self.not.is_none() && self.status.is_none()
        {
            cx.error("a response condition needs at least one of status, all, any, not");
        }
        cx.list("all", &self.all);
        cx.list("any", &self.any);
        cx.opt("not", &self.not);
        cx.opt("status", &self.status);
    }
}

impl Validate for StatusRange {
    fn validate(&self, cx: &mut Cx) {
        // Linkerd treats 0 as "not set", so only non-zero bounds are range-checked.
        let min = self.min.filter(|v| *v != 0);
        let max = self.max.filter(|v| *v != 0);
        for (name, v) in [("min", min), ("max", max)] {
            if let Some(v) = v
                && !(100..=599).contains(&v)
            {
                cx.error_at(
                    name,
                    format!("status {v} is not an HTTP status; expected 100 to 599"),
                );
            }
        }
        if let (Some(lo), Some(hi)) = (min, max)
            && hi < lo
        {
            cx.error(format!(
                "status range is empty: max {hi} is smaller than min {lo}"
            ));
        }
    }
}

impl Validate for RetryBudget {
    fn validate(&self, cx: &mut Cx) {
        cx.require("retryRatio", self.retry_ratio.is_some());
        cx.require("minRetriesPerSecond", self.min_retries_per_second.is_some());
        cx.require("ttl", self.ttl.is_some());
        if let Some(r) = self.retry_ratio
            && !(r >= 0.0 && r.is_finite())
        {
            cx.error_at(
                "retryRatio",
                format!("retryRatio must be a non-negative number (e.g. 0.2), got {r}"),
            );
        }
    }
}

impl Validate for WeightedDst {
    fn validate(&self, cx: &mut Cx) {
        cx.require("authority", !self.authority.is_empty());
        cx.require("weight", self.weight.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Diagnostic};
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    fn load(text: &str) -> (Option<ServiceProfile>, Vec<Diagnostic>) {
        let loaded = load_str("test.yaml", text, &LoadOptions::default());
        let sp = loaded.resources.into_iter().find_map(|r| match r.spec {
            Spec::ServiceProfile(sp) => Some(*sp),
            _ => None,
        });
        (sp, loaded.diagnostics)
    }

    fn profile(spec: &str) -> String {
        format!(
            "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  name: web.default.svc.cluster.local\nspec:\n{spec}"
        )
    }

    fn messages(diags: &[Diagnostic]) -> Vec<String> {
        diags
            .iter()
            .map(|d| format!("{}:{} {} {}", d.line, d.column, d.code, d.message))
            .collect()
    }

    #[test]
    fn full_profile_parses() {
        let (sp, diags) = load(&profile(
            r#"  routes:
  - name: GET /books/{id}
    condition:
      all:
      - method: GET
      - pathRegex: '/books/[^/]*'
      - not:
          pathRegex: /books/admin
    responseClasses:
    - condition:
        any:
        - status: {min: 500, max: 599}
        - not:
            status: {min: 200}
      isFailure: true
    isRetryable: true
    timeout: 250ms
  retryBudget:
    retryRatio: 0.2
    minRetriesPerSecond: 10
    ttl: 10s
  dstOverrides:
  - authority: web-v2.default.svc.cluster.local:8080
    weight: 900m
  - authority: web.default.svc.cluster.local:8080
    weight: 100m
  opaquePorts: [3306, "5432"]
"#,
        ));
        assert!(diags.is_empty(), "{:?}", messages(&diags));
        let sp = sp.expect("loaded");
        let r = &sp.routes[0];
        assert_eq!(r.name, "GET /books/{id}");
        assert_eq!(r.timeout, Some(Duration::from_millis(250)));
        assert_eq!(r.is_retryable, Some(true));
        let cond = r.condition.as_ref().expect("condition");
        assert_eq!(cond.all[0].method.as_deref(), Some("GET"));
        assert_eq!(
            cond.all[1].path_regex,
            Some(RegexString("/books/[^/]*".into()))
        );
        assert!(cond.all[2].not.is_some());
        let rc = &r.response_classes[0];
        assert_eq!(rc.is_failure, Some(true));
        let any = &rc.condition.as_ref().expect("condition").any;
        assert_eq!(
            any[0].status,
            Some(StatusRange {
                min: Some(500),
                max: Some(599)
            })
        );
        let budget = sp.retry_budget.expect("budget");
        assert_eq!(budget.retry_ratio, Some(0.2));
        assert_eq!(budget.min_retries_per_second, Some(10));
        assert_eq!(budget.ttl, Some(Duration::from_millis(10_000)));
        assert_eq!(sp.dst_overrides[0].weight, Some(Quantity { milli: 900 }));
        assert_eq!(sp.opaque_ports, vec![3306, 5432]);
    }

    #[test]
    fn seed_retries_inside_a_route_is_an_unknown_field() {
        let text = std::fs::read_to_string("/work/shared/fixtures/seed-configs/000-16.yaml");
        let Ok(text) = text else { return };
        let (sp, diags) = load(&text);
        let sp = sp.expect("the rest of the profile still loads");
        assert_eq!(sp.routes.len(), 2);
        assert_eq!(sp.routes[0].timeout, Some(Duration::from_millis(3000)));
        let unknown: Vec<&Diagnostic> = diags
            .iter()
            .filter(|d| d.code == Code::UnknownField)
            .collect();
        assert_eq!(unknown.len(), 1, "{:?}", messages(&diags));
        assert_eq!((unknown[0].line, unknown[0].column), (13, 5));
        assert!(
            unknown[0].message.contains("`retries`"),
            "{}",
            unknown[0].message
        );
        assert!(
            unknown[0].message.contains("spec.retryBudget"),
            "{}",
            unknown[0].message
        );
        assert!(sp.retry_budget.is_none());
    }

    #[test]
    fn seed_retry_budget_inside_a_route_is_an_unknown_field() {
        let text = std::fs::read_to_string("/work/shared/fixtures/seed-configs/004-05.yaml");
        let Ok(text) = text else { return };
        let (sp, diags) = load(&text);
        let sp = sp.expect("loads");
        assert_eq!(sp.routes.len(), 2);
        assert!(
            sp.retry_budget.is_none(),
            "a route's retryBudget must not become the service's"
        );
        let rc = &sp.routes[0].response_classes;
        assert_eq!(rc[1].is_failure, Some(true));
        assert_eq!(sp.routes[1].is_retryable, Some(false));
        let unknown: Vec<&Diagnostic> = diags
            .iter()
            .filter(|d| d.code == Code::UnknownField)
            .collect();
        assert_eq!(unknown.len(), 1, "{:?}", messages(&diags));
        assert_eq!((unknown[0].line, unknown[0].column), (23, 5));
        assert!(
            unknown[0].message.contains("`retryBudget`"),
            "{}",
            unknown[0].message
        );
        assert!(
            diags.iter().all(|d| d.code == Code::UnknownField),
            "{:?}",
            messages(&diags)
        );
    }

    #[test]
    fn route_needs_name_and_condition() {
        let (_, diags) = load(&profile("  routes:\n  - timeout: 1s\n"));
        let m = messages(&diags);
        assert!(
            m.iter().any(|m| m.contains("`spec.routes[0].name`")),
            "{m:?}"
        );
        assert!(
            m.iter().any(|m| m.contains("`spec.routes[0].condition`")),
            "{m:?}"
        );
    }

    #[test]
    fn empty_conditions_are_rejected() {
        let (_, diags) = load(&profile(
            "  routes:\n  - name: r\n    condition: {}\n    responseClasses:\n    - condition: {}\n    - isFailure: true\n",
        ));
        let m = messages(&diags);
        assert!(
            m.iter()
                .any(|m| m.starts_with("8:") && m.contains("request condition needs")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.starts_with("10:") && m.contains("response condition needs")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.contains("`spec.routes[0].responseClasses[1].condition`")),
            "{m:?}"
        );
    }

    #[test]
    fn status_ranges_are_checked() {
        let cond = |status: &str| {
            profile(&format!(
                "  routes:\n  - name: r\n    condition: {{method: GET}}\n    responseClasses:\n    - condition:\n        not:\n          status: {status}\n"
            ))
        };
        let (_, diags) = load(&cond("{min: 500, max: 400}"));
        assert!(
            messages(&diags)
                .iter()
                .any(|m| m.contains("max 400 is smaller than min 500")),
            "{:?}",
            messages(&diags)
        );
        let (_, diags) = load(&cond("{min: 500, max: 600}"));
        let m = messages(&diags);
        assert!(
            m.iter()
                .any(|m| m.contains("status 600") && m.contains("100 to 599")),
            "{m:?}"
        );
        let (_, diags) = load(&cond("{min: 42}"));
        assert_eq!(diags.len(), 1, "{:?}", messages(&diags));
        let (_, diags) = load(&cond("{min: 500}"));
        assert!(diags.is_empty(), "{:?}", messages(&diags));
    }

    #[test]
    fn deeply_nested_conditions_load() {
        // Conditions are recursive; the YAML depth limit (128) bounds the recursion.
        let depth = 110;
        let cond = format!(
            "{}{{method: GET}}{}",
            "{not: ".repeat(depth),
            "}".repeat(depth)
        );
        let (sp, diags) = load(&profile(&format!(
            "  routes:\n  - name: r\n    condition: {cond}\n"
        )));
        assert!(diags.is_empty(), "{:?}", messages(&diags));
        let mut m = sp
            .and_then(|sp| sp.routes.into_iter().next())
            .and_then(|r| r.condition);
        let mut n = 0;
        while let Some(c) = m {
            m = c.not.map(|b| *b);
            n += 1;
        }
        assert_eq!(n, depth + 1);
    }

    #[test]
    fn bad_path_regex_is_reported() {
        let (_, diags) = load(&profile(
            "  routes:\n  - name: r\n    condition:\n      pathRegex: /books/(\n",
        ));
        assert!(
            diags
                .iter()
                .any(|d| d.code == Code::InvalidRegex && d.line == 9),
            "{:?}",
            messages(&diags)
        );
    }

    #[test]
    fn retry_budget_fields() {
        let (_, diags) = load(&profile("  retryBudget:\n    retryRatio: -0.5\n"));
        let m = messages(&diags);
        assert!(m.iter().any(|m| m.contains("non-negative")), "{m:?}");
        assert!(
            m.iter()
                .any(|m| m.contains("`spec.retryBudget.minRetriesPerSecond`")),
            "{m:?}"
        );
        assert!(
            m.iter().any(|m| m.contains("`spec.retryBudget.ttl`")),
            "{m:?}"
        );
        let (_, diags) = load(&profile(
            "  retryBudget:\n    retryRatio: 0.2\n    minRetriesPerSecond: 10\n    ttl: 10\n",
        ));
        assert!(
            diags.iter().any(|d| d.message.contains("missing unit")),
            "{:?}",
            messages(&diags)
        );
    }

    #[test]
    fn dst_overrides_and_opaque_ports() {
        let (_, diags) = load(&profile(
            "  dstOverrides:\n  - weight: 1\n  opaquePorts: [0, 70000]\n",
        ));
        let m = messages(&diags);
        assert!(
            m.iter()
                .any(|m| m.contains("`spec.dstOverrides[0].authority`")),
            "{m:?}"
        );
        assert_eq!(
            m.iter().filter(|m| m.contains("out of range")).count(),
            2,
            "{m:?}"
        );
    }
}
