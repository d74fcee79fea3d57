//! GRPCRoute: gRPC routing by service and method.

use super::filters::{
    HttpHeaderFilter, HttpRequestMirrorFilter, check_filter_list, check_filter_union,
};
use super::http_route::matches::{HeaderMatchType, validate_name_value_match};
use super::http_route::{validate_route, validate_rule_lists};
use super::session::SessionPersistence;
use super::shared::{DefaultScope, LocalObjectReference, ParentReference};
use super::{check_max, check_max_len};
use crate::resources::common::RegexString;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// GRPCRoute spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRoute {
    pub parent_refs: Vec<ParentReference>,
    pub use_default_gateways: Option<DefaultScope>,
    pub hostnames: Vec<String>,
    pub rules: Vec<GrpcRouteRule>,
}

/// One rule: calls matching any of `matches` go through `filters` to `backendRefs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteRule {
    pub name: Option<String>,
    pub matches: Vec<GrpcRouteMatch>,
    pub filters: Vec<GrpcRouteFilter>,
    pub backend_refs: Vec<GrpcBackendRef>,
    pub session_persistence: Option<SessionPersistence>,
}

/// Conditions a call must all meet.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteMatch {
    pub method: Option<GrpcMethodMatch>,
    pub headers: Vec<GrpcHeaderMatch>,
}

/// Service and/or method condition; an unset part matches anything.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcMethodMatch {
    #[serde(rename = "type")]
    pub r#type: Option<GrpcMethodMatchType>,
    pub service: Option<String>,
    pub method: Option<String>,
}

/// Same values as [`HeaderMatchType`] upstream.
pub type GrpcMethodMatchType = HeaderMatchType;

/// Metadata (header) condition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcHeaderMatch {
    #[serde(rename = "type")]
    pub r#type: Option<HeaderMatchType>,
    pub name: String,
    pub value: String,
}

/// One filter of a GRPCRoute rule or backend.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteFilter {
    #[serde(rename = "type")]
    pub r#type: Option<GrpcRouteFilterType>,
    pub request_header_modifier: Option<HttpHeaderFilter>,
    pub response_header_modifier: Option<HttpHeaderFilter>,
    pub request_mirror: Option<HttpRequestMirrorFilter>,
    pub extension_ref: Option<LocalObjectReference>,
}

/// Which gRPC filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum GrpcRouteFilterType {
    #[serde(rename = "RequestHeaderModifier")]
    RequestHeaderModifier,
    #[serde(rename = "ResponseHeaderModifier")]
    ResponseHeaderModifier,
    #[serde(rename = "RequestMirror")]
    RequestMirror,
    #[serde(rename = "ExtensionRef")]
    ExtensionRef,
}

impl GrpcRouteFilterType {
    /// The spelling users write.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestHeaderModifier => "RequestHeaderModifier",
            Self::ResponseHeaderModifier => "ResponseHeaderModifier",
            Self::RequestMirror => "RequestMirror",
            Self::ExtensionRef => "ExtensionRef",
        }
    }
}

/// A weighted backend with its own filters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcBackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<i32>,
    pub weight: Option<i32>,
    pub filters: Vec<GrpcRouteFilter>,
}

backend_object_methods!(weighted GrpcBackendRef);

impl Validate for GrpcRoute {
    fn validate(&self, cx: &mut Cx) {
        validate_route(cx, &self.parent_refs, &self.hostnames, &self.rules, |r| {
            (r.name.as_deref(), r.matches.len())
        });
    }
}

impl Validate for GrpcRouteRule {
    fn validate(&self, cx: &mut Cx) {
        validate_rule_lists(
            cx,
            &self.matches,
            &self.filters,
            validate_grpc_filters,
            &self.backend_refs,
        );
        cx.opt("sessionPersistence", &self.session_persistence);
    }
}

impl Validate for GrpcRouteMatch {
    fn validate(&self, cx: &mut Cx) {
        cx.opt("method", &self.method);
        cx.list("headers", &self.headers);
        check_max(cx, "headers", self.headers.len(), 16);
    }
}

/// `foo.v1.Service` (a leading dot allowed), case-insensitive identifiers.
fn is_grpc_service(s: &str) -> bool {
    let ident = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    };
    s.strip_prefix('.').unwrap_or(s).split('.').all(ident)
}

fn is_grpc_method(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl Validate for GrpcMethodMatch {
    fn validate(&self, cx: &mut Cx) {
        if self.service.is_none() && self.method.is_none() {
            cx.error("set `service`, `method` or both");
        }
        let regex = self.r#type == Some(HeaderMatchType::RegularExpression);
        let parts = [
            (
                "service",
                &self.service,
                is_grpc_service as fn(&str) -> bool,
            ),
            ("method", &self.method, is_grpc_method),
        ];
        for (field, value, valid) in parts {
            let Some(v) = value else { continue };
            check_max_len(cx, field, v, 1024);
            if regex {
                cx.field(field, |cx| RegexString(v.clone()).validate(cx));
            } else if !valid(v) {
                let example = if field == "service" {
                    "e.g. helloworld.Greeter"
                } else {
                    "e.g. SayHello"
                };
                cx.error_at(
                    field,
                    format!("{v:?} is not a valid gRPC {field} name ({example})"),
                );
            }
        }
    }
}

impl Validate for GrpcHeaderMatch {
    fn validate(&self, cx: &mut Cx) {
        validate_name_value_match(cx, self.r#type, &self.name, &self.value, 4096);
    }
}

impl Validate for GrpcRouteFilter {
    fn validate(&self, cx: &mut Cx) {
        use GrpcRouteFilterType as T;
        let fields = [
            (
                T::RequestHeaderModifier.as_str(),
                "requestHeaderModifier",
                self.request_header_modifier.is_some(),
            ),
            (
                T::ResponseHeaderModifier.as_str(),
                "responseHeaderModifier",
                self.response_header_modifier.is_some(),
            ),
            (
                T::RequestMirror.as_str(),
                "requestMirror",
                self.request_mirror.is_some(),
            ),
            (
                T::ExtensionRef.as_str(),
                "extensionRef",
                self.extension_ref.is_some(),
            ),
        ];
        check_filter_union(cx, self.r#type.map(T::as_str), &fields);
        cx.opt("requestHeaderModifier", &self.request_header_modifier);
        cx.opt("responseHeaderModifier", &self.response_header_modifier);
        cx.opt("requestMirror", &self.request_mirror);
        cx.opt("extensionRef", &self.extension_ref);
    }
}

fn validate_grpc_filters(cx: &mut Cx, filters: &[GrpcRouteFilter]) {
    use GrpcRouteFilterType as T;
    check_filter_list(
        cx,
        filters,
        filters.iter().filter_map(|f| f.r#type.map(T::as_str)),
        &[T::RequestHeaderModifier, T::ResponseHeaderModifier].map(T::as_str),
    );
}

impl Validate for GrpcBackendRef {
    fn validate(&self, cx: &mut Cx) {
        self.validate_object(cx);
        self.validate_weight(cx);
        validate_grpc_filters(cx, &self.filters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    const ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: demo}
spec:
  parentRefs: [{name: grpc-gw, sectionName: grpc}]
  hostnames: [grpc.example.com]
  rules:
  - name: say-hello
    matches:
    - method: {service: helloworld.Greeter, method: SayHello}
      headers: [{name: x-env, value: canary}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-routed, value: "yes"}]}
    backendRefs:
    - {name: greeter-v2, port: 50051, weight: 20}
    - {name: greeter-v1, port: 50051, weight: 80}
  - matches:
    - method: {type: RegularExpression, service: "helloworld\\..*"}
    backendRefs: [{name: greeter-v1, port: 50051}]
"#;

    #[test]
    fn full_grpc_route_parses_and_validates() {
        let l = load_str("grpc.yaml", ROUTE, &LoadOptions::default());
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let Spec::GrpcRoute(r) = &l.resources[0].spec else {
            panic!("not a GRPCRoute")
        };
        let m = r.rules[0].matches[0].method.as_ref().expect("method");
        assert_eq!(m.service.as_deref(), Some("helloworld.Greeter"));
        assert_eq!(r.rules[0].backend_refs[0].effective_weight(), 20);
        assert_eq!(
            r.rules[0].filters[0].r#type,
            Some(GrpcRouteFilterType::RequestHeaderModifier)
        );
        assert_eq!(
            r.rules[1].matches[0].method.as_ref().and_then(|m| m.r#type),
            Some(HeaderMatchType::RegularExpression)
        );
    }

    #[test]
    fn bad_method_matches_are_reported() {
        let bad = ROUTE
            .replace("method: SayHello}", "method: Say.Hello}")
            .replace("\"helloworld\\\\..*\"", "\"helloworld(\"")
            .replace(
                "- method: {service: helloworld.Greeter, method: Say.Hello}",
                "- method: {}\n    - method: {service: helloworld.Greeter, method: Say.Hello}",
            );
        let l = load_str("grpc.yaml", &bad, &LoadOptions::default());
        let msgs: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.iter().any(|m| m.contains("not a valid gRPC method")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("set `service`, `method` or both")),
            "{msgs:?}"
        );
        assert!(
            l.diagnostics
                .iter()
                .any(|d| d.code == crate::diag::Code::InvalidRegex),
            "{msgs:?}"
        );
    }

    #[test]
    fn filter_type_must_match_its_field() {
        let bad = ROUTE.replace(
            "- type: RequestHeaderModifier",
            "- type: ResponseHeaderModifier",
        );
        let l = load_str("grpc.yaml", &bad, &LoadOptions::default());
        let msgs: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.contains("needs `responseHeaderModifier`")),
            "{msgs:?}"
        );
    }
}
