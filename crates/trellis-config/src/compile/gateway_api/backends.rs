//! Backend references: which model destination a `backendRef` names, whether the route may
//! name it (cross-namespace references need a ReferenceGrant), and what a rule does when none
//! of its backends can take traffic.

use super::super::Ctx;
use super::{Lookup, route_group_kind};
use crate::diag::Code;
use crate::resources::Resource;
use trellis_model::{Destination, RouteAction, WeightedDestination};

/// The fields every backend reference type shares.
pub(super) struct BackendObject<'a> {
    pub group_kind: (&'a str, &'a str),
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub port: Option<i32>,
}

/// Build a [`BackendObject`] from any backend reference type (they repeat the same fields).
macro_rules! backend_object {
    ($b:expr) => {
        $crate::compile::gateway_api::backends::BackendObject {
            group_kind: $b.group_kind(),
            name: &$b.name,
            namespace: $b.namespace.as_deref(),
            port: $b.port,
        }
    };
}
pub(super) use backend_object;

/// The destination `b` names, or `None` (reported at `path`) when the route may not use it:
/// a kind Trellis cannot send to, or a Service in another namespace without a ReferenceGrant.
/// Kubernetes Services and Istio `Hostname` backends (ServiceEntry hosts) are supported.
pub(super) fn resolve(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    b: &BackendObject<'_>,
) -> Option<Destination> {
    let port = b
        .port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    match b.group_kind {
        ("", "Service") => {
            let ns = b
                .namespace
                .filter(|n| !n.is_empty())
                .unwrap_or(&r.namespace);
            if ns != r.namespace {
                let (group, kind) = route_group_kind(r);
                if !lk.granted((group, kind, &r.namespace), ns, ("", "Service", b.name)) {
                    cx.report.at(
                        r,
                        path,
                        Code::ReferencedResourceNotFound,
                        format!(
                            "backend Service {ns}/{} is in another namespace, which requires a ReferenceGrant in namespace {ns} allowing {kind}s from namespace {}; the backend is dropped",
                            b.name, r.namespace
                        ),
                    );
                    return None;
                }
            }
            Some(Destination {
                host: cx.fqdn(b.name, ns),
                subset: None,
                port,
            })
        }
        ("networking.istio.io", "Hostname") => Some(Destination {
            host: b.name.trim_end_matches('.').to_ascii_lowercase(),
            subset: None,
            port,
        }),
        (group, kind) => {
            cx.report.at(
                r,
                path,
                Code::IgnoredSetting,
                format!("backend kind {group}/{kind} is not supported by Trellis (only Services); the backend is dropped"),
            );
            None
        }
    }
}

/// Weight of a backend as the model counts it (negative weights are rejected by validation).
pub(super) fn weight(w: i32) -> u32 {
    u32::try_from(w).unwrap_or(0)
}

/// The action of a rule that forwards to `dests` (the valid backends). When none can take
/// traffic (all dropped, or all weight 0) the Gateway API answers 500.
pub(super) fn forward(dests: Vec<WeightedDestination>) -> RouteAction {
    if dests.iter().all(|d| d.weight == 0) {
        RouteAction::DirectResponse {
            status: 500,
            body: None,
        }
    } else {
        RouteAction::Forward(dests)
    }
}
