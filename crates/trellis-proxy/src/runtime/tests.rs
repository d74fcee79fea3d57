//! Runtime construction from hand-built meshes: host aliases, the default route, shared
//! backend sets and configuration errors.

use std::time::Instant;

use trellis_model::{
    Destination, Endpoint, HeaderOps, HttpRoute, Labels, Mesh, Protocol, RouteAction, Service,
    ServicePort, Subset, WeightedDestination,
};

use super::*;
use crate::balance::PickContext;

fn service(name: &str, ns: &str, ports: &[u16]) -> Service {
    Service {
        host: format!("{name}.{ns}.svc.cluster.local"),
        name: name.into(),
        namespace: ns.into(),
        ports: ports
            .iter()
            .map(|&n| ServicePort {
                number: n,
                name: format!("http-{n}"),
                protocol: Protocol::Http,
                target_port: Some(n + 1000),
            })
            .collect(),
        endpoints: vec![endpoint("10.0.0.1", "v1"), endpoint("10.0.0.2", "v2")],
        subsets: vec![Subset {
            name: "v2".into(),
            labels: labels("v2"),
            ..Subset::default()
        }],
        ..Service::default()
    }
}

fn labels(version: &str) -> Labels {
    let mut l = Labels::new();
    l.insert("version".into(), version.into());
    l
}

fn endpoint(address: &str, version: &str) -> Endpoint {
    Endpoint {
        address: address.into(),
        labels: labels(version),
        ..Endpoint::default()
    }
}

fn mesh(services: Vec<Service>) -> Mesh {
    let mut mesh = Mesh {
        services,
        ..Mesh::default()
    };
    mesh.namespaces = mesh.services.iter().map(|s| s.namespace.clone()).collect();
    mesh.normalize();
    mesh
}

fn ctx() -> PickContext {
    PickContext {
        random: 7,
        hash: None,
        now: Instant::now(),
    }
}

#[test]
fn hosts_resolve_in_every_form() {
    let m = mesh(vec![
        service("orders", "shop", &[80]),
        service("users", "default", &[80]),
    ]);
    let opts = RuntimeOptions {
        client_namespace: "shop".into(),
        ..RuntimeOptions::default()
    };
    let rt = Runtime::build(&m, &opts).expect("builds");
    assert_eq!(rt.len(), 2);
    for host in [
        "orders",
        "orders:80",
        "orders.shop",
        "orders.shop.svc",
        "orders.shop.svc.cluster.local",
        "Orders.Shop.svc.cluster.local.:80",
    ] {
        let s = rt.service_for_authority(host).map(ServiceRuntime::host);
        assert_eq!(s, Some("orders.shop.svc.cluster.local"), "{host}");
    }
    // A bare name resolves only in the client's namespace.
    assert!(rt.service_for_authority("users").is_none());
    assert!(rt.service_for_authority("users.default").is_some());
    assert!(rt.service_for_authority("orders.other").is_none());
}

#[test]
fn default_route_forwards_to_the_service_port() {
    let m = mesh(vec![service("orders", "shop", &[80])]);
    let rt = Runtime::build(&m, &RuntimeOptions::default()).expect("builds");
    let s = rt
        .service_for_authority("orders.shop")
        .expect("service found");
    assert_eq!(s.table().len(), 1);
    let set = s
        .route(0)
        .and_then(|r| r.destinations.first())
        .and_then(|d| d.backends.as_ref())
        .expect("backend set");
    // No destination port and an unknown request port: the only port applies.
    let backend = set.for_port(None, Some(12345)).expect("only port");
    assert_eq!(backend.endpoints().len(), 2);
    match backend.pick(&ctx()) {
        Some(Upstream::Endpoint { authority, .. }) => {
            assert!(authority.as_str().ends_with(":1080"), "{authority}");
        }
        other => panic!("unexpected pick {other:?}"),
    }
}

#[test]
fn subsets_ports_and_shared_sets() {
    let mut svc = service("orders", "shop", &[80, 9090]);
    let to_v2 = |port| {
        WeightedDestination::new(
            Destination {
                host: "orders.shop.svc.cluster.local".into(),
                subset: Some("v2".into()),
                port,
            },
            1,
        )
    };
    svc.http_routes = vec![
        HttpRoute {
            action: RouteAction::Forward(vec![to_v2(Some(9090))]),
            ..HttpRoute::default()
        },
        HttpRoute {
            action: RouteAction::Forward(vec![to_v2(None)]),
            ..HttpRoute::default()
        },
    ];
    let m = mesh(vec![svc]);
    let rt = Runtime::build(&m, &RuntimeOptions::default()).expect("builds");
    let s = rt.service_for_authority("orders.shop").expect("service");
    let set = |route: usize| {
        s.route(route)
            .and_then(|r| r.destinations.first())
            .and_then(|d| d.backends.clone())
            .expect("set")
    };
    assert!(
        Arc::ptr_eq(&set(0), &set(1)),
        "same subset shares balancers"
    );
    let b = set(0);
    let on_9090 = b.for_port(Some(9090), None).expect("port 9090");
    assert_eq!(on_9090.endpoints().len(), 1, "subset v2 only");
    assert_eq!(on_9090.endpoints()[0].address(), "10.0.0.2:10090");
    // Without a destination port the request's port picks among several ports.
    assert!(b.for_port(None, Some(80)).is_some());
    assert!(
        b.for_port(None, None).is_none(),
        "two HTTP ports: ambiguous"
    );
}

#[test]
fn unknown_destination_service_has_no_backends() {
    let mut svc = service("orders", "shop", &[80]);
    svc.http_routes = vec![HttpRoute {
        action: RouteAction::Forward(vec![WeightedDestination::new(
            Destination::new("gone.shop.svc.cluster.local"),
            1,
        )]),
        ..HttpRoute::default()
    }];
    let rt = Runtime::build(&mesh(vec![svc]), &RuntimeOptions::default()).expect("builds");
    let s = rt.service_for_authority("orders.shop").expect("service");
    let d = s
        .route(0)
        .and_then(|r| r.destinations.first())
        .expect("dest");
    assert!(d.backends.is_none());
}

#[test]
fn invalid_header_edit_is_refused() {
    let mut svc = service("orders", "shop", &[80]);
    svc.http_routes = vec![HttpRoute {
        request_headers: HeaderOps {
            set: vec![("bad header".into(), "x".into())],
            ..HeaderOps::default()
        },
        ..HttpRoute::default()
    }];
    let err = Runtime::build(&mesh(vec![svc]), &RuntimeOptions::default());
    assert!(
        matches!(err, Err(RuntimeError::Header { route: 0, .. })),
        "{err:?}"
    );
}
