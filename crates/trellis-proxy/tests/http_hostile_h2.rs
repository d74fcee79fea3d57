//! Hostile HTTP/2 clients against the outbound listener: too many concurrent streams,
//! oversized header lists, and a quiet but legitimate pre-connected client.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Backend, LIMIT, runtime, service_entry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use trellis_proxy::http::{ServeOptions, serve};

const HOST: &str = "orders.shop.svc.cluster.local";

/// A proxy with `opts` in front of one backend; `yaml_extra` is appended to the config.
async fn proxy_with(backend: &Backend, opts: ServeOptions, yaml_extra: &str) -> SocketAddr {
    let yaml = service_entry("orders", "HTTP", &[(backend.port(), "v1")]) + yaml_extra;
    // The receiver keeps the last runtime after the sender is gone.
    let (_, rx) = watch::channel(Arc::new(runtime(&yaml, |_| {})));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(serve(listener, rx, opts));
    addr
}

/// A backend that counts how many requests it holds at once (each for 200 ms).
async fn concurrency_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let peak = Arc::clone(&max);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (now, max) = (Arc::clone(&now), Arc::clone(&max));
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let (now, max) = (Arc::clone(&now), Arc::clone(&max));
                    async move {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(n, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"ok")),
                        ))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, peak)
}

#[tokio::test]
async fn http2_streams_and_header_lists_are_limited() {
    tokio::time::timeout(LIMIT, async {
        let (addr, peak) = concurrency_backend().await;
        let yaml = service_entry("orders", "HTTP", &[(addr.port(), "v1")]);
        let (_, rx) = watch::channel(Arc::new(runtime(&yaml, |_| {})));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = listener.local_addr().expect("addr");
        let opts = ServeOptions {
            max_concurrent_streams: 4,
            max_request_header_bytes: 16 * 1024,
            ..ServeOptions::default()
        };
        tokio::spawn(serve(listener, rx, opts));
        let stream = TcpStream::connect(proxy).await.expect("connect");
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        // Before the client has seen the proxy's SETTINGS it may open more streams than
        // allowed: the extra ones are refused (REFUSED_STREAM), never forwarded.
        let burst = |send: &hyper::client::conn::http2::SendRequest<Empty<Bytes>>| {
            (0..16)
                .map(|_| {
                    let mut send = send.clone();
                    tokio::spawn(async move {
                        let req = Request::get(format!("http://{HOST}/"))
                            .body(Empty::<Bytes>::new())
                            .expect("request");
                        send.send_request(req).await.map(|r| r.status())
                    })
                })
                .collect::<Vec<_>>()
        };
        for call in burst(&send) {
            match call.await.expect("join") {
                Ok(status) => assert_eq!(status, StatusCode::OK),
                Err(e) => assert!(format!("{e:?}").contains("REFUSED_STREAM"), "{e:?}"),
            }
        }
        // Once it knows the limit, the client queues: all answered, at most 4 at once.
        for call in burst(&send) {
            assert_eq!(call.await.expect("join").expect("answered"), StatusCode::OK);
        }
        assert!(
            peak.load(Ordering::SeqCst) <= 4,
            "at most 4 streams at once"
        );

        let mut send = send.clone();
        let req = Request::get(format!("http://{HOST}/"))
            .header("x-big", "a".repeat(20 * 1024))
            .body(Empty::<Bytes>::new())
            .expect("request");
        match send.send_request(req).await {
            Ok(resp) => assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            Err(e) => assert!(
                !e.is_closed(),
                "refused as a stream, not the connection: {e}"
            ),
        }
    })
    .await
    .expect("test timed out");
}

/// An HTTP/2 client that connected (preface and SETTINGS sent) but waits before its
/// first request, as a pre-connected gRPC channel does, is not cut by the head timeout.
#[tokio::test]
async fn quiet_http2_connection_survives_the_head_timeout() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let opts = ServeOptions {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(10),
            ..ServeOptions::default()
        };
        let proxy = proxy_with(&backend, opts, "").await;
        let stream = TcpStream::connect(proxy).await.expect("connect");
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        tokio::time::sleep(Duration::from_millis(900)).await;
        let req = Request::get(format!("http://{HOST}/"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = send.send_request(req).await.expect("still connected");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(backend.count(), 1);
    })
    .await
    .expect("test timed out");
}
