//! Property tests for the compiler: generated meshes (services in several namespaces, destination
//! rules with subsets, virtual services with ordered weighted rules referring to services by short,
//! namespaced and fully qualified names) must compile deterministically, with every rule, weight and
//! destination carried over in order and every host resolved as Istio resolves it.

use proptest::prelude::*;
use trellis_config::compile::{CompileOptions, compile};
use trellis_config::{LoadOptions, load_str};
use trellis_model::{Mesh, RouteAction};

const NAMESPACES: &[&str] = &["default", "shop", "prod"];

#[derive(Debug, Clone)]
struct Dest {
    service: usize,
    /// 0: short name, 1: `name.ns`, 2: FQDN.
    form: u8,
    subset: Option<u8>,
    weight: u32,
}

#[derive(Debug, Clone)]
struct Rule {
    header: Option<String>,
    timeout_ms: Option<u32>,
    dests: Vec<Dest>,
}

#[derive(Debug, Clone)]
struct Input {
    /// Namespace of each service, and of its VirtualService.
    service_ns: Vec<usize>,
    /// Rules per service (empty: no VirtualService).
    rules: Vec<Vec<Rule>>,
}

fn dest(services: usize) -> impl Strategy<Value = Dest> {
    (
        0..services,
        0u8..3,
        proptest::option::of(0u8..2),
        1u32..=100,
    )
        .prop_map(|(service, form, subset, weight)| Dest {
            service,
            form,
            subset,
            weight,
        })
}

fn rule(services: usize) -> impl Strategy<Value = Rule> {
    (
        proptest::option::of("[a-z]{1,8}"),
        proptest::option::of(1u32..60_000),
        proptest::collection::vec(dest(services), 1..4),
    )
        .prop_map(|(header, timeout_ms, dests)| Rule {
            header,
            timeout_ms,
            dests,
        })
}

fn input() -> impl Strategy<Value = Input> {
    (1usize..6).prop_flat_map(|n| {
        (
            proptest::collection::vec(0..NAMESPACES.len(), n),
            proptest::collection::vec(proptest::collection::vec(rule(n), 0..4), n),
        )
            .prop_map(|(service_ns, rules)| Input { service_ns, rules })
    })
}

fn host_as_written(input: &Input, d: &Dest) -> String {
    let ns = NAMESPACES[input.service_ns[d.service]];
    match d.form {
        0 => format!("svc{}", d.service),
        1 => format!("svc{}.{ns}", d.service),
        _ => format!("svc{}.{ns}.svc.cluster.local", d.service),
    }
}

/// Render the input as YAML. Short names are only used from the service's own namespace, as
/// Istio requires; from elsewhere the namespaced form is written.
fn render(input: &Input) -> String {
    let mut y = String::new();
    for (i, ns) in input.service_ns.iter().map(|n| NAMESPACES[*n]).enumerate() {
        y.push_str(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: svc{i}, namespace: {ns}}}\nspec:\n  selector: {{app: svc{i}}}\n  ports: [{{name: http, port: 8080}}]\n---\n\
apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc{i}, namespace: {ns}}}\nspec:\n  host: svc{i}\n  subsets:\n  - {{name: s0, labels: {{version: v0}}}}\n  - {{name: s1, labels: {{version: v1}}}}\n---\n"
        ));
    }
    for (i, rules) in input.rules.iter().enumerate() {
        if rules.is_empty() {
            continue;
        }
        let ns = NAMESPACES[input.service_ns[i]];
        y.push_str(&format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc{i}, namespace: {ns}}}\nspec:\n  hosts: [svc{i}]\n  http:\n"
        ));
        for r in rules {
            y.push_str("  - route:\n");
            for d in &r.dests {
                let mut host = host_as_written(input, d);
                if d.form == 0 && input.service_ns[d.service] != input.service_ns[i] {
                    host = format!(
                        "svc{}.{}",
                        d.service, NAMESPACES[input.service_ns[d.service]]
                    );
                }
                let subset = d
                    .subset
                    .map(|s| format!(", subset: s{s}"))
                    .unwrap_or_default();
                y.push_str(&format!(
                    "    - destination: {{host: {host}{subset}}}\n      weight: {}\n",
                    d.weight
                ));
            }
            if let Some(h) = &r.header {
                y.push_str(&format!(
                    "    match:\n    - headers: {{x-{h}: {{exact: \"yes\"}}}}\n"
                ));
            }
            if let Some(t) = r.timeout_ms {
                y.push_str(&format!("    timeout: {t}ms\n"));
            }
        }
        y.push_str("---\n");
    }
    y
}

fn compile_text(text: &str) -> Mesh {
    let loaded = load_str("gen.yaml", text, &LoadOptions::default());
    assert!(
        !loaded
            .diagnostics
            .iter()
            .any(|d| d.severity == trellis_config::Severity::Error),
        "generated input has errors: {:#?}\n{text}",
        loaded.diagnostics
    );
    compile(&loaded.resources, &CompileOptions::default()).mesh
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn compiling_is_deterministic_and_order_independent(input in input()) {
        let text = render(&input);
        let a = compile_text(&text);
        let b = compile_text(&text);
        prop_assert_eq!(&a, &b);
        // Reversing the order of documents does not change which services exist or their routes.
        let mut docs: Vec<&str> = text.split("---\n").filter(|d| !d.trim().is_empty()).collect();
        docs.reverse();
        let c = compile_text(&docs.join("---\n"));
        let hosts = |m: &Mesh| m.services.iter().map(|s| (s.host.clone(), s.http_routes.clone())).collect::<Vec<_>>();
        prop_assert_eq!(hosts(&a), hosts(&c));
    }

    #[test]
    fn every_rule_weight_and_host_is_carried_over_in_order(input in input()) {
        let mesh = compile_text(&render(&input));
        for (i, rules) in input.rules.iter().enumerate() {
            let ns = NAMESPACES[input.service_ns[i]];
            let fqdn = format!("svc{i}.{ns}.svc.cluster.local");
            let svc = mesh.service(&fqdn).expect("service compiled");
            prop_assert_eq!(svc.http_routes.len(), rules.len(), "rules of {}", fqdn);
            for (r, got) in rules.iter().zip(&svc.http_routes) {
                let RouteAction::Forward(dests) = &got.action else {
                    return Err(TestCaseError::fail("expected a forward action"));
                };
                prop_assert_eq!(dests.len(), r.dests.len());
                for (d, w) in r.dests.iter().zip(dests) {
                    let want_ns = NAMESPACES[input.service_ns[d.service]];
                    prop_assert_eq!(&w.destination.host, &format!("svc{}.{want_ns}.svc.cluster.local", d.service));
                    prop_assert_eq!(w.weight, d.weight);
                    prop_assert_eq!(w.destination.subset.clone(), d.subset.map(|s| format!("s{s}")));
                }
                prop_assert_eq!(got.timeout.map(|t| t.as_millis() as u32), r.timeout_ms);
                prop_assert_eq!(got.matches.len(), usize::from(r.header.is_some()));
            }
        }
    }
}
