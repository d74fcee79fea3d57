//! The CORS filter: cross-origin answers from the proxy itself.

use crate::resources::gateway_api::{check_max, is_header_name};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Cross-origin resource sharing answers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpCorsFilter {
    pub allow_origins: Vec<String>,
    pub allow_credentials: Option<bool>,
    pub allow_methods: Vec<CorsMethod>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<i32>,
}

/// An HTTP method or `*`, as CORS `allowMethods` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CorsMethod {
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
    #[serde(rename = "*")]
    Any,
}

/// `*`, or `http(s)://host[:port]` where host may start with `*.` or be `*`.
fn is_cors_origin(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let host_ok = host == "*"
        || host
            .strip_prefix("*.")
            .unwrap_or(host)
            .split('.')
            .all(label_ok);
    port_ok && host_ok
}

impl Validate for HttpCorsFilter {
    fn validate(&self, cx: &mut Cx) {
        check_max(cx, "allowOrigins", self.allow_origins.len(), 64);
        check_max(cx, "allowMethods", self.allow_methods.len(), 9);
        check_max(cx, "allowHeaders", self.allow_headers.len(), 64);
        check_max(cx, "exposeHeaders", self.expose_headers.len(), 64);
        let wildcard_alone = |cx: &mut Cx, field: &str, has_star: bool, len: usize| {
            if has_star && len > 1 {
                cx.error_at(
                    field,
                    format!("`{field}` cannot contain '*' alongside other values"),
                );
            }
        };
        wildcard_alone(
            cx,
            "allowOrigins",
            self.allow_origins.iter().any(|o| o == "*"),
            self.allow_origins.len(),
        );
        wildcard_alone(
            cx,
            "allowMethods",
            self.allow_methods.contains(&CorsMethod::Any),
            self.allow_methods.len(),
        );
        wildcard_alone(
            cx,
            "allowHeaders",
            self.allow_headers.iter().any(|h| h == "*"),
            self.allow_headers.len(),
        );
        cx.field("allowOrigins", |cx| {
            for (i, o) in self.allow_origins.iter().enumerate() {
                if !is_cors_origin(o) {
                    cx.index(i, |cx| {
                        cx.error(format!("{o:?} is not a valid origin; write `*` or scheme://host[:port], e.g. https://*.example.com"))
                    });
                }
            }
        });
        for (field, list) in [
            ("allowHeaders", &self.allow_headers),
            ("exposeHeaders", &self.expose_headers),
        ] {
            cx.field(field, |cx| {
                for (i, h) in list.iter().enumerate() {
                    if h != "*" && !is_header_name(h) {
                        cx.index(i, |cx| {
                            cx.error(format!("{h:?} is not a valid HTTP header name"))
                        });
                    }
                }
            });
        }
        if let Some(a) = self.max_age
            && a < 1
        {
            cx.error_at(
                "maxAge",
                format!("maxAge must be at least 1 second, got {a}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins() {
        assert!(is_cors_origin("*"));
        assert!(is_cors_origin("https://*.example.com"));
        assert!(is_cors_origin("http://localhost:8080"));
        assert!(!is_cors_origin("example.com"));
        assert!(!is_cors_origin("https://exa mple.com"));
    }
}
