//! Tests of the Gateway API route pass; shared helpers here, cases by parent kind below.

mod filters;
mod gamma;
mod grpc_l4;
mod north_south;

use crate::compile::{CompileOptions, Compiled, compile};
use crate::diag::{Code, Diagnostic};
use crate::load::{LoadOptions, load_str};
use trellis_model::{Gateway, HttpRoute, RouteAction, Service, VirtualHost};

/// Load (asserting the input itself is valid) and compile.
fn run(yaml: &str) -> Compiled {
    let loaded = load_str("t.yaml", yaml, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    compile(&loaded.resources, &CompileOptions::default())
}

/// A Kubernetes Service `name` in `ns` with one HTTP port, as discovery needs it.
fn service(ns: &str, name: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{app: {name}}}\n  ports:\n  - {{name: http, port: {port}}}\n---\n"
    )
}

fn svc<'a>(c: &'a Compiled, host: &str) -> &'a Service {
    c.mesh
        .service(host)
        .unwrap_or_else(|| panic!("no service {host}"))
}

fn gateway<'a>(c: &'a Compiled, ns: &str, name: &str) -> &'a Gateway {
    c.mesh
        .gateways
        .iter()
        .find(|g| g.namespace == ns && g.name == name && g.class.is_some())
        .unwrap_or_else(|| panic!("no Gateway API gateway {ns}/{name}"))
}

fn vhost<'a>(gw: &'a Gateway, port: u16, host: &str) -> &'a VirtualHost {
    gw.virtual_hosts
        .iter()
        .find(|v| v.port == port && v.hosts == [host])
        .unwrap_or_else(|| panic!("no virtual host {host}:{port} in {:#?}", gw.virtual_hosts))
}

fn with_code(c: &Compiled, code: Code) -> Vec<&Diagnostic> {
    c.diagnostics.iter().filter(|d| d.code == code).collect()
}

/// `(host, port, weight)` of each destination of a forwarding route.
fn dests(route: &HttpRoute) -> Vec<(&str, Option<u16>, u32)> {
    match &route.action {
        RouteAction::Forward(d) => d
            .iter()
            .map(|d| (d.destination.host.as_str(), d.destination.port, d.weight))
            .collect(),
        other => panic!("not a forward: {other:?}"),
    }
}

/// The path pattern of each route's (single) match, in route order.
fn paths(routes: &[HttpRoute]) -> Vec<String> {
    routes
        .iter()
        .map(|r| {
            r.matches
                .first()
                .and_then(|m| m.uri.as_ref())
                .map_or("-".into(), |u| format!("{u:?}"))
        })
        .collect()
}

const H: &str = "svc.cluster.local";
