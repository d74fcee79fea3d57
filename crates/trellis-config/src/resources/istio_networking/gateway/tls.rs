//! `ServerTLSSettings`: how a Gateway server (or a Sidecar ingress listener) terminates or passes
//! through TLS, and the certificate rules Istio's webhook enforces on it.

use super::names::warn;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// TLS settings of a server port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerTlsSettings {
    pub https_redirect: bool,
    pub mode: ServerTlsMode,
    pub server_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
    pub ca_crl: Option<String>,
    pub credential_name: Option<String>,
    pub credential_names: Vec<String>,
    pub ca_cert_credential_name: Option<String>,
    pub tls_certificates: Vec<ServerTlsCertificate>,
    pub subject_alt_names: Vec<String>,
    pub verify_certificate_spki: Vec<String>,
    pub verify_certificate_hash: Vec<String>,
    pub min_protocol_version: ServerTlsProtocol,
    pub max_protocol_version: ServerTlsProtocol,
    pub cipher_suites: Vec<String>,
    pub insecure_skip_verify: Option<bool>,
}

/// How the server handles TLS. Upstream's zero value is PASSTHROUGH.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    #[default]
    Passthrough,
    Simple,
    Mutual,
    AutoPassthrough,
    IstioMutual,
    OptionalMutual,
}

impl ServerTlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerTlsMode::Passthrough => "PASSTHROUGH",
            ServerTlsMode::Simple => "SIMPLE",
            ServerTlsMode::Mutual => "MUTUAL",
            ServerTlsMode::AutoPassthrough => "AUTO_PASSTHROUGH",
            ServerTlsMode::IstioMutual => "ISTIO_MUTUAL",
            ServerTlsMode::OptionalMutual => "OPTIONAL_MUTUAL",
        }
    }

    /// The proxy forwards the TLS stream untouched, choosing the route by SNI.
    pub fn is_passthrough(self) -> bool {
        matches!(
            self,
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
        )
    }

    /// The server terminates TLS with a certificate the user supplies.
    fn uses_user_certificate(self) -> bool {
        matches!(
            self,
            ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
        )
    }
}

/// TLS protocol version bound; TLS_AUTO lets the proxy choose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum ServerTlsProtocol {
    #[default]
    #[serde(rename = "TLS_AUTO")]
    TlsAuto,
    #[serde(rename = "TLSV1_0")]
    TlsV1_0,
    #[serde(rename = "TLSV1_1")]
    TlsV1_1,
    #[serde(rename = "TLSV1_2")]
    TlsV1_2,
    #[serde(rename = "TLSV1_3")]
    TlsV1_3,
}

/// One of up to two certificate/key pairs (e.g. RSA and ECDSA) served on one port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerTlsCertificate {
    pub server_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
}

/// Cipher suites Envoy knows by name (Istio's `ValidCipherSuites`).
const CIPHER_SUITES: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

fn valid_cipher(cs: &str) -> bool {
    // Envoy also accepts BoringSSL cipher expressions (`[A|B]`, `-X`, `!X`); Istio passes those on.
    cs.is_empty()
        || cs == "ALL"
        || !cs.starts_with(|c: char| c.is_ascii_alphanumeric())
        || CIPHER_SUITES.contains(&cs)
}

fn set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl ServerTlsSettings {
    /// Is any certificate material configured (files, secrets or pairs)?
    pub fn has_certificates(&self) -> bool {
        set(&self.server_certificate)
            || set(&self.private_key)
            || set(&self.ca_certificates)
            || set(&self.ca_crl)
            || set(&self.credential_name)
            || !self.credential_names.is_empty()
            || !self.tls_certificates.is_empty()
    }

    fn check_ciphers(&self, cx: &mut Cx) {
        if matches!(
            self.min_protocol_version,
            ServerTlsProtocol::TlsV1_0 | ServerTlsProtocol::TlsV1_1
        ) && self.cipher_suites.is_empty()
        {
            warn(
                cx,
                "minProtocolVersion",
                "TLS versions below TLSV1_2 need compatible cipherSuites set: the defaults no longer include any",
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        cx.field("cipherSuites", |cx| {
            for (i, cs) in self.cipher_suites.iter().enumerate() {
                if !valid_cipher(cs) {
                    cx.index(i, |cx| {
                        warn(cx, "", format!("unknown cipher suite {cs:?} is ignored"))
                    });
                } else if seen.contains(&cs.as_str()) {
                    cx.index(i, |cx| {
                        warn(cx, "", format!("duplicate cipher suite {cs:?} is ignored"))
                    });
                } else {
                    seen.push(cs);
                }
            }
        });
    }
}

impl Validate for ServerTlsSettings {
    fn validate(&self, cx: &mut Cx) {
        self.check_ciphers(cx);
        if self.min_protocol_version != ServerTlsProtocol::TlsAuto
            && self.max_protocol_version != ServerTlsProtocol::TlsAuto
            && self.min_protocol_version > self.max_protocol_version
        {
            cx.error_at(
                "minProtocolVersion",
                "minProtocolVersion is higher than maxProtocolVersion",
            );
        }
        if self.mode == ServerTlsMode::IstioMutual {
            // The mesh's own certificates are used; anything given here would be silently ignored.
            let given = [
                ("serverCertificate", set(&self.server_certificate)),
                ("privateKey", set(&self.private_key)),
                ("caCertificates", set(&self.ca_certificates)),
                ("tlsCertificates", !self.tls_certificates.is_empty()),
                ("credentialName", set(&self.credential_name)),
                ("credentialNames", !self.credential_names.is_empty()),
            ];
            for (field, is_set) in given {
                if is_set {
                    cx.error_at(
                        field,
                        format!("ISTIO_MUTUAL uses the mesh certificates; remove `{field}`"),
                    );
                }
            }
            return;
        }
        if self.mode.is_passthrough() && self.has_certificates() {
            warn(
                cx,
                "mode",
                format!(
                    "{} does not use certificates; they are ignored",
                    self.mode.as_str()
                ),
            );
        }
        if self.credential_names.len() > 2 {
            cx.error_at(
                "credentialNames",
                "at most 2 credentialNames may be given (e.g. one RSA and one ECDSA)",
            );
        }
        if self.tls_certificates.len() > 2 {
            cx.error_at(
                "tlsCertificates",
                "at most 2 tlsCertificates may be given (e.g. one RSA and one ECDSA)",
            );
        }
        let sources = [
            set(&self.server_certificate) && set(&self.private_key),
            set(&self.credential_name),
            !self.credential_names.is_empty(),
            !self.tls_certificates.is_empty(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            cx.error(
                "only one certificate source may be set: credentialName, credentialNames, \
                 serverCertificate/privateKey or tlsCertificates",
            );
        }
        let from_secret = set(&self.credential_name) || !self.credential_names.is_empty();
        if self.mode.uses_user_certificate() && !from_secret {
            self.check_files(cx);
        }
        if set(&self.ca_crl) {
            if set(&self.credential_name) {
                cx.error_at("caCrl", "caCrl cannot be used with credentialName; put the CRL in the credential (ca.crl)");
            }
            if self.mode == ServerTlsMode::Simple {
                cx.error_at(
                    "caCrl",
                    "caCrl is not supported with SIMPLE TLS (no client certificates are checked)",
                );
            }
        }
    }
}

impl ServerTlsSettings {
    /// SIMPLE/MUTUAL without a secret: certificate and key files must be named.
    fn check_files(&self, cx: &mut Cx) {
        let mode = self.mode.as_str();
        if self.mode != ServerTlsMode::Simple && !set(&self.ca_certificates) {
            cx.error(format!(
                "{mode} TLS needs a client CA bundle: set caCertificates, or credentialName with a secret holding ca.crt"
            ));
        }
        if self.tls_certificates.is_empty() {
            if !set(&self.server_certificate) {
                cx.error(format!("{mode} TLS needs a certificate: set credentialName, or serverCertificate and privateKey"));
            }
            if !set(&self.private_key) {
                cx.error(format!("{mode} TLS needs a private key: set credentialName, or serverCertificate and privateKey"));
            }
            return;
        }
        cx.field("tlsCertificates", |cx| {
            for (i, c) in self.tls_certificates.iter().enumerate() {
                cx.index(i, |cx| {
                    cx.require("serverCertificate", set(&c.server_certificate));
                    cx.require("privateKey", set(&c.private_key));
                });
            }
        });
    }
}
