//! The control plane at scale (a benchmark, not a test): `trellis control` on a mesh of 1,000
//! services with 10,000 endpoints (Kubernetes Services + Endpoints, a DestinationRule and a
//! VirtualService each, in 20 namespaces), 200 simulated proxies on Delta ADS.
//!
//! Measures: the time for a full push to all 200 proxies, the time for one endpoint change to
//! reach every proxy (from the file's save to each proxy's receipt; 20 changes), and the
//! control plane's memory. Targets (from the control-plane issue): an endpoint change reaches all
//! proxies in <= 1 s at p99; RSS <= 300 MB.
//!
//! Run with `./bench/control-plane.sh` (builds the release binary first), or
//! `TRELLIS_BIN=target/release/trellis cargo bench -p trellis-control --bench control_plane`.
//! Settings: `CP_SERVICES` (1000), `CP_ENDPOINTS` per service (10), `CP_PROXIES` (200),
//! `CP_CHANGES` (20).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use trellis_xds::node::{ProxyIdentity, ProxyKind};
use trellis_xds::resources::TYPE_URLS;

const NAMESPACES: usize = 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What each simulated proxy has seen: the control plane version of every response, when.
#[derive(Default)]
struct Seen {
    /// (version, when received) of every response.
    versions: Vec<(u64, Instant)>,
    resources: usize,
}

type Board = Arc<Mutex<Vec<Seen>>>;

fn service_yaml(i: usize, endpoints: usize) -> String {
    let ns = format!("ns{}", i % NAMESPACES);
    let name = format!("svc{i}");
    let addrs: String = (0..endpoints)
        .map(|e| format!("  - ip: 10.{}.{}.{}\n", (i / 250) % 250 + 1, i % 250, e + 1))
        .collect();
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 8080, targetPort: 8080}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {name}, namespace: {ns}}}
subsets:
- addresses:
{addrs}  ports: [{{name: http, port: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {ns}}}
spec:
  host: {name}
  trafficPolicy:
    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [{name}]
  http:
  - match: [{{headers: {{canary: {{exact: "true"}}}}}}]
    route: [{{destination: {{host: {name}}}}}]
    timeout: 2s
  - route: [{{destination: {{host: {name}}}}}]
    retries: {{attempts: 3, perTryTimeout: 1s}}
"#
    )
}

fn write_mesh(dir: &Path, services: usize, endpoints: usize) {
    std::fs::create_dir_all(dir).expect("dir");
    let mut ns = String::new();
    for n in 0..NAMESPACES {
        let _ = write!(
            ns,
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}}}\n---\n"
        );
    }
    std::fs::write(dir.join("namespaces.yaml"), ns).expect("write");
    for i in 0..services {
        std::fs::write(dir.join(format!("svc{i}.yaml")), service_yaml(i, endpoints))
            .expect("write");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn trellis_bin() -> PathBuf {
    std::env::var_os("TRELLIS_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/trellis"),
        PathBuf::from,
    )
}

/// One simulated proxy: subscribes to everything, records every response, ACKs it.
async fn proxy(xds: String, index: usize, board: Board) {
    let identity = ProxyIdentity {
        kind: ProxyKind::Sidecar,
        workload: format!("client-{index}"),
        namespace: format!("ns{}", index % NAMESPACES),
        service_account: "default".into(),
        labels: [("app".to_owned(), format!("client{index}"))].into(),
        addresses: vec![format!("10.250.{}.{}", index / 250, index % 250)],
    };
    let Ok(mut client) = AggregatedDiscoveryServiceClient::connect(format!("http://{xds}")).await
    else {
        eprintln!("proxy {index}: cannot connect");
        return;
    };
    client = client.max_decoding_message_size(256 << 20);
    let (tx, rx) = mpsc::channel(64);
    let node = identity.to_node();
    for (i, t) in TYPE_URLS.iter().enumerate() {
        let _ = tx
            .send(DeltaDiscoveryRequest {
                node: (i == 0).then(|| node.clone()),
                type_url: (*t).to_owned(),
                resource_names_subscribe: vec!["*".into()],
                ..Default::default()
            })
            .await;
    }
    let Ok(resp) = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
    else {
        eprintln!("proxy {index}: stream refused");
        return;
    };
    let mut stream = resp.into_inner();
    while let Ok(Some(r)) = stream.message().await {
        let now = Instant::now();
        let version = r
            .system_version_info
            .trim_start_matches('v')
            .parse()
            .unwrap_or(0);
        if let Ok(mut b) = board.lock() {
            b[index].versions.push((version, now));
            b[index].resources += r.resources.len();
        }
        let _ = tx
            .send(DeltaDiscoveryRequest {
                type_url: r.type_url.clone(),
                response_nonce: r.nonce.clone(),
                ..Default::default()
            })
            .await;
    }
}

/// Waits until every proxy received a response of at least `version`; each proxy's first
/// receipt time of it, or `None` past `limit`.
fn wait_version(board: &Board, version: u64, limit: Duration) -> Option<Vec<Instant>> {
    let start = Instant::now();
    loop {
        if let Ok(b) = board.lock() {
            let firsts: Vec<Option<Instant>> = b
                .iter()
                .map(|s| {
                    s.versions
                        .iter()
                        .find(|(v, _)| *v >= version)
                        .map(|(_, t)| *t)
                })
                .collect();
            if firsts.iter().all(Option::is_some) {
                return Some(firsts.into_iter().flatten().collect());
            }
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    // Only `cargo bench` (which passes `--bench`) runs it: `cargo test --all-targets` runs
    // bench targets too, and this one takes minutes and wants a release binary.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("control_plane: a benchmark; run it with ./bench/control-plane.sh");
        return;
    }
    let services = env_usize("CP_SERVICES", 1000);
    let endpoints = env_usize("CP_ENDPOINTS", 10);
    let proxies = env_usize("CP_PROXIES", 200);
    let changes = env_usize("CP_CHANGES", 20);
    let bin = trellis_bin();
    assert!(
        bin.is_file(),
        "no trellis binary at {} (cargo build --release, or set TRELLIS_BIN)",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("trellis-cp-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_mesh(&dir, services, endpoints);

    let xds = format!("127.0.0.1:{}", free_port());
    let monitoring = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let cp = Killed(
        Command::new(&bin)
            .args(["control", "--config"])
            .arg(&dir)
            .args(["--xds-addr", &xds, "--monitoring-addr", &monitoring])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start trellis control"),
    );
    let pid = cp.0.id();
    while std::net::TcpStream::connect(&xds).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "control plane did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let startup = started.elapsed();
    let rss_idle = rss_kib(pid, "VmRSS:");

    let board: Board = Arc::new(Mutex::new((0..proxies).map(|_| Seen::default()).collect()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    for i in 0..proxies {
        rt.spawn(proxy(xds.clone(), i, Arc::clone(&board)));
    }
    // The full push: every proxy received every resource of its view (the settings, and each
    // service's configuration and endpoints), however many responses that took.
    let expected = 2 * services + 1;
    let full = {
        let start = Instant::now();
        loop {
            let done = board
                .lock()
                .map_or(0, |b| b.iter().filter(|s| s.resources >= expected).count());
            if done == proxies {
                break start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "full push incomplete: {done}/{proxies}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let resources: usize = board
        .lock()
        .map_or(0, |b| b.iter().map(|s| s.resources).sum());
    let rss_connected = rss_kib(pid, "VmRSS:");

    // Endpoint changes: one address of one service per change.
    let mut per_proxy = Vec::new();
    let mut to_all = Vec::new();
    let mut version = 1;
    for c in 0..changes {
        let svc = (c * 37) % services;
        let text = service_yaml(svc, endpoints).replacen(
            &format!("  - ip: 10.{}.{}.1\n", (svc / 250) % 250 + 1, svc % 250),
            &format!(
                "  - ip: 10.{}.{}.{}\n",
                (svc / 250) % 250 + 1,
                svc % 250,
                200 + c % 50
            ),
            1,
        );
        let path = dir.join(format!("svc{svc}.yaml"));
        let tmp = dir.join(format!(".svc{svc}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        let saved = Instant::now();
        std::fs::rename(&tmp, &path).expect("rename");
        version += 1;
        let Some(times) = wait_version(&board, version, Duration::from_secs(30)) else {
            eprintln!("change {c}: not every proxy got version {version} within 30 s");
            continue;
        };
        let mut lat: Vec<f64> = times
            .iter()
            .map(|t| t.duration_since(saved).as_secs_f64() * 1000.0)
            .collect();
        lat.sort_by(f64::total_cmp);
        to_all.push(*lat.last().unwrap_or(&0.0));
        per_proxy.extend(lat);
        std::thread::sleep(Duration::from_millis(300));
    }
    per_proxy.sort_by(f64::total_cmp);
    to_all.sort_by(f64::total_cmp);
    let rss_after = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");
    let metrics = std::process::Command::new("curl")
        .args(["-s", &format!("http://{monitoring}/metrics")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let pushes: HashMap<&str, &str> = metrics
        .lines()
        .filter(|l| l.starts_with("pilot_xds_pushes_total{"))
        .filter_map(|l| l.split_once(' '))
        .collect();

    let mib = |k: u64| k as f64 / 1024.0;
    println!("\n## Control plane at scale\n");
    println!(
        "{services} services, {} endpoints, {proxies} simulated proxies (every proxy sees every service), {changes} endpoint changes\n",
        services * endpoints
    );
    println!("| measure | value |\n|---|---:|");
    println!(
        "| control plane start (compile {} resources, bind) | {:.0} ms |",
        NAMESPACES + services * 4,
        startup.as_secs_f64() * 1000.0
    );
    println!(
        "| full push to {proxies} proxies ({resources} resources) | {:.0} ms |",
        full.as_secs_f64() * 1000.0
    );
    println!(
        "| endpoint change → a proxy, p50 / p99 | {:.0} / {:.0} ms |",
        percentile(&per_proxy, 0.5),
        percentile(&per_proxy, 0.99)
    );
    println!(
        "| endpoint change → every proxy, p50 / p99 / max | {:.0} / {:.0} / {:.0} ms |",
        percentile(&to_all, 0.5),
        percentile(&to_all, 0.99),
        to_all.last().copied().unwrap_or(0.0)
    );
    println!(
        "| control plane RSS: started / {proxies} connected / after changes / peak | {:.0} / {:.0} / {:.0} / {:.0} MiB |",
        mib(rss_idle),
        mib(rss_connected),
        mib(rss_after),
        mib(hwm)
    );
    println!("\npushes by type: {pushes:?}");
    println!(
        "\nTargets: endpoint change to every proxy <= 1 s at p99: {}; RSS <= 300 MB: {}",
        if percentile(&to_all, 0.99) <= 1000.0 {
            "met"
        } else {
            "NOT met"
        },
        if mib(hwm) <= 286.0 { "met" } else { "NOT met" }
    );
    drop(cp);
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
}
