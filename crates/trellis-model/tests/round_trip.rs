//! The model survives serialization unchanged: the proxy dumps it as JSON at
//! `/config_dump` and the control plane ships it, so what goes out must come back equal.

use std::collections::BTreeMap;
use std::time::Duration;

use trellis_model::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn reviews() -> Service {
    let origin = SourceRef::new("VirtualService", "default", "reviews");
    let to = |subset: &str, weight| {
        WeightedDestination::new(
            Destination {
                host: "reviews.default.svc.cluster.local".into(),
                subset: Some(subset.into()),
                port: Some(9080),
            },
            weight,
        )
    };
    Service {
        host: "reviews.default.svc.cluster.local".into(),
        name: "reviews".into(),
        namespace: "default".into(),
        ports: vec![ServicePort {
            number: 9080,
            name: "http".into(),
            protocol: Protocol::from_port_name("http", None),
            target_port: Some(9080),
        }],
        addresses: vec!["10.96.0.12".into()],
        endpoints: vec![Endpoint {
            address: "10.1.0.5".into(),
            labels: labels(&[("app", "reviews"), ("version", "v2")]),
            locality: Some("us-east1/us-east1-b".into()),
            service_account: Some("bookinfo-reviews".into()),
            namespace: "default".into(),
            ..Endpoint::default()
        }],
        subsets: vec![Subset {
            name: "v2".into(),
            labels: labels(&[("version", "v2")]),
            policy: Some(BackendPolicy {
                load_balancer: Some(LoadBalancer::ConsistentHash(ConsistentHash {
                    key: HashKey::Header("x-user".into()),
                    algorithm: HashAlgorithm::default(),
                })),
                ..BackendPolicy::default()
            }),
            port_policies: vec![],
        }],
        policy: BackendPolicy {
            connection_pool: ConnectionPool {
                max_connections: Some(1),
                connect_timeout: Some(Duration::from_millis(250)),
                ..ConnectionPool::default()
            },
            outlier_detection: Some(OutlierDetection {
                consecutive_5xx_errors: Some(1),
                base_ejection_time: Duration::from_secs(180),
                ..OutlierDetection::default()
            }),
            tls: Some(UpstreamTls {
                mode: TlsMode::IstioMutual,
                ..UpstreamTls::default()
            }),
            ..BackendPolicy::default()
        },
        http_routes: vec![
            HttpRoute {
                name: Some("jason".into()),
                matches: vec![HttpMatch {
                    headers: vec![HeaderMatch {
                        name: "end-user".into(),
                        value: Some(StringMatch::Exact("jason".into())),
                        invert: false,
                    }],
                    ..HttpMatch::default()
                }],
                action: RouteAction::Forward(vec![to("v2", 1)]),
                timeout: Some(Duration::from_millis(1500)),
                retry: Some(RetryPolicy {
                    attempts: 3,
                    per_try_timeout: Some(Duration::from_secs(2)),
                    retry_on: RetryOn::parse("5xx,connect-failure,429").expect("valid retryOn"),
                    budget: Some(RetryBudget::default()),
                    ..RetryPolicy::default()
                }),
                fault: Some(Fault {
                    delay: Some(FaultDelay {
                        fixed: Duration::from_secs(7),
                        percent: 100.0,
                    }),
                    abort: None,
                }),
                origin: origin.clone(),
                ..HttpRoute::default()
            },
            HttpRoute {
                action: RouteAction::Forward(vec![to("v1", 90), to("v2", 10)]),
                mirrors: vec![Mirror {
                    destination: Destination::new("reviews-shadow.default.svc.cluster.local"),
                    percent: 5.0,
                }],
                rewrite: Some(Rewrite {
                    path: Some(PathRewrite::ReplacePrefix("/v2/".into())),
                    authority: None,
                }),
                cors: Some(CorsPolicy {
                    allow_origins: vec![StringMatch::Regex(".*\\.example\\.com".into())],
                    max_age: Some(Duration::from_secs(86400)),
                    ..CorsPolicy::default()
                }),
                origin,
                ..HttpRoute::default()
            },
        ],
        origins: vec![SourceRef::new("Service", "default", "reviews")],
        ..Service::default()
    }
}

fn mesh() -> Mesh {
    let mut peer = PeerAuthn {
        namespace: "default".into(),
        selector: Some(labels(&[("app", "reviews")])),
        mode: MtlsMode::Strict,
        ..PeerAuthn::default()
    };
    peer.port_modes.insert(15090, MtlsMode::Permissive);
    let mut mesh = Mesh {
        services: vec![reviews()],
        workloads: vec![Workload {
            name: "reviews-v2-7f".into(),
            namespace: "default".into(),
            service_account: Some("bookinfo-reviews".into()),
            labels: labels(&[("app", "reviews"), ("version", "v2")]),
            addresses: vec!["10.1.0.5".into()],
            ports: vec![9080],
            ..Workload::default()
        }],
        gateways: vec![Gateway {
            name: "bookinfo".into(),
            namespace: "default".into(),
            selector: labels(&[("istio", "ingressgateway")]),
            servers: vec![GatewayServer {
                name: "http".into(),
                port: 80,
                protocol: Protocol::Http,
                hosts: vec![GatewayHost::parse("*/bookinfo.example.com", "default")],
                tls: Some(ServerTls {
                    https_redirect: true,
                    ..ServerTls::default()
                }),
            }],
            virtual_hosts: vec![VirtualHost {
                port: 80,
                hosts: vec!["bookinfo.example.com".into()],
                http_routes: vec![HttpRoute {
                    action: RouteAction::Redirect(Redirect {
                        scheme: Some("https".into()),
                        ..Redirect::default()
                    }),
                    ..HttpRoute::default()
                }],
                ..VirtualHost::default()
            }],
            ..Gateway::default()
        }],
        security: SecurityPolicies {
            peer_authentication: vec![peer],
            authorization: vec![AuthzPolicy {
                namespace: "default".into(),
                action: AuthzAction::Allow,
                rules: vec![AuthzRule {
                    from: vec![AuthzSource {
                        principals: vec!["cluster.local/ns/default/sa/bookinfo-productpage".into()],
                        ..AuthzSource::default()
                    }],
                    to: vec![AuthzOperation {
                        methods: vec!["GET".into()],
                        ..AuthzOperation::default()
                    }],
                    when: vec![],
                }],
                ..AuthzPolicy::default()
            }],
            request_authentication: vec![JwtPolicy {
                namespace: "default".into(),
                rules: vec![JwtRule {
                    issuer: "testing@secure.istio.io".into(),
                    timeout: Some(Duration::from_secs(5)),
                    ..JwtRule::default()
                }],
                ..JwtPolicy::default()
            }],
        },
        telemetry: vec![TelemetryPolicy {
            namespace: "istio-system".into(),
            tracing: Some(TracingPolicy {
                sampling_percent: Some(100.0),
                custom_tags: BTreeMap::from([(
                    "cluster".to_string(),
                    CustomTag::Environment {
                        name: "CLUSTER".into(),
                        default: None,
                    },
                )]),
                ..TracingPolicy::default()
            }),
            ..TelemetryPolicy::default()
        }],
        sidecars: vec![SidecarScope {
            origin: SourceRef::new("Sidecar", "default", "reviews"),
            namespace: "default".into(),
            selector: Some(labels(&[("app", "reviews")])),
            egress_hosts: vec!["default/*".into(), "istio-system/*".into()],
        }],
        namespaces: ["default".to_string()].into(),
        ..Mesh::default()
    };
    mesh.normalize();
    mesh
}

#[test]
fn mesh_round_trips_through_json() -> Result<(), serde_json::Error> {
    let mesh = mesh();
    let json = serde_json::to_string_pretty(&mesh)?;
    // Durations are integer milliseconds.
    for needle in [
        r#""timeout": 1500"#,
        r#""per_try_timeout": 2000"#,
        r#""backoff_base": 25"#,
        r#""connect_timeout": 250"#,
        r#""base_ejection_time": 180000"#,
        r#""fixed": 7000"#,
        r#""max_age": 86400000"#,
        r#""ttl": 10000"#,
    ] {
        assert!(json.contains(needle), "missing {needle} in\n{json}");
    }
    let back: Mesh = serde_json::from_str(&json)?;
    assert_eq!(back, mesh);
    // Compact form too, as shipped.
    let back: Mesh = serde_json::from_str(&serde_json::to_string(&mesh)?)?;
    assert_eq!(back, mesh);
    Ok(())
}

#[test]
fn missing_fields_take_defaults() -> Result<(), serde_json::Error> {
    assert_eq!(serde_json::from_str::<Mesh>("{}")?, Mesh::default());
    let svc: Service = serde_json::from_str(
        r#"{"host":"a.b.svc.cluster.local","endpoints":[{"address":"10.0.0.1"}],
            "http_routes":[{"timeout":100,"retry":{"attempts":1}}]}"#,
    )?;
    let ep = &svc.endpoints[0];
    assert!(ep.ready && ep.weight == 1);
    let route = &svc.http_routes[0];
    assert_eq!(route.timeout, Some(Duration::from_millis(100)));
    let retry = route.retry.clone().unwrap_or_default();
    assert_eq!(retry.attempts, 1);
    assert_eq!(retry.retry_on, RetryOn::default());
    assert_eq!(retry.backoff_max, Duration::from_millis(250));
    Ok(())
}

#[test]
fn mesh_lookups_after_round_trip() -> Result<(), serde_json::Error> {
    let mesh: Mesh = serde_json::from_str(&serde_json::to_string(&mesh())?)?;
    let resolver = mesh.host_resolver();
    let svc = mesh.service(&resolver.fqdn("reviews", "default"));
    let v2: Vec<_> = svc
        .map(|s| s.endpoints_for_subset(Some("v2")).count())
        .into_iter()
        .collect();
    assert_eq!(v2, [1]);
    let labels = labels(&[("app", "reviews")]);
    assert_eq!(
        mesh.mtls_mode("default", &labels, Some(9080)),
        MtlsMode::Strict
    );
    assert_eq!(
        mesh.mtls_mode("default", &labels, Some(15090)),
        MtlsMode::Permissive
    );
    let seen: Vec<&str> = mesh
        .visible_to("default", &labels)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(seen, ["reviews"]);
    assert_eq!(
        mesh.telemetry_for("default", &labels)
            .tracing
            .sampling_percent,
        Some(100.0)
    );
    Ok(())
}
