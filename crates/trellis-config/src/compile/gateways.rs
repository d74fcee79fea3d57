//! Gateways pass: Istio `Gateway` and Gateway API `Gateway` resources become model
//! [`Gateway`]s with their listeners ([`GatewayServer`]s). It runs before every route pass so
//! that VirtualServices (`istio_routes`) and Gateway API routes (`gateway_api`) find the
//! gateways they bind to; the virtual hosts are added by those passes.

mod k8s;

use super::gateway_api::Lookup;
use super::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::istio_networking::{
    Gateway as IstioGateway, Server, ServerTlsMode as IstioTlsMode, ServerTlsProtocol,
    ServerTlsSettings,
};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::{Gateway, GatewayHost, GatewayServer, Protocol, ServerTls, ServerTlsMode};

/// Compile every Istio and Gateway API Gateway, in input order (the mesh is sorted later).
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    for r in cx.of_kind(Kind::IstioGateway) {
        if let Spec::IstioGateway(spec) = &r.spec {
            let gw = istio_gateway(cx, r, spec);
            cx.mesh.gateways.push(gw);
        }
    }
    let lk = Lookup::new(cx.resources);
    for r in cx.of_kind(Kind::K8sGateway) {
        if let Spec::K8sGateway(spec) = &r.spec {
            let gw = k8s::gateway(cx, &lk, r, spec);
            cx.mesh.gateways.push(gw);
        }
    }
}

/// An Istio Gateway: the selector picks the gateway proxies, each server is a listener.
fn istio_gateway(cx: &mut Ctx<'_>, r: &Resource, spec: &IstioGateway) -> Gateway {
    let servers = spec
        .servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| istio_server(cx, r, &format!("spec.servers[{i}]"), s))
        .collect();
    Gateway {
        name: r.name.clone(),
        namespace: r.namespace.clone(),
        origin: source_ref(r),
        selector: spec.selector.clone(),
        class: None,
        servers,
        virtual_hosts: Vec::new(),
    }
}

/// One Istio server. Servers without a usable port or with a protocol the proxy cannot serve
/// are skipped (the validator already reported a missing or bad port; unsupported protocols
/// are reported here, because Istio accepts them).
fn istio_server(cx: &mut Ctx<'_>, r: &Resource, path: &str, s: &Server) -> Option<GatewayServer> {
    let port = s.port.as_ref()?;
    let number = u16::try_from(port.number).ok().filter(|n| *n != 0)?;
    let protocol = Protocol::parse(&port.protocol);
    if protocol == Protocol::Unknown {
        cx.report.at(
            r,
            &format!("{path}.port.protocol"),
            Code::IgnoredSetting,
            format!(
                "protocol {:?} is not supported on gateways by Trellis; this server is skipped",
                port.protocol
            ),
        );
        return None;
    }
    let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    let not_carried = [
        (
            "bind",
            set(&s.bind),
            "bind (the gateway listens on all addresses)",
        ),
        (
            "defaultEndpoint",
            set(&s.default_endpoint),
            "defaultEndpoint (only meaningful on Sidecar ingress listeners)",
        ),
    ];
    for (field, _, what) in not_carried.into_iter().filter(|(_, set, _)| *set) {
        cx.report.at(
            r,
            &format!("{path}.{field}"),
            Code::IgnoredSetting,
            format!("{what} is not enforced by Trellis"),
        );
    }
    let tls = s
        .tls
        .as_ref()
        .map(|t| istio_tls(cx, r, &format!("{path}.tls"), t));
    let name = s
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| port.name.clone());
    Some(GatewayServer {
        name,
        port: number,
        protocol,
        hosts: s
            .hosts
            .iter()
            .map(|h| GatewayHost::parse(h, &r.namespace))
            .collect(),
        tls,
    })
}

/// Istio `ServerTLSSettings` -> [`ServerTls`]. Certificates named by secret (`credentialName`,
/// `credentialNames`) and by file are both carried; verification details the model has no
/// place for are reported as not enforced.
fn istio_tls(cx: &mut Ctx<'_>, r: &Resource, path: &str, t: &ServerTlsSettings) -> ServerTls {
    let mode = match t.mode {
        IstioTlsMode::Passthrough => ServerTlsMode::Passthrough,
        IstioTlsMode::Simple => ServerTlsMode::Simple,
        IstioTlsMode::Mutual => ServerTlsMode::Mutual,
        IstioTlsMode::AutoPassthrough => ServerTlsMode::AutoPassthrough,
        IstioTlsMode::IstioMutual => ServerTlsMode::IstioMutual,
        IstioTlsMode::OptionalMutual => ServerTlsMode::OptionalMutual,
    };
    let mut credential_names: Vec<String> = t.credential_name.iter().cloned().collect();
    credential_names.extend(t.credential_names.iter().cloned());
    credential_names.retain(|c| !c.is_empty());
    credential_names.dedup();
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let mut server_certificate = non_empty(&t.server_certificate);
    let mut private_key = non_empty(&t.private_key);
    let mut ca_certificates = non_empty(&t.ca_certificates);
    // `tlsCertificates` holds up to two pairs (RSA + ECDSA); the model has one file pair, so
    // the first fills it when the single-pair fields are unset and further pairs are reported.
    let mut extra_pairs = t.tls_certificates.len();
    if server_certificate.is_none()
        && let Some(first) = t.tls_certificates.first()
    {
        server_certificate = non_empty(&first.server_certificate);
        private_key = non_empty(&first.private_key);
        ca_certificates = ca_certificates.or_else(|| non_empty(&first.ca_certificates));
        extra_pairs -= 1;
    }
    let ignored: [(&str, bool); 10] = [
        ("tlsCertificates", extra_pairs > 0),
        ("caCrl", t.ca_crl.as_deref().is_some_and(|s| !s.is_empty())),
        (
            "caCertCredentialName",
            t.ca_cert_credential_name
                .as_deref()
                .is_some_and(|s| !s.is_empty()),
        ),
        ("subjectAltNames", !t.subject_alt_names.is_empty()),
        (
            "verifyCertificateSpki",
            !t.verify_certificate_spki.is_empty(),
        ),
        (
            "verifyCertificateHash",
            !t.verify_certificate_hash.is_empty(),
        ),
        (
            "minProtocolVersion",
            t.min_protocol_version != ServerTlsProtocol::TlsAuto,
        ),
        (
            "maxProtocolVersion",
            t.max_protocol_version != ServerTlsProtocol::TlsAuto,
        ),
        ("cipherSuites", !t.cipher_suites.is_empty()),
        ("insecureSkipVerify", t.insecure_skip_verify == Some(true)),
    ];
    for (field, set) in ignored {
        if set {
            cx.report.at(
                r,
                &format!("{path}.{field}"),
                Code::IgnoredSetting,
                format!("tls.{field} is accepted but not enforced by Trellis gateways"),
            );
        }
    }
    ServerTls {
        mode,
        credential_names,
        server_certificate,
        private_key,
        ca_certificates,
        https_redirect: t.https_redirect,
    }
}

#[cfg(test)]
mod tests;
