//! The ExternalAuth filter (experimental): ask an authorization service about each request.

use crate::resources::gateway_api::shared::BackendObjectReference;
use crate::resources::gateway_api::{check_max, check_max_len};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Asks an external service whether to admit each request (experimental).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpExternalAuthFilter {
    pub protocol: Option<ExternalAuthProtocol>,
    pub backend_ref: BackendObjectReference,
    pub grpc: Option<GrpcAuthConfig>,
    pub http: Option<HttpAuthConfig>,
    pub forward_body: Option<ForwardBodyConfig>,
}

/// Protocol the authorization service speaks (Envoy ext_authz over gRPC or HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ExternalAuthProtocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "GRPC")]
    Grpc,
}

/// gRPC authorization settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcAuthConfig {
    pub allowed_headers: Vec<String>,
}

/// HTTP authorization settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpAuthConfig {
    pub path: Option<String>,
    pub allowed_headers: Vec<String>,
    pub allowed_response_headers: Vec<String>,
}

/// Whether and how much of the body is sent for authorization.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForwardBodyConfig {
    pub max_size: Option<i32>,
}

impl Validate for HttpExternalAuthFilter {
    fn validate(&self, cx: &mut Cx) {
        cx.require("protocol", self.protocol.is_some());
        cx.field("backendRef", |cx| self.backend_ref.validate(cx));
        let (grpc, http) = (
            self.protocol == Some(ExternalAuthProtocol::Grpc),
            self.protocol == Some(ExternalAuthProtocol::Http),
        );
        if grpc && self.grpc.is_none() {
            cx.error("protocol GRPC needs `grpc` settings");
        }
        if http && self.http.is_none() {
            cx.error("protocol HTTP needs `http` settings");
        }
        if self.grpc.is_some() && !grpc {
            cx.error_at("grpc", "`grpc` is only allowed with protocol GRPC");
        }
        if self.http.is_some() && !http {
            cx.error_at("http", "`http` is only allowed with protocol HTTP");
        }
        if let Some(g) = &self.grpc {
            cx.field("grpc", |cx| {
                check_max(cx, "allowedHeaders", g.allowed_headers.len(), 64)
            });
        }
        if let Some(h) = &self.http {
            cx.field("http", |cx| {
                if let Some(p) = &h.path {
                    check_max_len(cx, "path", p, 1024);
                }
                check_max(cx, "allowedHeaders", h.allowed_headers.len(), 64);
                check_max(
                    cx,
                    "allowedResponseHeaders",
                    h.allowed_response_headers.len(),
                    64,
                );
            });
        }
        if let Some(m) = self.forward_body.as_ref().and_then(|f| f.max_size)
            && m < 0
        {
            cx.error_at(
                "forwardBody",
                format!("forwardBody.maxSize must not be negative, got {m}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: &HttpExternalAuthFilter) -> Vec<String> {
        let mut cx = Cx::new("f");
        f.validate(&mut cx);
        cx.into_diags().into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn protocol_selects_its_settings() {
        let backend = BackendObjectReference {
            name: "authz".into(),
            port: Some(9000),
            ..Default::default()
        };
        let ok = HttpExternalAuthFilter {
            protocol: Some(ExternalAuthProtocol::Grpc),
            backend_ref: backend.clone(),
            grpc: Some(GrpcAuthConfig::default()),
            ..Default::default()
        };
        assert!(run(&ok).is_empty());
        let bad = HttpExternalAuthFilter {
            protocol: Some(ExternalAuthProtocol::Http),
            backend_ref: backend,
            grpc: Some(GrpcAuthConfig::default()),
            ..Default::default()
        };
        let msgs = run(&bad);
        assert!(
            msgs.iter()
                .any(|m| m.contains("protocol HTTP needs `http`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("only allowed with protocol GRPC")),
            "{msgs:?}"
        );
        // protocol, backendRef.name and backendRef.port (a Service needs one) are missing.
        assert_eq!(run(&HttpExternalAuthFilter::default()).len(), 3);
    }
}
