//! HTTPRoute filters (also used by backendRefs; GRPCRoute reuses the header and mirror filters).

use super::shared::{BackendObjectReference, Fraction, LocalObjectReference};
use super::{
    check_header_name, check_max, check_max_len, check_port, check_precise_hostname, is_header_name,
};
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;

mod cors;
mod external_auth;

pub use cors::*;
pub use external_auth::*;

/// One filter of an HTTPRoute rule or backend: `type` names which one of the other fields is set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteFilter {
    #[serde(rename = "type")]
    pub r#type: Option<HttpRouteFilterType>,
    pub request_header_modifier: Option<HttpHeaderFilter>,
    pub response_header_modifier: Option<HttpHeaderFilter>,
    pub request_mirror: Option<HttpRequestMirrorFilter>,
    pub request_redirect: Option<HttpRequestRedirectFilter>,
    pub url_rewrite: Option<HttpUrlRewriteFilter>,
    pub cors: Option<HttpCorsFilter>,
    pub external_auth: Option<HttpExternalAuthFilter>,
    pub extension_ref: Option<LocalObjectReference>,
}

/// Which HTTP filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum HttpRouteFilterType {
    #[serde(rename = "RequestHeaderModifier")]
    RequestHeaderModifier,
    #[serde(rename = "ResponseHeaderModifier")]
    ResponseHeaderModifier,
    #[serde(rename = "RequestMirror")]
    RequestMirror,
    #[serde(rename = "RequestRedirect")]
    RequestRedirect,
    #[serde(rename = "URLRewrite")]
    UrlRewrite,
    #[serde(rename = "ExtensionRef")]
    ExtensionRef,
    #[serde(rename = "CORS")]
    Cors,
    #[serde(rename = "ExternalAuth")]
    ExternalAuth,
}

impl HttpRouteFilterType {
    /// The spelling users write.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestHeaderModifier => "RequestHeaderModifier",
            Self::ResponseHeaderModifier => "ResponseHeaderModifier",
            Self::RequestMirror => "RequestMirror",
            Self::RequestRedirect => "RequestRedirect",
            Self::UrlRewrite => "URLRewrite",
            Self::ExtensionRef => "ExtensionRef",
            Self::Cors => "CORS",
            Self::ExternalAuth => "ExternalAuth",
        }
    }
}

impl Validate for HttpRouteFilter {
    fn validate(&self, cx: &mut Cx) {
        use HttpRouteFilterType as T;
        let fields = [
            (
                T::RequestHeaderModifier,
                "requestHeaderModifier",
                self.request_header_modifier.is_some(),
            ),
            (
                T::ResponseHeaderModifier,
                "responseHeaderModifier",
                self.response_header_modifier.is_some(),
            ),
            (
                T::RequestMirror,
                "requestMirror",
                self.request_mirror.is_some(),
            ),
            (
                T::RequestRedirect,
                "requestRedirect",
                self.request_redirect.is_some(),
            ),
            (T::UrlRewrite, "urlRewrite", self.url_rewrite.is_some()),
            (T::Cors, "cors", self.cors.is_some()),
            (
                T::ExternalAuth,
                "externalAuth",
                self.external_auth.is_some(),
            ),
            (
                T::ExtensionRef,
                "extensionRef",
                self.extension_ref.is_some(),
            ),
        ]
        .map(|(t, field, set)| (t.as_str(), field, set));
        check_filter_union(cx, self.r#type.map(T::as_str), &fields);
        cx.opt("requestHeaderModifier", &self.request_header_modifier);
        cx.opt("responseHeaderModifier", &self.response_header_modifier);
        cx.opt("requestMirror", &self.request_mirror);
        cx.opt("requestRedirect", &self.request_redirect);
        cx.opt("urlRewrite", &self.url_rewrite);
        cx.opt("cors", &self.cors);
        cx.opt("externalAuth", &self.external_auth);
        cx.opt("extensionRef", &self.extension_ref);
    }
}

/// The CEL rules of a filter union: the field named by `type` is set and no other is.
/// `fields` holds (type spelling, field name, is set).
pub(super) fn check_filter_union(cx: &mut Cx, ty: Option<&str>, fields: &[(&str, &str, bool)]) {
    let Some(ty) = ty else {
        cx.require("type", false);
        return;
    };
    for (t, field, set) in fields {
        if *t == ty && !set {
            cx.error(format!("filter type {ty} needs `{field}` to be set"));
        } else if *t != ty && *set {
            cx.error_at(
                field,
                format!("`{field}` is set but the filter type is {ty}; use type {t} or remove it"),
            );
        }
    }
}

/// List-level CEL rules shared by rule and backend filters: no repeated single-use filters, and
/// never both a redirect and a rewrite.
pub(super) fn validate_http_filters(cx: &mut Cx, filters: &[HttpRouteFilter]) {
    use HttpRouteFilterType as T;
    let count = check_filter_list(
        cx,
        filters,
        filters.iter().filter_map(|f| f.r#type.map(T::as_str)),
        &[
            T::Cors,
            T::RequestHeaderModifier,
            T::ResponseHeaderModifier,
            T::RequestRedirect,
            T::UrlRewrite,
        ]
        .map(T::as_str),
    );
    if count.contains_key(T::RequestRedirect.as_str()) && count.contains_key(T::UrlRewrite.as_str())
    {
        cx.error_at(
            "filters",
            "RequestRedirect and URLRewrite filters cannot be used together",
        );
    }
}

/// The rules every filter list (HTTPRoute and GRPCRoute, rule and backend) has: at most 16
/// filters, and none of the `single_use` types (reported in that order) twice. `types` are the
/// filters' `type` spellings; returns how often each is used.
pub(super) fn check_filter_list<F: Validate>(
    cx: &mut Cx,
    filters: &[F],
    types: impl Iterator<Item = &'static str>,
    single_use: &[&str],
) -> BTreeMap<&'static str, usize> {
    cx.list("filters", filters);
    check_max(cx, "filters", filters.len(), 16);
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for t in types {
        *count.entry(t).or_default() += 1;
    }
    for t in single_use {
        if count.get(t).copied().unwrap_or(0) > 1 {
            cx.error_at(
                "filters",
                format!("the {t} filter cannot be repeated; merge them into one"),
            );
        }
    }
    count
}

/// Adds, sets or removes request or response headers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeaderFilter {
    pub set: Vec<HttpHeader>,
    pub add: Vec<HttpHeader>,
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

impl Validate for HttpHeader {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        check_header_name(cx, "name", &self.name);
        check_max_len(cx, "value", &self.value, 4096);
    }
}

impl Validate for HttpHeaderFilter {
    fn validate(&self, cx: &mut Cx) {
        for (field, list) in [("set", &self.set), ("add", &self.add)] {
            cx.list(field, list);
            check_max(cx, field, list.len(), 16);
            check_unique_names(cx, field, list.iter().map(|h| h.name.as_str()));
        }
        check_max(cx, "remove", self.remove.len(), 16);
        cx.field("remove", |cx| {
            for (i, n) in self.remove.iter().enumerate() {
                cx.index(i, |cx| {
                    if !is_header_name(n) {
                        cx.error(format!("{n:?} is not a valid HTTP header name"));
                    }
                });
            }
        });
        check_unique_names(cx, "remove", self.remove.iter().map(String::as_str));
    }
}

/// Header names are case-insensitive and keyed by name upstream, so a repeat is an error.
fn check_unique_names<'a>(cx: &mut Cx, field: &str, names: impl Iterator<Item = &'a str>) {
    let mut seen = BTreeMap::new();
    for (i, n) in names.enumerate() {
        if let Some(first) = seen.insert(n.to_ascii_lowercase(), i) {
            cx.field(field, |cx| {
                cx.index(i, |cx| {
                    cx.error(format!(
                        "header {n:?} is already listed at {field}[{first}]"
                    ))
                })
            });
        }
    }
}

/// Copies requests to another backend without waiting for its answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRequestMirrorFilter {
    pub backend_ref: BackendObjectReference,
    pub percent: Option<i32>,
    pub fraction: Option<Fraction>,
}

impl HttpRequestMirrorFilter {
    /// Share of requests mirrored, 0 to 1 (all of them when neither percent nor fraction is set).
    pub fn ratio(&self) -> f64 {
        match (&self.percent, &self.fraction) {
            (Some(p), _) => f64::from(*p) / 100.0,
            (None, Some(f)) => f.ratio(),
            (None, None) => 1.0,
        }
    }
}

impl Validate for HttpRequestMirrorFilter {
    fn validate(&self, cx: &mut Cx) {
        cx.field("backendRef", |cx| self.backend_ref.validate(cx));
        cx.one_of(
            &["percent", "fraction"],
            &[self.percent.is_some(), self.fraction.is_some()],
            false,
        );
        if let Some(p) = self.percent
            && !(0..=100).contains(&p)
        {
            cx.error_at(
                "percent",
                format!("percent must be between 0 and 100, got {p}"),
            );
        }
        cx.opt("fraction", &self.fraction);
    }
}

/// Answers with a redirect instead of forwarding.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRequestRedirectFilter {
    pub scheme: Option<RedirectScheme>,
    pub hostname: Option<String>,
    pub path: Option<HttpPathModifier>,
    pub port: Option<i32>,
    pub status_code: Option<i32>,
}

/// Scheme of a redirect's `Location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RedirectScheme {
    #[serde(rename = "http")]
    Http,
    #[serde(rename = "https")]
    Https,
}

impl Validate for HttpRequestRedirectFilter {
    fn validate(&self, cx: &mut Cx) {
        if let Some(h) = &self.hostname {
            check_precise_hostname(cx, "hostname", h);
        }
        cx.opt("path", &self.path);
        check_port(cx, "port", self.port);
        if let Some(c) = self.status_code
            && ![301, 302, 303, 307, 308].contains(&c)
        {
            cx.error_at(
                "statusCode",
                format!("statusCode must be one of 301, 302, 303, 307, 308, got {c}"),
            );
        }
    }
}

/// Rewrites host and/or path before forwarding.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpUrlRewriteFilter {
    pub hostname: Option<String>,
    pub path: Option<HttpPathModifier>,
}

impl Validate for HttpUrlRewriteFilter {
    fn validate(&self, cx: &mut Cx) {
        if let Some(h) = &self.hostname {
            check_precise_hostname(cx, "hostname", h);
        }
        cx.opt("path", &self.path);
    }
}

/// Replaces the whole path or the matched prefix.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpPathModifier {
    #[serde(rename = "type")]
    pub r#type: Option<HttpPathModifierType>,
    pub replace_full_path: Option<String>,
    pub replace_prefix_match: Option<String>,
}

/// Which path replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HttpPathModifierType {
    #[serde(rename = "ReplaceFullPath")]
    ReplaceFullPath,
    #[serde(rename = "ReplacePrefixMatch")]
    ReplacePrefixMatch,
}

impl HttpPathModifier {
    /// Is this a prefix replacement, which needs exactly one PathPrefix match in its rule?
    pub fn is_prefix_replacement(&self) -> bool {
        self.r#type == Some(HttpPathModifierType::ReplacePrefixMatch)
            && self.replace_prefix_match.is_some()
    }
}

impl Validate for HttpPathModifier {
    fn validate(&self, cx: &mut Cx) {
        use HttpPathModifierType as T;
        cx.require("type", self.r#type.is_some());
        let pairs = [
            (
                T::ReplaceFullPath,
                "ReplaceFullPath",
                "replaceFullPath",
                &self.replace_full_path,
            ),
            (
                T::ReplacePrefixMatch,
                "ReplacePrefixMatch",
                "replacePrefixMatch",
                &self.replace_prefix_match,
            ),
        ];
        for (t, type_name, field, value) in pairs {
            let selected = self.r#type == Some(t);
            if selected && value.is_none() {
                cx.error(format!("type {type_name} needs `{field}` to be set"));
            }
            if !selected && self.r#type.is_some() && value.is_some() {
                cx.error_at(
                    field,
                    format!("`{field}` is only allowed with type {type_name}"),
                );
            }
            if let Some(v) = value {
                check_max_len(cx, field, v, 1024);
            }
        }
    }
}
