//! The HTTP/1.1 client against scripted servers on loopback, which send exactly the
//! bytes a test names: framing, reuse, retries of requests the server closed under,
//! early answers, broken responses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::http::{Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trellis_model::ConnectionPool;

use crate::http::RequestBody;
use crate::upstream::tests::{defaults, get, pool_for};
use crate::upstream::{UpstreamBody, UpstreamError, UpstreamPool};

const LIMIT: Duration = Duration::from_secs(20);

/// A server running `script(n, stream)` on its n-th accepted connection; counts accepts.
async fn scripted<F, Fut>(script: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepts);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(script(n, stream));
        }
    });
    (addr, accepts)
}

/// Reads from `s` into `buf` until `buf` holds `needle`; returns what came before and
/// including it (removed from `buf`), `None` at the end of the stream.
async fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, needle: &[u8]) -> Option<String> {
    loop {
        if let Some(at) = buf.windows(needle.len()).position(|w| w == needle) {
            let got: Vec<u8> = buf.drain(..at + needle.len()).collect();
            return Some(String::from_utf8_lossy(&got).into_owned());
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// `200 OK` with a two-byte body.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Reads one request head from `s`; `None` when the client closed.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    read_until(s, buf, b"\r\n\r\n").await
}

/// Reads one request head from `s` and writes `bytes`; `false` when the client closed.
async fn answer(s: &mut TcpStream, buf: &mut Vec<u8>, bytes: &[u8]) -> bool {
    read_head(s, buf).await.is_some() && s.write_all(bytes).await.is_ok()
}

async fn send(
    pool: &UpstreamPool,
    req: Request<RequestBody>,
) -> Result<(StatusCode, Bytes, Option<::http::HeaderMap>), UpstreamError> {
    let resp = pool.send(Some(0), req, &defaults()).await?;
    let status = resp.status();
    let collected = resp.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned();
    Ok((status, collected.to_bytes(), trailers))
}

fn post(body: impl Into<Bytes>) -> Request<RequestBody> {
    let mut req = get("/upload");
    *req.method_mut() = Method::POST;
    *req.body_mut() = Either::Right(Full::new(body.into()));
    req
}

#[tokio::test]
async fn every_response_framing_is_read_and_the_connection_kept() {
    tokio::time::timeout(LIMIT, async {
        let (addr, accepts) = scripted(|_, mut s| async move {
            let mut buf = Vec::new();
            let answers: [&[&[u8]]; 4] = [
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", b"lo"],
                &[
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                    b"2;ext=1\r\nde\r",
                    b"\n0\r\ngrpc-status: 0\r\n\r\n",
                ],
                &[b"HTTP/1.1 204 No Content\r\n\r\n"],
                // HEAD: the length describes a body that is not sent.
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"],
            ];
            for parts in answers {
                if read_head(&mut s, &mut buf).await.is_none() {
                    return;
                }
                for part in parts {
                    s.write_all(part).await.expect("write");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        let (status, body, _) = send(&pool, get("/length")).await.expect("length");
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello"[..]));
        let (_, body, trailers) = send(&pool, get("/chunked")).await.expect("chunked");
        assert_eq!(&body[..], b"abcde");
        assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
        let (status, body, _) = send(&pool, get("/empty")).await.expect("204");
        assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));
        let mut head = get("/head");
        *head.method_mut() = Method::HEAD;
        let mut resp = pool.send(Some(0), head, &defaults()).await.expect("head");
        assert!(
            resp.headers().is_empty(),
            "fields stay bytes until asked for"
        );
        crate::upstream::full_headers(&mut resp);
        assert_eq!(resp.headers()["content-length"], "7");
        assert!(resp.body().is_end_stream_now());
        assert_eq!(
            pool.idle_connections(0),
            1,
            "back in the pool before the body is read"
        );
        assert_eq!(accepts.load(Ordering::SeqCst), 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn responses_until_close_and_http_1_0_are_not_kept() {
    tokio::time::timeout(LIMIT, async {
        let (addr, accepts) = scripted(|n, mut s| async move {
            let mut buf = Vec::new();
            let bytes: &[u8] = if n == 0 {
                b"HTTP/1.1 200 OK\r\n\r\nuntil the end"
            } else {
                b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
            };
            if answer(&mut s, &mut buf, bytes).await {
                if n == 0 {
                    return; // closes
                }
                // An HTTP/1.0 server without keep-alive may hold the connection open.
                let _ = read_head(&mut s, &mut buf).await;
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        let (_, body, _) = send(&pool, get("/")).await.expect("until close");
        assert_eq!(&body[..], b"until the end");
        let (_, body, _) = send(&pool, get("/")).await.expect("1.0");
        assert_eq!(&body[..], b"ok");
        assert_eq!(pool.idle_connections(0), 0);
        send(&pool, get("/")).await.expect("third");
        assert_eq!(accepts.load(Ordering::SeqCst), 3);
    })
    .await
    .expect("test timed out");
}

/// Both framings at once (a smuggling attempt or a broken server): the chunked coding
/// frames the body, the length is dropped, and the connection is not used again.
#[tokio::test]
async fn chunked_wins_over_a_length_and_the_connection_is_closed() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = scripted(|_, mut s| async move {
            let mut buf = Vec::new();
            if answer(&mut s, &mut buf, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n").await {
                let _ = read_head(&mut s, &mut buf).await;
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        let mut resp = pool.send(Some(0), get("/"), &defaults()).await.expect("sent");
        crate::upstream::full_headers(&mut resp);
        assert!(resp.headers().contains_key("transfer-encoding"));
        assert!(!resp.headers().contains_key("content-length"));
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"abc");
        assert_eq!(pool.idle_connections(0), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn informational_responses_are_skipped() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = scripted(|_, mut s| async move {
            let mut buf = Vec::new();
            let interim =
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n";
            if answer(&mut s, &mut buf, interim).await {
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(OK).await.expect("write");
                let _ = read_head(&mut s, &mut buf).await;
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        let (status, body, _) = send(&pool, post(&b"x"[..])).await.expect("sent");
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn request_bodies_arrive_with_their_length() {
    tokio::time::timeout(LIMIT, async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (addr, _) = scripted(move |_, mut s| {
            let tx = tx.clone();
            async move {
                let mut buf = Vec::new();
                while let Some(head) = read_head(&mut s, &mut buf).await {
                    let body = if head.contains("content-length: 5") {
                        read_until(&mut s, &mut buf, b"hello")
                            .await
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    let _ = tx.send(format!("{head}{body}"));
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .expect("write");
                }
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        send(&pool, post(&b"hello"[..])).await.expect("post");
        send(&pool, get("/")).await.expect("get");
        send(&pool, post(&b""[..])).await.expect("empty post");
        let seen: Vec<String> = [rx.recv().await, rx.recv().await, rx.recv().await]
            .into_iter()
            .map(|s| s.expect("request"))
            .collect();
        assert_eq!(
            seen[0],
            "POST /upload HTTP/1.1\r\nhost: backend\r\ncontent-length: 5\r\n\r\nhello"
        );
        assert_eq!(seen[1], "GET / HTTP/1.1\r\nhost: backend\r\n\r\n");
        assert!(seen[2].contains("content-length: 0\r\n"), "{}", seen[2]);
    })
    .await
    .expect("test timed out");
}

/// The server takes the second request on the kept-alive connection and closes without
/// answering (an idle timeout racing the request): an idempotent request without a body
/// is sent again on a new connection; a POST is not (it may have been acted on).
#[tokio::test]
async fn only_idempotent_requests_are_resent_after_a_close_under_them() {
    tokio::time::timeout(LIMIT, async {
        let (addr, accepts) = scripted(|n, mut s| async move {
            let mut buf = Vec::new();
            let answers = if n % 2 == 0 { 1 } else { usize::MAX };
            for _ in 0..answers {
                if !answer(&mut s, &mut buf, OK).await {
                    return;
                }
            }
            // Take the next request, then close.
            let _ = read_head(&mut s, &mut buf).await;
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        send(&pool, get("/")).await.expect("first");
        let (status, _, _) = send(&pool, get("/")).await.expect("resent");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(accepts.load(Ordering::SeqCst), 2);

        let (addr, accepts) = scripted(|_, mut s| async move {
            let mut buf = Vec::new();
            if answer(&mut s, &mut buf, OK).await {
                let _ = read_head(&mut s, &mut buf).await;
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        send(&pool, get("/")).await.expect("first");
        let err = send(&pool, post(&b"x"[..])).await.expect_err("not resent");
        assert!(matches!(err, UpstreamError::Http1(_)), "{err:?}");
        assert_eq!(accepts.load(Ordering::SeqCst), 1);
    })
    .await
    .expect("test timed out");
}

/// A connection the server closed while it sat idle is never written to: the next
/// request (a POST, which would not be resent) goes out on a new connection.
#[tokio::test]
async fn idle_connections_closed_by_the_server_are_not_used() {
    tokio::time::timeout(LIMIT, async {
        let (addr, accepts) = scripted(|n, mut s| async move {
            let mut buf = Vec::new();
            if answer(&mut s, &mut buf, OK).await && n > 0 {
                let _ = read_head(&mut s, &mut buf).await;
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        send(&pool, get("/")).await.expect("first");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, _, _) = send(&pool, post(&b"x"[..]))
            .await
            .expect("on a new connection");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(accepts.load(Ordering::SeqCst), 2);
    })
    .await
    .expect("test timed out");
}

/// The sweeper closes idle connections their server closed, well before the idle
/// timeout (60 s here).
#[tokio::test]
async fn the_sweeper_drops_connections_closed_by_their_server() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = scripted(|_, mut s| async move {
            let mut buf = Vec::new();
            if answer(&mut s, &mut buf, OK).await {
                // Closed after the sweeper's first look.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        send(&pool, get("/")).await.expect("first");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(pool.idle_connections(0), 1);
        let started = tokio::time::Instant::now();
        while pool.idle_connections(0) > 0 {
            assert!(started.elapsed() < super::SWEEP_EVERY * 2, "still pooled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("test timed out");
}

/// The server refuses an upload after its head: the answer is returned without waiting
/// for the body to be sent, and the connection is not kept.
#[tokio::test]
async fn an_early_answer_ends_the_upload() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = scripted(|_, mut s| async move {
            let mut buf = Vec::new();
            if answer(
                &mut s,
                &mut buf,
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
            )
            .await
            {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        // Far more than the socket buffers of both sides hold.
        let big = vec![b'x'; 16 << 20];
        let (status, _, _) = send(&pool, post(big)).await.expect("answered");
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(pool.idle_connections(0), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn broken_responses_are_errors() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = scripted(|n, mut s| async move {
            let mut buf = Vec::new();
            let bytes: &[u8] = match n {
                0 => b"HTTP/1.1 abc\r\n\r\n",
                1 => b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                _ => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX",
            };
            answer(&mut s, &mut buf, bytes).await;
        })
        .await;
        let pool = pool_for(addr, &ConnectionPool::default());
        let err = pool
            .send(Some(0), get("/"), &defaults())
            .await
            .expect_err("malformed");
        assert!(err.to_string().contains("malformed"), "{err}");
        for what in ["truncated", "bad chunk end"] {
            let resp = pool.send(Some(0), get("/"), &defaults()).await.expect(what);
            assert_eq!(resp.status(), StatusCode::OK);
            let err = resp.into_body().collect().await.expect_err(what);
            assert!(!err.to_string().is_empty());
        }
        assert_eq!(pool.idle_connections(0), 0);
    })
    .await
    .expect("test timed out");
}

impl UpstreamBody {
    fn is_end_stream_now(&self) -> bool {
        hyper::body::Body::is_end_stream(self)
    }
}
