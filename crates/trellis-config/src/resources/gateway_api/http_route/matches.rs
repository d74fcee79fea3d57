//! HTTPRoute match conditions: path, headers, query parameters, method.

use crate::resources::common::RegexString;
use crate::resources::gateway_api::{check_header_name, check_max, check_max_len};
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Conditions a request must all meet.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteMatch {
    pub path: Option<HttpPathMatch>,
    pub headers: Vec<HttpHeaderMatch>,
    pub query_params: Vec<HttpQueryParamMatch>,
    pub method: Option<HttpMethod>,
}

/// Path condition; defaults to `PathPrefix` `/`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpPathMatch {
    #[serde(rename = "type")]
    pub r#type: Option<PathMatchType>,
    pub value: Option<String>,
}

/// How a path is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum PathMatchType {
    #[serde(rename = "Exact")]
    Exact,
    #[default]
    #[serde(rename = "PathPrefix")]
    PathPrefix,
    #[serde(rename = "RegularExpression")]
    RegularExpression,
}

/// How a header, query parameter or gRPC method is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum HeaderMatchType {
    #[default]
    #[serde(rename = "Exact")]
    Exact,
    #[serde(rename = "RegularExpression")]
    RegularExpression,
}

/// Same values as [`HeaderMatchType`] upstream.
pub type QueryParamMatchType = HeaderMatchType;

/// Header condition (names compare case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeaderMatch {
    #[serde(rename = "type")]
    pub r#type: Option<HeaderMatchType>,
    pub name: String,
    pub value: String,
}

/// Query parameter condition (names compare case-sensitively).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpQueryParamMatch {
    #[serde(rename = "type")]
    pub r#type: Option<QueryParamMatchType>,
    pub name: String,
    pub value: String,
}

/// Request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "CONNECT")]
    Connect,
    #[serde(rename = "OPTIONS")]
    Options,
    #[serde(rename = "TRACE")]
    Trace,
    #[serde(rename = "PATCH")]
    Patch,
}

impl HttpMethod {
    /// The method as it appears on the request line (and as users write it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
            Self::Options => "OPTIONS",
            Self::Trace => "TRACE",
            Self::Patch => "PATCH",
        }
    }
}

impl HttpPathMatch {
    /// Type with the default (`PathPrefix`) applied.
    pub fn effective_type(&self) -> PathMatchType {
        self.r#type.unwrap_or_default()
    }

    /// Value with the default (`/`) applied.
    pub fn effective_value(&self) -> &str {
        self.value.as_deref().unwrap_or("/")
    }
}

impl HttpRouteMatch {
    /// Is this exactly the path condition PathPrefix (what prefix rewrites need)?
    pub(super) fn is_path_prefix(&self) -> bool {
        self.path
            .as_ref()
            .is_some_and(|p| p.effective_type() == PathMatchType::PathPrefix)
    }
}

impl Validate for HttpRouteMatch {
    fn validate(&self, cx: &mut Cx) {
        cx.opt("path", &self.path);
        cx.list("headers", &self.headers);
        check_max(cx, "headers", self.headers.len(), 16);
        check_unique(
            cx,
            "headers",
            self.headers.iter().map(|h| h.name.to_ascii_lowercase()),
        );
        cx.list("queryParams", &self.query_params);
        check_max(cx, "queryParams", self.query_params.len(), 16);
        check_unique(
            cx,
            "queryParams",
            self.query_params.iter().map(|q| q.name.clone()),
        );
    }
}

/// Matches are keyed by name upstream; a repeated name is an error.
fn check_unique(cx: &mut Cx, field: &str, names: impl Iterator<Item = String>) {
    let mut seen = BTreeMap::new();
    for (i, n) in names.enumerate() {
        if n.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(n.clone(), i) {
            cx.field(field, |cx| {
                cx.index(i, |cx| {
                    cx.error_at(
                        "name",
                        format!("{n:?} is already matched by {field}[{first}]"),
                    )
                })
            });
        }
    }
}

/// Characters allowed in an Exact or PathPrefix path (RFC 3986 pchar plus '/').
fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@%".contains(&c)
}

impl Validate for HttpPathMatch {
    fn validate(&self, cx: &mut Cx) {
        let v = self.effective_value();
        check_max_len(cx, "value", v, 1024);
        match self.effective_type() {
            PathMatchType::RegularExpression => {
                cx.field("value", |cx| RegexString(v.to_owned()).validate(cx));
            }
            t => {
                let t = if t == PathMatchType::Exact {
                    "Exact"
                } else {
                    "PathPrefix"
                };
                let problem = if !v.starts_with('/') {
                    Some("must start with '/'".to_owned())
                } else if let Some(bad) = ["//", "/./", "/../", "%2f", "%2F", "#"]
                    .into_iter()
                    .find(|s| v.contains(s))
                {
                    Some(format!("must not contain {bad:?}"))
                } else if v.ends_with("/..") || v.ends_with("/.") {
                    Some("must not end with \"/.\" or \"/..\"".to_owned())
                } else if !v.bytes().all(is_path_char) || !percent_escapes_ok(v) {
                    Some(
                        "contains characters that are not allowed in a path (percent-encode them)"
                            .to_owned(),
                    )
                } else {
                    None
                };
                if let Some(p) = problem {
                    cx.error_at("value", format!("{t} path {v:?} {p}"));
                }
            }
        }
    }
}

/// Every `%` starts a two-digit hex escape.
fn percent_escapes_ok(v: &str) -> bool {
    let b = v.as_bytes();
    b.iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| {
            b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        })
}

/// Shared by header, query-parameter and gRPC header matches.
pub(in crate::resources::gateway_api) fn validate_name_value_match(
    cx: &mut Cx,
    ty: Option<HeaderMatchType>,
    name: &str,
    value: &str,
    max: usize,
) {
    cx.require("name", !name.is_empty());
    check_header_name(cx, "name", name);
    cx.require("value", !value.is_empty());
    check_max_len(cx, "value", value, max);
    if ty == Some(HeaderMatchType::RegularExpression) {
        cx.field("value", |cx| RegexString(value.to_owned()).validate(cx));
    }
}

impl Validate for HttpHeaderMatch {
    fn validate(&self, cx: &mut Cx) {
        validate_name_value_match(cx, self.r#type, &self.name, &self.value, 4096);
    }
}

impl Validate for HttpQueryParamMatch {
    fn validate(&self, cx: &mut Cx) {
        validate_name_value_match(cx, self.r#type, &self.name, &self.value, 1024);
    }
}
