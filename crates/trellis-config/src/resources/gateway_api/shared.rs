//! Types every route kind shares (upstream `shared_types.go` and `object_reference_types.go`):
//! parent and backend references, object references, fractions.

use super::{
    GROUP, check_group, check_kind, check_max, check_max_len, check_namespace, check_port,
    check_section_name,
};
use crate::resources::names::is_ip;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// A route's attachment point: a Gateway (north-south), a Service (GAMMA mesh route), or another
/// kind an implementation supports (Linkerd's `Server`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParentReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<i32>,
}

impl ParentReference {
    /// Group and kind with defaults applied: `gateway.networking.k8s.io`/`Gateway`. A `kind:
    /// Service` written without a group means the core group, as Linkerd reads it and as GAMMA
    /// examples are written (the CRD would default the group, which no implementation intends).
    pub fn group_kind(&self) -> (&str, &str) {
        let kind = self.kind.as_deref().unwrap_or("Gateway");
        let group = match self.group.as_deref() {
            Some("core") => "",
            Some(g) => g,
            None if kind == "Service" => "",
            None => GROUP,
        };
        (group, kind)
    }

    /// Is the parent a Service, making this a GAMMA (mesh, east-west) route?
    pub fn is_service(&self) -> bool {
        self.group_kind() == ("", "Service")
    }

    /// Is the parent a Gateway API Gateway?
    pub fn is_gateway(&self) -> bool {
        self.group_kind() == (GROUP, "Gateway")
    }
}

impl Validate for ParentReference {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        check_max_len(cx, "name", &self.name, 253);
        check_group(cx, "group", self.group.as_deref());
        check_kind(cx, "kind", self.kind.as_deref());
        check_namespace(cx, "namespace", self.namespace.as_deref());
        check_section_name(cx, "sectionName", self.section_name.as_deref());
        check_port(cx, "port", self.port);
    }
}

/// `parentRefs` of any route: the list limit and the CEL rules on several references to one
/// parent (each needs a distinct `sectionName`/`port`).
pub(super) fn validate_parent_refs(cx: &mut Cx, refs: &[ParentReference]) {
    cx.list("parentRefs", refs);
    check_max(cx, "parentRefs", refs.len(), 32);
    let same_parent = |a: &ParentReference, b: &ParentReference| {
        a.group_kind() == b.group_kind()
            && a.name == b.name
            && a.namespace.as_deref().unwrap_or("") == b.namespace.as_deref().unwrap_or("")
    };
    fn section(p: &ParentReference) -> (Option<&str>, Option<i32>) {
        (
            p.section_name.as_deref().filter(|s| !s.is_empty()),
            p.port.filter(|p| *p != 0),
        )
    }
    for (j, b) in refs.iter().enumerate() {
        let Some(i) = refs[..j].iter().position(|a| same_parent(a, b)) else {
            continue;
        };
        let (a_sec, b_sec) = (section(&refs[i]), section(b));
        let msg = if a_sec == b_sec {
            format!(
                "parentRefs[{i}] and parentRefs[{j}] attach to the same parent at the same sectionName/port; make them distinct"
            )
        } else if a_sec.0.is_some() != b_sec.0.is_some() || a_sec.1.is_some() != b_sec.1.is_some() {
            format!(
                "parentRefs[{i}] and parentRefs[{j}] attach to the same parent; set sectionName (or port) on both"
            )
        } else {
            continue;
        };
        cx.field("parentRefs", |cx| cx.index(j, |cx| cx.error(msg)));
    }
}

/// Route `hostnames`: valid (optionally wildcard) names, at most `max`.
pub(super) fn validate_hostnames(cx: &mut Cx, hostnames: &[String], max: usize) {
    check_max(cx, "hostnames", hostnames.len(), max);
    cx.field("hostnames", |cx| {
        for (i, h) in hostnames.iter().enumerate() {
            cx.index(i, |cx| {
                if is_ip(h) {
                    cx.error(format!("{h:?} is an IP address; route hostnames must be DNS names"));
                } else if !super::is_hostname(h) {
                    let msg = format!("{h:?} is not a valid hostname: use lowercase DNS labels, optionally prefixed by `*.`");
                    cx.error(msg);
                }
            });
        }
    });
}

/// A backend without a weight: the target of `requestMirror` and `externalAuth`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackendObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<i32>,
}

backend_object_methods!(object BackendObjectReference);

impl Validate for BackendObjectReference {
    fn validate(&self, cx: &mut Cx) {
        self.validate_object(cx);
    }
}

/// A weighted backend of a TCPRoute or TLSRoute (HTTP and gRPC backends add filters).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<i32>,
    pub weight: Option<i32>,
}

backend_object_methods!(weighted BackendRef);

impl Validate for BackendRef {
    fn validate(&self, cx: &mut Cx) {
        self.validate_object(cx);
        self.validate_weight(cx);
    }
}

/// Defaults of a backend reference: core group, kind `Service`.
pub(super) fn backend_group_kind<'a>(
    group: Option<&'a str>,
    kind: Option<&'a str>,
) -> (&'a str, &'a str) {
    let group = match group {
        None | Some("core") => "",
        Some(g) => g,
    };
    (group, kind.unwrap_or("Service"))
}

pub(super) fn validate_backend_object(
    cx: &mut Cx,
    group: Option<&str>,
    kind: Option<&str>,
    name: &str,
    namespace: Option<&str>,
    port: Option<i32>,
) {
    cx.require("name", !name.is_empty());
    check_max_len(cx, "name", name, 253);
    check_group(cx, "group", group);
    check_kind(cx, "kind", kind);
    check_namespace(cx, "namespace", namespace);
    check_port(cx, "port", port);
    if backend_group_kind(group, kind) == ("", "Service") && port.is_none() {
        cx.error(format!("backend Service {name:?} needs a `port`"));
    }
}

/// A reference to a Secret (or another certificate holder) for TLS.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
}

impl SecretObjectReference {
    /// Group and kind with defaults applied: core group, kind `Secret`.
    pub fn group_kind(&self) -> (&str, &str) {
        let group = match self.group.as_deref() {
            None | Some("core") => "",
            Some(g) => g,
        };
        (group, self.kind.as_deref().unwrap_or("Secret"))
    }
}

impl Validate for SecretObjectReference {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        check_group(cx, "group", self.group.as_deref());
        check_kind(cx, "kind", self.kind.as_deref());
        check_namespace(cx, "namespace", self.namespace.as_deref());
    }
}

/// A reference with required group (`""` for core) and kind, and an optional namespace
/// (CA certificate ConfigMaps, GatewayClass parameters).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectReference {
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl Validate for ObjectReference {
    fn validate(&self, cx: &mut Cx) {
        validate_typed_ref(cx, self.group.as_deref(), &self.kind, &self.name);
        check_namespace(cx, "namespace", self.namespace.as_deref());
    }
}

/// A reference to an object in the same namespace (`extensionRef`, Gateway infrastructure
/// parameters).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalObjectReference {
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
}

impl Validate for LocalObjectReference {
    fn validate(&self, cx: &mut Cx) {
        validate_typed_ref(cx, self.group.as_deref(), &self.kind, &self.name);
    }
}

/// A required group (may be empty, so it is an `Option` to tell missing from core) and kind.
pub(super) fn validate_group_kind(cx: &mut Cx, group: Option<&str>, kind: &str) {
    if group.is_none() {
        let path = format!("{}.group", cx.path());
        cx.error(format!(
            "missing required field `{path}` (use \"\" for the core API group)"
        ));
    }
    cx.require("kind", !kind.is_empty());
    check_group(cx, "group", group);
    check_kind(cx, "kind", Some(kind).filter(|k| !k.is_empty()));
}

fn validate_typed_ref(cx: &mut Cx, group: Option<&str>, kind: &str, name: &str) {
    validate_group_kind(cx, group, kind);
    cx.require("name", !name.is_empty());
}

/// `numerator/denominator`, e.g. the share of requests mirrored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fraction {
    pub numerator: Option<i32>,
    pub denominator: Option<i32>,
}

impl Fraction {
    /// The fraction as a number between 0 and 1 (denominator defaults to 100).
    pub fn ratio(&self) -> f64 {
        let d = self.denominator.unwrap_or(100);
        if d <= 0 {
            0.0
        } else {
            f64::from(self.numerator.unwrap_or(0)) / f64::from(d)
        }
    }
}

impl Validate for Fraction {
    fn validate(&self, cx: &mut Cx) {
        cx.require("numerator", self.numerator.is_some());
        let n = self.numerator.unwrap_or(0);
        let d = self.denominator.unwrap_or(100);
        if n < 0 {
            cx.error_at(
                "numerator",
                format!("numerator must not be negative, got {n}"),
            );
        }
        if d < 1 {
            cx.error_at(
                "denominator",
                format!("denominator must be at least 1, got {d}"),
            );
        } else if n > d {
            cx.error(format!(
                "numerator ({n}) must be less than or equal to denominator ({d})"
            ));
        }
    }
}

/// Where a route or listener set attaches by default (experimental `defaultScope` /
/// `useDefaultGateways`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DefaultScope {
    #[serde(rename = "All")]
    All,
    #[serde(rename = "None")]
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_ref_defaults_and_gamma_detection() {
        let gw = ParentReference {
            name: "gw".into(),
            ..Default::default()
        };
        assert_eq!(gw.group_kind(), (GROUP, "Gateway"));
        assert!(gw.is_gateway() && !gw.is_service());
        let mut svc = ParentReference {
            name: "reviews".into(),
            kind: Some("Service".into()),
            ..Default::default()
        };
        assert!(svc.is_service());
        svc.group = Some("core".into());
        assert!(svc.is_service());
        svc.group = Some(GROUP.into());
        assert!(!svc.is_service());
    }

    #[test]
    fn backend_defaults_are_core_service() {
        let b = BackendRef {
            name: "reviews".into(),
            port: Some(9080),
            ..Default::default()
        };
        assert_eq!(b.group_kind(), ("", "Service"));
        assert!(b.is_service());
        assert_eq!(b.effective_weight(), 1);
        let mut cx = Cx::new("b");
        b.validate(&mut cx);
        assert!(cx.into_diags().is_empty());
    }

    #[test]
    fn duplicate_parents_need_distinct_sections() {
        let p = |s: Option<&str>| ParentReference {
            name: "gw".into(),
            section_name: s.map(Into::into),
            ..Default::default()
        };
        let run = |refs: &[ParentReference]| {
            let mut cx = Cx::new("spec");
            validate_parent_refs(&mut cx, refs);
            cx.into_diags()
        };
        assert!(run(&[p(Some("http")), p(Some("https"))]).is_empty());
        let d = run(&[p(Some("http")), p(Some("http"))]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "spec.parentRefs[1]");
        assert_eq!(run(&[p(None), p(Some("https"))]).len(), 1);
    }
}
