//! Messages the model cannot represent are refused with the dotted path of the offending
//! field, so a proxy's NACK says exactly what is wrong; garbage never panics.

use std::collections::BTreeMap;

use prost::Message;
use trellis_model as m;
use trellis_xds::convert::DecodeError;
use trellis_xds::pb::mesh as pb;

fn err<M, P>(p: P) -> DecodeError
where
    M: TryFrom<P, Error = DecodeError> + std::fmt::Debug,
{
    match M::try_from(p) {
        Ok(v) => panic!("decoded to {v:?}"),
        Err(e) => e,
    }
}

fn service() -> pb::Service {
    let route = |action| m::HttpRoute {
        action,
        retry: Some(m::RetryPolicy::default()),
        ..m::HttpRoute::default()
    };
    let svc = m::Service {
        host: "shop.default.svc.cluster.local".into(),
        ports: vec![
            m::ServicePort {
                number: 80,
                ..m::ServicePort::default()
            },
            m::ServicePort {
                number: 443,
                ..m::ServicePort::default()
            },
        ],
        http_routes: vec![
            route(m::RouteAction::Forward(vec![m::WeightedDestination::new(
                m::Destination::new("a"),
                1,
            )])),
            route(m::RouteAction::Redirect(m::Redirect::default())),
            route(m::RouteAction::DirectResponse {
                status: 503,
                body: None,
            }),
        ],
        ..m::Service::default()
    };
    pb::Service::from(&svc)
}

#[test]
fn a_port_that_does_not_fit_16_bits_names_the_port() {
    let mut p = service();
    p.ports[1].number = 70000;
    let e = err::<m::Service, _>(p);
    assert_eq!(e.path, "ports[1].number");
    assert_eq!(
        e.to_string(),
        "ports[1].number: 70000 does not fit in 16 bits"
    );
}

#[test]
fn an_unknown_enum_number_from_the_wire_names_the_enum_field() {
    let mut p = service();
    p.ports[0].protocol = 42;
    // Through bytes, as a proxy receives it: prost keeps unknown enum numbers as they are.
    let p = pb::Service::decode(p.encode_to_vec().as_slice()).expect("well-formed protobuf");
    let e = err::<m::Service, _>(p);
    assert_eq!(e.path, "ports[0].protocol");
    assert_eq!(e.reason, "unknown Protocol value 42");
}

#[test]
fn nested_errors_carry_the_whole_path() {
    let mut p = service();
    let retry = p.http_routes[2].retry.as_mut().expect("retry");
    retry.retry_on.as_mut().expect("retry_on").conditions[1] = 99;
    let e = err::<m::Service, _>(p);
    assert_eq!(e.path, "http_routes[2].retry.retry_on.conditions[1]");

    let mut p = service();
    let retry = p.http_routes[0].retry.as_mut().expect("retry");
    retry.retry_on.as_mut().expect("retry_on").conditions[0] =
        pb::RetryCondition::Unspecified as i32;
    let e = err::<m::Service, _>(p);
    assert_eq!(e.path, "http_routes[0].retry.retry_on.conditions[0]");
    assert_eq!(e.reason, "RetryCondition is unspecified");
}

#[test]
fn errors_inside_oneof_variants_name_the_variant() {
    use pb::route_action::Kind;
    let mut p = service();
    if let Some(Kind::Forward(f)) = &mut p.http_routes[0].action.as_mut().expect("action").kind {
        f.destinations[0].destination.as_mut().expect("dest").port = Some(65536);
    }
    if let Some(Kind::Redirect(r)) = &mut p.http_routes[1].action.as_mut().expect("action").kind {
        r.code = 100_000;
    }
    if let Some(Kind::DirectResponse(d)) = &mut p.http_routes[2].action.as_mut().expect("a").kind {
        d.status = 1 << 20;
    }
    // Fix each error in turn to see the next one.
    let e = err::<m::Service, _>(p.clone());
    assert_eq!(
        e.path,
        "http_routes[0].action.forward.destinations[0].destination.port"
    );
    p.http_routes.remove(0);
    let e = err::<m::Service, _>(p.clone());
    assert_eq!(e.path, "http_routes[0].action.redirect.code");
    p.http_routes.remove(0);
    let e = err::<m::Service, _>(p);
    assert_eq!(e.path, "http_routes[0].action.direct_response.status");
}

#[test]
fn missing_required_messages_and_empty_oneofs_are_refused() {
    let e = err::<m::Service, _>(pb::Service::default());
    assert_eq!(e.to_string(), "policy: required field is missing");

    let mut p = service();
    p.http_routes[1].action = None;
    let e = err::<m::Service, _>(p);
    assert_eq!(
        e.to_string(),
        "http_routes[1].action: required field is missing"
    );

    let mut p = service();
    p.http_routes[2].action = Some(pb::RouteAction { kind: None });
    let e = err::<m::Service, _>(p);
    assert_eq!(e.path, "http_routes[2].action");
    assert_eq!(e.reason, "no RouteAction kind is set");
}

#[test]
fn map_entries_are_named_by_key() {
    let mut endpoint = pb::Endpoint::from(&m::Endpoint::default());
    endpoint.ports = BTreeMap::from([("http".to_string(), 8080), ("grpc".to_string(), 70000)]);
    assert_eq!(err::<m::Endpoint, _>(endpoint).path, "ports[grpc]");

    let peer = |port_modes| pb::SecurityPolicies {
        peer_authentication: vec![pb::PeerAuthn {
            origin: Some(pb::SourceRef::default()),
            port_modes,
            ..pb::PeerAuthn::default()
        }],
        ..pb::SecurityPolicies::default()
    };
    let e = err::<m::SecurityPolicies, _>(peer(BTreeMap::from([(70000, 0)])));
    assert_eq!(e.path, "peer_authentication[0].port_modes[70000]");
    let e = err::<m::SecurityPolicies, _>(peer(BTreeMap::from([(8080, 9)])));
    assert_eq!(e.path, "peer_authentication[0].port_modes[8080]");
    assert_eq!(e.reason, "unknown MtlsMode value 9");

    let mut telemetry = pb::TelemetryPolicy::from(&m::TelemetryPolicy::default());
    telemetry.tracing = Some(pb::TracingPolicy {
        custom_tags: BTreeMap::from([("team".to_string(), pb::CustomTag { kind: None })]),
        ..pb::TracingPolicy::default()
    });
    let e = err::<m::TelemetryPolicy, _>(telemetry);
    assert_eq!(e.path, "tracing.custom_tags[team]");
}

#[test]
fn every_top_level_message_checks_its_fields() {
    let mut gw = pb::Gateway::from(&m::Gateway {
        servers: vec![m::GatewayServer {
            tls: Some(m::ServerTls::default()),
            ..m::GatewayServer::default()
        }],
        virtual_hosts: vec![m::VirtualHost::default()],
        ..m::Gateway::default()
    });
    gw.servers[0].tls.as_mut().expect("tls").mode = 6;
    assert_eq!(err::<m::Gateway, _>(gw.clone()).path, "servers[0].tls.mode");
    gw.servers.clear();
    gw.virtual_hosts[0].port = 65536;
    assert_eq!(err::<m::Gateway, _>(gw).path, "virtual_hosts[0].port");

    let mut w = pb::Workload::from(&m::Workload {
        ports: vec![80, 443, 8080],
        ..m::Workload::default()
    });
    w.ports[2] = 70000;
    assert_eq!(err::<m::Workload, _>(w.clone()).path, "ports[2]");
    w.ports.clear();
    w.kind = -1;
    assert_eq!(err::<m::Workload, _>(w).path, "kind");

    let mut sec = pb::SecurityPolicies::from(&m::SecurityPolicies {
        authorization: vec![m::AuthzPolicy {
            rules: vec![m::AuthzRule {
                to: vec![m::AuthzOperation {
                    not_ports: vec![15090],
                    ..m::AuthzOperation::default()
                }],
                ..m::AuthzRule::default()
            }],
            ..m::AuthzPolicy::default()
        }],
        ..m::SecurityPolicies::default()
    });
    sec.authorization[0].rules[0].to[0].not_ports[0] = 70000;
    assert_eq!(
        err::<m::SecurityPolicies, _>(sec).path,
        "authorization[0].rules[0].to[0].not_ports[0]"
    );
}

/// Arbitrary bytes either fail to parse as protobuf or decode to a model value or a
/// `DecodeError`; conversion never panics.
#[test]
fn garbage_never_panics() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = usize::try_from(next() % 64).unwrap_or(0);
        let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if let Ok(p) = pb::Service::decode(bytes.as_slice()) {
            let _ = m::Service::try_from(p);
        }
        if let Ok(p) = pb::Gateway::decode(bytes.as_slice()) {
            let _ = m::Gateway::try_from(p);
        }
        if let Ok(p) = pb::SecurityPolicies::decode(bytes.as_slice()) {
            let _ = m::SecurityPolicies::try_from(p);
        }
        if let Ok(p) = pb::TelemetryPolicy::decode(bytes.as_slice()) {
            let _ = m::TelemetryPolicy::try_from(p);
        }
        if let Ok(p) = pb::Workload::decode(bytes.as_slice()) {
            let _ = m::Workload::try_from(p);
        }
        if let Ok(p) = pb::Endpoint::decode(bytes.as_slice()) {
            let _ = m::Endpoint::try_from(p);
        }
    }
}
