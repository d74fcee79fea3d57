//! The address index and the build-time compilation of TCP/TLS routes.

use std::net::{IpAddr, SocketAddr};

use trellis_model::{
    Destination, Endpoint, L4Match, Mesh, Protocol, Service, ServicePort, TcpRoute, TlsMatch,
    TlsRoute, WeightedDestination,
};

use crate::detect::DetectPlan;
use crate::runtime::{Runtime, RuntimeOptions};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn service(host: &str, vip: &str, port: u16, protocol: Protocol, endpoint: &str) -> Service {
    Service {
        host: host.into(),
        namespace: "shop".into(),
        ports: vec![ServicePort {
            number: port,
            name: "p".into(),
            protocol,
            target_port: Some(9000),
        }],
        addresses: vec![vip.into()],
        endpoints: vec![Endpoint {
            address: endpoint.into(),
            weight: 1,
            ready: true,
            ..Endpoint::default()
        }],
        ..Service::default()
    }
}

fn to(host: &str, weight: u32) -> WeightedDestination {
    WeightedDestination::new(Destination::new(host), weight)
}

fn build(services: Vec<Service>) -> Runtime {
    let mesh = Mesh {
        services,
        ..Mesh::default()
    };
    let opts = RuntimeOptions {
        client_namespace: "shop".into(),
        ..RuntimeOptions::default()
    };
    Runtime::build(&mesh, &opts).expect("runtime builds")
}

#[test]
fn indexes_vips_and_endpoints_and_lists_loopback_vips() {
    let rt = build(vec![
        service("db.shop", "127.0.0.77", 5432, Protocol::Tcp, "10.0.0.1"),
        service("web.shop", "10.96.0.1", 80, Protocol::Http, "10.0.0.2"),
        service(
            "*.example.com",
            "127.0.0.90",
            443,
            Protocol::Tls,
            "10.0.0.3",
        ),
    ]);
    let t = rt.tcp_targets();
    let db = t.lookup(addr("127.0.0.77:5432")).expect("db by VIP");
    assert_eq!(
        (db.service(), db.port(), db.plan()),
        ("db.shop", 5432, DetectPlan::Opaque)
    );
    let by_ep = t
        .lookup(addr("10.0.0.2:9000"))
        .expect("web by endpoint target port");
    assert_eq!(by_ep.service(), "web.shop");
    assert!(
        t.lookup(addr("10.0.0.2:80")).is_none(),
        "endpoints listen on the target port"
    );
    assert!(
        t.lookup(addr("127.0.0.90:443")).is_none(),
        "wildcard hosts are not indexed"
    );
    assert_eq!(t.loopback_vips(), [addr("127.0.0.77:5432")]);
}

#[test]
fn tcp_routes_follow_ports_subnets_and_caller() {
    let mut db = service("db.shop", "127.0.0.77", 5432, Protocol::Tcp, "10.0.0.1");
    let l4 = |m: L4Match, dest: &str| TcpRoute {
        matches: vec![m],
        destinations: vec![to(dest, 1)],
        ..TcpRoute::default()
    };
    db.tcp_routes = vec![
        // Other port, other namespace, other gateway: never on this proxy's port 5432.
        l4(
            L4Match {
                port: Some(1),
                ..L4Match::default()
            },
            "a.shop",
        ),
        l4(
            L4Match {
                source_namespace: Some("x".into()),
                ..L4Match::default()
            },
            "a.shop",
        ),
        l4(
            L4Match {
                gateways: vec!["infra/edge".into()],
                ..L4Match::default()
            },
            "a.shop",
        ),
        l4(
            L4Match {
                destination_subnets: vec!["127.0.0.0/30".into()],
                ..L4Match::default()
            },
            "b.shop",
        ),
    ];
    let rt = build(vec![db]);
    let port = rt
        .tcp_targets()
        .lookup(addr("127.0.0.77:5432"))
        .expect("db");
    assert!(
        port.tcp_route(ip("127.0.0.77")).is_none(),
        "outside the subnet: no route"
    );
    let r = port.tcp_route(ip("127.0.0.2")).expect("inside the subnet");
    assert_eq!(&*r.destinations()[0].host, "b.shop");
    assert!(
        r.destinations()[0].backend.is_none(),
        "unknown destination service"
    );
}

#[test]
fn no_applicable_route_means_the_service_itself_and_weights_split() {
    let mut db = service("db.shop", "127.0.0.77", 5432, Protocol::Tcp, "10.0.0.1");
    db.tcp_routes = vec![TcpRoute {
        matches: vec![L4Match {
            port: Some(1),
            ..L4Match::default()
        }],
        destinations: vec![to("db.shop", 1)],
        ..TcpRoute::default()
    }];
    let mut split = service("split.shop", "127.0.0.78", 7000, Protocol::Tcp, "10.0.0.9");
    split.tcp_routes = vec![TcpRoute {
        destinations: vec![to("db.shop", 80), to("split.shop", 20)],
        ..TcpRoute::default()
    }];
    let rt = build(vec![db, split]);
    let t = rt.tcp_targets();
    let own = t
        .lookup(addr("127.0.0.77:5432"))
        .expect("db")
        .tcp_route(ip("127.0.0.77"));
    let own = own.expect("default route");
    assert_eq!(&*own.destinations()[0].host, "db.shop");
    assert!(own.destinations()[0].backend.is_some());
    let r = t
        .lookup(addr("127.0.0.78:7000"))
        .expect("split")
        .tcp_route(ip("127.0.0.78"));
    let r = r.expect("route");
    let to_db = (0..100u64)
        .filter(|&n| r.pick(n).is_some_and(|d| &*d.host == "db.shop"))
        .count();
    assert_eq!(to_db, 80);
}

#[test]
fn tls_routes_match_sni_with_wildcards() {
    let mut api = service("api.shop", "127.0.0.79", 443, Protocol::Tls, "10.0.0.1");
    api.tls_routes = vec![TlsRoute {
        matches: vec![TlsMatch {
            sni_hosts: vec!["*.example.com".into()],
            ..TlsMatch::default()
        }],
        destinations: vec![to("api.shop", 1)],
        ..TlsRoute::default()
    }];
    let rt = build(vec![api]);
    let port = rt
        .tcp_targets()
        .lookup(addr("127.0.0.79:443"))
        .expect("api");
    assert!(port.tls_route(ip("127.0.0.79"), "a.example.com").is_some());
    assert!(port.tls_route(ip("127.0.0.79"), "example.org").is_none());
    // Without a TLS route the connection falls back to TCP routing (here the default).
    assert!(port.tcp_route(ip("127.0.0.79")).is_some());
}
