//! Tests of the route side: TrafficSplit, ServiceProfile, precedence.

use crate::compile::{CompileOptions, Compiled};
use crate::diag::{Code, Diagnostic};
use std::time::Duration;
use trellis_model::{
    Destination, HttpMatch, Protocol, RouteAction, Service, StringMatch, WeightedDestination,
};

/// Compile YAML text with default options.
pub(super) fn compile(text: &str) -> Compiled {
    let loaded = crate::load::load_str("t.yaml", text, &crate::load::LoadOptions::default());
    crate::compile::compile(&loaded.resources, &CompileOptions::default())
}

/// The seed configs joined into one input; `None` when the fixtures are not on this machine.
pub(super) fn seeds(names: &[&str]) -> Option<String> {
    let texts: Option<Vec<String>> = names
        .iter()
        .map(|n| {
            std::fs::read_to_string(format!("/work/shared/fixtures/seed-configs/{n}.yaml")).ok()
        })
        .collect();
    Some(texts?.join("---\n"))
}

pub(super) fn svc<'a>(c: &'a Compiled, host: &str) -> &'a Service {
    c.mesh.service(host).unwrap_or_else(|| {
        panic!(
            "no service {host}: {:?}",
            c.mesh.services.iter().map(|s| &s.host).collect::<Vec<_>>()
        )
    })
}

pub(super) fn diags(c: &Compiled, code: Code) -> Vec<&Diagnostic> {
    c.diagnostics.iter().filter(|d| d.code == code).collect()
}

/// Name, matches, timeout and whether it retries: what the seed tests compare.
type RouteView<'a> = (Option<&'a str>, &'a Vec<HttpMatch>, Option<Duration>, bool);

pub(super) fn fq(name: &str) -> String {
    format!("{name}.default.svc.cluster.local")
}

pub(super) fn split(pairs: &[(&str, u32)]) -> RouteAction {
    RouteAction::Forward(
        pairs
            .iter()
            .map(|(h, w)| WeightedDestination::new(Destination::new(fq(h)), *w))
            .collect(),
    )
}

pub(super) fn on(path: &str, method: &str) -> HttpMatch {
    HttpMatch {
        uri: Some(StringMatch::Regex(path.into())),
        method: Some(StringMatch::Exact(method.into())),
        ..HttpMatch::default()
    }
}

pub(super) const SERVICES: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web-v2}\nspec:\n  selector: {app: web, version: v2}\n  ports: [{name: http, port: 80}]\n";

#[test]
fn seed_linkerd_demo_profile_and_split() {
    let Some(text) = seeds(&["000-15", "000-16", "000-17", "000-18", "000-19", "000-20"]) else {
        return;
    };
    let c = compile(&text);
    let mine: Vec<_> = c
        .diagnostics
        .iter()
        .filter(|d| {
            [
                "ServiceProfile",
                "TrafficSplit",
                "Server",
                "ServerAuthorization",
            ]
            .contains(&d.kind.as_str())
        })
        .collect();
    assert!(mine.is_empty(), "{mine:#?}");
    let backend = svc(&c, &fq("backend-service"));
    let to = split(&[("backend-v1", 900_000), ("backend-v2", 100_000)]);
    let routes: Vec<RouteView<'_>> = backend
        .http_routes
        .iter()
        .map(|r| (r.name.as_deref(), &r.matches, r.timeout, r.retry.is_some()))
        .collect();
    assert_eq!(
        routes,
        vec![
            (
                Some("GET /"),
                &vec![on("/", "GET")],
                Some(Duration::from_secs(3)),
                false
            ),
            (
                Some("GET /health"),
                &vec![on("/health", "GET")],
                Some(Duration::from_secs(1)),
                false
            ),
            (None, &vec![], None, false),
        ]
    );
    assert!(
        backend
            .http_routes
            .iter()
            .all(|r| r.action == to && r.origin.kind == "ServiceProfile"),
        "{:#?}",
        backend.http_routes
    );
    // The Server declares HTTP/1 for port 8080 of the backend pods, which all three services lead to.
    for host in ["backend-service", "backend-v1", "backend-v2"] {
        assert_eq!(
            svc(&c, &fq(host)).port(8080).map(|p| p.protocol),
            Some(Protocol::Http),
            "{host}"
        );
    }
    assert!(
        backend.tcp_routes.is_empty(),
        "an HTTP port needs no TCP route: {:?}",
        backend.tcp_routes
    );
    assert!(svc(&c, &fq("frontend-service")).http_routes.is_empty());
}

#[test]
fn split_alone_routes_http_and_tcp() {
    let Some(text) = seeds(&["000-15", "000-17", "000-18"]) else {
        return;
    };
    let c = compile(&text);
    assert!(
        diags(&c, Code::ReferencedResourceNotFound).is_empty(),
        "{:#?}",
        c.diagnostics
    );
    let backend = svc(&c, &fq("backend-service"));
    let to = split(&[("backend-v1", 900_000), ("backend-v2", 100_000)]);
    assert_eq!(backend.http_routes.len(), 1);
    let r = &backend.http_routes[0];
    assert_eq!(
        (r.matches.is_empty(), &r.action, r.timeout, &r.retry),
        (true, &to, None, &None)
    );
    assert_eq!(
        (r.origin.kind.as_str(), r.origin.name.as_str()),
        ("TrafficSplit", "backend-split")
    );
    // Port 8080 has no declared protocol: connections detected as opaque TCP are split too.
    assert_eq!(
        backend.port(8080).map(|p| p.protocol),
        Some(Protocol::Unknown)
    );
    assert_eq!(backend.tcp_routes.len(), 1);
    assert_eq!(
        backend.tcp_routes[0]
            .matches
            .iter()
            .map(|m| m.port)
            .collect::<Vec<_>>(),
        vec![Some(8080)]
    );
    assert_eq!(
        RouteAction::Forward(backend.tcp_routes[0].destinations.clone()),
        to
    );
}

#[test]
fn missing_backends_are_reported_and_still_routed() {
    let text = format!(
        "{SERVICES}---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {{name: s}}\nspec:\n  service: web\n  backends:\n  - {{service: web-v2, weight: 1}}\n  - {{service: web-v9, weight: 3}}\n"
    );
    let c = compile(&text);
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    assert_eq!(
        missing
            .iter()
            .map(|d| (d.line, d.column))
            .collect::<Vec<_>>(),
        vec![(22, 15)],
        "{missing:#?}"
    );
    assert!(missing[0].message.contains("503 (UH)"));
    assert_eq!(
        svc(&c, &fq("web")).http_routes[0].action,
        split(&[("web-v2", 1000), ("web-v9", 3000)])
    );
}

#[test]
fn a_higher_precedence_api_keeps_the_host() {
    use crate::compile::{Ctx, RouteApi, discovery};
    let text = format!(
        "{SERVICES}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: web}}\nspec:\n  hosts: [web]\n  http: [{{route: [{{destination: {{host: web-v2}}}}]}}]\n---\napiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {{name: s}}\nspec:\n  service: web\n  backends: [{{service: web-v2, weight: 1}}]\n---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: web.default.svc.cluster.local}}\nspec:\n  routes: [{{name: r, condition: {{method: GET}}}}]\n"
    );
    let loaded = crate::load::load_str("t.yaml", &text, &crate::load::LoadOptions::default());
    let opts = CompileOptions::default();
    let mut cx = Ctx::new(&loaded.resources, &opts);
    discovery::compile(&mut cx);
    // Claim the host as the VirtualService pass does, so this test does not depend on that pass.
    let vs = loaded
        .resources
        .iter()
        .find(|r| r.kind() == crate::resources::Kind::VirtualService)
        .expect("vs");
    assert!(cx.claim_routes(&fq("web"), RouteApi::VirtualService, vs, "spec.hosts[0]"));
    super::compile(&mut cx);
    let web = cx
        .mesh
        .services
        .iter()
        .find(|s| s.host == fq("web"))
        .expect("web");
    assert!(web.http_routes.is_empty() && web.tcp_routes.is_empty());
    let reported = cx.report.into_diags();
    let lost: Vec<(&str, &str)> = reported
        .iter()
        .filter(|d| d.code == Code::ApiPrecedence)
        .map(|d| (d.kind.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(lost.len(), 2, "{lost:#?}");
    assert_eq!(lost[0].0, "TrafficSplit");
    assert_eq!(lost[1].0, "ServiceProfile");
    assert!(
        lost[0].1.contains("VirtualService takes precedence"),
        "{}",
        lost[0].1
    );
    // The same through the whole compiler, with the VirtualService pass doing the claim.
    let c = compile(&text);
    let web = svc(&c, &fq("web"));
    assert!(
        web.http_routes
            .iter()
            .all(|r| r.origin.kind == "VirtualService"),
        "{:#?}",
        web.http_routes
    );
    let lost: Vec<&str> = diags(&c, Code::ApiPrecedence)
        .iter()
        .map(|d| d.kind.as_str())
        .collect();
    assert_eq!(lost, vec!["TrafficSplit", "ServiceProfile"]);
}

#[test]
fn one_split_per_service_tls_ports_and_matches() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  selector: {app: db}\n  ports: [{name: tls-db, port: 5432}, {name: http, port: 80}]\n---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: first}\nspec:\n  service: db\n  matches: [{kind: HTTPRouteGroup, name: g}]\n  backends: [{service: db, weight: 1}]\n---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: second}\nspec:\n  service: db\n  backends: [{service: db, weight: 2}]\n";
    let c = compile(text);
    let ignored: Vec<(&str, &str)> = diags(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| (d.name.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(ignored.len(), 2, "{ignored:#?}");
    assert!(
        ignored[0].0 == "first" && ignored[0].1.contains("`matches` is not enforced"),
        "{ignored:?}"
    );
    assert!(
        ignored[1].0 == "second"
            && ignored[1]
                .1
                .contains("TrafficSplit default/first already splits"),
        "{ignored:?}"
    );
    let db = svc(&c, &fq("db"));
    assert_eq!(db.http_routes.len(), 1);
    assert_eq!(db.http_routes[0].origin.name, "first");
    // The HTTP port needs no L4 route, the TLS port gets a TLS (SNI) route.
    assert!(db.tcp_routes.is_empty(), "{:?}", db.tcp_routes);
    assert_eq!(db.tls_routes.len(), 1);
    assert_eq!(
        db.tls_routes[0]
            .matches
            .iter()
            .map(|m| m.port)
            .collect::<Vec<_>>(),
        vec![Some(5432)]
    );
}
