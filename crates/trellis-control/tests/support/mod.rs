//! Shared pieces of the control-plane end-to-end tests: demo backends, a configuration
//! directory, an in-process control plane and proxies connected to it over real sockets.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use trellis_control::{ControlPlane, ControlSettings, DirectorySource, MeshSource};
use trellis_proxy::server::{ProxyServer, ProxySettings, XdsSettings};
use trellis_xds::node::{ProxyIdentity, ProxyKind};

/// Upper bound for a whole test (a loaded 2-core machine is slow, never this slow).
pub const LIMIT: Duration = Duration::from_secs(60);

/// A demo backend answering `{"service", "version", ...}`.
pub struct Demo {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Demo {
    pub async fn start(service: &str, version: &str) -> Demo {
        let flags = trellis_demo::DemoFlags {
            listen: Some("127.0.0.1:0".into()),
            service: Some(service.into()),
            version: Some(version.into()),
            pod: Some(format!("{service}-{version}")),
            ..Default::default()
        };
        let config = trellis_demo::config_from(&flags, |_| None).expect("demo config");
        let server = trellis_demo::DemoServer::bind(config)
            .await
            .expect("demo binds");
        let addr = server.local_addr();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Demo { addr, _stop: tx }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "trellis-control-test-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) {
        // Write then rename, as editors do, so the watcher never sees a half-written file.
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, self.0.join(name)).expect("rename config");
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `orders` in namespace `shop` with endpoints v1 and v2 (by label), split by `weights`.
pub fn orders_yaml(v1: u16, v2: u16, weights: (u32, u32)) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: orders, namespace: shop}}
spec:
  hosts: [orders.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 8080, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {v1}}}, labels: {{app: orders, version: v1}}}}
  - {{address: 127.0.0.1, ports: {{http: {v2}}}, labels: {{app: orders, version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: orders, namespace: shop}}
spec:
  host: orders.shop.svc.cluster.local
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: orders, namespace: shop}}
spec:
  hosts: [orders.shop.svc.cluster.local]
  http:
  - match: [{{headers: {{canary: {{exact: "true"}}}}}}]
    route: [{{destination: {{host: orders.shop.svc.cluster.local, subset: v2}}}}]
  - route:
    - {{destination: {{host: orders.shop.svc.cluster.local, subset: v1}}, weight: {}}}
    - {{destination: {{host: orders.shop.svc.cluster.local, subset: v2}}, weight: {}}}
"#,
        weights.0, weights.1
    )
}

/// Control-plane settings on free loopback ports.
pub fn cp_settings() -> ControlSettings {
    ControlSettings {
        xds_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        monitoring_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        debounce: Duration::from_millis(50),
        ..ControlSettings::default()
    }
}

/// A control plane following `dir`.
pub async fn control_plane(dir: &Path, settings: ControlSettings) -> ControlPlane {
    let source: Arc<dyn MeshSource> = Arc::new(DirectorySource::new(
        vec![dir.to_path_buf()],
        Default::default(),
    ));
    ControlPlane::start(source, settings)
        .await
        .expect("control plane starts")
}

/// A sidecar (or gateway) proxy of workload `workload` in `namespace` following `xds`.
pub async fn proxy(
    xds: SocketAddr,
    namespace: &str,
    workload: &str,
    labels: &[(&str, &str)],
    kind: ProxyKind,
) -> ProxyServer {
    let mut s = ProxySettings::new(Vec::new());
    s.outbound_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.health_addr = None;
    s.vip_listeners = false;
    s.runtime.client_namespace = namespace.into();
    s.runtime.client_labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if kind == ProxyKind::Gateway {
        s.runtime.gateway_labels = Some(s.runtime.client_labels.clone());
        s.gateway_bind = Some([127, 0, 0, 1].into());
    }
    s.xds = Some(XdsSettings {
        address: xds.to_string(),
        identity: ProxyIdentity {
            kind,
            workload: workload.into(),
            namespace: namespace.into(),
            service_account: "default".into(),
            labels: s.runtime.client_labels.clone(),
            addresses: vec!["127.0.0.1".into()],
        },
    });
    ProxyServer::start(s).await.expect("proxy starts")
}

/// One HTTP/1.0 GET with a `Host` header and extra headers: status and body. Runs on a
/// blocking thread so the in-process servers keep running.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let host = host.to_owned();
    let path = path.to_owned();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    tokio::task::spawn_blocking(move || {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
            return (0, "connect failed".to_owned());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{extra}\r\n");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, body.to_owned())
    })
    .await
    .unwrap_or((0, "client task failed".to_owned()))
}

/// The `version` field of a demo answer.
pub fn version_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("<not a demo answer: {body}>"))
}

/// Polls `check` every 50 ms until it holds or `limit` passes; returns how long it took.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Demo backends for orders v1 and v2, and a directory routing everything to v1.
pub async fn orders_v1_v2(tag: &str) -> (Demo, Demo, TempDir) {
    let v1 = Demo::start("orders", "v1").await;
    let v2 = Demo::start("orders", "v2").await;
    let dir = TempDir::new(tag);
    dir.write("mesh.yaml", &orders_yaml(v1.port(), v2.port(), (100, 0)));
    (v1, v2, dir)
}

/// Waits (up to 10 s) until `outbound` routes `orders` successfully: the proxy has its
/// configuration from the control plane.
pub async fn configured(outbound: SocketAddr) -> bool {
    eventually(Duration::from_secs(10), || async {
        get(outbound, "orders", "/", &[]).await.0 == 200
    })
    .await
    .is_some()
}
