//! TLS of a Gateway: per-listener certificates and modes, gateway-wide client validation and
//! the client certificate used towards backends.

use crate::resources::common::Labels;
use crate::resources::gateway_api::shared::{ObjectReference, SecretObjectReference};
use crate::resources::gateway_api::{check_max, check_non_empty, check_port};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// How a listener handles TLS.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListenerTlsConfig {
    pub mode: Option<TlsModeType>,
    pub certificate_refs: Vec<SecretObjectReference>,
    /// v1.1–v1.3 (experimental); moved to the Gateway's `tls.frontend` later.
    pub frontend_validation: Option<FrontendTlsValidation>,
    pub options: Labels,
}

/// Terminate TLS at the gateway, or pass it through by SNI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TlsModeType {
    #[default]
    #[serde(rename = "Terminate")]
    Terminate,
    #[serde(rename = "Passthrough")]
    Passthrough,
}

/// Client-certificate validation (mutual TLS at the gateway).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FrontendTlsValidation {
    pub ca_certificate_refs: Vec<ObjectReference>,
    pub mode: Option<FrontendValidationMode>,
}

/// Whether clients without a valid certificate are still let in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum FrontendValidationMode {
    #[default]
    #[serde(rename = "AllowValidOnly")]
    AllowValidOnly,
    #[serde(rename = "AllowInsecureFallback")]
    AllowInsecureFallback,
}

/// The gateway's client certificate towards backends.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayBackendTls {
    pub client_certificate_ref: Option<SecretObjectReference>,
}

/// Gateway-wide TLS (v1.4+).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayTlsConfig {
    pub backend: Option<GatewayBackendTls>,
    pub frontend: Option<FrontendTlsConfig>,
}

/// Client validation for HTTPS listeners: a default and per-port overrides.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FrontendTlsConfig {
    pub default: TlsConfig,
    pub per_port: Vec<TlsPortConfig>,
}

/// Frontend TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsConfig {
    pub validation: Option<FrontendTlsValidation>,
}

/// Frontend TLS settings for one port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsPortConfig {
    pub port: Option<i32>,
    pub tls: TlsConfig,
}

impl Validate for ListenerTlsConfig {
    fn validate(&self, cx: &mut Cx) {
        if self.mode.unwrap_or_default() == TlsModeType::Terminate
            && self.certificate_refs.is_empty()
            && self.options.is_empty()
        {
            cx.error("tls mode Terminate needs `certificateRefs` (or implementation `options`) to find the certificate");
        }
        cx.list("certificateRefs", &self.certificate_refs);
        check_max(cx, "certificateRefs", self.certificate_refs.len(), 64);
        check_max(cx, "options", self.options.len(), 16);
        cx.opt("frontendValidation", &self.frontend_validation);
    }
}

impl Validate for FrontendTlsValidation {
    fn validate(&self, cx: &mut Cx) {
        cx.list("caCertificateRefs", &self.ca_certificate_refs);
        check_non_empty(cx, "caCertificateRefs", self.ca_certificate_refs.len());
        check_max(cx, "caCertificateRefs", self.ca_certificate_refs.len(), 16);
    }
}

impl Validate for GatewayBackendTls {
    fn validate(&self, cx: &mut Cx) {
        cx.opt("clientCertificateRef", &self.client_certificate_ref);
    }
}

impl Validate for GatewayTlsConfig {
    fn validate(&self, cx: &mut Cx) {
        cx.opt("backend", &self.backend);
        cx.opt("frontend", &self.frontend);
    }
}

impl Validate for FrontendTlsConfig {
    fn validate(&self, cx: &mut Cx) {
        cx.field("default", |cx| self.default.validate(cx));
        cx.list("perPort", &self.per_port);
        check_max(cx, "perPort", self.per_port.len(), 64);
        for (i, p) in self.per_port.iter().enumerate() {
            if p.port.is_some() && self.per_port[..i].iter().any(|q| q.port == p.port) {
                cx.field("perPort", |cx| {
                    cx.index(i, |cx| {
                        cx.error_at("port", "port is already configured; ports must be unique")
                    })
                });
            }
        }
    }
}

impl Validate for TlsConfig {
    fn validate(&self, cx: &mut Cx) {
        cx.opt("validation", &self.validation);
    }
}

impl Validate for TlsPortConfig {
    fn validate(&self, cx: &mut Cx) {
        cx.require("port", self.port.is_some());
        check_port(cx, "port", self.port);
        cx.field("tls", |cx| self.tls.validate(cx));
    }
}
