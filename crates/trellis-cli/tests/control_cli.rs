//! `trellis control` and `trellis proxy --xds` as processes: the control plane is killed
//! (SIGKILL) while traffic flows, the proxy keeps serving, and when a new control plane starts
//! on the same address the proxy reconnects and takes the configuration changed meanwhile.
//! `trellis status` shows the proxy in sync.

mod up_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use up_support::{BIN, free_port, http_get};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn trellis"),
    )
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn version(addr: std::net::SocketAddr) -> String {
    let (status, body) = http_get(addr, "orders.shop", "/", &[]);
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{status} {body}"))
}

fn mesh(v1: u16, v2: u16, subset: &str) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: orders, namespace: shop}}
spec:
  hosts: [orders.shop.svc.cluster.local]
  ports: [{{number: 8080, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {v1}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{http: {v2}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: orders, namespace: shop}}
spec:
  host: orders.shop.svc.cluster.local
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: orders, namespace: shop}}
spec:
  hosts: [orders.shop.svc.cluster.local]
  http: [{{route: [{{destination: {{host: orders.shop.svc.cluster.local, subset: {subset}}}}}]}}]
"#
    )
}

#[test]
fn a_killed_control_plane_does_not_stop_traffic_and_a_new_one_resyncs_the_proxy() {
    let dir = std::env::temp_dir().join(format!("trellis-control-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (p1, p2) = (free_port(), free_port());
    let _v1 = spawn(&[
        "demo",
        "--listen",
        &format!("127.0.0.1:{p1}"),
        "--service",
        "orders",
        "--version",
        "v1",
    ]);
    let _v2 = spawn(&[
        "demo",
        "--listen",
        &format!("127.0.0.1:{p2}"),
        "--service",
        "orders",
        "--version",
        "v2",
    ]);
    std::fs::write(dir.join("mesh.yaml"), mesh(p1, p2, "v1")).expect("write");
    let xds = format!("127.0.0.1:{}", free_port());
    let monitoring = format!("127.0.0.1:{}", free_port());
    let control = |_: ()| {
        spawn(&[
            "control",
            "--config",
            dir.to_str().expect("utf-8"),
            "--xds-addr",
            &xds,
            "--monitoring-addr",
            &monitoring,
        ])
    };
    let mut cp = control(());
    let outbound: std::net::SocketAddr =
        format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let _proxy = spawn(&[
        "proxy",
        "--xds",
        &xds,
        "--namespace",
        "shop",
        "--workload",
        "client-0",
        "--outbound-addr",
        &outbound.to_string(),
        "--admin-addr",
        &format!("127.0.0.1:{}", free_port()),
        "--health-addr",
        "off",
        "--access-log",
        "off",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || version(outbound) == "v1"),
        "never configured: {}",
        version(outbound)
    );
    let status = Command::new(BIN)
        .args(["status", "--control-plane", &monitoring])
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("client-0.shop") && status.contains("SYNCED"),
        "{status}"
    );

    cp.0.kill().expect("SIGKILL the control plane");
    let _ = cp.0.wait();
    for _ in 0..50 {
        assert_eq!(
            version(outbound),
            "v1",
            "traffic failed without the control plane"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(dir.join("mesh.yaml"), mesh(p1, p2, "v2")).expect("write");
    cp = control(());
    assert!(
        wait_until(Duration::from_secs(20), || version(outbound) == "v2"),
        "the proxy did not resync"
    );
    drop(cp);
    let _ = std::fs::remove_dir_all(&dir);
}
