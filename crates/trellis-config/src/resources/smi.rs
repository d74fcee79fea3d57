//! SMI TrafficSplit (`split.smi-spec.io` v1alpha1–v1alpha4): weighted traffic shifting from a
//! root service to backend services, as Linkerd's SMI extension, OSM and Flagger use it.

use crate::resources::common::Quantity;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// TrafficSplit spec: traffic for `service` is spread over `backends` by weight.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficSplit {
    /// The root (apex) service clients address.
    pub service: String,
    pub backends: Vec<TrafficSplitBackend>,
    /// v1alpha3+: route groups (HTTPRouteGroup, TCPRoute) that restrict which traffic is split.
    pub matches: Vec<TrafficSplitMatch>,
}

/// A backend service and its share.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficSplitBackend {
    pub service: String,
    /// v1alpha1 writes quantities (`900m`), later versions integers; both are read as quantities.
    pub weight: Option<Quantity>,
}

/// A reference to a route group in the same namespace.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficSplitMatch {
    pub kind: String,
    pub name: String,
    pub api_group: Option<String>,
}

impl TrafficSplit {
    /// Sum of all weights, in thousandths.
    pub fn total_weight_milli(&self) -> u64 {
        self.backends
            .iter()
            .map(|b| b.weight.map_or(0, |w| w.milli))
            .fold(0, u64::saturating_add)
    }

    /// Each backend's share in percent; the shares add up to 100. When every weight is 0 no
    /// backend gets traffic (SMI then leaves it to the root service) and all shares are 0.
    pub fn percentages(&self) -> Vec<(String, f64)> {
        let total = self.total_weight_milli();
        self.backends
            .iter()
            .map(|b| {
                let w = b.weight.map_or(0, |w| w.milli);
                let pct = if total == 0 {
                    0.0
                } else {
                    w as f64 * 100.0 / total as f64
                };
                (b.service.clone(), pct)
            })
            .collect()
    }
}

impl Validate for TrafficSplit {
    fn validate(&self, cx: &mut Cx) {
        cx.require("service", !self.service.is_empty());
        if self.backends.is_empty() {
            cx.error_at("backends", "`backends` needs at least one backend service");
        }
        cx.list("backends", &self.backends);
        if !self.backends.is_empty()
            && self.backends.iter().all(|b| b.weight.is_some())
            && self.total_weight_milli() == 0
        {
            cx.error_at(
                "backends",
                "the backend weights add up to 0; at least one backend needs a positive weight",
            );
        }
        cx.list("matches", &self.matches);
    }
}

impl Validate for TrafficSplitBackend {
    fn validate(&self, cx: &mut Cx) {
        cx.require("service", !self.service.is_empty());
        cx.require("weight", self.weight.is_some());
    }
}

impl Validate for TrafficSplitMatch {
    fn validate(&self, cx: &mut Cx) {
        cx.require("kind", !self.kind.is_empty());
        cx.require("name", !self.name.is_empty());
        if !self.kind.is_empty() && !matches!(self.kind.as_str(), "HTTPRouteGroup" | "TCPRoute") {
            cx.report_at(
                "kind",
                crate::diag::Severity::Warning,
                crate::diag::Code::SchemaValidation,
                format!("match kind {:?} is not HTTPRouteGroup or TCPRoute; SMI implementations ignore it", self.kind),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    fn load(text: &str) -> crate::load::Loaded {
        load_str("ts.yaml", text, &LoadOptions::default())
    }

    fn split(l: &crate::load::Loaded) -> &TrafficSplit {
        match l
            .resources
            .iter()
            .map(|r| &r.spec)
            .find(|s| matches!(s, Spec::TrafficSplit(_)))
        {
            Some(Spec::TrafficSplit(ts)) => ts,
            _ => panic!("no TrafficSplit loaded: {:?}", l.diagnostics),
        }
    }

    /// The TrafficSplit of seed 004-06, verbatim.
    const SEED: &str = r#"apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata:
  name: order-service-split
spec:
  service: order-service
  backends:
  - service: order-service-v1
    weight: 900  # 90%
  - service: order-service-v2
    weight: 100  # 10%
"#;

    #[test]
    fn seed_split_is_ninety_ten() {
        let l = load(SEED);
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let ts = split(&l);
        assert_eq!(ts.service, "order-service");
        assert_eq!(ts.backends[0].weight, Some(Quantity { milli: 900_000 }));
        let p = ts.percentages();
        assert_eq!(p[0].0, "order-service-v1");
        assert!(
            (p[0].1 - 90.0).abs() < 1e-9 && (p[1].1 - 10.0).abs() < 1e-9,
            "{p:?}"
        );
    }

    #[test]
    fn seed_file_loads_with_its_services() {
        let path = "/work/shared/fixtures/seed-configs/004-06.yaml";
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let l = load(&text);
        let mine: Vec<_> = l
            .diagnostics
            .iter()
            .filter(|d| d.kind == "TrafficSplit")
            .collect();
        assert!(mine.is_empty(), "{mine:?}");
        assert_eq!(split(&l).backends.len(), 2);
    }

    #[test]
    fn v1alpha1_quantities_and_v1alpha4_matches() {
        let l = load(
            r#"
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: q}
spec:
  service: numbers
  backends:
  - {service: one, weight: 10m}
  - {service: two, weight: 30m}
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: ab-test}
spec:
  service: website
  matches:
  - {kind: HTTPRouteGroup, name: ab-test, apiGroup: specs.smi-spec.io}
  backends:
  - {service: website-v1, weight: 0}
  - {service: website-v2, weight: 100}
"#,
        );
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let Spec::TrafficSplit(q) = &l.resources[0].spec else {
            panic!()
        };
        let p = q.percentages();
        assert!(
            (p[0].1 - 25.0).abs() < 1e-9 && (p[1].1 - 75.0).abs() < 1e-9,
            "{p:?}"
        );
        let Spec::TrafficSplit(ab) = &l.resources[1].spec else {
            panic!()
        };
        assert_eq!(
            ab.matches[0].api_group.as_deref(),
            Some("specs.smi-spec.io")
        );
        let p = ab.percentages();
        assert_eq!((p[0].1, p[1].1), (0.0, 100.0));
        let sum: f64 = p.iter().map(|(_, v)| v).sum();
        assert!((sum - 100.0).abs() < 1e-9);
    }

    #[test]
    fn percentages_of_uneven_weights_add_up_to_100() {
        let ts = TrafficSplit {
            backends: ["a", "b", "c"]
                .iter()
                .map(|s| TrafficSplitBackend {
                    service: (*s).into(),
                    weight: Some(Quantity { milli: 1000 }),
                })
                .collect(),
            ..Default::default()
        };
        let sum: f64 = ts.percentages().iter().map(|(_, v)| v).sum();
        assert!((sum - 100.0).abs() < 1e-9);
        let zero = TrafficSplit {
            backends: vec![TrafficSplitBackend {
                service: "a".into(),
                weight: None,
            }],
            ..Default::default()
        };
        assert_eq!(zero.percentages(), vec![("a".to_owned(), 0.0)]);
    }

    #[test]
    fn each_rule_fires() {
        let msgs = |text: &str| -> Vec<(Severity, String)> {
            load(text)
                .diagnostics
                .into_iter()
                .map(|d| (d.severity, d.message))
                .collect()
        };
        let head = "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: t}\nspec:\n";
        let m = msgs(&format!("{head}  backends: []\n"));
        assert!(m.iter().any(|(_, s)| s.contains("spec.service")), "{m:?}");
        assert!(
            m.iter().any(|(_, s)| s.contains("at least one backend")),
            "{m:?}"
        );
        let m = msgs(&format!(
            "{head}  service: web\n  backends:\n  - weight: 1\n  - service: b\n"
        ));
        assert!(
            m.iter()
                .any(|(_, s)| s.contains("spec.backends[0].service")),
            "{m:?}"
        );
        assert!(
            m.iter().any(|(_, s)| s.contains("spec.backends[1].weight")),
            "{m:?}"
        );
        assert_eq!(m.len(), 2, "{m:?}");
        let m = msgs(&format!(
            "{head}  service: web\n  backends:\n  - {{service: a, weight: 0}}\n  - {{service: b, weight: 0m}}\n"
        ));
        assert!(m.iter().any(|(_, s)| s.contains("add up to 0")), "{m:?}");
        let m = msgs(&format!(
            "{head}  service: web\n  matches: [{{kind: Ingress, name: x}}, {{name: y}}]\n  backends: [{{service: a, weight: 1}}]\n"
        ));
        assert!(
            m.iter()
                .any(|(sev, s)| *sev == Severity::Warning && s.contains("Ingress")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|(sev, s)| *sev == Severity::Error && s.contains("spec.matches[1].kind")),
            "{m:?}"
        );
        let m = msgs(&format!(
            "{head}  service: web\n  backends: [{{service: a, weight: -1}}]\n"
        ));
        assert_eq!(m.len(), 1, "{m:?}");
    }
}
