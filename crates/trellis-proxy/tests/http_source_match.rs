//! Route conditions on the calling workload (`sourceLabels`, `sourceNamespace`): a sidecar
//! knows its own workload, so the same VirtualService routes differently per client.

mod support;

use support::{Backend, LIMIT, TestProxy, client, get, runtime_with, service_entry, subsets_v1_v2};
use trellis_proxy::runtime::RuntimeOptions;

const HOST: &str = "orders.shop.svc.cluster.local";

fn mesh(v1: &Backend, v2: &Backend) -> String {
    service_entry("orders", "HTTP", &[(v1.port(), "v1"), (v2.port(), "v2")])
        + &subsets_v1_v2("orders", HOST)
        + &format!(
            r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: orders, namespace: shop}}
spec:
  hosts: [{HOST}]
  http:
  - match: [{{sourceLabels: {{app: tester}}, sourceNamespace: qa}}]
    route: [{{destination: {{host: {HOST}, subset: v2}}}}]
  - route: [{{destination: {{host: {HOST}, subset: v1}}}}]
"#
        )
}

fn opts(namespace: &str, labels: &[(&str, &str)]) -> RuntimeOptions {
    RuntimeOptions {
        client_namespace: namespace.into(),
        client_labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..RuntimeOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_labels_and_namespace_select_the_route() {
    tokio::time::timeout(LIMIT, async {
        let v1 = Backend::ok("v1").await;
        let v2 = Backend::ok("v2").await;
        let yaml = mesh(&v1, &v2);
        let c = client();
        for (ns, labels, want) in [
            ("qa", &[("app", "tester"), ("version", "x")][..], "v2"),
            ("qa", &[("app", "frontend")][..], "v1"),
            ("shop", &[("app", "tester")][..], "v1"),
            ("qa", &[][..], "v1"),
        ] {
            let proxy = TestProxy::with_runtime(runtime_with(&yaml, &opts(ns, labels))).await;
            for _ in 0..5 {
                let a = get(&c, proxy.addr, HOST, "/").await;
                assert_eq!(a.body, want, "client {ns} {labels:?}");
            }
        }
    })
    .await
    .expect("finished in time");
}
