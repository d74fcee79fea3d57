//! Gateway API `Gateway` -> model [`Gateway`]: one server per listener. `allowedRoutes` is
//! only partly expressible in the model (`Same` becomes a namespace on the listener's host);
//! the route pass re-reads the resource for the full rules (kinds, selectors).

use super::super::gateway_api::Lookup;
use super::super::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::gateway_api::{
    FromNamespaces, GROUP, Gateway as K8sGateway, Listener, ListenerTlsConfig, TlsModeType,
};
use trellis_model::{
    Gateway, GatewayHost, GatewayServer, Labels, Protocol, ServerTls, ServerTlsMode,
};

/// Label Gateway API controllers put on the proxies they deploy for a Gateway (Istio sets it
/// on the deployment it manages), so the model gateway selects exactly those proxies.
pub(crate) const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// A Gateway API Gateway. Its GatewayClass need not be in the input (classes are installed
/// with the controller), so it is compiled whatever the class.
pub(super) fn gateway(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    spec: &K8sGateway,
) -> Gateway {
    let gateway_level = [
        (
            "spec.addresses",
            !spec.addresses.is_empty(),
            "addresses (the gateway proxies listen on their own addresses)",
        ),
        (
            "spec.tls.frontend",
            spec.tls.as_ref().is_some_and(|t| t.frontend.is_some()),
            "tls.frontend (client certificate validation)",
        ),
        (
            "spec.tls.backend",
            spec.tls.as_ref().is_some_and(|t| t.backend.is_some()),
            "tls.backend (gateway client certificate)",
        ),
        (
            "spec.backendTLS",
            spec.backend_tls.is_some(),
            "backendTLS (gateway client certificate)",
        ),
        (
            "spec.allowedListeners",
            spec.allowed_listeners.is_some(),
            "allowedListeners (ListenerSets are not supported)",
        ),
        (
            "spec.defaultScope",
            spec.default_scope.is_some(),
            "defaultScope (default gateways)",
        ),
    ];
    for (path, set, what) in gateway_level {
        if set {
            cx.report.at(
                r,
                path,
                Code::IgnoredSetting,
                format!("{what} is accepted but not enforced by Trellis"),
            );
        }
    }
    let servers = spec
        .listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| listener(cx, lk, r, i, l))
        .collect();
    Gateway {
        name: r.name.clone(),
        namespace: r.namespace.clone(),
        origin: source_ref(r),
        selector: Labels::from([(GATEWAY_NAME_LABEL.to_owned(), r.name.clone())]),
        class: Some(spec.gateway_class_name.clone()),
        servers,
        virtual_hosts: Vec::new(),
    }
}

/// The model protocol of a listener protocol, `None` for those the proxy cannot serve.
fn listener_protocol(protocol: &str) -> Option<Protocol> {
    match protocol {
        "HTTP" => Some(Protocol::Http),
        "HTTPS" => Some(Protocol::Https),
        "TLS" => Some(Protocol::Tls),
        "TCP" => Some(Protocol::Tcp),
        _ => None,
    }
}

/// One listener. Listeners without a valid port were reported by the validator; listeners
/// with a protocol the proxy cannot serve (UDP, HBONE, implementation protocols) are reported
/// here and skipped, so no route attaches to them.
fn listener(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    i: usize,
    l: &Listener,
) -> Option<GatewayServer> {
    let path = format!("spec.listeners[{i}]");
    let port = l
        .port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)?;
    let Some(protocol) = listener_protocol(&l.protocol) else {
        cx.report.at(
            r,
            &format!("{path}.protocol"),
            Code::IgnoredSetting,
            format!(
                "listener protocol {:?} is not supported by Trellis; listener {:?} is skipped",
                l.protocol, l.name
            ),
        );
        return None;
    };
    let host = l
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "*".to_owned());
    let namespace = (l.routes_from() == FromNamespaces::Same).then(|| r.namespace.clone());
    let tls = l
        .tls
        .as_ref()
        .map(|t| listener_tls(cx, lk, r, &format!("{path}.tls"), l.tls_mode(), t));
    Some(GatewayServer {
        name: l.name.clone(),
        port,
        protocol,
        hosts: vec![GatewayHost {
            namespace,
            host: host.to_ascii_lowercase(),
        }],
        tls,
    })
}

/// Listener TLS: `Terminate` -> `Simple` with the certificate Secrets as credential names,
/// `Passthrough` -> `Passthrough`. A Secret in another namespace needs a ReferenceGrant there
/// and is then named `namespace/name`.
fn listener_tls(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    mode: Option<TlsModeType>,
    t: &ListenerTlsConfig,
) -> ServerTls {
    let mode = match mode.unwrap_or_default() {
        TlsModeType::Terminate => ServerTlsMode::Simple,
        TlsModeType::Passthrough => ServerTlsMode::Passthrough,
    };
    let mut credential_names = Vec::new();
    for (j, c) in t.certificate_refs.iter().enumerate() {
        let at = format!("{path}.certificateRefs[{j}]");
        let (group, kind) = c.group_kind();
        if (group, kind) != ("", "Secret") {
            cx.report.at(
                r,
                &at,
                Code::IgnoredSetting,
                format!("certificate reference of kind {group}/{kind} is not supported (only Secrets); it is skipped"),
            );
            continue;
        }
        let ns = c
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&r.namespace);
        if ns == r.namespace {
            credential_names.push(c.name.clone());
        } else if lk.granted(
            (GROUP, "Gateway", &r.namespace),
            ns,
            ("", "Secret", &c.name),
        ) {
            credential_names.push(format!("{ns}/{}", c.name));
        } else {
            cx.report.at(
                r,
                &at,
                Code::ReferencedResourceNotFound,
                format!(
                    "certificate Secret {ns}/{} is in another namespace, which requires a ReferenceGrant in namespace {ns}; it is skipped",
                    c.name
                ),
            );
        }
    }
    if !t.options.is_empty() {
        cx.report.at(
            r,
            &format!("{path}.options"),
            Code::IgnoredSetting,
            "tls.options are implementation-specific and not enforced by Trellis",
        );
    }
    if t.frontend_validation.is_some() {
        cx.report.at(
            r,
            &format!("{path}.frontendValidation"),
            Code::IgnoredSetting,
            "tls.frontendValidation (client certificate validation) is accepted but not enforced by Trellis",
        );
    }
    ServerTls {
        mode,
        credential_names,
        ..ServerTls::default()
    }
}
