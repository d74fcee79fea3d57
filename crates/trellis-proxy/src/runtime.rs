//! The proxy's immutable view of the mesh: per service its compiled route table, per
//! route its prepared header edits, and per destination the balancers of its endpoints.
//!
//! [`Runtime::build`] does every string parse, regex compile and table build once per
//! configuration; the HTTP layer then shares the result as `Arc<Runtime>` and a
//! configuration change builds a new one and swaps it in whole, so requests never lock
//! or see a half-applied update.

mod backend;
mod features;
mod gateway;
mod headers;
mod retry;
mod tcp;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use trellis_model::{Destination, HttpRoute, Mesh, RouteAction, Service, WeightedDestination};

use crate::http::cors::CorsRuntime;
use crate::http::fault::FaultRuntime;
use crate::http::mirror::MirrorRuntime;
use crate::http::rewrite::RewriteRuntime;
use crate::route::{RouteError, RouteTable, split_authority};

pub use backend::{Backend, BackendError, BackendSet, Upstream};
pub use features::RouteFeatureError;
pub use gateway::{GatewayPort, GatewayRoutes};
pub use headers::{HeaderEdits, InvalidHeader};
pub use retry::RouteRetry;
pub use tcp::{L4Destination, L4Route, PortTarget, TcpTargets};

/// Why a mesh could not be turned into a runtime; the caller keeps the previous one.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A service's routes do not compile.
    #[error("service {service}: {source}")]
    Route {
        /// Service host.
        service: String,
        /// What the route compiler reported.
        #[source]
        source: RouteError,
    },
    /// A route's header edits are invalid.
    #[error("service {service}: route {route}: {source}")]
    Header {
        /// Service host.
        service: String,
        /// Route position.
        route: usize,
        /// The offending edit.
        #[source]
        source: InvalidHeader,
    },
    /// A route's retry budget is invalid.
    #[error("service {service}: route {route}: {source}")]
    Budget {
        /// Service host.
        service: String,
        /// Route position.
        route: usize,
        /// What the budget rejected.
        #[source]
        source: crate::resilience::BudgetError,
    },
    /// A route's fault, rewrite or CORS settings cannot be applied.
    #[error("service {service}: route {route}: {source}")]
    Feature {
        /// Service host.
        service: String,
        /// Route position.
        route: usize,
        /// The offending setting.
        #[source]
        source: RouteFeatureError,
    },
    /// A destination's endpoints or balancer settings are invalid.
    #[error("destination {host}: {source}")]
    Backend {
        /// Destination host.
        host: String,
        /// What failed.
        #[source]
        source: BackendError,
    },
}

/// Settings that are not part of the mesh model.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Namespace of the client workload: a bare `Host: name` means `name.<this>`; also
    /// what routes' `sourceNamespace` conditions compare with.
    pub client_namespace: String,
    /// Labels of the client workload, for routes' `sourceLabels` conditions.
    pub client_labels: trellis_model::Labels,
    /// For a gateway proxy, its labels: the gateways whose selector matches them are
    /// served. `None` for a sidecar.
    pub gateway_labels: Option<trellis_model::Labels>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            client_namespace: "default".into(),
            client_labels: trellis_model::Labels::default(),
            gateway_labels: None,
        }
    }
}

/// What one destination of a route needs at request time.
#[derive(Debug)]
pub struct DestinationRuntime {
    /// The balancers of the destination's (service, subset); `None` when the mesh has
    /// no such service (requests get `UH`).
    pub backends: Option<Arc<BackendSet>>,
    /// Destination-level request header edits.
    pub request_headers: HeaderEdits,
    /// Destination-level response header edits.
    pub response_headers: HeaderEdits,
}

/// Prepared parts of one route, aligned with its index in the [`RouteTable`].
#[derive(Debug)]
pub struct RouteRuntime {
    /// The route's name for telemetry: its own name when it has one, else its origin
    /// (`VirtualService shop/orders`).
    pub name: Arc<str>,
    /// Route-level request header edits.
    pub request_headers: HeaderEdits,
    /// Route-level response header edits.
    pub response_headers: HeaderEdits,
    /// One entry per destination of the route's forward action, in order.
    pub destinations: Box<[DestinationRuntime]>,
    /// The route's retry policy, prepared; `None` when the route does not retry.
    pub retry: Option<RouteRetry>,
    /// Fault injection, prepared; `None` when the route injects nothing.
    pub fault: Option<FaultRuntime>,
    /// Mirror destinations that copy a non-zero share of requests.
    pub mirrors: Box<[MirrorRuntime]>,
    /// Path/authority rewrite, prepared (regex compiled).
    pub rewrite: Option<RewriteRuntime>,
    /// CORS policy, prepared.
    pub cors: Option<CorsRuntime>,
}

/// The backends of one (service, subset), as listed by the admin `/clusters` page.
#[derive(Debug)]
pub struct Cluster {
    /// The service's FQDN.
    pub host: String,
    /// The subset, `None` for the whole service (or an unknown subset).
    pub subset: Option<String>,
    /// The backends, one per service port.
    pub set: Arc<BackendSet>,
}

/// A service as the HTTP layer routes to it.
#[derive(Debug)]
pub struct ServiceRuntime {
    host: Arc<str>,
    table: RouteTable,
    routes: Box<[RouteRuntime]>,
}

impl ServiceRuntime {
    /// The service's fully qualified host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The service's host, shared (for telemetry records).
    pub fn host_arc(&self) -> &Arc<str> {
        &self.host
    }

    /// The compiled routes.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The prepared parts of route `index`.
    pub fn route(&self, index: usize) -> Option<&RouteRuntime> {
        self.routes.get(index)
    }
}

/// Everything the HTTP layer needs from the mesh, immutable once built.
#[derive(Debug, Default)]
pub struct Runtime {
    services: Box<[ServiceRuntime]>,
    /// Every (service, subset) backend set, sorted, for the admin `/clusters` page.
    clusters: Box<[Cluster]>,
    /// Every name a client may write in `Host` (lowercase, no port) to the service index.
    by_host: HostIndex,
    /// Connection targets by address, for listeners that know where a connection was
    /// headed (see [`tcp`]).
    tcp: TcpTargets,
    /// The client workload's namespace and labels, for `source*` route conditions.
    source_namespace: Box<str>,
    source_labels: trellis_model::Labels,
    /// What a gateway proxy serves on its ports (empty for sidecars).
    gateways: GatewayRoutes,
}

impl Runtime {
    /// Builds the runtime for `mesh`. Services whose host is a wildcard are skipped
    /// (they need a per-request host match, not done yet).
    pub fn build(mesh: &Mesh, opts: &RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let by_fqdn: HashMap<&str, &Service> =
            mesh.services.iter().map(|s| (s.host.as_str(), s)).collect();
        let mut sets: HashMap<(&str, Option<&str>), Arc<BackendSet>> = HashMap::new();
        let mut services = Vec::with_capacity(mesh.services.len());
        for service in mesh.services.iter().filter(|s| !s.host.starts_with('*')) {
            services.push(build_service(service, &by_fqdn, &mut sets)?);
        }
        let by_host = host_index(mesh, &services, &opts.client_namespace);
        let tcp = TcpTargets::build(mesh, opts, &by_fqdn, &mut sets)?;
        let gateways = match &opts.gateway_labels {
            Some(labels) => GatewayRoutes::build(mesh, labels, &by_fqdn, &mut sets)?,
            None => GatewayRoutes::default(),
        };
        let mut clusters: Vec<Cluster> = sets
            .into_iter()
            .map(|((host, subset), set)| Cluster {
                host: host.to_owned(),
                subset: subset
                    .filter(|s| !s.starts_with('\u{0}'))
                    .map(str::to_owned),
                set,
            })
            .collect();
        clusters.sort_by(|a, b| (&a.host, &a.subset).cmp(&(&b.host, &b.subset)));
        tracing::debug!(services = services.len(), "built proxy runtime");
        Ok(Runtime {
            services: services.into_boxed_slice(),
            clusters: clusters.into_boxed_slice(),
            by_host,
            tcp,
            source_namespace: opts.client_namespace.as_str().into(),
            source_labels: opts.client_labels.clone(),
            gateways,
        })
    }

    /// What this proxy serves as a gateway (empty for sidecars).
    pub fn gateways(&self) -> &GatewayRoutes {
        &self.gateways
    }

    /// The client workload's labels and namespace, as route `sourceLabels` and
    /// `sourceNamespace` conditions see them.
    pub fn source(&self) -> (&trellis_model::Labels, &str) {
        (&self.source_labels, &self.source_namespace)
    }

    /// The service a `Host`/`:authority` value names (`name`, `name.ns`, `name.ns.svc`
    /// or the FQDN, with or without `:port`, case-insensitively).
    pub fn service_for_authority(&self, authority: &str) -> Option<&ServiceRuntime> {
        self.service_for_host(split_authority(authority).0)
    }

    /// [`Self::service_for_authority`] for an authority already split from its port.
    pub fn service_for_host(&self, host: &str) -> Option<&ServiceRuntime> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let index = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_host.get(host.to_ascii_lowercase().as_str())
        } else {
            self.by_host.get(host)
        };
        index.and_then(|&i| self.services.get(i))
    }

    /// Every (service, subset) that routes can send to, with its backends per port,
    /// sorted by host then subset (the admin `/clusters` page).
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// Number of routable services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether no service is routable.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

fn build_service<'m>(
    service: &'m Service,
    by_fqdn: &HashMap<&str, &'m Service>,
    sets: &mut HashMap<(&'m str, Option<&'m str>), Arc<BackendSet>>,
) -> Result<ServiceRuntime, RuntimeError> {
    if !service.http_routes.is_empty() {
        return finish_service(&service.host, &service.http_routes, by_fqdn, sets);
    }
    // No routes configured: everything goes to the service itself.
    let default_route = [HttpRoute {
        action: RouteAction::Forward(vec![WeightedDestination::new(
            Destination::new(service.host.clone()),
            1,
        )]),
        ..HttpRoute::default()
    }];
    finish_service(&service.host, &default_route, by_fqdn, sets)
}

/// Prepares `routes` of the service (or gateway virtual host) named `owner`.
fn finish_service<'m>(
    owner: &str,
    routes: &[HttpRoute],
    by_fqdn: &HashMap<&str, &'m Service>,
    sets: &mut HashMap<(&'m str, Option<&'m str>), Arc<BackendSet>>,
) -> Result<ServiceRuntime, RuntimeError> {
    let table = RouteTable::compile(routes).map_err(|source| RuntimeError::Route {
        service: owner.to_owned(),
        source,
    })?;
    let header_err = |route: usize| {
        move |source| RuntimeError::Header {
            service: owner.to_owned(),
            route,
            source,
        }
    };
    let mut prepared = Vec::with_capacity(routes.len());
    let now = Instant::now();
    for (index, route) in routes.iter().enumerate() {
        let mut destinations = Vec::with_capacity(route.action.destinations().len());
        for wd in route.action.destinations() {
            let backends = match by_fqdn.get(wd.destination.host.as_str()).copied() {
                Some(svc) => Some(backend_set(svc, &wd.destination, sets)?),
                None => None,
            };
            destinations.push(DestinationRuntime {
                backends,
                request_headers: HeaderEdits::compile(&wd.request_headers)
                    .map_err(header_err(index))?,
                response_headers: HeaderEdits::compile(&wd.response_headers)
                    .map_err(header_err(index))?,
            });
        }
        let retry = route
            .retry
            .as_ref()
            .map(|p| RouteRetry::new(p, now))
            .transpose()
            .map_err(|source| RuntimeError::Budget {
                service: owner.to_owned(),
                route: index,
                source,
            })?;
        let features = features::prepare(owner, index, route, by_fqdn, sets)?;
        let name: Arc<str> = match &route.name {
            Some(n) if !route.origin.name.is_empty() => format!("{} ({n})", route.origin).into(),
            Some(n) => n.as_str().into(),
            None => route.origin.to_string().into(),
        };
        prepared.push(RouteRuntime {
            name,
            request_headers: HeaderEdits::compile(&route.request_headers)
                .map_err(header_err(index))?,
            response_headers: HeaderEdits::compile(&route.response_headers)
                .map_err(header_err(index))?,
            destinations: destinations.into_boxed_slice(),
            retry,
            fault: features.fault,
            mirrors: features.mirrors,
            rewrite: features.rewrite,
            cors: features.cors,
        });
    }
    Ok(ServiceRuntime {
        host: owner.into(),
        table,
        routes: prepared.into_boxed_slice(),
    })
}

/// The shared backend set of `service` restricted to the destination's subset, built on
/// first use so routes naming the same subset share balancer state.
fn backend_set<'m>(
    service: &'m Service,
    destination: &Destination,
    sets: &mut HashMap<(&'m str, Option<&'m str>), Arc<BackendSet>>,
) -> Result<Arc<BackendSet>, RuntimeError> {
    // Key by the service's own strings so the map can borrow from the mesh.
    let subset = destination.subset.as_deref().map(|name| {
        service
            .subset(name)
            .map_or("\u{0}unknown", |s| s.name.as_str())
    });
    if let Some(set) = sets.get(&(service.host.as_str(), subset)) {
        return Ok(Arc::clone(set));
    }
    let set = BackendSet::build(service, destination.subset.as_deref()).map_err(|source| {
        RuntimeError::Backend {
            host: service.host.clone(),
            source,
        }
    })?;
    let set = Arc::new(set);
    sets.insert((service.host.as_str(), subset), Arc::clone(&set));
    Ok(set)
}

/// Service index by every host name a client may use; probed with each request's `Host`.
type HostIndex = HashMap<Box<str>, usize, foldhash::fast::RandomState>;

/// Indexes every name a client may use for each service: the FQDN always, and for
/// in-cluster services `name.ns.svc`, `name.ns` and (in the client's namespace) `name`.
/// Exact FQDNs win over shorter aliases when both exist.
fn host_index(mesh: &Mesh, services: &[ServiceRuntime], client_namespace: &str) -> HostIndex {
    let resolver = mesh.host_resolver();
    let mut index = HostIndex::with_capacity_and_hasher(services.len() * 4, Default::default());
    for (i, s) in services.iter().enumerate() {
        index.insert(s.host.to_ascii_lowercase().into_boxed_str(), i);
    }
    for (i, s) in services.iter().enumerate() {
        let Some((name, ns)) = resolver.split_service_fqdn(&s.host) else {
            continue;
        };
        let mut aliases = vec![format!("{name}.{ns}.svc"), format!("{name}.{ns}")];
        if ns == client_namespace {
            aliases.push(name.to_owned());
        }
        for alias in aliases {
            index
                .entry(alias.to_ascii_lowercase().into_boxed_str())
                .or_insert(i);
        }
    }
    index
}
