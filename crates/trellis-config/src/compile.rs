//! Compile loaded resources into the one mesh model (`trellis-model`).
//!
//! Order matters and is fixed: discovery (workloads, services, endpoints) first, then backend
//! policies (DestinationRule), gateways, routes from each API in precedence order, then security
//! and telemetry policies, and last the Sidecars that narrow what each proxy sees. When two APIs
//! configure routes for the same host, the precedence is
//!
//! 1. Istio `VirtualService`,
//! 2. Gateway API `HTTPRoute`/`GRPCRoute`/`TCPRoute`/`TLSRoute` (GAMMA, parent is a Service),
//! 3. Linkerd `ServiceProfile` + SMI `TrafficSplit` (which compose with each other),
//!
//! and the losing resource gets a TRL2004 warning naming the winner (documented in
//! docs/configuration.md). Two resources of the same API for one host follow that API's rule:
//! VirtualServices conflict (IST0109, first in file order wins, as Istio's oldest-wins), HTTPRoutes
//! merge.

mod discovery;
mod gateway_api;
mod gateways;
mod istio_policy;
mod istio_routes;
mod linkerd;
mod security;
mod sidecars;
mod telemetry;

use crate::diag::{Code, Diagnostic};
use crate::report::Report;
use crate::resources::{Kind, Resource};
use std::collections::HashMap;
use trellis_model::{HostResolver, Mesh, Service, SourceRef};

/// Settings that are not in any resource.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// DNS suffix of services (`cluster.local`).
    pub domain: String,
    /// SPIFFE trust domain (`cluster.local`).
    pub trust_domain: String,
    /// Namespace whose policies apply mesh-wide (`istio-system`).
    pub root_namespace: String,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            domain: trellis_model::DEFAULT_DOMAIN.into(),
            trust_domain: trellis_model::DEFAULT_DOMAIN.into(),
            root_namespace: trellis_model::DEFAULT_ROOT_NAMESPACE.into(),
        }
    }
}

/// The compiled model and what compiling it found (precedence decisions, conflicts, resources that
/// could not be used).
#[derive(Debug, Clone)]
pub struct Compiled {
    pub mesh: Mesh,
    pub diagnostics: Vec<Diagnostic>,
}

/// The route APIs, in precedence order (lower wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RouteApi {
    VirtualService,
    GatewayApi,
    Linkerd,
}

impl RouteApi {
    fn describe(self) -> &'static str {
        match self {
            RouteApi::VirtualService => "VirtualService",
            RouteApi::GatewayApi => "Gateway API route",
            RouteApi::Linkerd => "ServiceProfile/TrafficSplit",
        }
    }
}

/// State shared by the compile passes.
pub(crate) struct Ctx<'a> {
    pub resources: &'a [Resource],
    pub opts: &'a CompileOptions,
    pub resolver: HostResolver,
    pub mesh: Mesh,
    pub report: Report,
    services: HashMap<String, usize>,
    route_owner: HashMap<String, (RouteApi, SourceRef)>,
}

impl<'a> Ctx<'a> {
    fn new(resources: &'a [Resource], opts: &'a CompileOptions) -> Self {
        let mut namespaces: std::collections::BTreeSet<String> = resources
            .iter()
            .flat_map(|r| {
                let own = (!r.namespace.is_empty()).then(|| r.namespace.clone());
                let declared = (r.kind() == Kind::Namespace).then(|| r.name.clone());
                own.into_iter().chain(declared)
            })
            .collect();
        namespaces.insert("default".into());
        let resolver = HostResolver::new(opts.domain.clone(), namespaces.iter().cloned());
        let mesh = Mesh {
            trust_domain: opts.trust_domain.clone(),
            domain: opts.domain.clone(),
            root_namespace: opts.root_namespace.clone(),
            namespaces,
            ..Mesh::default()
        };
        Ctx {
            resources,
            opts,
            resolver,
            mesh,
            report: Report::default(),
            services: HashMap::new(),
            route_owner: HashMap::new(),
        }
    }

    /// Resources of one kind, in input order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.kind() == kind)
    }

    /// `reviews` written in namespace `ns` -> `reviews.ns.svc.cluster.local`.
    pub fn fqdn(&self, host: &str, namespace: &str) -> String {
        self.resolver.fqdn(host, namespace)
    }

    /// Add a service, or return the index of the one with the same host (the first definition of a
    /// host wins; later ones add ports and endpoints).
    pub fn add_service(&mut self, service: Service) -> usize {
        match self.services.get(&service.host) {
            Some(&i) => {
                let existing = &mut self.mesh.services[i];
                for p in service.ports {
                    if existing.port(p.number).is_none() {
                        existing.ports.push(p);
                    }
                }
                existing.endpoints.extend(service.endpoints);
                existing.origins.extend(service.origins);
                i
            }
            None => {
                let i = self.mesh.services.len();
                self.services.insert(service.host.clone(), i);
                self.mesh.services.push(service);
                i
            }
        }
    }

    /// The service with this FQDN.
    pub fn service(&self, fqdn: &str) -> Option<&Service> {
        self.services.get(fqdn).map(|&i| &self.mesh.services[i])
    }

    /// The service with this FQDN, to change it.
    pub fn service_mut(&mut self, fqdn: &str) -> Option<&mut Service> {
        self.services
            .get(fqdn)
            .copied()
            .map(move |i| &mut self.mesh.services[i])
    }

    /// Claim the right to define routes for `host` for resource `r` of `api`. Returns false (and
    /// says why, at `path`) when another resource already owns the host and wins.
    pub fn claim_routes(&mut self, host: &str, api: RouteApi, r: &Resource, path: &str) -> bool {
        let me = source_ref(r);
        match self.route_owner.get(host) {
            None => {
                self.route_owner.insert(host.to_owned(), (api, me));
                true
            }
            Some((_, owner)) if *owner == me => true,
            Some((owner_api, owner)) => {
                let (owner_api, owner) = (*owner_api, owner.clone());
                if owner_api == api {
                    match api {
                        // Gateway API routes and Linkerd resources for one host compose.
                        RouteApi::GatewayApi | RouteApi::Linkerd => true,
                        RouteApi::VirtualService => {
                            self.report.at(
                                r,
                                path,
                                Code::ConflictingHosts,
                                format!("host {host} is already routed by {owner}; this VirtualService's rules for it are ignored (Istio uses the oldest)"),
                            );
                            false
                        }
                    }
                } else {
                    self.report.at(
                        r,
                        path,
                        Code::ApiPrecedence,
                        format!(
                            "host {host} is also routed by {owner}; {} takes precedence over {}, so this {}'s routes for it are ignored",
                            owner_api.describe(),
                            api.describe(),
                            r.kind().name()
                        ),
                    );
                    false
                }
            }
        }
    }
}

/// Where a model element came from.
pub(crate) fn source_ref(r: &Resource) -> SourceRef {
    SourceRef {
        kind: r.kind().name().to_owned(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

/// Compile `resources` (normally only those without errors) into the mesh model.
pub fn compile(resources: &[Resource], opts: &CompileOptions) -> Compiled {
    let mut cx = Ctx::new(resources, opts);
    discovery::compile(&mut cx);
    istio_policy::compile(&mut cx);
    gateways::compile(&mut cx);
    istio_routes::compile(&mut cx);
    gateway_api::compile(&mut cx);
    linkerd::compile(&mut cx);
    security::compile(&mut cx);
    telemetry::compile(&mut cx);
    sidecars::compile(&mut cx);
    let mut mesh = cx.mesh;
    mesh.normalize();
    Compiled {
        mesh,
        diagnostics: cx.report.into_diags(),
    }
}
