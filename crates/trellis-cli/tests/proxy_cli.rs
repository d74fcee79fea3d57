//! `trellis proxy` as a process: it serves a configuration directory, answers its admin
//! endpoint, exits 0 after a SIGTERM drain, and refuses a broken startup configuration
//! with the analyzer's diagnostics and exit status 1.

mod up_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn trellis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "trellis-proxy-cli-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the child if the test fails half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A backend answering `503 failed` to `GET /fail` and `200 hello` to everything else
/// (HTTP/1.1, one request per connection).
fn backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let answer: &[u8] = if buf[..n].starts_with(b"GET /fail ") {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 6\r\nconnection: close\r\n\r\nfailed"
            } else {
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
            };
            let _ = s.write_all(answer);
        }
    });
    addr
}

fn config(backend: SocketAddr) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: hello, namespace: demo}}\nspec:\n  hosts: [hello.demo.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 8080, name: http, protocol: HTTP}}]\n  endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]\n",
        backend.port()
    )
}

/// One HTTP/1.1 request with `Connection: close`; returns the whole response text.
fn request(addr: SocketAddr, method: &str, host: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The `outbound A admin B` line the proxy prints once it listens.
fn addresses(child: &mut Child) -> (SocketAddr, SocketAddr) {
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        if let Some(rest) = line.strip_prefix("trellis proxy: outbound ") {
            let mut parts = rest.split(" admin ");
            let out = parts.next().and_then(|p| p.parse().ok()).expect("outbound");
            let admin = parts.next().and_then(|p| p.parse().ok()).expect("admin");
            // Keep draining stderr so the proxy never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (out, admin);
        }
    }
    panic!("the proxy exited before listening");
}

/// `trellis proxy` on `dir` with ephemeral ports and `extra` flags, `env` added to its
/// environment; returns it with its outbound and admin addresses.
fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Guard, SocketAddr, SocketAddr) {
    let child = trellis()
        .args(["proxy", "--config"])
        .arg(dir)
        .args([
            "--outbound-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--health-addr",
            "off",
            "--namespace",
            "demo",
            "--concurrency",
            "1",
            "--log-level",
            "info",
        ])
        .args(extra)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut guard = Guard(child);
    let (outbound, admin) = addresses(&mut guard.0);
    (guard, outbound, admin)
}

#[test]
fn serves_answers_admin_and_drains_on_sigterm() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("mesh.yaml"), config(backend())).expect("write");
    let (mut guard, outbound, admin) = start(&dir.0, &[], &[]);
    // The access log: JSON lines on standard output.
    let stdout = guard.0.stdout.take().expect("stdout");
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });

    let answer = request(outbound, "GET", "hello", "/");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello"), "{answer}");
    let unknown = request(outbound, "GET", "nobody", "/");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.contains("x-trellis-flags: NR"), "{unknown}");
    let first: serde_json::Value = log_rx
        .recv_timeout(Duration::from_secs(10))
        .map(|l| serde_json::from_str(&l).expect("a JSON access-log line"))
        .expect("an access-log line");
    assert_eq!(first["response_code"], 200, "{first}");
    assert_eq!(first["authority"], "hello", "{first}");
    let second: serde_json::Value = log_rx
        .recv_timeout(Duration::from_secs(10))
        .map(|l| serde_json::from_str(&l).expect("a JSON access-log line"))
        .expect("an access-log line");
    assert_eq!(second["response_flags"], "NR", "{second}");
    let ready = request(admin, "GET", "admin", "/ready");
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.ends_with("LIVE\n"),
        "{ready}"
    );

    let status = up_support::sigterm_and_wait(&mut guard.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn refuses_a_broken_startup_config_with_diagnostics() {
    let dir = TempDir::new();
    let text = config(backend()).replace("protocol: HTTP", "protocol: HTTP, bogus: 1");
    std::fs::write(dir.0.join("mesh.yaml"), text).expect("write");
    let out = trellis()
        .args(["proxy", "--config"])
        .arg(&dir.0)
        .args([
            "--outbound-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(["--health-addr", "off"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configuration refused"), "{stderr}");
    assert!(
        stderr.contains("mesh.yaml:8:"),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("bogus"), "names the field: {stderr}");
}

/// Sum of the samples of `metric` in a scrape whose labels contain every one of `needles`.
fn sum(scrape: &str, metric: &str, needles: &[&str]) -> u64 {
    let (labelled, bare) = (format!("{metric}{{"), format!("{metric} "));
    scrape
        .lines()
        .filter(|l| l.starts_with(&labelled) || l.starts_with(&bare))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Scrapes `/stats/prometheus` until `metric` sums to `want` (responses are recorded as
/// their last byte leaves, a moment before or after the client sees it).
fn scrape_until(admin: SocketAddr, metric: &str, want: u64) -> String {
    for _ in 0..200 {
        let text = request(admin, "GET", "admin", "/stats/prometheus");
        if sum(&text, metric, &[]) == want {
            return text;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{metric} never reached {want}");
}

#[test]
fn linkerd_metric_names_by_setting() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("mesh.yaml"), config(backend())).expect("write");
    // Linkerd's names only, chosen through the environment.
    let (mut guard, outbound, admin) = start(&dir.0, &[], &[("TRELLIS_METRICS_NAMES", "linkerd")]);
    for path in ["/", "/", "/fail", "/", "/fail", "/", "/", "/fail", "/", "/"] {
        let answer = request(outbound, "GET", "hello", path);
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    }
    let text = scrape_until(admin, "request_total", 10);
    let peer = [
        "direction=\"outbound\"",
        "authority=\"hello.demo.svc.cluster.local\"",
        "dst_namespace=\"demo\"",
        "dst_service=\"hello\"",
    ];
    assert_eq!(sum(&text, "request_total", &peer), 10, "{text}");
    let failed = [
        &peer[..],
        &["classification=\"failure\"", "status_code=\"503\""],
    ]
    .concat();
    assert_eq!(sum(&text, "response_total", &failed), 3, "{text}");
    let ok = [
        &peer[..],
        &["classification=\"success\"", "status_code=\"200\""],
    ]
    .concat();
    assert_eq!(sum(&text, "response_total", &ok), 7, "{text}");
    assert_eq!(sum(&text, "response_latency_ms_count", &peer), 10, "{text}");
    // Linkerd's buckets: 1 ms, 2 ms, ... (Istio's start at 0.5 ms).
    assert!(
        text.contains("response_latency_ms_bucket{") && text.contains("le=\"2.0\""),
        "{text}"
    );
    assert!(!text.contains("istio_requests_total"), "{text}");
    let status = up_support::sigterm_and_wait(&mut guard.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");

    // Both, by flag: the same requests under both names.
    let (_guard, outbound, admin) = start(&dir.0, &["--metrics-names", "both"], &[]);
    for path in ["/", "/fail"] {
        request(outbound, "GET", "hello", path);
    }
    let text = scrape_until(admin, "request_total", 2);
    assert_eq!(sum(&text, "istio_requests_total", &[]), 2, "{text}");
    let failed = ["classification=\"failure\""];
    assert_eq!(sum(&text, "response_total", &failed), 1, "{text}");
    let istio_failed = ["response_code=\"503\""];
    assert_eq!(
        sum(&text, "istio_requests_total", &istio_failed),
        1,
        "{text}"
    );
}

#[test]
fn a_bad_metrics_names_value_is_refused_naming_the_flag() {
    let out = trellis()
        .args([
            "proxy",
            "--config",
            "/nonexistent",
            "--metrics-names",
            "envoy",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-names"), "{stderr}");
    assert!(
        stderr.contains("istio") && stderr.contains("linkerd"),
        "{stderr}"
    );
}
