//! Request authentication: which JWTs a workload accepts (Istio `RequestAuthentication`).
//!
//! A request carrying an invalid token is rejected (401); a request without a token is
//! let through unauthenticated, and AuthorizationPolicy decides whether that is enough
//! (`request_principals` in [`crate::authz::AuthzSource`]). Keys are fetched by the
//! proxy or control plane; the model only holds where to find them.

use std::time::Duration;

use crate::labels::Labels;
use crate::origin::SourceRef;

/// A request-authentication policy.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct JwtPolicy {
    /// The resource it was compiled from.
    pub origin: SourceRef,
    /// Namespace; in the root namespace it applies mesh-wide.
    pub namespace: String,
    /// Workloads it applies to; `None` or empty means every workload in scope.
    pub selector: Option<Labels>,
    /// Accepted issuers; a token must validate against the rule for its `iss`.
    pub rules: Vec<JwtRule>,
}

/// One accepted issuer.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct JwtRule {
    /// Expected `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values; empty accepts any audience.
    pub audiences: Vec<String>,
    /// URL of the issuer's JWKS; unset means OpenID discovery from the issuer.
    pub jwks_uri: Option<String>,
    /// Inline JWKS document, which takes precedence over `jwks_uri`.
    pub jwks: Option<String>,
    /// Headers the token may be in. When no location is given at all, the defaults are
    /// `Authorization: Bearer <token>` and the `access_token` query parameter.
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters the token may be in.
    pub from_params: Vec<String>,
    /// Cookies the token may be in.
    pub from_cookies: Vec<String>,
    /// Keep the token in the request forwarded to the application (removed otherwise).
    pub forward_original_token: bool,
    /// Header to put the verified payload into (base64url), for applications that want
    /// the claims without verifying the token again.
    pub output_payload_to_header: Option<String>,
    /// Claims copied into request headers.
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// Timeout for fetching the JWKS.
    #[serde(with = "crate::serde_millis::option")]
    pub timeout: Option<Duration>,
}

impl JwtRule {
    /// Whether the rule lists no token location, so the default locations apply.
    pub fn uses_default_locations(&self) -> bool {
        self.from_headers.is_empty() && self.from_params.is_empty() && self.from_cookies.is_empty()
    }
}

/// A header carrying a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct JwtHeader {
    /// Header name.
    pub name: String,
    /// Prefix before the token, e.g. `Bearer `; empty for a bare token.
    pub prefix: String,
}

/// Copy a claim into a request header.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClaimToHeader {
    /// Header to set.
    pub header: String,
    /// Claim name; nested claims use `.`.
    pub claim: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_locations() {
        let mut rule = JwtRule {
            issuer: "https://issuer.example".into(),
            ..JwtRule::default()
        };
        assert!(rule.uses_default_locations());
        rule.from_cookies.push("session".into());
        assert!(!rule.uses_default_locations());
    }
}
