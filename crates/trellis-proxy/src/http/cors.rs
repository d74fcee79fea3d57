//! CORS (`HttpRoute::cors`), as Envoy's CORS filter does it for Istio and the Gateway
//! API: a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an
//! allowed origin is answered by the proxy; other requests from an allowed origin are
//! forwarded and their responses get `Access-Control-Allow-Origin` (plus expose-headers
//! and credentials); requests from any other origin, and preflights from it, pass through
//! untouched and get no CORS headers.
//!
//! Header values are joined and parsed once by [`CorsRuntime::compile`]; per request the
//! work is one header lookup and the origin match, and only for requests with `Origin`.

use ::http::header::{self, HeaderMap, HeaderValue};
use ::http::{Method, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{Either, Full};
use regex::{Regex, RegexBuilder};
use trellis_model::{CorsPolicy, StringMatch};

use super::ProxyBody;
use crate::route::REGEX_SIZE_LIMIT;

/// Why a route's CORS policy cannot be applied; the configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum CorsError {
    /// An origin regex is invalid RE2 syntax or too large.
    #[error("invalid CORS origin regex {pattern:?}: {source}")]
    Regex {
        /// The pattern as configured.
        pattern: String,
        /// What the regex engine reported.
        #[source]
        source: regex::Error,
    },
    /// A list does not form a valid header value.
    #[error("CORS {0} is not a valid header value")]
    Header(&'static str),
}

/// One allowed-origin condition, compiled.
#[derive(Debug, Clone)]
enum Origin {
    /// Exact, prefix or path-prefix: evaluated by the model's own matcher.
    Literal(StringMatch),
    /// Anchored at both ends, as route regexes are.
    Regex(Box<Regex>),
}

/// A route's CORS policy, prepared for the request path.
#[derive(Debug, Clone)]
pub struct CorsRuntime {
    origins: Box<[Origin]>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    allow_credentials: bool,
}

impl CorsRuntime {
    /// Prepares `policy`: origin regexes compiled, lists joined with `,` into header
    /// values, `max_age` in whole seconds.
    pub fn compile(policy: &CorsPolicy) -> Result<CorsRuntime, CorsError> {
        let origins = policy
            .allow_origins
            .iter()
            .map(|m| match m {
                StringMatch::Regex(p) => RegexBuilder::new(&format!("^(?:{p})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map(|re| Origin::Regex(Box::new(re)))
                    .map_err(|source| CorsError::Regex {
                        pattern: p.clone(),
                        source,
                    }),
                other => Ok(Origin::Literal(other.clone())),
            })
            .collect::<Result<Box<[_]>, _>>()?;
        let list = |items: &[String], what: &'static str| {
            if items.is_empty() {
                return Ok(None);
            }
            HeaderValue::from_str(&items.join(","))
                .map(Some)
                .map_err(|_| CorsError::Header(what))
        };
        let max_age = policy.max_age.map(|d| HeaderValue::from(d.as_secs()));
        Ok(CorsRuntime {
            origins,
            allow_methods: list(&policy.allow_methods, "allowMethods")?,
            allow_headers: list(&policy.allow_headers, "allowHeaders")?,
            expose_headers: list(&policy.expose_headers, "exposeHeaders")?,
            max_age,
            allow_credentials: policy.allow_credentials == Some(true),
        })
    }

    /// The request's `Origin` when the policy allows it, else `None` (no CORS handling).
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| match o {
                Origin::Literal(m) => m.matches(text, false).unwrap_or(false),
                Origin::Regex(re) => re.is_match(text),
            })
            .then(|| origin.clone())
    }

    /// The proxy's answer to a preflight from allowed `origin`: 200 (Envoy's status)
    /// with the allowed origin (echoed), methods, headers, max age and credentials.
    pub fn preflight(&self, origin: HeaderValue) -> Response<ProxyBody> {
        let mut resp = Response::new(Either::Right(Full::new(Bytes::new())));
        *resp.status_mut() = StatusCode::OK;
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.allow_credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(v) = &self.allow_methods {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
        if let Some(v) = &self.allow_headers {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        if let Some(v) = &self.max_age {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        resp
    }

    /// Adds the actual-response headers for allowed `origin` to `resp`: the origin
    /// (echoed), credentials and exposed headers; replaces any the upstream set.
    pub fn decorate<B>(&self, origin: HeaderValue, mut resp: Response<B>) -> Response<B> {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.allow_credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(v) = &self.expose_headers {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        resp
    }
}

/// The CORS decision of one request: the route's policy and the allowed origin.
pub(super) type Allowed<'a> = Option<(&'a CorsRuntime, HeaderValue)>;

/// `resp` with the actual-response CORS headers when the request's origin was allowed.
pub(super) fn apply<B>(cors: Allowed<'_>, resp: Response<B>) -> Response<B> {
    match cors {
        Some((policy, origin)) => policy.decorate(origin, resp),
        None => resp,
    }
}

/// Whether a request is a CORS preflight: `OPTIONS` with `Access-Control-Request-Method`
/// (the caller has already checked `Origin`).
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> CorsRuntime {
        CorsRuntime::compile(&CorsPolicy {
            allow_origins: vec![
                StringMatch::Exact("https://shop.example".into()),
                StringMatch::Regex(r"https://[a-z]+\.test".into()),
            ],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["x-token".into()],
            expose_headers: vec!["x-trace".into()],
            max_age: Some(Duration::from_secs(600)),
            allow_credentials: Some(true),
        })
        .expect("compiles")
    }

    fn with_origin(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ORIGIN,
            HeaderValue::from_str(origin).expect("valid"),
        );
        h
    }

    #[test]
    fn origins() {
        let p = policy();
        assert!(
            p.allowed_origin(&with_origin("https://shop.example"))
                .is_some()
        );
        assert!(p.allowed_origin(&with_origin("https://abc.test")).is_some());
        assert!(
            p.allowed_origin(&with_origin("https://abc.test.evil"))
                .is_none()
        );
        assert!(
            p.allowed_origin(&with_origin("https://other.example"))
                .is_none()
        );
        assert!(p.allowed_origin(&HeaderMap::new()).is_none());
    }

    #[test]
    fn preflight_headers() {
        let p = policy();
        let resp = p.preflight(HeaderValue::from_static("https://shop.example"));
        let h = resp.headers();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://shop.example"
        );
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "x-token");
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let mut req = with_origin("https://shop.example");
        assert!(!is_preflight(&Method::OPTIONS, &req));
        req.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        assert!(is_preflight(&Method::OPTIONS, &req));
        assert!(!is_preflight(&Method::GET, &req));
    }

    #[test]
    fn bad_regex_is_refused() {
        let bad = CorsPolicy {
            allow_origins: vec![StringMatch::Regex("(".into())],
            ..CorsPolicy::default()
        };
        assert!(matches!(
            CorsRuntime::compile(&bad),
            Err(CorsError::Regex { .. })
        ));
    }
}
