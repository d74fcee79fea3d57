//! IST0101: references to things that are not in the input — destination hosts and subsets,
//! gateways, delegates, Gateway API parents and backends. (Linkerd and SMI references are reported
//! by their compile pass, which resolves them anyway.)
//!
//! Like `istioctl analyze` on files only, "not in the input" is what is checked: when some of the
//! mesh lives elsewhere (a cluster), analyze it together with that configuration.

use super::{Index, Report};
use crate::diag::Code;
use crate::resources::istio_networking::{Destination, VirtualService};
use crate::resources::{Kind, Resource, Spec, gateway_api};

/// Run every reference check.
pub fn check(index: &Index<'_>, report: &mut Report) {
    for r in index.resources {
        match &r.spec {
            Spec::VirtualService(vs) => virtual_service(index, report, r, vs),
            Spec::HttpRoute(route) | Spec::LinkerdHttpRoute(route) => {
                let backends =
                    backends(route.rules.iter().map(|rule| rule.backend_refs.as_slice()));
                gateway_api_route(index, report, r, &route.parent_refs, backends);
            }
            Spec::GrpcRoute(route) => {
                let backends =
                    backends(route.rules.iter().map(|rule| rule.backend_refs.as_slice()));
                gateway_api_route(index, report, r, &route.parent_refs, backends);
            }
            Spec::TcpRoute(route) => {
                let backends =
                    backends(route.rules.iter().map(|rule| rule.backend_refs.as_slice()));
                gateway_api_route(index, report, r, &route.parent_refs, backends);
            }
            Spec::TlsRoute(route) => {
                let backends =
                    backends(route.rules.iter().map(|rule| rule.backend_refs.as_slice()));
                gateway_api_route(index, report, r, &route.parent_refs, backends);
            }
            _ => {}
        }
    }
}

/// What the reference check needs of any Gateway API backend reference.
trait Backend {
    fn is_service(&self) -> bool;
    fn name(&self) -> &str;
    fn namespace(&self) -> Option<&str>;
}

macro_rules! backend {
    ($($t:ty),*) => {$(
        impl Backend for $t {
            fn is_service(&self) -> bool {
                <$t>::is_service(self)
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn namespace(&self) -> Option<&str> {
                self.namespace.as_deref()
            }
        }
    )*};
}

backend!(
    gateway_api::HttpBackendRef,
    gateway_api::GrpcBackendRef,
    gateway_api::BackendRef
);

/// (path, is a Service, name, namespace) of every backend of every rule.
type BackendRefs<'a> = Vec<(String, bool, &'a str, Option<&'a str>)>;

fn backends<'a, B: Backend + 'a>(rules: impl Iterator<Item = &'a [B]>) -> BackendRefs<'a> {
    rules
        .enumerate()
        .flat_map(|(i, refs)| {
            refs.iter().enumerate().map(move |(j, b)| {
                (
                    format!("spec.rules[{i}].backendRefs[{j}]"),
                    b.is_service(),
                    b.name(),
                    b.namespace(),
                )
            })
        })
        .collect()
}

fn virtual_service(index: &Index<'_>, report: &mut Report, r: &Resource, vs: &VirtualService) {
    for (i, g) in vs.gateways.iter().enumerate() {
        gateway_ref(index, report, r, g, &format!("spec.gateways[{i}]"));
    }
    for (i, rule) in vs.http.iter().enumerate() {
        for (j, d) in rule.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                destination(
                    index,
                    report,
                    r,
                    dest,
                    &format!("spec.http[{i}].route[{j}].destination"),
                );
            }
        }
        if let Some(m) = &rule.mirror {
            destination(index, report, r, m, &format!("spec.http[{i}].mirror"));
        }
        for (j, m) in rule.mirrors.iter().enumerate() {
            if let Some(d) = &m.destination {
                destination(
                    index,
                    report,
                    r,
                    d,
                    &format!("spec.http[{i}].mirrors[{j}].destination"),
                );
            }
        }
        for (j, m) in rule.matches.iter().enumerate() {
            for (k, g) in m.gateways.iter().enumerate() {
                gateway_ref(
                    index,
                    report,
                    r,
                    g,
                    &format!("spec.http[{i}].match[{j}].gateways[{k}]"),
                );
            }
        }
        if let Some(d) = &rule.delegate {
            let ns = d.namespace.as_deref().unwrap_or(&r.namespace);
            if !d.name.is_empty() && index.get(Kind::VirtualService, ns, &d.name).is_none() {
                report.at(
                    r,
                    &format!("spec.http[{i}].delegate.name"),
                    Code::ReferencedResourceNotFound,
                    format!(
                        "Referenced delegate VirtualService not found: \"{ns}/{}\"",
                        d.name
                    ),
                );
            }
        }
    }
    let l4 = vs
        .tcp
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.route
                .iter()
                .enumerate()
                .map(move |(j, d)| (format!("spec.tcp[{i}].route[{j}].destination"), d))
        })
        .chain(vs.tls.iter().enumerate().flat_map(|(i, t)| {
            t.route
                .iter()
                .enumerate()
                .map(move |(j, d)| (format!("spec.tls[{i}].route[{j}].destination"), d))
        }));
    for (path, d) in l4 {
        if let Some(dest) = &d.destination {
            destination(index, report, r, dest, &path);
        }
    }
}

fn destination(index: &Index<'_>, report: &mut Report, r: &Resource, d: &Destination, path: &str) {
    if d.host.is_empty() {
        return;
    }
    let fqdn = index.resolver.fqdn(&d.host, &r.namespace);
    if !index.has_host(&fqdn) {
        report.at(
            r,
            &format!("{path}.host"),
            Code::ReferencedResourceNotFound,
            format!("Referenced host not found: {:?}", d.host),
        );
        return;
    }
    if let Some(subset) = &d.subset
        && !index
            .subsets_of(&fqdn)
            .is_some_and(|s| s.contains(subset.as_str()))
    {
        report.at(
            r,
            &format!("{path}.subset"),
            Code::ReferencedResourceNotFound,
            format!("Referenced host+subset not found: \"{}+{subset}\"", d.host),
        );
    }
}

fn gateway_ref(index: &Index<'_>, report: &mut Report, r: &Resource, g: &str, path: &str) {
    if g == "mesh" || g.is_empty() {
        return;
    }
    // `ns/name`, or the legacy `name.ns` form, or a bare name in the VirtualService's namespace.
    let (ns, name) = match g.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => match g.split_once('.') {
            Some((name, ns)) => (ns, name),
            None => (r.namespace.as_str(), g),
        },
    };
    if index.get(Kind::IstioGateway, ns, name).is_none() {
        report.at(
            r,
            path,
            Code::ReferencedResourceNotFound,
            format!("Referenced gateway not found: \"{ns}/{name}\""),
        );
    }
}

fn gateway_api_route(
    index: &Index<'_>,
    report: &mut Report,
    r: &Resource,
    parents: &[gateway_api::ParentReference],
    backends: BackendRefs<'_>,
) {
    for (i, p) in parents.iter().enumerate() {
        let ns = p.namespace.as_deref().unwrap_or(&r.namespace);
        let (found, what) = if p.is_service() {
            (index.has_host(&index.resolver.fqdn(&p.name, ns)), "Service")
        } else if p.is_gateway() {
            (
                index.get(Kind::K8sGateway, ns, &p.name).is_some(),
                "Gateway",
            )
        } else if p.group_kind() == ("policy.linkerd.io", "Server") {
            (
                index.get(Kind::LinkerdServer, ns, &p.name).is_some(),
                "Server",
            )
        } else {
            continue;
        };
        if !found {
            report.at(
                r,
                &format!("spec.parentRefs[{i}].name"),
                Code::ReferencedResourceNotFound,
                format!(
                    "Referenced parent not found: {what} {:?} in namespace {ns:?}",
                    p.name
                ),
            );
        }
    }
    for (path, is_service, name, namespace) in backends {
        let ns = namespace.unwrap_or(&r.namespace);
        if is_service && !name.is_empty() && !index.has_host(&index.resolver.fqdn(name, ns)) {
            report.at(
                r,
                &format!("{path}.name"),
                Code::ReferencedResourceNotFound,
                format!("Referenced backend not found: Service {name:?} in namespace {ns:?}"),
            );
        }
    }
}
