//! ReferenceGrant: lets objects in other namespaces refer to objects in this one.

use super::shared::validate_group_kind;
use super::{check_max, check_namespace, check_non_empty};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// ReferenceGrant spec: any `from` may refer to any `to`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrant {
    pub from: Vec<ReferenceGrantFrom>,
    pub to: Vec<ReferenceGrantTo>,
}

/// Who may refer: a kind in a namespace.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrantFrom {
    /// Required but may be `""` (core), hence an `Option`.
    pub group: Option<String>,
    pub kind: String,
    pub namespace: String,
}

/// What may be referred to: a kind in this namespace, optionally one object by name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrantTo {
    /// Required but may be `""` (core), hence an `Option`.
    pub group: Option<String>,
    pub kind: String,
    pub name: Option<String>,
}

impl ReferenceGrant {
    /// Does this grant let a `from_group`/`from_kind` in `from_namespace` refer to the object
    /// `to_group`/`to_kind`/`to_name` in the grant's namespace? Groups use `""` for core.
    pub fn allows(&self, from: (&str, &str, &str), to: (&str, &str, &str)) -> bool {
        fn norm(g: Option<&str>) -> &str {
            match g {
                None | Some("core") => "",
                Some(g) => g,
            }
        }
        let (fg, fk, fns) = from;
        let (tg, tk, tn) = to;
        self.from.iter().any(|f| {
            norm(f.group.as_deref()) == norm(Some(fg)) && f.kind == fk && f.namespace == fns
        }) && self.to.iter().any(|t| {
            norm(t.group.as_deref()) == norm(Some(tg))
                && t.kind == tk
                && t.name.as_deref().is_none_or(|n| n.is_empty() || n == tn)
        })
    }
}

impl Validate for ReferenceGrant {
    fn validate(&self, cx: &mut Cx) {
        for (field, len) in [("from", self.from.len()), ("to", self.to.len())] {
            check_non_empty(cx, field, len);
            check_max(cx, field, len, 16);
        }
        cx.list("from", &self.from);
        cx.list("to", &self.to);
    }
}

impl Validate for ReferenceGrantFrom {
    fn validate(&self, cx: &mut Cx) {
        validate_group_kind(cx, self.group.as_deref(), &self.kind);
        cx.require("namespace", !self.namespace.is_empty());
        check_namespace(
            cx,
            "namespace",
            Some(self.namespace.as_str()).filter(|n| !n.is_empty()),
        );
    }
}

impl Validate for ReferenceGrantTo {
    fn validate(&self, cx: &mut Cx) {
        validate_group_kind(cx, self.group.as_deref(), &self.kind);
    }
}

#[cfg(test)]
mod tests {
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    const GRANT: &str = r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-gateways, namespace: bookinfo}
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    namespace: istio-system
  to:
  - group: ""
    kind: Service
"#;

    #[test]
    fn grant_parses_and_answers() {
        let l = load_str("rg.yaml", GRANT, &LoadOptions::default());
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let Spec::ReferenceGrant(g) = &l.resources[0].spec else {
            panic!("not a ReferenceGrant")
        };
        let from = ("gateway.networking.k8s.io", "HTTPRoute", "istio-system");
        assert!(g.allows(from, ("", "Service", "reviews")));
        assert!(g.allows(from, ("core", "Service", "reviews")));
        assert!(!g.allows(from, ("", "Secret", "tls")));
        assert!(!g.allows(
            ("gateway.networking.k8s.io", "HTTPRoute", "other"),
            ("", "Service", "reviews")
        ));
    }

    #[test]
    fn missing_fields_are_reported() {
        let bad = GRANT
            .replace(
                "  - group: \"\"\n    kind: Service\n",
                "  - kind: Service\n",
            )
            .replace("    namespace: istio-system\n", "");
        let l = load_str("rg.yaml", &bad, &LoadOptions::default());
        let msgs: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.contains("spec.to[0].group") && m.contains("core API group")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("spec.from[0].namespace")),
            "{msgs:?}"
        );
    }
}
