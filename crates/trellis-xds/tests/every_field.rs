//! Hand-built model values with every field of every type set, and every enum variant used,
//! survive the trip through protobuf bytes. Values are distinct from one another, so a
//! conversion that swaps two fields (request/response headers, min/max) fails too. A guard
//! walks the fixtures' `Debug` output and fails when some field is never given a non-zero
//! value, so a field added to the model later cannot slip through untested.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::time::Duration;

use prost::Message;
use trellis_model::*;
use trellis_xds::convert::DecodeError;
use trellis_xds::pb::mesh as pb;

fn round_trip<M, P>(value: &M)
where
    M: PartialEq + Debug + TryFrom<P, Error = DecodeError>,
    P: Message + Default + for<'a> From<&'a M>,
{
    let bytes = P::from(value).encode_to_vec();
    let decoded = P::decode(bytes.as_slice()).expect("prost decodes what it encoded");
    let back = M::try_from(decoded).unwrap_or_else(|e| panic!("decode failed: {e}"));
    assert_eq!(&back, value);
}

fn s(v: &str) -> String {
    v.to_string()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn origin(kind: &str, name: &str) -> SourceRef {
    SourceRef::new(kind, "shop", name)
}

fn header_ops(tag: &str) -> HeaderOps {
    HeaderOps {
        // A repeated name: the model keeps pairs in order, duplicates included.
        set: vec![
            (format!("x-{tag}-set"), s("1")),
            (s("x-dup"), s("a")),
            (s("x-dup"), s("b")),
        ],
        add: vec![(format!("x-{tag}-add"), format!("{tag}-value"))],
        remove: vec![format!("x-{tag}-remove"), s("x-powered-by")],
    }
}

fn destination(host: &str) -> Destination {
    Destination {
        host: format!("{host}.shop.svc.cluster.local"),
        subset: Some(s("v2")),
        port: Some(8443),
    }
}

fn weighted(host: &str, weight: u32) -> WeightedDestination {
    WeightedDestination {
        destination: destination(host),
        weight,
        request_headers: header_ops(&format!("{host}-req")),
        response_headers: header_ops(&format!("{host}-resp")),
    }
}

fn http_match() -> HttpMatch {
    HttpMatch {
        uri: Some(StringMatch::PathPrefix(s("/api"))),
        method: Some(StringMatch::Exact(s("POST"))),
        authority: Some(StringMatch::Regex(s(r"shop\..*"))),
        scheme: Some(StringMatch::Prefix(s("http"))),
        headers: vec![
            HeaderMatch {
                name: s("x-canary"),
                value: Some(StringMatch::Exact(s("yes"))),
                invert: true,
            },
            // Presence only, not inverted: `None` must not come back as some match.
            HeaderMatch {
                name: s("x-present"),
                value: None,
                invert: false,
            },
        ],
        query_params: vec![QueryMatch {
            name: s("debug"),
            value: StringMatch::Exact(s("1")),
        }],
        port: Some(8080),
        source_labels: labels(&[("app", "frontend")]),
        source_namespace: Some(s("web")),
        gateways: vec![s("mesh"), s("shop/ingress")],
        ignore_uri_case: true,
    }
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        per_try_timeout: Some(ms(1500)),
        retry_on: RetryOn {
            conditions: BTreeSet::from(RetryCondition::ALL),
            status_codes: vec![503, 429, 409],
        },
        budget: Some(RetryBudget {
            retry_ratio: 0.35,
            min_retries_per_second: 17,
            ttl: ms(12_000),
        }),
        backoff_base: ms(40),
        backoff_max: ms(900),
        retry_non_idempotent: true,
    }
}

fn cors() -> CorsPolicy {
    CorsPolicy {
        allow_origins: vec![
            StringMatch::Exact(s("https://shop.example")),
            StringMatch::Regex(s(r"https://.*\.shop\.example")),
        ],
        allow_methods: vec![s("GET"), s("POST")],
        allow_headers: vec![s("authorization")],
        expose_headers: vec![s("x-request-id")],
        max_age: Some(ms(86_400_000)),
        allow_credentials: Some(true),
    }
}

/// A route using every HTTP route feature.
fn full_http_route() -> HttpRoute {
    HttpRoute {
        name: Some(s("checkout-canary")),
        matches: vec![http_match(), HttpMatch::default()],
        action: RouteAction::Forward(vec![weighted("checkout", 80), weighted("checkout-v3", 20)]),
        timeout: Some(ms(2500)),
        retry: Some(retry_policy()),
        fault: Some(Fault {
            delay: Some(FaultDelay {
                fixed: ms(7000),
                percent: 12.5,
            }),
            abort: Some(FaultAbort {
                kind: AbortKind::HttpStatus(418),
                percent: 0.1,
            }),
        }),
        mirrors: vec![
            Mirror {
                destination: destination("shadow"),
                percent: 42.0,
            },
            Mirror::default(),
        ],
        request_headers: header_ops("route-req"),
        response_headers: header_ops("route-resp"),
        rewrite: Some(Rewrite {
            path: Some(PathRewrite::ReplacePrefix(s("/v2/api"))),
            authority: Some(s("checkout.internal")),
        }),
        cors: Some(cors()),
        origin: origin("VirtualService", "checkout"),
        response_classes: vec![
            ResponseClass {
                status_min: 404,
                status_max: 404,
                is_failure: false,
            },
            ResponseClass {
                status_min: 500,
                status_max: 599,
                is_failure: true,
            },
        ],
    }
}

/// Routes for the other actions, path rewrites and abort kinds, and one left at defaults.
fn other_http_routes() -> Vec<HttpRoute> {
    let redirect = |path, code| HttpRoute {
        action: RouteAction::Redirect(Redirect {
            scheme: Some(s("https")),
            authority: Some(s("www.shop.example")),
            port: Some(443),
            path,
            code,
        }),
        ..HttpRoute::default()
    };
    vec![
        redirect(Some(PathRewrite::ReplaceFull(s("/moved"))), 308),
        redirect(
            Some(PathRewrite::Regex {
                pattern: s("^/old/(.*)$"),
                substitution: s(r"/new/\1"),
            }),
            302,
        ),
        HttpRoute {
            action: RouteAction::Redirect(Redirect::default()),
            ..HttpRoute::default()
        },
        HttpRoute {
            action: RouteAction::DirectResponse {
                status: 503,
                body: Some(s("maintenance")),
            },
            fault: Some(Fault {
                delay: None,
                abort: Some(FaultAbort {
                    kind: AbortKind::GrpcStatus(s("UNAVAILABLE")),
                    percent: 100.0,
                }),
            }),
            ..HttpRoute::default()
        },
        HttpRoute {
            action: RouteAction::DirectResponse {
                status: 204,
                body: None,
            },
            fault: Some(Fault {
                delay: None,
                abort: Some(FaultAbort {
                    kind: AbortKind::Http2Error,
                    percent: 50.0,
                }),
            }),
            rewrite: Some(Rewrite::default()),
            retry: Some(RetryPolicy::default()),
            cors: Some(CorsPolicy::default()),
            ..HttpRoute::default()
        },
        // Every field at its default (including `Forward` with no destinations).
        HttpRoute::default(),
    ]
}

fn tcp_route() -> TcpRoute {
    TcpRoute {
        matches: vec![
            L4Match {
                port: Some(5432),
                destination_subnets: vec![s("10.0.0.0/8"), s("192.168.1.7")],
                source_labels: labels(&[("app", "orders")]),
                gateways: vec![s("mesh")],
                source_namespace: Some(s("orders")),
            },
            L4Match::default(),
        ],
        destinations: vec![weighted("postgres", 3), weighted("postgres-replica", 1)],
        origin: origin("VirtualService", "db"),
    }
}

fn tls_route() -> TlsRoute {
    TlsRoute {
        matches: vec![TlsMatch {
            sni_hosts: vec![s("pay.shop.example"), s("*.pay.shop.example")],
            port: Some(443),
            destination_subnets: vec![s("172.16.0.0/12")],
            source_labels: labels(&[("app", "checkout")]),
            gateways: vec![s("shop/egress")],
            source_namespace: Some(s("shop")),
        }],
        destinations: vec![weighted("payments", 9)],
        origin: origin("VirtualService", "payments-tls"),
    }
}

/// A backend policy with every setting; the load balancer varies so that the policies of
/// one service use them all.
fn full_policy(lb: LoadBalancer) -> BackendPolicy {
    BackendPolicy {
        load_balancer: Some(lb),
        locality: Some(LocalityLb {
            enabled: false,
            distribute: vec![LocalityDistribute {
                from: s("eu-west/*"),
                to: BTreeMap::from([(s("eu-west/eu-west-1a/*"), 80), (s("eu-east/*"), 20)]),
            }],
            failover: vec![LocalityFailover {
                from: s("eu-west"),
                to: s("eu-east"),
            }],
            failover_priority: vec![
                s("topology.kubernetes.io/region"),
                s("topology.istio.io/network"),
            ],
        }),
        connection_pool: ConnectionPool {
            max_connections: Some(100),
            connect_timeout: Some(ms(250)),
            tcp_keepalive: Some(TcpKeepalive {
                probes: Some(3),
                time: Some(ms(7_200_000)),
                interval: Some(ms(75_000)),
            }),
            max_connection_duration: Some(ms(3_600_000)),
            http1_max_pending_requests: Some(10),
            http2_max_requests: Some(1000),
            max_requests_per_connection: Some(1),
            max_retries: Some(4),
            idle_timeout: Some(ms(1_800_000)),
            h2_upgrade: Some(true),
            use_client_protocol: true,
            max_concurrent_streams: Some(128),
        },
        outlier_detection: Some(OutlierDetection {
            consecutive_5xx_errors: Some(7),
            consecutive_gateway_errors: Some(4),
            consecutive_local_origin_failures: Some(2),
            split_external_local_origin_errors: true,
            interval: ms(15_000),
            base_ejection_time: ms(45_000),
            max_ejection_percent: 50,
            min_health_percent: 25,
        }),
        tls: Some(UpstreamTls {
            mode: TlsMode::Mutual,
            sni: Some(s("checkout.shop.example")),
            subject_alt_names: vec![s("spiffe://cluster.local/ns/shop/sa/checkout")],
            ca_certificates: Some(s("/etc/certs/ca.pem")),
            client_certificate: Some(s("/etc/certs/cert.pem")),
            private_key: Some(s("/etc/certs/key.pem")),
            credential_name: Some(s("checkout-client")),
            insecure_skip_verify: true,
        }),
    }
}

fn consistent_hash(key: HashKey, algorithm: HashAlgorithm) -> LoadBalancer {
    LoadBalancer::ConsistentHash(ConsistentHash { key, algorithm })
}

/// Port policies covering every load balancer, hash key, hash algorithm and TLS mode.
fn port_policies() -> Vec<PortPolicy> {
    let lbs = [
        LoadBalancer::RoundRobin,
        LoadBalancer::LeastRequest,
        LoadBalancer::Random,
        LoadBalancer::Passthrough,
        LoadBalancer::PeakEwma,
        consistent_hash(
            HashKey::Header(s("x-user")),
            HashAlgorithm::RingHash {
                minimum_ring_size: 2048,
            },
        ),
        consistent_hash(HashKey::SourceIp, HashAlgorithm::default()),
        consistent_hash(
            HashKey::QueryParameter(s("session")),
            HashAlgorithm::Maglev { table_size: 65537 },
        ),
        consistent_hash(
            HashKey::Cookie {
                name: s("bare"),
                path: None,
                ttl: None,
            },
            HashAlgorithm::default(),
        ),
    ];
    let modes = [
        TlsMode::Disable,
        TlsMode::Simple,
        TlsMode::Mutual,
        TlsMode::IstioMutual,
    ];
    let mut out: Vec<PortPolicy> = lbs
        .into_iter()
        .zip(9000..)
        .map(|(lb, port)| PortPolicy {
            port,
            policy: full_policy(lb),
        })
        .collect();
    for (mode, port) in modes.into_iter().zip(9100..) {
        let mut policy = full_policy(LoadBalancer::default());
        if let Some(tls) = &mut policy.tls {
            tls.mode = mode;
        }
        out.push(PortPolicy { port, policy });
    }
    // An empty layer: every `Option` unset, and a pool with nothing configured.
    out.push(PortPolicy {
        port: 9200,
        policy: BackendPolicy::default(),
    });
    out.push(PortPolicy {
        port: 9201,
        policy: BackendPolicy {
            locality: Some(LocalityLb::default()),
            outlier_detection: Some(OutlierDetection::default()),
            tls: Some(UpstreamTls::default()),
            connection_pool: ConnectionPool {
                tcp_keepalive: Some(TcpKeepalive::default()),
                ..ConnectionPool::default()
            },
            ..BackendPolicy::default()
        },
    });
    out
}

fn full_endpoint() -> Endpoint {
    Endpoint {
        address: s("10.1.2.3"),
        ports: BTreeMap::from([(s("http-web"), 9081), (s("grpc"), 65535)]),
        port: Some(7000),
        labels: labels(&[("app", "checkout"), ("version", "v2")]),
        locality: Some(s("eu-west/eu-west-1a/rack-4")),
        weight: 7,
        service_account: Some(s("checkout")),
        workload: Some(s("checkout-v2-7f9c")),
        namespace: s("shop"),
        network: Some(s("network-2")),
        ready: false,
    }
}

const PROTOCOLS: [Protocol; 9] = [
    Protocol::Http,
    Protocol::Http2,
    Protocol::Grpc,
    Protocol::GrpcWeb,
    Protocol::Https,
    Protocol::Tls,
    Protocol::Tcp,
    Protocol::Mongo,
    Protocol::Unknown,
];

/// A service using every service, route and policy feature.
fn full_service() -> Service {
    Service {
        host: s("checkout.shop.svc.cluster.local"),
        name: s("checkout"),
        namespace: s("shop"),
        ports: PROTOCOLS
            .iter()
            .zip(8080..)
            .map(|(&protocol, number)| ServicePort {
                number,
                name: format!("{protocol}-{number}"),
                protocol,
                target_port: Some(number + 1000),
            })
            .collect(),
        addresses: vec![s("10.96.0.12"), s("fd00::12")],
        location: ServiceLocation::MeshExternal,
        resolution: Resolution::DnsRoundRobin,
        endpoints: vec![full_endpoint(), Endpoint::default()],
        subsets: vec![
            Subset {
                name: s("v2"),
                labels: labels(&[("version", "v2")]),
                policy: Some(full_policy(LoadBalancer::LeastRequest)),
                port_policies: vec![PortPolicy {
                    port: 8080,
                    policy: full_policy(LoadBalancer::Random),
                }],
            },
            Subset::default(),
        ],
        policy: full_policy(consistent_hash(
            HashKey::Cookie {
                name: s("session"),
                path: Some(s("/")),
                ttl: Some(ms(90_000)),
            },
            HashAlgorithm::Maglev { table_size: 251 },
        )),
        port_policies: port_policies(),
        http_routes: std::iter::once(full_http_route())
            .chain(other_http_routes())
            .collect(),
        tcp_routes: vec![tcp_route(), TcpRoute::default()],
        tls_routes: vec![tls_route(), TlsRoute::default()],
        export_to: vec![s("."), s("payments")],
        origins: vec![
            origin("ServiceEntry", "checkout"),
            origin("DestinationRule", "checkout"),
        ],
    }
}

/// The other service locations and resolutions, and a service at its defaults.
fn other_services() -> Vec<Service> {
    let plain = |host: &str, resolution| Service {
        host: s(host),
        resolution,
        ..Service::default()
    };
    vec![
        plain("static.example", Resolution::Static),
        plain("dns.example", Resolution::Dns),
        plain("passthrough.example", Resolution::Passthrough),
        Service {
            location: ServiceLocation::MeshInternal,
            ..Service::default()
        },
        Service::default(),
    ]
}

fn full_gateway() -> Gateway {
    let modes = [
        ServerTlsMode::Passthrough,
        ServerTlsMode::Simple,
        ServerTlsMode::Mutual,
        ServerTlsMode::AutoPassthrough,
        ServerTlsMode::IstioMutual,
        ServerTlsMode::OptionalMutual,
    ];
    let mut servers: Vec<GatewayServer> = modes
        .into_iter()
        .zip(8443..)
        .map(|(mode, port)| GatewayServer {
            name: format!("tls-{port}"),
            port,
            protocol: Protocol::Https,
            hosts: vec![
                GatewayHost {
                    namespace: Some(s("shop")),
                    host: s("shop.example"),
                },
                GatewayHost {
                    namespace: None,
                    host: s("*.shop.example"),
                },
            ],
            tls: Some(ServerTls {
                mode,
                credential_names: vec![s("shop-rsa"), s("shop-ecdsa")],
                server_certificate: Some(s("/etc/gw/cert.pem")),
                private_key: Some(s("/etc/gw/key.pem")),
                ca_certificates: Some(s("/etc/gw/ca.pem")),
                https_redirect: true,
            }),
        })
        .collect();
    servers.push(GatewayServer {
        name: s("http"),
        port: 80,
        protocol: Protocol::Http,
        tls: Some(ServerTls::default()),
        ..GatewayServer::default()
    });
    servers.push(GatewayServer::default());
    Gateway {
        name: s("ingress"),
        namespace: s("shop"),
        origin: origin("Gateway", "ingress"),
        selector: labels(&[("istio", "ingressgateway")]),
        class: Some(s("istio")),
        servers,
        virtual_hosts: vec![
            VirtualHost {
                port: 443,
                hosts: vec![s("shop.example"), s("*.shop.example")],
                http_routes: vec![full_http_route(), HttpRoute::default()],
                tcp_routes: vec![tcp_route()],
                tls_routes: vec![tls_route()],
            },
            VirtualHost::default(),
        ],
    }
}

fn workloads() -> Vec<Workload> {
    let kinds = [
        WorkloadKind::Pod,
        WorkloadKind::WorkloadEntry,
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::Local,
    ];
    let mut out: Vec<Workload> = kinds
        .into_iter()
        .zip(1u16..)
        .map(|(kind, n)| Workload {
            name: format!("checkout-{n}"),
            namespace: s("shop"),
            kind,
            service_account: Some(s("checkout")),
            labels: labels(&[("app", "checkout"), ("version", "v2")]),
            addresses: vec![format!("10.1.0.{n}"), s("fd00::1")],
            ports: vec![8080, n, 65535],
            locality: Some(s("eu-west/eu-west-1b")),
            network: Some(s("network-1")),
            inject: Some(n % 2 == 0),
        })
        .collect();
    out.push(Workload::default());
    out
}

fn authz_rule() -> AuthzRule {
    AuthzRule {
        from: vec![
            AuthzSource {
                principals: vec![s("cluster.local/ns/web/sa/frontend")],
                not_principals: vec![s("cluster.local/ns/web/sa/legacy")],
                request_principals: vec![s("https://issuer.example/alice")],
                not_request_principals: vec![s("https://issuer.example/mallory")],
                namespaces: vec![s("web")],
                not_namespaces: vec![s("sandbox")],
                ip_blocks: vec![s("10.0.0.0/8")],
                not_ip_blocks: vec![s("10.66.0.0/16")],
                remote_ip_blocks: vec![s("203.0.113.0/24")],
                not_remote_ip_blocks: vec![s("203.0.113.66")],
            },
            AuthzSource::default(),
        ],
        to: vec![AuthzOperation {
            hosts: vec![s("checkout.shop.svc.cluster.local")],
            not_hosts: vec![s("admin.shop.example")],
            ports: vec![8080, 65535],
            not_ports: vec![15090],
            methods: vec![s("GET"), s("POST")],
            not_methods: vec![s("DELETE")],
            paths: vec![s("/api/*")],
            not_paths: vec![s("/api/admin*")],
        }],
        // One condition per kind of attribute a `when` may name.
        when: [
            "request.headers[x-tenant]",
            "source.ip",
            "remote.ip",
            "source.namespace",
            "source.principal",
            "request.auth.principal",
            "request.auth.audiences",
            "request.auth.presenter",
            "request.auth.claims[groups]",
            "destination.ip",
            "destination.port",
            "connection.sni",
            "experimental.envoy.filters.http.rbac",
        ]
        .into_iter()
        .map(|key| AuthzCondition {
            key: s(key),
            values: vec![format!("{key}-yes"), s("other")],
            not_values: vec![format!("{key}-no")],
        })
        .collect(),
    }
}

fn security() -> SecurityPolicies {
    let actions = [
        AuthzAction::Allow,
        AuthzAction::Deny,
        AuthzAction::Audit,
        AuthzAction::Custom { provider: s("opa") },
    ];
    let mut authorization: Vec<AuthzPolicy> = actions
        .into_iter()
        .enumerate()
        .map(|(i, action)| AuthzPolicy {
            origin: origin("AuthorizationPolicy", &format!("policy-{i}")),
            namespace: s("shop"),
            selector: Some(labels(&[("app", "checkout")])),
            target: Some(SourceRef::new("Gateway", "shop", "ingress")),
            action,
            rules: vec![authz_rule(), AuthzRule::default()],
        })
        .collect();
    // `None` and an empty selector are different values, and both must survive.
    authorization.push(AuthzPolicy {
        selector: Some(Labels::new()),
        ..AuthzPolicy::default()
    });
    authorization.push(AuthzPolicy::default());
    SecurityPolicies {
        peer_authentication: vec![
            PeerAuthn {
                origin: origin("PeerAuthentication", "checkout"),
                namespace: s("shop"),
                selector: Some(labels(&[("app", "checkout")])),
                mode: MtlsMode::Strict,
                port_modes: BTreeMap::from([
                    (8080, MtlsMode::Unset),
                    (8081, MtlsMode::Disable),
                    (8082, MtlsMode::Permissive),
                    (65535, MtlsMode::Strict),
                ]),
            },
            PeerAuthn {
                selector: Some(Labels::new()),
                mode: MtlsMode::Disable,
                ..PeerAuthn::default()
            },
            PeerAuthn {
                mode: MtlsMode::Permissive,
                ..PeerAuthn::default()
            },
            PeerAuthn::default(),
        ],
        authorization,
        request_authentication: vec![
            JwtPolicy {
                origin: origin("RequestAuthentication", "checkout"),
                namespace: s("shop"),
                selector: Some(labels(&[("app", "checkout")])),
                rules: vec![
                    JwtRule {
                        issuer: s("https://issuer.example"),
                        audiences: vec![s("shop"), s("checkout")],
                        jwks_uri: Some(s("https://issuer.example/jwks.json")),
                        jwks: Some(s(r#"{"keys":[]}"#)),
                        from_headers: vec![
                            JwtHeader {
                                name: s("authorization"),
                                prefix: s("Bearer "),
                            },
                            JwtHeader {
                                name: s("x-jwt"),
                                prefix: String::new(),
                            },
                        ],
                        from_params: vec![s("access_token")],
                        from_cookies: vec![s("session")],
                        forward_original_token: true,
                        output_payload_to_header: Some(s("x-jwt-payload")),
                        output_claim_to_headers: vec![ClaimToHeader {
                            header: s("x-user"),
                            claim: s("sub"),
                        }],
                        timeout: Some(ms(3000)),
                    },
                    JwtRule::default(),
                ],
            },
            JwtPolicy::default(),
        ],
    }
}

fn telemetry() -> Vec<TelemetryPolicy> {
    vec![
        TelemetryPolicy {
            origin: origin("Telemetry", "checkout"),
            namespace: s("shop"),
            selector: Some(labels(&[("app", "checkout")])),
            tracing: Some(TracingPolicy {
                providers: vec![s("otel"), s("zipkin")],
                sampling_percent: Some(12.5),
                custom_tags: BTreeMap::from([
                    (s("cluster"), CustomTag::Literal(s("east"))),
                    (
                        s("pod"),
                        CustomTag::Environment {
                            name: s("POD_NAME"),
                            default: Some(s("unknown")),
                        },
                    ),
                    (
                        s("tenant"),
                        CustomTag::Header {
                            name: s("x-tenant"),
                            default: Some(s("none")),
                        },
                    ),
                    (
                        s("bare-env"),
                        CustomTag::Environment {
                            name: s("NODE"),
                            default: None,
                        },
                    ),
                    (
                        s("bare-header"),
                        CustomTag::Header {
                            name: s("x-user"),
                            default: None,
                        },
                    ),
                ]),
                disable_span_reporting: Some(true),
            }),
            metrics_disabled: vec![s("REQUEST_SIZE"), s("RESPONSE_SIZE")],
            access_logging: Some(AccessLogPolicy {
                providers: vec![s("envoy")],
                disabled: Some(false),
                filter: Some(s("response.code >= 400")),
            }),
        },
        TelemetryPolicy {
            selector: Some(Labels::new()),
            tracing: Some(TracingPolicy::default()),
            access_logging: Some(AccessLogPolicy::default()),
            ..TelemetryPolicy::default()
        },
        TelemetryPolicy::default(),
    ]
}

#[test]
fn services_round_trip() {
    round_trip::<_, pb::Service>(&full_service());
    for svc in other_services() {
        round_trip::<_, pb::Service>(&svc);
    }
}

#[test]
fn endpoints_round_trip() {
    round_trip::<_, pb::Endpoint>(&full_endpoint());
    round_trip::<_, pb::Endpoint>(&Endpoint::default());
}

#[test]
fn gateways_round_trip() {
    round_trip::<_, pb::Gateway>(&full_gateway());
    round_trip::<_, pb::Gateway>(&Gateway::default());
}

#[test]
fn workloads_round_trip() {
    for w in workloads() {
        round_trip::<_, pb::Workload>(&w);
    }
}

#[test]
fn security_policies_round_trip() {
    round_trip::<_, pb::SecurityPolicies>(&security());
    round_trip::<_, pb::SecurityPolicies>(&SecurityPolicies::default());
}

#[test]
fn telemetry_policies_round_trip() {
    for t in telemetry() {
        round_trip::<_, pb::TelemetryPolicy>(&t);
    }
}

/// Debug output of a field value that is its type's zero: nothing for the wire to carry.
fn is_zero(value: &str) -> bool {
    matches!(
        value.trim_end_matches(','),
        "None" | "[]" | "{}" | "false" | "0" | "0.0" | "0ns" | "\"\""
    )
}

/// `Type.field` for every field in the pretty `Debug` output of `value`, with whether it was
/// ever non-zero. Struct fields are indented one level below the line opening the struct.
fn fields(value: &str, out: &mut HashMap<String, bool>) {
    let mut open: Vec<(usize, String)> = Vec::new();
    for line in value.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        open.retain(|(i, _)| *i < indent);
        if let Some((name, rest)) = text.split_once(": ")
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && let Some((owner_indent, owner)) = open.last()
            && *owner_indent + 4 == indent
        {
            *out.entry(format!("{owner}.{name}")).or_default() |= !is_zero(rest);
        }
        if let Some(head) = text.strip_suffix(" {") {
            let ty = head.rsplit([' ', '(']).next().unwrap_or_default();
            if ty.starts_with(|c: char| c.is_ascii_uppercase()) {
                open.push((indent, ty.to_string()));
            }
        }
    }
}

#[test]
fn fixtures_set_every_field_of_every_type() {
    let mut seen = HashMap::new();
    let all = format!(
        "{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}",
        full_service(),
        other_services(),
        full_gateway(),
        workloads(),
        security(),
        telemetry()
    );
    fields(&all, &mut seen);
    let never_set: Vec<&String> = seen
        .iter()
        .filter(|(_, set)| !**set)
        .map(|(f, _)| f)
        .collect();
    assert!(
        never_set.is_empty(),
        "fields never given a value: {never_set:?}"
    );
    // Every struct type reachable from the six top-level messages (and the struct variants
    // of enums) must appear, or its fields were not checked at all.
    let types: BTreeSet<&str> = seen
        .keys()
        .filter_map(|k| k.split_once('.').map(|(t, _)| t))
        .collect();
    let expected = [
        "AccessLogPolicy",
        "AuthzCondition",
        "AuthzOperation",
        "AuthzPolicy",
        "AuthzRule",
        "AuthzSource",
        "BackendPolicy",
        "ClaimToHeader",
        "ConnectionPool",
        "ConsistentHash",
        "Cookie",
        "CorsPolicy",
        "Custom",
        "Destination",
        "DirectResponse",
        "Endpoint",
        "Environment",
        "Fault",
        "FaultAbort",
        "FaultDelay",
        "Gateway",
        "GatewayHost",
        "GatewayServer",
        "Header",
        "HeaderMatch",
        "HeaderOps",
        "HttpMatch",
        "HttpRoute",
        "JwtHeader",
        "JwtPolicy",
        "JwtRule",
        "L4Match",
        "LocalityDistribute",
        "LocalityFailover",
        "LocalityLb",
        "Maglev",
        "Mirror",
        "OutlierDetection",
        "PeerAuthn",
        "PortPolicy",
        "QueryMatch",
        "Redirect",
        "Regex",
        "ResponseClass",
        "RetryBudget",
        "RetryOn",
        "RetryPolicy",
        "Rewrite",
        "RingHash",
        "SecurityPolicies",
        "ServerTls",
        "Service",
        "ServicePort",
        "SourceRef",
        "Subset",
        "TcpKeepalive",
        "TcpRoute",
        "TelemetryPolicy",
        "TlsMatch",
        "TlsRoute",
        "TracingPolicy",
        "UpstreamTls",
        "VirtualHost",
        "WeightedDestination",
        "Workload",
    ];
    let missing: Vec<&str> = expected
        .into_iter()
        .filter(|t| !types.contains(t))
        .collect();
    assert!(missing.is_empty(), "types never built: {missing:?}");
}
