//! What an HTTP rule does instead of (or to) plain forwarding: delegate, redirect, direct
//! response and rewrite.

use super::checks;
use super::http::set;
use crate::diag::{Code, Severity};
use crate::resources::common::RegexString;
use crate::resources::names;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Hand the rule's traffic to the HTTP rules of another (delegate) VirtualService.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Delegate {
    pub name: String,
    /// Defaults to the namespace of the root VirtualService.
    pub namespace: Option<String>,
}

impl Validate for Delegate {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        if let Some(ns) = self
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty() && !names::is_dns1123_label_any_case(n))
        {
            cx.error_at("namespace", format!("{ns:?} is not a valid namespace name"));
        }
    }
}

/// Answer with a redirect instead of forwarding (`HTTPRedirect`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRedirect {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<u32>,
    pub derive_port: Option<RedirectPortSelection>,
    pub scheme: Option<String>,
    /// Defaults to 301.
    pub redirect_code: Option<u32>,
    /// Replaces the matched URI prefix (the rule's uri matches must be prefix matches).
    pub prefix_rewrite: Option<String>,
}

/// How a redirect picks its port when `port` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectPortSelection {
    /// 80 for http, 443 for https.
    FromProtocolDefault,
    FromRequestPort,
}

impl Validate for HttpRedirect {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["uri", "prefixRewrite"],
            &[set(&self.uri), set(&self.prefix_rewrite)],
            false,
        );
        cx.one_of(
            &["port", "derivePort"],
            &[self.port.is_some(), self.derive_port.is_some()],
            false,
        );
        let any = set(&self.uri)
            || set(&self.prefix_rewrite)
            || set(&self.authority)
            || set(&self.scheme)
            || self.port.is_some()
            || self.derive_port.is_some();
        if !any {
            cx.error("a redirect must set at least one of uri, prefixRewrite, authority, scheme, port or derivePort");
        }
        if let Some(code) = self
            .redirect_code
            .filter(|c| *c != 0 && !(300..=399).contains(c))
        {
            cx.error_at(
                "redirectCode",
                format!("redirectCode {code} is not a redirect status; expected 3xx"),
            );
        }
        if let Some(s) = self
            .scheme
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "http" && *s != "https")
        {
            cx.error_at(
                "scheme",
                format!("redirect scheme {s:?} is invalid; expected \"http\" or \"https\""),
            );
        }
        checks::port(cx, "port", self.port);
    }
}

/// Answer with a fixed response (`HTTPDirectResponse`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpDirectResponse {
    pub status: Option<u32>,
    pub body: Option<HttpBody>,
}

/// A direct response body: text or base64-encoded bytes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpBody {
    pub string: Option<String>,
    /// Base64, as protobuf JSON encodes bytes.
    pub bytes: Option<String>,
}

/// Large bodies sit in every proxy's configuration; Istio warns above 100 KiB and refuses 1 MiB.
const BODY_WARN: usize = 100 * 1024;
const BODY_MAX: usize = 1024 * 1024;

impl Validate for HttpDirectResponse {
    fn validate(&self, cx: &mut Cx) {
        match self.status {
            None => cx.require("status", false),
            Some(s) if !(200..=599).contains(&s) => {
                cx.error_at("status", format!("status {s} is not in the range 200..599"))
            }
            Some(_) => {}
        }
        let Some(body) = &self.body else { return };
        cx.field("body", |cx| {
            cx.one_of(&["string", "bytes"], &[body.string.is_some(), body.bytes.is_some()], false);
            if let Some(b) = &body.bytes
                && !is_base64(b)
            {
                cx.error_at("bytes", "`bytes` must be base64-encoded");
            }
            let size = body.string.as_ref().map_or(0, String::len) + body.bytes.as_ref().map_or(0, |b| b.len() / 4 * 3);
            if size > BODY_MAX {
                cx.error(format!("direct response body is {size} bytes; the limit is 1 MiB"));
            } else if size > BODY_WARN {
                cx.report(
                    Severity::Warning,
                    Code::SchemaValidation,
                    format!("direct response body is {size} bytes; large bodies slow down configuration pushes"),
                );
            }
        });
    }
}

/// Standard or URL-safe base64, padded or not (protobuf JSON accepts all four).
fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b))
        && body.len() % 4 != 1
}

/// Rewrite the request before forwarding (`HTTPRewrite`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRewrite {
    /// Replaces the matched prefix (or the whole path for exact/regex matches).
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// Rewrite the path with a regex (RE2) and a substitution (`\1` for groups).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegexRewrite {
    #[serde(rename = "match")]
    pub pattern: Option<RegexString>,
    pub rewrite: Option<String>,
}

impl Validate for HttpRewrite {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["uri", "uriRegexRewrite"],
            &[set(&self.uri), self.uri_regex_rewrite.is_some()],
            false,
        );
        if !set(&self.uri) && !set(&self.authority) && self.uri_regex_rewrite.is_none() {
            cx.error("a rewrite must set uri, uriRegexRewrite or authority");
        }
        cx.opt("uriRegexRewrite", &self.uri_regex_rewrite);
    }
}

impl Validate for RegexRewrite {
    fn validate(&self, cx: &mut Cx) {
        cx.require(
            "match",
            self.pattern.as_ref().is_some_and(|p| !p.0.is_empty()),
        );
        cx.require("rewrite", set(&self.rewrite));
        if let Some(p) = self.pattern.as_ref().filter(|p| !p.0.is_empty()) {
            cx.field("match", |cx| p.validate(cx));
        }
    }
}
