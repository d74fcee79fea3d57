//! Fuzz the request path: arbitrary bytes arrive as one downstream connection on the
//! outbound listener (`HttpProxy::serve_connection` over an in-memory duplex), routed to
//! a real HTTP/1.1 + h2c backend started once per process, so responses, bodies and
//! trailers flow back through the proxy too. The property: nothing panics, and every
//! connection ends. Run: `cargo +nightly fuzz run http_request`. The corpus in
//! `fuzz/corpus/http_request` also runs as an ordinary test
//! (`crates/trellis-proxy/tests/http_fuzz_corpus.rs`, which has its own copy of this
//! harness).
#![no_main]

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trellis_proxy::http::{HttpProxy, ServeOptions};
use trellis_proxy::runtime::{Runtime, RuntimeOptions};

/// No output for this long: the proxy has answered what it will.
const QUIET: Duration = Duration::from_millis(3);

struct Harness {
    rt: tokio::runtime::Runtime,
    proxy: Arc<HttpProxy>,
    /// libFuzzer's `main` leaves SIGPIPE fatal (Rust's own `main` ignores it): a write
    /// to a socket the peer closed would kill the run. A registered handler stops that.
    _sigpipe: tokio::signal::unix::Signal,
}

/// The backend echoes the request body; port 8080 of `orders` speaks HTTP/1.1 to it,
/// port 8080 of `grpc` speaks HTTP/2.
fn mesh_yaml(port: u16) -> String {
    let entry = |name: &str, protocol: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  hosts: [{name}.shop.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: 8080, name: http, protocol: {protocol}}}\n  endpoints:\n  - address: 127.0.0.1\n    ports: {{http: {port}}}\n---\n"
        )
    };
    entry("orders", "HTTP") + &entry("grpc", "GRPC")
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        rt.spawn(async move {
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
        let dir = std::env::temp_dir().join(format!("trellis-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("mesh.yaml"), mesh_yaml(port)).expect("write config");
        let snap = trellis_config::snapshot::snapshot(&[dir.clone()], &Default::default())
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
        let (proxy, sigpipe) = rt.block_on(async {
            let pipe = tokio::signal::unix::SignalKind::pipe();
            let sigpipe = tokio::signal::unix::signal(pipe).expect("sigpipe handler");
            (HttpProxy::new(rx, &serve), sigpipe)
        });
        Harness {
            rt,
            proxy,
            _sigpipe: sigpipe,
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let h = harness();
    let proxy = Arc::clone(&h.proxy);
    h.rt.block_on(async move {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer = "127.0.0.1:40000".parse().expect("peer");
        let conn = tokio::spawn(proxy.serve_connection(server, peer));
        // Write while reading the answers; close the write side once the proxy has gone
        // quiet (closing at once would cancel the last request), then read to the end.
        let (mut rd, mut wr) = tokio::io::split(client);
        let seen = AtomicUsize::new(0);
        let done = AtomicBool::new(false);
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
                seen.fetch_add(n, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
        };
        // The proxy's own timeouts end any connection well within this.
        let talk = async { tokio::join!(writer, reader) };
        if tokio::time::timeout(Duration::from_secs(5), talk)
            .await
            .is_err()
        {
            panic!("connection did not end");
        }
        if let Err(e) = conn.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    });
});
