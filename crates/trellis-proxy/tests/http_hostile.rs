//! Hostile and broken clients against the outbound HTTP listener, written as raw bytes on
//! TCP: oversized heads, ambiguous framing, request smuggling attempts, slow clients,
//! idle connections (HTTP/2 limits: `http_hostile_h2.rs`). Every refusal must leave the
//! backend untouched.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Backend, LIMIT, runtime, service_entry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// Short timeouts so slow-client tests finish quickly.
fn fast_opts() -> ServeOptions {
    ServeOptions {
        header_read_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_millis(800),
        ..ServeOptions::default()
    }
}

/// Writes `bytes` on a new connection and reads until the proxy closes it (or 5 s pass,
/// which counts as "still open"). Returns what came back and whether it was closed.
async fn exchange(proxy: SocketAddr, bytes: &[u8]) -> (String, bool) {
    let mut conn = TcpStream::connect(proxy).await.expect("connect");
    // A refused request may close the connection before all of it is written.
    let _ = conn.write_all(bytes).await;
    read_to_close(&mut conn, Duration::from_secs(5)).await
}

/// Reads until EOF or `wait` passes; returns the text and whether EOF (or reset) came.
async fn read_to_close(conn: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    let closed = loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// The status code of the first response in `text`.
fn status(text: &str) -> u16 {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn oversized_heads_get_431_and_close() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_with(&backend, ServeOptions::default(), "").await;
        let big = "a".repeat(70 * 1024);
        let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nx-big: {big}\r\n\r\n");
        let (text, closed) = exchange(proxy, req.as_bytes()).await;
        assert_eq!(status(&text), 431, "{text}");
        assert!(closed, "connection closed after 431");

        let many: String = (0..101).map(|i| format!("x-h{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n{many}\r\n");
        let (text, closed) = exchange(proxy, req.as_bytes()).await;
        assert_eq!(status(&text), 431, "{text}");
        assert!(closed);
        assert_eq!(backend.count(), 0, "refused heads never reach the backend");

        // Just under both limits passes: 60 KiB in one header, 99 headers in all.
        let big = "a".repeat(60 * 1024);
        let many: String = (0..97).map(|i| format!("x-h{i}: v\r\n")).collect();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {HOST}\r\nx-big: {big}\r\n{many}connection: close\r\n\r\n"
        );
        let (text, _) = exchange(proxy, req.as_bytes()).await;
        assert_eq!(status(&text), 200, "{text}");
        assert_eq!(backend.count(), 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn header_limits_are_configurable() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let opts = ServeOptions {
            max_request_header_bytes: 16 * 1024,
            max_request_headers: 10,
            ..ServeOptions::default()
        };
        let proxy = proxy_with(&backend, opts, "").await;
        let big = "a".repeat(20 * 1024);
        let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nx-big: {big}\r\n\r\n");
        assert_eq!(status(&exchange(proxy, req.as_bytes()).await.0), 431);
        let many: String = (0..10).map(|i| format!("x-h{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n{many}\r\n");
        assert_eq!(status(&exchange(proxy, req.as_bytes()).await.0), 431);
        assert_eq!(backend.count(), 0);
    })
    .await
    .expect("test timed out");
}

/// Requests hyper or the guard must refuse: (what, bytes after the Host line, status).
const REFUSED: &[(&str, &str, u16)] = &[
    (
        "differing content-lengths",
        "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    ),
    (
        "invalid content-length",
        "Content-Length: 3x\r\n\r\nabc",
        400,
    ),
    ("negative content-length", "Content-Length: -1\r\n\r\n", 400),
    (
        "non-chunked final coding",
        "Transfer-Encoding: gzip\r\n\r\nabc",
        400,
    ),
    (
        "chunked then another coding",
        "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "coding before chunked",
        "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    (
        "chunked twice",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("obs-fold", "X-A: one\r\n two\r\n\r\n", 400),
    ("NUL in a value", "X-A: a\0b\r\n\r\n", 400),
    ("bare CR in a value", "X-A: a\rb\r\n\r\n", 400),
    ("space in a name", "X A: b\r\n\r\n", 400),
    ("space before the colon", "X-A : b\r\n\r\n", 400),
    ("control byte in a name", "X\x01A: b\r\n\r\n", 400),
    ("empty name", ": b\r\n\r\n", 400),
    ("second host", "Host: evil.example\r\n\r\n", 400),
];

#[tokio::test]
async fn ambiguous_framing_is_refused_before_the_backend() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_with(&backend, ServeOptions::default(), "").await;
        for (what, rest, want) in REFUSED {
            let req = format!("POST / HTTP/1.1\r\nHost: {HOST}\r\n{rest}");
            let (text, closed) = exchange(proxy, req.as_bytes()).await;
            assert_eq!(status(&text), *want, "{what}: {text}");
            assert!(closed, "{what}: connection closed after the refusal");
        }
        // HTTP/1.0 has no chunked coding.
        let req = format!(
            "POST / HTTP/1.0\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        );
        assert_eq!(status(&exchange(proxy, req.as_bytes()).await.0), 400);
        assert_eq!(backend.count(), 0, "no refused request reached the backend");
    })
    .await
    .expect("test timed out");
}

/// hyper resolves `Content-Length` + `Transfer-Encoding` as RFC 9112 §6.3 says: the
/// chunked coding wins, `Content-Length` is dropped, and the connection closes after
/// the response, so bytes smuggled behind the body are never read as a request.
#[tokio::test]
async fn content_length_with_chunked_cannot_smuggle() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_with(&backend, ServeOptions::default(), "").await;
        for order in [
            "Content-Length: 40\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked\r\nContent-Length: 40",
        ] {
            let req = format!(
                "POST /first HTTP/1.1\r\nHost: {HOST}\r\n{order}\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
            );
            let (text, closed) = exchange(proxy, req.as_bytes()).await;
            assert_eq!(status(&text), 200, "{text}");
            assert_eq!(text.matches("HTTP/1.1").count(), 1, "one response: {text}");
            assert!(closed, "connection closed after an ambiguous request");
        }
        let seen = backend.seen();
        assert_eq!(seen.len(), 2, "only the two first requests arrived");
        for s in seen {
            assert_eq!(s.uri, "/first");
            assert_eq!(&s.body[..], b"abc");
            assert!(s.headers.get("content-length").is_none_or(|v| v == "3"));
        }
    })
    .await
    .expect("test timed out");
}

/// Bad chunking is found only while the body streams: the request head may already be
/// upstream, but the client never gets a success and the connection is closed.
#[tokio::test]
async fn invalid_chunk_size_fails_the_request_and_closes() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_with(&backend, ServeOptions::default(), "").await;
        for body in [
            "zz\r\nabc\r\n0\r\n\r\n",
            "3\r\nabcdef\r\n0\r\n\r\n",
            "ffffffffffffffffff\r\n",
        ] {
            let req = format!(
                "POST / HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
            );
            let (text, closed) = exchange(proxy, req.as_bytes()).await;
            assert_ne!(status(&text), 200, "{body:?}: {text}");
            assert!(closed, "{body:?}: connection closed");
        }
        for s in backend.seen() {
            assert!(
                s.body.len() <= 3,
                "no garbage forwarded as body: {:?}",
                s.body
            );
        }
    })
    .await
    .expect("test timed out");
}

/// Bare LF line endings are allowed by RFC 9112 §2.2; the upstream gets clean CRLF.
#[tokio::test]
async fn bare_lf_heads_are_normalised() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_with(&backend, ServeOptions::default(), "").await;
        let req = format!("GET /lf HTTP/1.1\nHost: {HOST}\nx-a: b\nconnection: close\n\n");
        let (text, _) = exchange(proxy, req.as_bytes()).await;
        assert_eq!(status(&text), 200, "{text}");
        let seen = backend.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].headers.get("x-a").map(|v| v.as_bytes()),
            Some(&b"b"[..])
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn slow_heads_and_silent_clients_are_disconnected() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_with(&backend, fast_opts(), "").await;
        // Byte by byte, 100 ms apart: the 600 ms header timeout cuts it off.
        let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        let mut conn = TcpStream::connect(proxy).await.expect("connect");
        let start = Instant::now();
        let mut cut = false;
        for b in req.as_bytes() {
            if conn.write_all(&[*b]).await.is_err() {
                cut = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut probe = [0u8; 64];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), conn.read(&mut probe)).await
            {
                cut = true;
                break;
            }
        }
        assert!(cut, "slow client was disconnected");
        assert!(start.elapsed() < Duration::from_secs(3));

        // Silent, and stalled inside the HTTP/2 preface: both closed after the timeout.
        for bytes in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
            let mut conn = TcpStream::connect(proxy).await.expect("connect");
            conn.write_all(bytes).await.expect("write");
            let (_, closed) = read_to_close(&mut conn, Duration::from_secs(4)).await;
            assert!(closed, "stalled client {bytes:?} was disconnected");
        }
        assert_eq!(backend.count(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_with(&backend, fast_opts(), "").await;
        // HTTP/1.1 keep-alive: answered, then closed while idle.
        let mut conn = TcpStream::connect(proxy).await.expect("connect");
        let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        conn.write_all(req.as_bytes()).await.expect("write");
        let (text, closed) = read_to_close(&mut conn, Duration::from_secs(4)).await;
        assert_eq!(status(&text), 200, "{text}");
        assert!(closed, "idle HTTP/1.1 connection closed");

        // HTTP/2: a request, then nothing: the proxy ends the connection.
        let stream = TcpStream::connect(proxy).await.expect("connect");
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        let driver = tokio::spawn(conn);
        let req = Request::get(format!("http://{HOST}/"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = send.send_request(req).await.expect("h2 response");
        assert_eq!(resp.status(), StatusCode::OK);
        let _ = resp.into_body().collect().await;
        let ended = tokio::time::timeout(Duration::from_secs(4), driver).await;
        assert!(ended.is_ok(), "idle HTTP/2 connection closed by the proxy");
    })
    .await
    .expect("test timed out");
}

/// A body that stalls is bounded by the route timeout: 504 `UT`.
#[tokio::test]
async fn stalled_request_body_hits_the_route_timeout() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let vs = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: orders, namespace: shop}}\nspec:\n  hosts: [{HOST}]\n  http:\n  - timeout: 500ms\n    route:\n    - destination: {{host: {HOST}}}\n---\n"
        );
        let opts = ServeOptions {
            idle_timeout: Duration::from_secs(30),
            ..ServeOptions::default()
        };
        let proxy = proxy_with(&backend, opts, &vs).await;
        let mut conn = TcpStream::connect(proxy).await.expect("connect");
        let req = format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n0123456789");
        conn.write_all(req.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("answered before the client gave up")
            .expect("read");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert_eq!(status(&text), 504, "{text}");
        assert!(text.to_ascii_lowercase().contains("x-trellis-flags: ut"), "{text}");
    })
    .await
    .expect("test timed out");
}
