//! TLS a proxy uses towards upstream hosts (`ClientTLSSettings`).

use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Client-side TLS for upstream connections (Istio's `ClientTLSSettings`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientTlsSettings {
    pub mode: Option<ClientTlsMode>,
    /// File paths, for MUTUAL without credentialName.
    pub client_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
    /// A Secret (or `configmap://` reference) holding the certificates; replaces the file paths.
    pub credential_name: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub sni: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub ca_crl: Option<String>,
}

/// Upstream TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// Plain text.
    Disable,
    /// TLS, server verified.
    Simple,
    /// TLS with a client certificate given here.
    Mutual,
    /// mTLS with the mesh's own workload certificates.
    IstioMutual,
}

fn set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl Validate for ClientTlsSettings {
    fn validate(&self, cx: &mut Cx) {
        let mode = self.mode.unwrap_or(ClientTlsMode::Disable);
        let user_tls = matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual);
        if self.insecure_skip_verify == Some(true) {
            let conflicting: &[(&str, bool)] = match mode {
                ClientTlsMode::Simple => &[
                    ("caCertificates", set(&self.ca_certificates)),
                    ("credentialName", set(&self.credential_name)),
                    ("subjectAltNames", !self.subject_alt_names.is_empty()),
                ],
                // credentialName may carry the client certificate, so it stays allowed.
                ClientTlsMode::Mutual => &[
                    ("caCertificates", set(&self.ca_certificates)),
                    ("subjectAltNames", !self.subject_alt_names.is_empty()),
                ],
                _ => &[],
            };
            for (name, _) in conflicting.iter().filter(|(_, s)| *s) {
                cx.error_at(
                    name,
                    format!(
                        "`{name}` has no effect with insecureSkipVerify: true; remove one of them"
                    ),
                );
            }
        }
        if user_tls && set(&self.credential_name) {
            for (name, s) in [
                ("clientCertificate", &self.client_certificate),
                ("privateKey", &self.private_key),
                ("caCertificates", &self.ca_certificates),
                ("caCrl", &self.ca_crl),
            ] {
                if set(s) {
                    cx.error_at(
                        name,
                        format!(
                            "`{name}` cannot be combined with credentialName (the secret holds it)"
                        ),
                    );
                }
            }
            return;
        }
        if mode == ClientTlsMode::Mutual {
            for (name, s) in [
                ("clientCertificate", &self.client_certificate),
                ("privateKey", &self.private_key),
            ] {
                if !set(s) {
                    cx.error(format!("mode MUTUAL needs `{name}` (or credentialName)"));
                }
            }
        }
    }
}
