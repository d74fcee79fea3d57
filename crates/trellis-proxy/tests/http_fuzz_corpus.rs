//! Replays every input of the `http_request` fuzz target's corpus
//! (`fuzz/corpus/http_request`) as a downstream connection, with the same harness as
//! `fuzz/fuzz_targets/http_request.rs` (kept as a copy there, so the library exports no
//! test-only module): a real HTTP/1.1 + h2c backend, bytes written over an in-memory
//! duplex into `HttpProxy::serve_connection`. Every connection must end without a panic.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trellis_proxy::http::{HttpProxy, ServeOptions};
use trellis_proxy::runtime::{Runtime, RuntimeOptions};

/// The whole replay finishes well within this.
const LIMIT: Duration = Duration::from_secs(60);
/// No output for this long means the proxy answered all it will (the fuzz target uses
/// a shorter pause, trading a few lost last responses for speed).
const QUIET: Duration = Duration::from_millis(100);

/// `orders` speaks HTTP/1.1 to the backend, `grpc` HTTP/2 (same as the fuzz target).
fn mesh_yaml(port: u16) -> String {
    let entry = |name: &str, protocol: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  hosts: [{name}.shop.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: 8080, name: http, protocol: {protocol}}}\n  endpoints:\n  - address: 127.0.0.1\n    ports: {{http: {port}}}\n---\n"
        )
    };
    entry("orders", "HTTP") + &entry("grpc", "GRPC")
}

/// An echo backend (HTTP/1.1 and h2c) and a proxy routing to it.
async fn harness() -> Arc<HttpProxy> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(http::Response::new(Full::new(body)))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let dir = std::env::temp_dir().join(format!("trellis-corpus-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("mesh.yaml"), mesh_yaml(port)).expect("write config");
    let snap = trellis_config::snapshot::snapshot(std::slice::from_ref(&dir), &Default::default())
        .expect("config loads");
    let _ = std::fs::remove_dir_all(&dir);
    let opts = RuntimeOptions {
        client_namespace: "shop".into(),
        ..RuntimeOptions::default()
    };
    let runtime = Runtime::build(&snap.mesh, &opts).expect("runtime builds");
    let (_, rx) = tokio::sync::watch::channel(Arc::new(runtime));
    let serve = ServeOptions {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        ..ServeOptions::default()
    };
    HttpProxy::new(rx, &serve)
}

/// One input as one connection: write it while reading the answers, close the write
/// side once the proxy has gone quiet (closing at once would cancel the last request:
/// hyper drops a request whose client hung up), then read until the proxy closes.
/// Returns what the proxy answered.
async fn run_one(proxy: &Arc<HttpProxy>, data: &[u8]) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let peer = "127.0.0.1:40000".parse().expect("peer");
    let conn = tokio::spawn(Arc::clone(proxy).serve_connection(server, peer));
    let (mut rd, mut wr) = tokio::io::split(client);
    let seen = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let mut out = Vec::new();
    let writer = async {
        let _ = wr.write_all(data).await;
        while !done.load(Ordering::Relaxed) {
            let before = seen.load(Ordering::Relaxed);
            tokio::time::sleep(QUIET).await;
            if seen.load(Ordering::Relaxed) == before {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let reader = async {
        let mut buf = [0u8; 8192];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            seen.fetch_add(n, Ordering::Relaxed);
        }
        done.store(true, Ordering::Relaxed);
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(writer, reader)
    })
    .await
    .expect("the connection ends");
    conn.await.expect("the connection task does not panic");
    out
}

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_request");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_replays_without_panics() {
    tokio::time::timeout(LIMIT, async {
        let proxy = harness().await;
        let files = corpus();
        assert!(files.len() >= 40, "corpus present ({} files)", files.len());
        for chunk in files.chunks(16) {
            let mut runs = Vec::new();
            for path in chunk {
                let data = std::fs::read(path).expect("read corpus file");
                let proxy = Arc::clone(&proxy);
                let name = path.display().to_string();
                runs.push(tokio::spawn(async move {
                    let out = run_one(&proxy, &data).await;
                    (name, out.len())
                }));
            }
            for run in runs {
                if let Err(e) = run.await {
                    panic!("an input failed: {e}");
                }
            }
        }
    })
    .await
    .expect("test timed out");
}

/// The seeds that must be answered (not just survived) check that the harness really
/// reaches the backend, so the fuzzer explores the forwarding path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_reach_the_backend() {
    tokio::time::timeout(LIMIT, async {
        let proxy = harness().await;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_request");
        let read = |name: &str| std::fs::read(dir.join(name)).expect("seed");
        let out = String::from_utf8_lossy(&run_one(&proxy, &read("pipelined")).await).into_owned();
        assert_eq!(out.matches("HTTP/1.1 200").count(), 3, "{out}");
        assert!(out.contains("abc"), "the POST body was echoed: {out}");
        let out = String::from_utf8_lossy(&run_one(&proxy, &read("two-hosts")).await).into_owned();
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        // An h2c request is answered with a HEADERS frame (type 1) on stream 1.
        let out = run_one(&proxy, &read("h2-get")).await;
        let has_headers = out.windows(9).any(|f| f[3] == 1 && f[5..9] == [0, 0, 0, 1]);
        assert!(has_headers, "h2 response headers on stream 1");
    })
    .await
    .expect("test timed out");
}
