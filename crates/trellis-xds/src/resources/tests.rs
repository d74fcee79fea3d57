use envoy_types::pb::envoy::service::discovery::v3::Resource;
use trellis_model::{Endpoint, Service, ServicePort};

use super::*;

fn service(host: &str, addresses: &[&str]) -> Service {
    Service {
        host: host.into(),
        name: host.split('.').next().unwrap_or(host).into(),
        namespace: "shop".into(),
        ports: vec![ServicePort {
            number: 8080,
            name: "http".into(),
            ..ServicePort::default()
        }],
        endpoints: addresses
            .iter()
            .map(|a| Endpoint {
                address: (*a).into(),
                ..Endpoint::default()
            })
            .collect(),
        ..Service::default()
    }
}

fn response(type_url: &str, added: &[Encoded], removed: &[&str]) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        type_url: type_url.into(),
        resources: added
            .iter()
            .map(|e| Resource {
                name: e.name.to_string(),
                version: e.version.clone(),
                resource: Some(e.to_any(type_url)),
                ..Resource::default()
            })
            .collect(),
        removed_resources: removed.iter().map(|s| (*s).to_owned()).collect(),
        nonce: "1".into(),
        ..DeltaDiscoveryResponse::default()
    }
}

#[test]
fn services_and_endpoints_reassemble_and_update_incrementally() {
    let a = service("a.shop.svc.cluster.local", &["10.0.0.1", "10.0.0.2"]);
    let b = service("b.shop.svc.cluster.local", &["10.0.0.3"]);
    let settings = Settings {
        trust_domain: "cluster.local".into(),
        domain: "cluster.local".into(),
        root_namespace: "istio-system".into(),
        namespaces: vec!["shop".into()],
        ..Settings::default()
    };
    let mut asm = Assembly::default();
    for (t, res) in [
        (MESH_TYPE, vec![encode_settings(&settings)]),
        (
            ENDPOINTS_TYPE,
            vec![encode_endpoints(&a), encode_endpoints(&b)],
        ),
        (SERVICE_TYPE, vec![encode_service(&a), encode_service(&b)]),
    ] {
        asm.apply(&response(t, &res, &[])).expect("valid");
    }
    let mesh = asm.mesh();
    assert_eq!(mesh.services, vec![a.clone(), b.clone()]);
    assert!(mesh.namespaces.contains("shop"));
    assert_eq!(asm.versions(SERVICE_TYPE).len(), 2);

    // An endpoint change touches only that service's endpoints resource.
    let a2 = service("a.shop.svc.cluster.local", &["10.0.0.9"]);
    assert_eq!(encode_service(&a2).version, encode_service(&a).version);
    assert_ne!(encode_endpoints(&a2).version, encode_endpoints(&a).version);
    asm.apply(&response(ENDPOINTS_TYPE, &[encode_endpoints(&a2)], &[]))
        .expect("valid");
    asm.apply(&response(SERVICE_TYPE, &[], &["b.shop.svc.cluster.local"]))
        .expect("valid");
    assert_eq!(asm.mesh().services, vec![a2]);
}

#[test]
fn a_malformed_response_changes_nothing() {
    let a = service("a.shop.svc.cluster.local", &["10.0.0.1"]);
    let mut asm = Assembly::default();
    asm.apply(&response(SERVICE_TYPE, &[encode_service(&a)], &[]))
        .expect("valid");
    let mut bad = response(
        SERVICE_TYPE,
        &[encode_service(&service("c.shop.svc.cluster.local", &[]))],
        &["a.shop.svc.cluster.local"],
    );
    bad.resources.push(Resource {
        name: "broken".into(),
        resource: Some(Any {
            type_url: SERVICE_TYPE.into(),
            value: vec![0xff, 0xff, 0xff],
        }),
        ..Resource::default()
    });
    let err = asm.apply(&bad).expect_err("malformed");
    assert!(err.to_string().contains("services broken"), "{err}");
    assert_eq!(asm.mesh().services.len(), 1);
    let err = asm
        .apply(&response("type.googleapis.com/x.Y", &[], &[]))
        .expect_err("unknown type");
    assert!(matches!(err, ResourceError::UnknownType(_)));
}
