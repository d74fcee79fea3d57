//! Istio RequestAuthentication -> [`JwtPolicy`]: which issuers a workload accepts tokens from,
//! where the tokens are, and what is done with them once verified.

use super::{selector, skip_targeted};
use crate::compile::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::istio_security::{JwtRule as ApiJwtRule, RequestAuthentication};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::{ClaimToHeader, JwtHeader, JwtPolicy, JwtRule};

/// Append one [`JwtPolicy`] per RequestAuthentication, in input order. Policies attached with
/// `targetRef(s)` are skipped (reported): the model has no attachment point for them.
pub(super) fn compile(cx: &mut Ctx<'_>) {
    let resources: Vec<&Resource> = cx.of_kind(Kind::RequestAuthentication).collect();
    for r in resources {
        let Spec::RequestAuthentication(ra) = &r.spec else {
            continue;
        };
        if skip_targeted(cx, r, &ra.target_ref, &ra.target_refs) {
            continue;
        }
        let policy = policy(cx, r, ra);
        cx.mesh.security.request_authentication.push(policy);
    }
}

/// The policy. Without `jwtRules` it is kept with no rules: it adds no issuer to the union the
/// workload accepts, so it has no effect, as in Istio.
fn policy(cx: &mut Ctx<'_>, r: &Resource, ra: &RequestAuthentication) -> JwtPolicy {
    JwtPolicy {
        origin: source_ref(r),
        namespace: r.namespace.clone(),
        selector: selector(&ra.selector),
        rules: ra
            .jwt_rules
            .iter()
            .enumerate()
            .map(|(i, rule)| self::rule(cx, r, i, rule))
            .collect(),
    }
}

/// One issuer. A header without `prefix` takes the whole header value as the token.
/// `spaceDelimitedClaims` has no place in the model and is reported as not enforced.
fn rule(cx: &mut Ctx<'_>, r: &Resource, i: usize, rule: &ApiJwtRule) -> JwtRule {
    if !rule.space_delimited_claims.is_empty() {
        cx.report.at(
            r,
            &format!("spec.jwtRules[{i}].spaceDelimitedClaims"),
            Code::IgnoredSetting,
            "spaceDelimitedClaims is not supported: these claims are matched as whole strings, \
             only `scope` and `permission` are split on spaces",
        );
    }
    JwtRule {
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        jwks_uri: rule.jwks_uri.clone(),
        jwks: rule.jwks.clone(),
        from_headers: rule
            .from_headers
            .iter()
            .map(|h| JwtHeader {
                name: h.name.clone(),
                prefix: h.prefix.clone().unwrap_or_default(),
            })
            .collect(),
        from_params: rule.from_params.clone(),
        from_cookies: rule.from_cookies.clone(),
        forward_original_token: rule.forward_original_token,
        output_payload_to_header: rule.output_payload_to_header.clone(),
        output_claim_to_headers: rule
            .output_claim_to_headers
            .iter()
            .map(|c| ClaimToHeader {
                header: c.header.clone(),
                claim: c.claim.clone(),
            })
            .collect(),
        timeout: rule.timeout.map(|t| t.as_std()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::security::tests::{compile_yaml, with_code};
    use crate::diag::Severity;
    use std::time::Duration;
    use trellis_model::{Labels, SourceRef};

    fn ra(body: &str) -> String {
        format!(
            "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: shop\nspec:\n{body}"
        )
    }

    #[test]
    fn seed_000_12_issuer_jwks_audiences() {
        let c = compile_yaml(include_str!("../../../tests/seeds/000-12.yaml"));
        let expected = JwtPolicy {
            origin: SourceRef::new("RequestAuthentication", "default", "jwt-auth"),
            namespace: "default".into(),
            selector: Some(Labels::from([(
                "app".to_string(),
                "hello-service".to_string(),
            )])),
            rules: vec![JwtRule {
                issuer: "https://auth.example.com".into(),
                audiences: vec!["api.example.com".into()],
                jwks_uri: Some("https://auth.example.com/.well-known/jwks.json".into()),
                ..JwtRule::default()
            }],
        };
        assert_eq!(c.mesh.security.request_authentication, [expected]);
        assert!(c.mesh.security.request_authentication[0].rules[0].uses_default_locations());
        let hello = Labels::from([("app".to_string(), "hello-service".to_string())]);
        assert_eq!(
            c.mesh
                .security
                .jwt_for("default", &hello, "istio-system")
                .count(),
            1
        );
        assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    }

    #[test]
    fn every_rule_field() {
        let body = r#"  jwtRules:
  - issuer: issuer-a
    jwks: '{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}'
    fromHeaders:
    - name: x-jwt
    - name: Authorization
      prefix: "Bearer "
    fromParams: [token]
    fromCookies: [session]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders:
    - header: x-sub
      claim: sub
    timeout: 5s
  - issuer: issuer-b
"#;
        let c = compile_yaml(&ra(body));
        let p = &c.mesh.security.request_authentication[0];
        assert_eq!(p.selector, None);
        assert_eq!(
            p.rules[0],
            JwtRule {
                issuer: "issuer-a".into(),
                audiences: vec![],
                jwks_uri: None,
                jwks: Some(r#"{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}"#.into()),
                from_headers: vec![
                    JwtHeader {
                        name: "x-jwt".into(),
                        prefix: String::new()
                    },
                    JwtHeader {
                        name: "Authorization".into(),
                        prefix: "Bearer ".into()
                    },
                ],
                from_params: vec!["token".into()],
                from_cookies: vec!["session".into()],
                forward_original_token: true,
                output_payload_to_header: Some("x-jwt-payload".into()),
                output_claim_to_headers: vec![ClaimToHeader {
                    header: "x-sub".into(),
                    claim: "sub".into()
                }],
                timeout: Some(Duration::from_secs(5)),
            }
        );
        assert_eq!(
            p.rules[1],
            JwtRule {
                issuer: "issuer-b".into(),
                ..JwtRule::default()
            }
        );
    }

    #[test]
    fn no_rules_is_kept() {
        let c = compile_yaml(&ra("  selector:\n    matchLabels: {app: a}\n"));
        let p = &c.mesh.security.request_authentication;
        assert_eq!(p.len(), 1);
        assert!(p[0].rules.is_empty());
    }

    #[test]
    fn space_delimited_claims_reported() {
        let c = compile_yaml(&ra(
            "  jwtRules:\n  - issuer: a\n    jwksUri: https://a/jwks\n    spaceDelimitedClaims: [roles]\n",
        ));
        assert_eq!(c.mesh.security.request_authentication[0].rules.len(), 1);
        let d = with_code(&c, Code::IgnoredSetting);
        assert_eq!(d.len(), 1, "{:#?}", c.diagnostics);
        assert!(
            d[0].message.contains("spaceDelimitedClaims") && d[0].line == 10,
            "{:#?}",
            d[0]
        );
    }

    #[test]
    fn target_refs_are_skipped_with_a_warning() {
        let body = "  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: ingress}\n  jwtRules:\n  - issuer: a\n";
        let c = compile_yaml(&ra(body));
        assert!(c.mesh.security.request_authentication.is_empty());
        let d = with_code(&c, Code::IgnoredSetting);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, Severity::Warning);
        assert!(
            d[0].message.contains("RequestAuthentication is skipped"),
            "{}",
            d[0].message
        );
        assert_eq!(d[0].line, 8);
    }
}
