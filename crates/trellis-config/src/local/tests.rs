//! Placed replicas become endpoints exactly as pods do; the LocalWorkload itself is a workload.

use super::*;
use crate::compile::{CompileOptions, compile};
use crate::diag::Severity;
use trellis_model::{Mesh, WorkloadKind};

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

const V1: &str = r#"apiVersion: trellis.dev/v1alpha1
kind: LocalWorkload
metadata: {name: orders-v1, namespace: shop}
spec:
  serviceAccount: orders
  labels: {app: orders, version: v1}
  command: trellis
  args: [demo, --service, orders]
  env: {LOG: debug}
  port: 8080
  replicas: 2
  workingDir: ./run
"#;

const V2: &str = r#"apiVersion: trellis.dev/v1alpha1
kind: LocalWorkload
metadata: {name: orders-v2, namespace: shop}
spec:
  labels: {app: orders, version: v2}
  command: trellis
  port: 8080
"#;

const SUBSETS: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: orders, namespace: shop}
spec:
  host: orders
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"#;

fn place(workload: &str, replica: u32, ip: &str) -> Placement {
    Placement {
        namespace: "shop".into(),
        workload: workload.into(),
        replica,
        address: ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
    }
}

fn resources(docs: &[&str]) -> Vec<Resource> {
    let loaded = load_str("mesh.yaml", &docs.join("---\n"), &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.resources
}

fn compiled(resources: &[Resource]) -> Mesh {
    let c = compile(resources, &CompileOptions::default());
    assert!(
        c.diagnostics.iter().all(|d| d.severity != Severity::Error),
        "{:#?}",
        c.diagnostics
    );
    c.mesh
}

#[test]
fn placed_replicas_are_the_services_endpoints() {
    let mut all = resources(&[SERVICE, V1]);
    let pods = pods_for(
        &all,
        &[
            place("orders-v1", 0, "127.0.0.11"),
            place("orders-v1", 1, "::1"),
        ],
    );
    assert_eq!(pods.len(), 2);
    all.extend(pods);
    let mesh = compiled(&all);
    let svc = mesh
        .service("orders.shop.svc.cluster.local")
        .expect("service");
    let eps: Vec<(&str, u16, Option<&str>, Option<&str>)> = svc
        .endpoints
        .iter()
        .map(|e| {
            (
                e.address.as_str(),
                e.target_port(&svc.ports[0]),
                e.service_account.as_deref(),
                e.workload.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        eps,
        [
            ("127.0.0.11", 8080, Some("orders"), Some("orders-v1-0")),
            ("::1", 8080, Some("orders"), Some("orders-v1-1")),
        ]
    );
    for e in &svc.endpoints {
        assert!(e.ready, "running and ready");
        assert_eq!(e.namespace, "shop");
        assert_eq!(e.labels.get("version").map(String::as_str), Some("v1"));
        assert_eq!(
            e.labels.get(LOCAL_WORKLOAD_LABEL).map(String::as_str),
            Some("orders-v1")
        );
        assert_eq!(
            e.identity("cluster.local").as_deref(),
            Some("spiffe://cluster.local/ns/shop/sa/orders")
        );
    }
    // The LocalWorkload is a workload of its own, without address, like a Deployment.
    let w = mesh.workload("shop", "orders-v1").expect("local workload");
    assert_eq!(w.kind, WorkloadKind::Local);
    assert_eq!((w.ports.as_slice(), w.addresses.len()), (&[8080u16][..], 0));
    assert_eq!(w.service_account(), "orders");
    assert_eq!(w.labels.get("app").map(String::as_str), Some("orders"));
    let pod = mesh.workload("shop", "orders-v1-1").expect("replica pod");
    assert_eq!(
        (pod.kind, pod.addresses.as_slice()),
        (WorkloadKind::Pod, &["::1".to_string()][..])
    );
}

#[test]
fn the_synthetic_pod_describes_the_process() {
    let all = resources(&[V1]);
    let pods = pods_for(&all, &[place("orders-v1", 0, "127.0.0.11")]);
    let [pod] = pods.as_slice() else {
        panic!("one pod expected, got {}", pods.len());
    };
    assert_eq!(
        (pod.name.as_str(), pod.namespace.as_str()),
        ("orders-v1-0", "shop")
    );
    let Spec::Pod(spec) = &pod.spec else {
        panic!("not a Pod: {:?}", pod.kind());
    };
    assert_eq!(spec.service_account_name(), Some("orders"));
    let c = &spec.containers[0];
    assert_eq!(
        (c.name.as_str(), c.command.as_slice()),
        ("app", &["trellis".to_string()][..])
    );
    assert_eq!(c.args, ["demo", "--service", "orders"]);
    assert_eq!(
        (c.env[0].name.as_str(), c.env[0].value.as_deref()),
        ("LOG", Some("debug"))
    );
    assert_eq!(
        (c.working_dir.as_deref(), c.ports[0].container_port),
        (Some("./run"), 8080)
    );
    assert_eq!(pod.origin.file.as_ref(), "local:shop/orders-v1-0");
}

#[test]
fn placements_that_do_not_fit_are_ignored() {
    let all = resources(&[V1, V2]);
    let pods = pods_for(
        &all,
        &[
            place("orders-v1", 0, "127.0.0.11"),
            place("orders-v1", 0, "127.0.0.99"),
            place("orders-v1", 2, "127.0.0.13"),
            place("orders-v3", 0, "127.0.0.31"),
            Placement {
                namespace: "other".into(),
                ..place("orders-v2", 0, "127.0.0.41")
            },
            place("orders-v2", 0, "127.0.0.21"),
        ],
    );
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["orders-v1-0", "orders-v2-0"],
        "first placement of a replica wins"
    );
    let mesh = compiled(&[all, pods].concat());
    assert_eq!(
        mesh.workload("shop", "orders-v1-0")
            .map(|w| w.addresses.clone()),
        Some(vec!["127.0.0.11".to_string()])
    );
    assert_eq!(
        mesh.workload("shop", "orders-v2")
            .map(|w| w.service_account()),
        Some("default")
    );
}

#[test]
fn working_directories_resolve_against_the_defining_file() {
    let loaded = load_str("conf/shop/mesh.yaml", V1, &LoadOptions::default());
    let (r, w) = local_workloads(&loaded.resources).next().expect("workload");
    assert_eq!(working_dir(r, w), Some(PathBuf::from("conf/shop/./run")));
    let abs = LocalWorkload {
        working_dir: Some("/srv/orders".into()),
        ..w.clone()
    };
    assert_eq!(working_dir(r, &abs), Some(PathBuf::from("/srv/orders")));
    let unset = LocalWorkload {
        working_dir: None,
        ..w.clone()
    };
    assert_eq!(working_dir(r, &unset), None);
}

#[test]
fn a_snapshot_with_placements_routes_subsets_to_their_replicas() {
    let dir = std::env::temp_dir().join(format!("trellis-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("mesh.yaml"),
        [SERVICE, V1, V2, SUBSETS].join("---\n"),
    )
    .expect("write");
    let snap = snapshot_placed(
        std::slice::from_ref(&dir),
        &LoadOptions::default(),
        &[
            place("orders-v1", 0, "127.0.0.11"),
            place("orders-v1", 1, "127.0.0.12"),
            place("orders-v2", 0, "127.0.0.21"),
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
    let snap = snap.expect("valid");
    assert_eq!(snap.resources, 4, "only what was read is counted");
    assert!(snap.diagnostics.is_empty(), "{:#?}", snap.diagnostics);
    let svc = snap
        .mesh
        .service("orders.shop.svc.cluster.local")
        .expect("service");
    let subset = |name| -> Vec<&str> {
        svc.endpoints_for_subset(Some(name))
            .map(|e| e.address.as_str())
            .collect()
    };
    assert_eq!(subset("v1"), ["127.0.0.11", "127.0.0.12"]);
    assert_eq!(subset("v2"), ["127.0.0.21"]);
    assert_eq!(svc.endpoints_for_subset(None).count(), 3);
}
