//! Istio's Sidecar selection and egress-host matching, rule by rule.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn service(name: &str, namespace: &str) -> Service {
    Service {
        host: format!("{name}.{namespace}.svc.cluster.local"),
        name: name.into(),
        namespace: namespace.into(),
        ..Service::default()
    }
}

fn external(host: &str, namespace: &str) -> Service {
    Service {
        host: host.into(),
        name: host.into(),
        namespace: namespace.into(),
        ..Service::default()
    }
}

fn sidecar(
    name: &str,
    namespace: &str,
    selector: Option<&[(&str, &str)]>,
    hosts: &[&str],
) -> SidecarScope {
    SidecarScope {
        origin: SourceRef::new("Sidecar", namespace, name),
        namespace: namespace.into(),
        selector: selector.map(labels),
        egress_hosts: hosts.iter().map(|h| h.to_string()).collect(),
    }
}

fn mesh(sidecars: Vec<SidecarScope>) -> Mesh {
    let mut m = Mesh {
        services: vec![
            service("reviews", "bookinfo"),
            service("ratings", "bookinfo"),
            service("orders", "shop"),
            service("istiod", "istio-system"),
            external("api.example.com", "shop"),
            external("*.wikipedia.org", "egress"),
        ],
        sidecars,
        ..Mesh::default()
    };
    m.normalize();
    m
}

/// Short names of the services `namespace`/`labels` sees, sorted.
fn seen(m: &Mesh, namespace: &str, l: &[(&str, &str)]) -> Vec<String> {
    let mut out: Vec<String> = m
        .visible_to(namespace, &labels(l))
        .map(|s| s.name.clone())
        .collect();
    out.sort();
    out
}

const ALL: [&str; 6] = [
    "*.wikipedia.org",
    "api.example.com",
    "istiod",
    "orders",
    "ratings",
    "reviews",
];

#[test]
fn without_a_sidecar_everything_exported_is_visible() {
    let m = mesh(vec![]);
    assert_eq!(seen(&m, "bookinfo", &[]), ALL);
    assert!(m.sidecar_for("bookinfo", &Labels::new()).is_none());
}

#[test]
fn selector_sidecar_wins_over_namespace_default_which_wins_over_root_default() {
    let m = mesh(vec![
        sidecar("root", "istio-system", None, &["istio-system/*"]),
        sidecar("ns-default", "bookinfo", None, &["./*"]),
        sidecar(
            "reviews-only",
            "bookinfo",
            Some(&[("app", "productpage")]),
            &["bookinfo/reviews.bookinfo.svc.cluster.local"],
        ),
    ]);
    let name =
        |ns: &str, l: &[(&str, &str)]| m.sidecar_for(ns, &labels(l)).map(|s| s.origin.name.clone());
    assert_eq!(
        name("bookinfo", &[("app", "productpage")]).as_deref(),
        Some("reviews-only")
    );
    assert_eq!(
        name("bookinfo", &[("app", "ratings")]).as_deref(),
        Some("ns-default")
    );
    assert_eq!(
        name("shop", &[("app", "productpage")]).as_deref(),
        Some("root")
    );
    assert_eq!(seen(&m, "bookinfo", &[("app", "productpage")]), ["reviews"]);
    assert_eq!(
        seen(&m, "bookinfo", &[("app", "ratings")]),
        ["ratings", "reviews"]
    );
    assert_eq!(seen(&m, "shop", &[]), ["istiod"]);
}

#[test]
fn the_oldest_matching_sidecar_applies() {
    let m = mesh(vec![
        sidecar(
            "older",
            "bookinfo",
            Some(&[("app", "reviews")]),
            &["shop/*"],
        ),
        sidecar(
            "newer",
            "bookinfo",
            Some(&[("version", "v1")]),
            &["istio-system/*"],
        ),
        sidecar("default-1", "bookinfo", None, &["bookinfo/*"]),
        sidecar("default-2", "bookinfo", None, &["*/*"]),
    ]);
    let l = [("app", "reviews"), ("version", "v1")];
    assert_eq!(
        m.sidecar_for("bookinfo", &labels(&l))
            .map(|s| s.origin.name.as_str()),
        Some("older")
    );
    assert_eq!(seen(&m, "bookinfo", &l), ["api.example.com", "orders"]);
    assert_eq!(seen(&m, "bookinfo", &[("version", "v1")]), ["istiod"]);
    assert_eq!(
        seen(&m, "bookinfo", &[]),
        ["ratings", "reviews"],
        "first selector-less Sidecar"
    );
}

#[test]
fn an_empty_selector_is_a_selector_that_matches_everyone() {
    let m = mesh(vec![
        sidecar("default", "bookinfo", None, &["*/*"]),
        sidecar("empty", "bookinfo", Some(&[]), &["shop/*"]),
    ]);
    assert_eq!(
        seen(&m, "bookinfo", &[("app", "x")]),
        ["api.example.com", "orders"]
    );
}

#[test]
fn sidecars_of_other_namespaces_do_not_apply() {
    let m = mesh(vec![
        sidecar("shop-default", "shop", None, &["./*"]),
        sidecar("shop-sel", "shop", Some(&[("app", "reviews")]), &["./*"]),
        // A root-namespace Sidecar with a selector is not a mesh-wide default.
        sidecar(
            "root-sel",
            "istio-system",
            Some(&[("app", "reviews")]),
            &["istio-system/*"],
        ),
    ]);
    assert_eq!(seen(&m, "bookinfo", &[("app", "reviews")]), ALL);
    assert_eq!(seen(&m, "istio-system", &[("app", "reviews")]), ["istiod"]);
}

#[test]
fn root_default_dot_means_each_workloads_namespace() {
    let m = mesh(vec![sidecar(
        "default",
        "istio-system",
        None,
        &["./*", "istio-system/*"],
    )]);
    assert_eq!(seen(&m, "bookinfo", &[]), ["istiod", "ratings", "reviews"]);
    assert_eq!(
        seen(&m, "shop", &[]),
        ["api.example.com", "istiod", "orders"]
    );
}

#[test]
fn namespace_parts() {
    let one = |hosts: &[&str]| mesh(vec![sidecar("s", "bookinfo", None, hosts)]);
    assert_eq!(seen(&one(&["*/*"]), "bookinfo", &[]), ALL);
    assert_eq!(
        seen(&one(&["shop/*"]), "bookinfo", &[]),
        ["api.example.com", "orders"]
    );
    assert!(
        seen(&one(&["~/*"]), "bookinfo", &[]).is_empty(),
        "~ imports nothing"
    );
    assert!(seen(&one(&["nowhere/*"]), "bookinfo", &[]).is_empty());
    assert!(
        seen(&one(&[]), "bookinfo", &[]).is_empty(),
        "no hosts, nothing"
    );
    assert!(
        seen(
            &one(&["reviews.bookinfo.svc.cluster.local"]),
            "bookinfo",
            &[]
        )
        .is_empty(),
        "no namespace part: ignored"
    );
    assert_eq!(
        seen(&one(&["./*"]), "bookinfo", &[]),
        ["ratings", "reviews"]
    );
}

#[test]
fn dns_parts() {
    let one = |hosts: &[&str]| mesh(vec![sidecar("s", "bookinfo", None, hosts)]);
    assert_eq!(
        seen(
            &one(&["*/reviews.bookinfo.svc.cluster.local"]),
            "bookinfo",
            &[]
        ),
        ["reviews"]
    );
    assert_eq!(
        seen(
            &one(&["bookinfo/Reviews.Bookinfo.svc.cluster.local"]),
            "bookinfo",
            &[]
        ),
        ["reviews"]
    );
    assert!(
        seen(
            &one(&["shop/reviews.bookinfo.svc.cluster.local"]),
            "bookinfo",
            &[]
        )
        .is_empty(),
        "wrong namespace"
    );
    assert_eq!(
        seen(&one(&["*/*.bookinfo.svc.cluster.local"]), "bookinfo", &[]),
        ["ratings", "reviews"]
    );
    assert_eq!(
        seen(&one(&["*/*.svc.cluster.local"]), "bookinfo", &[]),
        ["istiod", "orders", "ratings", "reviews"]
    );
    assert_eq!(
        seen(&one(&["*/*.example.com"]), "bookinfo", &[]),
        ["api.example.com"]
    );
    // Wildcard service hosts overlap with narrower and wider entries.
    assert_eq!(
        seen(&one(&["egress/de.wikipedia.org"]), "bookinfo", &[]),
        ["*.wikipedia.org"]
    );
    assert_eq!(
        seen(&one(&["egress/*.org"]), "bookinfo", &[]),
        ["*.wikipedia.org"]
    );
    assert_eq!(
        seen(&one(&["*/*.wikipedia.org"]), "bookinfo", &[]),
        ["*.wikipedia.org"]
    );
    assert!(seen(&one(&["egress/wikipedia.org"]), "bookinfo", &[]).is_empty());
}

#[test]
fn export_to_applies_with_and_without_a_sidecar() {
    let mut m = mesh(vec![]);
    let set = |m: &mut Mesh, name: &str, export: &[&str]| {
        if let Some(s) = m.services.iter_mut().find(|s| s.name == name) {
            s.export_to = export.iter().map(|e| e.to_string()).collect();
        }
    };
    set(&mut m, "reviews", &["."]);
    set(&mut m, "ratings", &["~"]);
    set(&mut m, "orders", &["bookinfo", "."]);
    set(&mut m, "istiod", &["*"]);
    set(&mut m, "api.example.com", &["istio-system"]);
    assert_eq!(
        seen(&m, "bookinfo", &[]),
        ["*.wikipedia.org", "istiod", "orders", "reviews"]
    );
    assert_eq!(
        seen(&m, "shop", &[]),
        ["*.wikipedia.org", "istiod", "orders"]
    );
    assert_eq!(
        seen(&m, "istio-system", &[]),
        ["*.wikipedia.org", "api.example.com", "istiod"]
    );
    // A Sidecar importing everything cannot see what is not exported to it.
    m.sidecars = vec![sidecar("all", "shop", None, &["*/*"])];
    assert_eq!(
        seen(&m, "shop", &[]),
        ["*.wikipedia.org", "istiod", "orders"]
    );
    // And exported services still need an import.
    m.sidecars = vec![sidecar(
        "some",
        "shop",
        None,
        &["bookinfo/*", "istio-system/*"],
    )];
    assert_eq!(seen(&m, "shop", &[]), ["istiod"]);
}

#[test]
fn serde_round_trip() {
    let m = mesh(vec![sidecar(
        "s",
        "bookinfo",
        Some(&[("a", "b")]),
        &["./*"],
    )]);
    let text = serde_json::to_string(&m).expect("serialize");
    let back: Mesh = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, m);
    let old: Mesh = serde_json::from_str(r#"{"services":[]}"#).expect("dump without sidecars");
    assert!(old.sidecars.is_empty());
}
