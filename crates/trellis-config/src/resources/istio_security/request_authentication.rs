//! Istio `RequestAuthentication`: which JWTs a workload accepts and where to find them. A request
//! with an invalid token is rejected; one without a token passes (AuthorizationPolicy decides).

use super::{PolicyTargetReference, check_no_empty, validate_scope};
use crate::diag::{Code, Severity};
use crate::resources::common::{Duration, WorkloadSelector};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Istio RequestAuthentication spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestAuthentication {
    pub selector: Option<WorkloadSelector>,
    pub target_ref: Option<PolicyTargetReference>,
    pub target_refs: Vec<PolicyTargetReference>,
    pub jwt_rules: Vec<JwtRule>,
}

/// How to validate tokens from one issuer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtRule {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// The CRD also accepts the proto spelling `jwks_uri`.
    #[serde(alias = "jwks_uri")]
    pub jwks_uri: Option<String>,
    /// Inline JSON Web Key Set.
    pub jwks: Option<String>,
    /// Default when no location is given: `Authorization: Bearer <token>`, then `?access_token=`.
    pub from_headers: Vec<JwtHeader>,
    pub from_params: Vec<String>,
    pub output_payload_to_header: Option<String>,
    pub from_cookies: Vec<String>,
    pub forward_original_token: bool,
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// Timeout for fetching `jwksUri`.
    pub timeout: Option<Duration>,
    pub space_delimited_claims: Vec<String>,
}

/// A header carrying the token, with an optional prefix to strip (`Bearer `).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtHeader {
    pub name: String,
    pub prefix: Option<String>,
}

/// Copy a claim of a valid token into a request header.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClaimToHeader {
    pub header: String,
    pub claim: String,
}

impl Validate for RequestAuthentication {
    fn validate(&self, cx: &mut Cx) {
        validate_scope(cx, &self.selector, &self.target_ref, &self.target_refs);
        cx.list("jwtRules", &self.jwt_rules);
    }
}

fn is_token_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

impl Validate for JwtRule {
    fn validate(&self, cx: &mut Cx) {
        cx.require("issuer", !self.issuer.is_empty());
        check_no_empty(cx, "audiences", &self.audiences);
        cx.one_of(
            &["jwksUri", "jwks"],
            &[self.jwks_uri.is_some(), self.jwks.is_some()],
            false,
        );
        if let Some(uri) = &self.jwks_uri
            && let Err(e) = check_jwks_uri(uri)
        {
            cx.error_at("jwksUri", e);
        }
        if let Some(jwks) = &self.jwks {
            check_jwks(cx, jwks);
        }
        cx.field("fromHeaders", |cx| {
            for (i, h) in self.from_headers.iter().enumerate() {
                cx.index(i, |cx| cx.require("name", !h.name.is_empty()));
            }
        });
        check_no_empty(cx, "fromParams", &self.from_params);
        check_no_empty(cx, "fromCookies", &self.from_cookies);
        check_no_empty(cx, "spaceDelimitedClaims", &self.space_delimited_claims);
        cx.field("outputClaimToHeaders", |cx| {
            for (i, c) in self.output_claim_to_headers.iter().enumerate() {
                cx.index(i, |cx| {
                    cx.require("header", !c.header.is_empty());
                    cx.require("claim", !c.claim.is_empty());
                    if !c.header.is_empty() && !is_token_header_name(&c.header) {
                        cx.error_at(
                            "header",
                            format!(
                                "header name {:?} may only contain letters, digits, '-' and '_'",
                                c.header
                            ),
                        );
                    }
                })
            }
        });
        if let Some(t) = self.timeout {
            if t.nanos < 1_000_000 {
                cx.error_at("timeout", format!("timeout {t} must be at least 1ms"));
            } else if t.nanos % 1_000_000 != 0 {
                cx.error_at(
                    "timeout",
                    format!("timeout {t} must be a whole number of milliseconds"),
                );
            }
        }
    }
}

/// `http://` or `https://` with a host (the CRD's CEL rule and Istio's `ParseJwksURI`).
fn check_jwks_uri(uri: &str) -> Result<(), String> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(format!(
            "jwksUri {uri:?} must be an http:// or https:// URL"
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "jwksUri scheme {scheme:?} is not supported; use http:// or https://"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("jwksUri {uri:?} has an unterminated IPv6 address")),
        },
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(format!("jwksUri {uri:?} has no host"));
    }
    match port {
        Some(p) if p.parse::<u16>().is_err() => {
            Err(format!("jwksUri {uri:?} has an invalid port {p:?}"))
        }
        _ => Ok(()),
    }
}

/// Inline JWKS: a JSON key set (`{"keys": [...]}`) or a single key, public keys only.
fn check_jwks(cx: &mut Cx, jwks: &str) {
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(jwks);
    let keys = match &parsed {
        Ok(serde_json::Value::Object(o)) => match o.get("keys") {
            Some(serde_json::Value::Array(keys)) => keys.iter().collect::<Vec<_>>(),
            Some(_) => return cx.error_at("jwks", "jwks `keys` must be a list of JSON Web Keys"),
            None if o.contains_key("kty") => {
                vec![parsed.as_ref().unwrap_or(&serde_json::Value::Null)]
            }
            None => {
                return cx.error_at(
                    "jwks",
                    "jwks must be a JSON Web Key Set ({\"keys\": [...]}) or a single key",
                );
            }
        },
        Ok(_) => return cx.error_at("jwks", "jwks must be a JSON object"),
        Err(e) => return cx.error_at("jwks", format!("jwks is not valid JSON: {e}")),
    };
    for (i, k) in keys.iter().enumerate() {
        if k.get("kty").and_then(|v| v.as_str()).is_none() {
            cx.error_at("jwks", format!("key {i} of jwks has no \"kty\""));
        } else if k.get("d").is_some() || k.get("kty").and_then(|v| v.as_str()) == Some("oct") {
            let msg = format!(
                "key {i} of jwks contains private key material; only public keys are needed to verify tokens"
            );
            cx.report_at("jwks", Severity::Warning, Code::SchemaValidation, msg);
        }
    }
}
