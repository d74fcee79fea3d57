//! `trellis analyze` throughput: load + validate + analyze a generated mesh of 10,000 resources
//! (services, deployments, destination rules with subsets, virtual services with canary splits).
//! Target (issue #2): at least 10,000 resources per second. Run: `cargo bench -p trellis-config`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use trellis_config::{LoadOptions, analyze, load_str};

/// Four resources per service: Service, Deployment, DestinationRule, VirtualService.
pub fn generate(services: usize) -> String {
    let mut out = String::new();
    for i in 0..services {
        let ns = format!("ns{}", i % 20);
        out.push_str(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc{i}\n  namespace: {ns}\nspec:\n  selector:\n    app: svc{i}\n  ports:\n  - name: http\n    port: 8080\n    targetPort: 8080\n---\n\
apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc{i}-v1\n  namespace: {ns}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: svc{i}\n      version: v1\n  template:\n    metadata:\n      labels:\n        app: svc{i}\n        version: v1\n    spec:\n      containers:\n      - name: app\n        image: example/app:1\n        ports:\n        - containerPort: 8080\n---\n\
apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: svc{i}\n  namespace: {ns}\nspec:\n  host: svc{i}\n  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: 100\n    outlierDetection:\n      consecutive5xxErrors: 5\n      interval: 10s\n      baseEjectionTime: 30s\n  subsets:\n  - name: v1\n    labels:\n      version: v1\n  - name: v2\n    labels:\n      version: v2\n---\n\
apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: svc{i}\n  namespace: {ns}\nspec:\n  hosts:\n  - svc{i}\n  http:\n  - match:\n    - headers:\n        canary:\n          exact: \"true\"\n    route:\n    - destination:\n        host: svc{i}\n        subset: v2\n  - route:\n    - destination:\n        host: svc{i}\n        subset: v1\n      weight: 90\n    - destination:\n        host: svc{i}\n        subset: v2\n      weight: 10\n    timeout: 3s\n    retries:\n      attempts: 3\n      perTryTimeout: 1s\n      retryOn: 5xx,connect-failure\n---\n"
        ));
    }
    out
}

/// A policy-heavy mesh: one Deployment and one AuthorizationPolicy selecting it per workload,
/// spread over 50 namespaces (selectors are checked against every workload in scope).
pub fn generate_policies(workloads: usize) -> String {
    let mut out = String::new();
    for i in 0..workloads {
        let ns = format!("ns{}", i % 50);
        out.push_str(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d{i}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: a{i}}}}}\n  template:\n    metadata: {{labels: {{app: a{i}}}}}\n    spec:\n      containers: [{{name: c, image: x}}]\n---\n\
apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p{i}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: a{i}}}}}\n  action: ALLOW\n  rules: [{{from: [{{source: {{principals: [cluster.local/ns/{ns}/sa/x]}}}}]}}]\n---\n"
        ));
    }
    out
}

fn run(c: &mut Criterion, name: &str, text: &str, resources: usize) {
    let mut g = c.benchmark_group("analyze");
    g.sample_size(10);
    g.throughput(Throughput::Elements(resources as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let loaded = load_str("bench.yaml", black_box(text), &LoadOptions::default());
            assert_eq!(loaded.resources.len(), resources);
            black_box(analyze::analyze(&loaded))
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    run(c, "mesh 10k resources", &generate(2_500), 10_000);
    // Four times the size: the time per resource must stay the same (no quadratic pass).
    run(c, "mesh 40k resources", &generate(10_000), 40_000);
    run(
        c,
        "policies 10k resources",
        &generate_policies(5_000),
        10_000,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
