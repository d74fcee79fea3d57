//! The per-route features the HTTP layer applies besides choosing a backend — fault
//! injection, mirrors, rewrites and CORS — prepared once per configuration: thresholds
//! computed, regexes compiled, header values parsed and mirror backends shared with the
//! rest of the runtime, so a request only reads them.

use std::collections::HashMap;
use std::sync::Arc;

use trellis_model::{HttpRoute, Service};

use super::{BackendSet, RuntimeError, backend_set};
use crate::http::cors::{CorsError, CorsRuntime};
use crate::http::fault::{FaultError, FaultRuntime};
use crate::http::mirror::MirrorRuntime;
use crate::http::rewrite::{RewriteError, RewriteRuntime};

/// Why a route feature (fault, rewrite, CORS) could not be prepared; the configuration is
/// refused rather than served with the feature silently missing.
#[derive(Debug, thiserror::Error)]
pub enum RouteFeatureError {
    /// Invalid fault injection.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// Invalid rewrite.
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    /// Invalid CORS policy.
    #[error(transparent)]
    Cors(#[from] CorsError),
}

/// A route's prepared features, moved into its `RouteRuntime`.
pub(super) struct Prepared {
    pub(super) fault: Option<FaultRuntime>,
    pub(super) mirrors: Box<[MirrorRuntime]>,
    pub(super) rewrite: Option<RewriteRuntime>,
    pub(super) cors: Option<CorsRuntime>,
}

/// Prepares route `index` of the service (or gateway virtual host) named `owner`. Mirror destinations get the shared backend set of
/// their (service, subset), like route destinations; a mirror of an unknown host is kept
/// without backends (its copies are skipped and logged), and 0 % mirrors are dropped.
pub(super) fn prepare<'m>(
    owner: &str,
    index: usize,
    route: &HttpRoute,
    by_fqdn: &HashMap<&str, &'m Service>,
    sets: &mut HashMap<(&'m str, Option<&'m str>), Arc<BackendSet>>,
) -> Result<Prepared, RuntimeError> {
    let err = |source: RouteFeatureError| RuntimeError::Feature {
        service: owner.to_owned(),
        route: index,
        source,
    };
    let fault = match &route.fault {
        Some(f) => FaultRuntime::compile(f).map_err(|e| err(e.into()))?,
        None => None,
    };
    let rewrite = route
        .rewrite
        .as_ref()
        .map(|rw| RewriteRuntime::compile(rw, &route.matches))
        .transpose()
        .map_err(|e| err(e.into()))?;
    let cors = route
        .cors
        .as_ref()
        .map(CorsRuntime::compile)
        .transpose()
        .map_err(|e| err(e.into()))?;
    let mut mirrors = Vec::with_capacity(route.mirrors.len());
    for m in &route.mirrors {
        let backends = match by_fqdn.get(m.destination.host.as_str()).copied() {
            Some(svc) => Some(backend_set(svc, &m.destination, sets)?),
            None => None,
        };
        mirrors.extend(MirrorRuntime::new(
            &m.destination.host,
            backends,
            m.destination.port,
            m.percent,
        ));
    }
    Ok(Prepared {
        fault,
        mirrors: mirrors.into_boxed_slice(),
        rewrite,
        cors,
    })
}

#[cfg(test)]
mod tests {
    use trellis_model::{
        AbortKind, CorsPolicy, Destination, Fault, FaultAbort, Mesh, Mirror, PathRewrite, Protocol,
        Rewrite, RouteAction, ServicePort, StringMatch, WeightedDestination,
    };

    use super::*;
    use crate::runtime::{Runtime, RuntimeOptions};

    fn mesh(route: HttpRoute) -> Mesh {
        let service = |name: &str, routes: Vec<HttpRoute>| Service {
            host: format!("{name}.shop.svc.cluster.local"),
            name: name.into(),
            namespace: "shop".into(),
            ports: vec![ServicePort {
                number: 80,
                name: "http".into(),
                protocol: Protocol::Http,
                target_port: None,
            }],
            http_routes: routes,
            ..Service::default()
        };
        let mut mesh = Mesh {
            services: vec![service("orders", vec![route]), service("shadow", vec![])],
            ..Mesh::default()
        };
        mesh.namespaces = std::iter::once("shop".to_owned()).collect();
        mesh.normalize();
        mesh
    }

    fn route() -> HttpRoute {
        HttpRoute {
            action: RouteAction::Forward(vec![WeightedDestination::new(
                Destination::new("orders.shop.svc.cluster.local"),
                1,
            )]),
            ..HttpRoute::default()
        }
    }

    fn build(route: HttpRoute) -> Result<Runtime, RuntimeError> {
        Runtime::build(&mesh(route), &RuntimeOptions::default())
    }

    #[test]
    fn invalid_features_refuse_the_configuration() {
        let mut bad_regex = route();
        bad_regex.rewrite = Some(Rewrite {
            path: Some(PathRewrite::Regex {
                pattern: "([".into(),
                substitution: String::new(),
            }),
            authority: None,
        });
        let mut bad_status = route();
        bad_status.fault = Some(Fault {
            delay: None,
            abort: Some(FaultAbort {
                kind: AbortKind::HttpStatus(42),
                percent: 100.0,
            }),
        });
        let mut bad_origin = route();
        bad_origin.cors = Some(CorsPolicy {
            allow_origins: vec![StringMatch::Regex("(".into())],
            ..CorsPolicy::default()
        });
        for r in [bad_regex, bad_status, bad_origin] {
            assert!(matches!(
                build(r),
                Err(RuntimeError::Feature { route: 0, .. })
            ));
        }
    }

    #[test]
    fn mirrors_share_backends_and_drop_zero_shares() -> Result<(), RuntimeError> {
        let mut r = route();
        let mirror = |host: &str, percent| Mirror {
            destination: Destination::new(host),
            percent,
        };
        r.mirrors = vec![
            mirror("shadow.shop.svc.cluster.local", 100.0),
            mirror("shadow.shop.svc.cluster.local", 0.0),
            mirror("unknown.example", 10.0),
        ];
        let rt = build(r)?;
        let orders = rt
            .service_for_authority("orders.shop.svc.cluster.local")
            .and_then(|s| s.route(0))
            .map(|r| r.mirrors.len());
        assert_eq!(orders, Some(2), "the 0 % mirror is dropped");
        assert!(
            rt.clusters()
                .iter()
                .any(|c| c.host == "shadow.shop.svc.cluster.local")
        );
        Ok(())
    }
}
