//! The pool on its own against real loopback servers: protocol upgrades leave the pool,
//! passthrough opens a connection per request, and TCP keepalive reaches the socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::http::{Request, Response, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use trellis_model::{ConnectionPool, TcpKeepalive};

use super::*;

const LIMIT: Duration = Duration::from_secs(20);

pub(super) fn defaults() -> UpstreamDefaults {
    UpstreamDefaults {
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(60),
    }
}

/// An HTTP/1.1 server counting accepts; `GET /upgrade` switches to an echo protocol.
async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepts);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if req.uri().path() == "/upgrade" {
                        let on = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            if let Ok(up) = on.await {
                                let mut io = TokioIo::new(up);
                                let mut buf = [0u8; 4];
                                if io.read_exact(&mut buf).await.is_ok() {
                                    let _ = io.write_all(&buf).await;
                                }
                            }
                        });
                        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                        let h = resp.headers_mut();
                        h.insert(header::CONNECTION, "upgrade".parse().expect("value"));
                        h.insert(header::UPGRADE, "echo".parse().expect("value"));
                    }
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, accepts)
}

pub(super) fn pool_for(addr: SocketAddr, pool: &ConnectionPool) -> UpstreamPool {
    let limits = ConnectionPoolLimits::new(pool);
    UpstreamPool::new(
        pool,
        limits,
        &[EndpointState::new(addr.to_string(), 1)],
        false,
    )
}

pub(super) fn get(path: &str) -> Request<RequestBody> {
    let mut req = Request::new(Either::Right(Full::new(Bytes::new())));
    *req.uri_mut() = path.parse().expect("uri");
    req.headers_mut()
        .insert(header::HOST, "backend".parse().expect("host"));
    req
}

#[tokio::test]
async fn upgraded_connections_leave_the_pool() {
    tokio::time::timeout(LIMIT, async {
        let (addr, accepts) = server().await;
        let pool = pool_for(addr, &ConnectionPool::default());
        let mut req = get("/upgrade");
        let h = req.headers_mut();
        h.insert(header::CONNECTION, "upgrade".parse().expect("value"));
        h.insert(header::UPGRADE, "echo".parse().expect("value"));
        let mut resp = pool.send(Some(0), req, &defaults()).await.expect("sent");
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        let upgraded = resp.body_mut().take_upgrade().expect("upgraded");
        assert!(resp.body_mut().take_upgrade().is_none(), "taken once");
        let (mut near, mut far) = tokio::io::duplex(64);
        tokio::spawn(async move { upgraded.tunnel(&mut far).await });
        near.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        near.read_exact(&mut buf).await.expect("echo");
        assert_eq!(&buf, b"ping");
        assert_eq!(pool.idle_connections(0), 0);
        // The next request needs a connection of its own.
        let resp = pool
            .send(Some(0), get("/"), &defaults())
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(accepts.load(Ordering::SeqCst), 2);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn passthrough_opens_a_connection_per_request() {
    tokio::time::timeout(LIMIT, async {
        let (addr, accepts) = server().await;
        let pool = pool_for(addr, &ConnectionPool::default());
        for _ in 0..3 {
            let req = get(&format!("http://{addr}/"));
            let resp = pool.send(None, req, &defaults()).await.expect("sent");
            assert_eq!(resp.status(), StatusCode::OK);
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(&body[..], b"ok");
        }
        assert_eq!(accepts.load(Ordering::SeqCst), 3);
        assert_eq!(pool.idle_connections(0), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn tcp_keepalive_is_set_on_upstream_sockets() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = server().await;
        let settings = ConnectionPool {
            tcp_keepalive: Some(TcpKeepalive {
                probes: Some(3),
                time: Some(Duration::from_secs(30)),
                interval: Some(Duration::from_secs(7)),
            }),
            ..ConnectionPool::default()
        };
        let pool = pool_for(addr, &settings);
        let stream = pool
            .shared
            .connect(&Dial::Addr(addr), &defaults())
            .await
            .expect("connected");
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            sock.tcp_keepalive_time().expect("time"),
            Duration::from_secs(30)
        );
        assert_eq!(
            sock.tcp_keepalive_interval().expect("intvl"),
            Duration::from_secs(7)
        );
        assert_eq!(sock.tcp_keepalive_retries().expect("probes"), 3);
    })
    .await
    .expect("test timed out");
}

#[test]
fn http2_sends_host_as_authority() {
    let mut req = get("http://10.0.0.7:8080/api?q=1");
    req.headers_mut()
        .insert(header::HOST, "reviews:9080".parse().expect("host"));
    h2::authority_from_host(&mut req);
    assert_eq!(req.uri().to_string(), "http://reviews:9080/api?q=1");
    assert!(req.headers().get(header::HOST).is_none());
    // A Host that is no authority is left as it was.
    let mut req = get("http://10.0.0.7:8080/");
    req.headers_mut()
        .insert(header::HOST, "bad host".parse().expect("value"));
    h2::authority_from_host(&mut req);
    assert_eq!(req.uri().to_string(), "http://10.0.0.7:8080/");
    assert!(req.headers().get(header::HOST).is_some());
}
