//! The control plane and proxies end to end, over real sockets: configuration reaches a
//! proxy over Delta ADS, edits are pushed within two seconds, a proxy outlives its control
//! plane and resyncs when it returns, a configuration a proxy cannot use is NACKed (and
//! reported) while the last good one keeps serving, and each proxy gets only its view.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::*;
use tokio::time::timeout;
use trellis_control::{Compiled, ControlSettings, DirectorySource, MeshSource, Refused};
use trellis_xds::node::ProxyKind;

const ORDERS: &str = "orders.shop.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_edit_reaches_the_proxy_within_two_seconds() {
    timeout(LIMIT, async {
        let (v1, v2, dir) = orders_v1_v2("edit").await;
        let cp = control_plane(dir.path(), cp_settings()).await;
        let px = proxy(
            cp.xds_addr(),
            "shop",
            "frontend-0",
            &[("app", "frontend")],
            ProxyKind::Sidecar,
        )
        .await;
        let out = px.outbound_addr();
        assert!(
            configured(out).await,
            "the proxy never got its configuration"
        );
        for _ in 0..20 {
            assert_eq!(version_of(&get(out, "orders", "/", &[]).await.1), "v1");
        }
        // Header routing comes from the same VirtualService.
        let (_, body) = get(out, "orders:8080", "/", &[("canary", "true")]).await;
        assert_eq!(version_of(&body), "v2");

        dir.write("mesh.yaml", &orders_yaml(v1.port(), v2.port(), (0, 100)));
        let took = eventually(Duration::from_secs(2), || async {
            version_of(&get(out, "orders", "/", &[]).await.1) == "v2"
        })
        .await;
        assert!(
            took.is_some(),
            "the weight edit did not reach the proxy within 2 s"
        );
        for _ in 0..20 {
            assert_eq!(version_of(&get(out, ORDERS, "/", &[]).await.1), "v2");
        }
        // The control plane saw the ACK.
        let statuses = cp.state().registry.statuses();
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].proxy, "frontend-0.shop");
        assert!(
            eventually(Duration::from_secs(5), || async {
                cp.state().registry.statuses()[0].status
                    == trellis_control::registry::SyncStatus::Synced
            })
            .await
            .is_some(),
            "{:?}",
            cp.state().registry.statuses()
        );
        cp.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_keep_serving_without_the_control_plane_and_resync_when_it_returns() {
    timeout(LIMIT, async {
        let (v1, v2, dir) = orders_v1_v2("restart").await;
        let cp = control_plane(dir.path(), cp_settings()).await;
        let xds = cp.xds_addr();
        let px = proxy(xds, "shop", "frontend-0", &[], ProxyKind::Sidecar).await;
        let out = px.outbound_addr();
        assert!(configured(out).await);

        cp.shutdown().await;
        // Down: every request still succeeds with the last configuration.
        for _ in 0..30 {
            let (status, body) = get(out, "orders", "/", &[]).await;
            assert_eq!((status, version_of(&body).as_str()), (200, "v1"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        dir.write("mesh.yaml", &orders_yaml(v1.port(), v2.port(), (0, 100)));

        // Back on the same address: the proxy reconnects and catches up.
        let settings = ControlSettings {
            xds_addr: xds,
            ..cp_settings()
        };
        let mut cp2 = None;
        for _ in 0..50 {
            let source: Arc<dyn MeshSource> = Arc::new(DirectorySource::new(
                vec![dir.path().to_path_buf()],
                Default::default(),
            ));
            match trellis_control::ControlPlane::start(source, settings.clone()).await {
                Ok(c) => {
                    cp2 = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let cp2 = cp2.expect("control plane restarts on its address");
        let resynced = eventually(Duration::from_secs(15), || async {
            version_of(&get(out, "orders", "/", &[]).await.1) == "v2"
        })
        .await;
        assert!(
            resynced.is_some(),
            "the proxy did not resync after the restart"
        );
        assert_eq!(cp2.state().registry.len(), 1);
        cp2.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// The directory's mesh, or when `broken` is set, that mesh with a header edit no proxy can
/// apply (as a control plane of another version might send).
struct Switchable {
    dir: DirectorySource,
    broken: AtomicBool,
}

impl MeshSource for Switchable {
    fn paths(&self) -> Vec<PathBuf> {
        self.dir.paths()
    }

    fn compile(&self) -> Result<Compiled, Refused> {
        let mut c = self.dir.compile()?;
        if self.broken.load(Ordering::SeqCst) {
            for s in &mut c.mesh.services {
                for r in &mut s.http_routes {
                    r.request_headers
                        .set
                        .push(("bad header".into(), "x".into()));
                }
            }
        }
        Ok(c)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_the_proxy_refuses_is_nacked_reported_and_the_last_good_one_serves() {
    timeout(LIMIT, async {
        let (v1, v2, dir) = orders_v1_v2("nack").await;
        let source = Arc::new(Switchable {
            dir: DirectorySource::new(vec![dir.path().to_path_buf()], Default::default()),
            broken: AtomicBool::new(false),
        });
        let cp = trellis_control::ControlPlane::start(source.clone(), cp_settings())
            .await
            .expect("starts");
        let px = proxy(cp.xds_addr(), "shop", "frontend-0", &[], ProxyKind::Sidecar).await;
        let out = px.outbound_addr();
        assert!(configured(out).await);

        source.broken.store(true, Ordering::SeqCst);
        dir.write("mesh.yaml", &orders_yaml(v1.port(), v2.port(), (0, 100)));
        let nacked = eventually(Duration::from_secs(10), || async {
            cp.state()
                .registry
                .statuses()
                .first()
                .is_some_and(|p| p.types.get("services").is_some_and(|t| t.nack.is_some()))
        })
        .await;
        assert!(nacked.is_some(), "{:?}", cp.state().registry.statuses());
        let status = &cp.state().registry.statuses()[0];
        assert_eq!(status.status, trellis_control::registry::SyncStatus::Nacked);
        let nack = status.types["services"].nack.clone().expect("nack");
        assert!(nack.message.contains("bad header"), "{}", nack.message);
        assert!(
            cp.state()
                .metrics
                .encode()
                .contains("pilot_total_xds_rejects_total{type=\"services\"} 1"),
            "{}",
            cp.state().metrics.encode()
        );
        // The proxy kept v1 and says why it refused.
        for _ in 0..20 {
            assert_eq!(version_of(&get(out, "orders", "/", &[]).await.1), "v1");
        }
        let dump = px.store().view();
        assert!(
            dump.last_rejection
                .is_some_and(|r| r.diagnostics[0].contains("bad header"))
        );

        // Fixed: the proxy takes the new configuration and the refusal clears.
        source.broken.store(false, Ordering::SeqCst);
        cp.reload();
        assert!(
            eventually(Duration::from_secs(5), || async {
                version_of(&get(out, "orders", "/", &[]).await.1) == "v2"
            })
            .await
            .is_some()
        );
        assert!(
            eventually(Duration::from_secs(5), || async {
                cp.state().registry.statuses()[0].status
                    == trellis_control::registry::SyncStatus::Synced
            })
            .await
            .is_some()
        );
        cp.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_proxy_gets_only_the_services_its_sidecar_and_export_to_allow() {
    timeout(LIMIT, async {
        let dir = TempDir::new("view");
        let entry = |name: &str, ns: &str, export: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  hosts: [{name}.{ns}.svc.cluster.local]\n  exportTo: [{export}]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints: [{{address: 127.0.0.1}}]\n---\n"
            )
        };
        let yaml = entry("a", "shop", "'*'")
            + &entry("private", "shop", "'.'")
            + &entry("b", "other", "'*'")
            + "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: narrow}\nspec:\n  egress:\n  - hosts: ['shop/*']\n";
        dir.write("mesh.yaml", &yaml);
        let cp = control_plane(dir.path(), cp_settings()).await;
        let hosts = |px: &trellis_proxy::server::ProxyServer| -> Vec<String> {
            px.store().view().active.mesh.services.iter().map(|s| s.host.clone()).collect()
        };
        let shop = proxy(cp.xds_addr(), "shop", "s-0", &[], ProxyKind::Sidecar).await;
        let other = proxy(cp.xds_addr(), "other", "o-0", &[], ProxyKind::Sidecar).await;
        let narrow = proxy(cp.xds_addr(), "narrow", "n-0", &[], ProxyKind::Sidecar).await;
        for px in [&shop, &other, &narrow] {
            assert!(
                eventually(Duration::from_secs(10), || async { px.store().view().active.version > 1 })
                    .await
                    .is_some()
            );
        }
        assert_eq!(
            hosts(&shop),
            ["a.shop.svc.cluster.local", "b.other.svc.cluster.local", "private.shop.svc.cluster.local"]
        );
        assert_eq!(hosts(&other), ["a.shop.svc.cluster.local", "b.other.svc.cluster.local"]);
        assert_eq!(hosts(&narrow), ["a.shop.svc.cluster.local"]);
        cp.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_proxies_serve_istio_and_gateway_api_gateways() {
    timeout(LIMIT, async {
        let (v1, v2) = (
            Demo::start("orders", "v1").await,
            Demo::start("orders", "v2").await,
        );
        let (istio_port, k8s_port) = (free_port(), free_port());
        let dir = TempDir::new("gateway");
        let gateways = format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  template:
    metadata: {{labels: {{istio: ingressgateway}}}}
    spec: {{containers: [{{name: proxy, image: trellis}}]}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: shop-gateway, namespace: shop}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {istio_port}, name: http, protocol: HTTP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop-ingress, namespace: shop}}
spec:
  hosts: ["*"]
  gateways: [shop-gateway]
  http:
  - match: [{{uri: {{prefix: /orders}}}}]
    route: [{{destination: {{host: orders, port: {{number: 8080}}, subset: v2}}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: trellis}}
spec: {{controllerName: trellis.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: shop}}
spec:
  gatewayClassName: trellis
  listeners:
  - {{name: http, port: {k8s_port}, protocol: HTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: shop}}
spec:
  parentRefs: [{{name: web}}]
  hostnames: [shop.example.com]
  rules:
  - backendRefs: [{{name: orders, port: 8080}}]
"#
        );
        let services = orders_yaml(v1.port(), v2.port(), (100, 0));
        dir.write("mesh.yaml", &format!("{services}---\n{gateways}"));
        let cp = control_plane(dir.path(), cp_settings()).await;
        let _istio = proxy(
            cp.xds_addr(),
            "istio-system",
            "istio-ingressgateway-0",
            &[("istio", "ingressgateway")],
            ProxyKind::Gateway,
        )
        .await;
        let _web = proxy(
            cp.xds_addr(),
            "shop",
            "web-0",
            &[("gateway.networking.k8s.io/gateway-name", "web")],
            ProxyKind::Gateway,
        )
        .await;
        let istio_addr = std::net::SocketAddr::from(([127, 0, 0, 1], istio_port));
        let k8s_addr = std::net::SocketAddr::from(([127, 0, 0, 1], k8s_port));
        assert!(
            eventually(Duration::from_secs(10), || async {
                get(istio_addr, "anything.example", "/orders/1", &[])
                    .await
                    .0
                    == 200
            })
            .await
            .is_some(),
            "the Istio gateway never served"
        );
        let (status, body) = get(istio_addr, "anything.example", "/orders/1", &[]).await;
        assert_eq!((status, version_of(&body).as_str()), (200, "v2"));
        // No route for other paths: 404 with the NR flag.
        assert_eq!(
            get(istio_addr, "anything.example", "/other", &[]).await.0,
            404
        );

        assert!(
            eventually(Duration::from_secs(10), || async {
                get(k8s_addr, "shop.example.com", "/", &[]).await.0 == 200
            })
            .await
            .is_some(),
            "the Gateway API gateway never served"
        );
        // Gateway API: only the route's hostnames are admitted.
        assert_eq!(get(k8s_addr, "other.example.com", "/", &[]).await.0, 404);
        cp.shutdown().await;
    })
    .await
    .expect("test timed out");
}
