//! Opaque TCP proxying over real loopback sockets: exact byte counts, half-close, and each
//! failure mapped to its Envoy response flag.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use trellis_model::{ConnectionPool, TcpKeepalive};
use trellis_proxy::tcp::{TcpError, TcpProxyOptions, TcpStats, proxy_tcp};

/// Every test finishes well within this, whatever goes wrong.
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    timeout(BOUND, f)
        .await
        .expect("test exceeded its time bound")
}

type ProxyResult = Result<(u64, u64), TcpError>;

/// Starts a proxy that accepts one connection and proxies it to `upstream`; returns the
/// address clients connect to, the live stats and the proxy's outcome.
async fn start_proxy(
    upstream: SocketAddr,
    opts: TcpProxyOptions,
) -> (SocketAddr, Arc<TcpStats>, JoinHandle<ProxyResult>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(TcpStats::default());
    let live = Arc::clone(&stats);
    let task = tokio::spawn(async move {
        let (down, _) = listener.accept().await.expect("accept");
        proxy_tcp(down, upstream, &opts, &live).await
    });
    (addr, stats, task)
}

/// An upstream that serves one connection with `serve`.
async fn start_upstream<F, Fut>(serve: F) -> (SocketAddr, JoinHandle<()>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept upstream");
        serve(s).await;
    });
    (addr, task)
}

/// Closes `s` with a TCP reset instead of a FIN.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(s);
}

#[tokio::test]
async fn echo_of_one_mib_counts_every_byte() {
    bounded(async {
        let (up, server) = start_upstream(|s| async move {
            let (mut r, mut w) = s.into_split();
            tokio::io::copy(&mut r, &mut w).await.expect("echo");
            w.shutdown().await.expect("shutdown");
        })
        .await;
        let (addr, stats, proxy) = start_proxy(up, TcpProxyOptions::default()).await;
        let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = TcpStream::connect(addr)
            .await
            .expect("connect")
            .into_split();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.expect("write");
            w.shutdown().await.expect("shutdown");
        });
        let mut echoed = Vec::new();
        r.read_to_end(&mut echoed).await.expect("read");
        writer.await.expect("writer");
        server.await.expect("server");
        assert!(echoed == payload, "echo differs ({} bytes)", echoed.len());
        let n = payload.len() as u64;
        assert_eq!(proxy.await.expect("proxy").expect("proxied"), (n, n));
        assert_eq!((stats.sent(), stats.received()), (n, n));
    })
    .await;
}

#[tokio::test]
async fn half_close_reaches_the_server_which_can_still_reply() {
    bounded(async {
        let (up, server) = start_upstream(|mut s| async move {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.expect("read to EOF");
            let reply = format!("got {} bytes: {}", got.len(), String::from_utf8_lossy(&got));
            s.write_all(reply.as_bytes()).await.expect("reply");
            s.shutdown().await.expect("shutdown");
        })
        .await;
        let (addr, stats, proxy) = start_proxy(up, TcpProxyOptions::default()).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"hello").await.expect("write");
        c.shutdown().await.expect("half-close");
        let mut reply = String::new();
        c.read_to_string(&mut reply).await.expect("read reply");
        assert_eq!(reply, "got 5 bytes: hello");
        server.await.expect("server");
        assert_eq!(proxy.await.expect("proxy").expect("proxied"), (18, 5));
        assert_eq!((stats.sent(), stats.received()), (18, 5));
    })
    .await;
}

#[tokio::test]
async fn closed_port_is_a_connect_failure_uf() {
    bounded(async {
        let dead = support::dead_port();
        let closed = SocketAddr::from(([127, 0, 0, 1], dead.port()));
        let (addr, stats, proxy) = start_proxy(closed, TcpProxyOptions::default()).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let err = proxy.await.expect("proxy").expect_err("must fail");
        assert!(matches!(err, TcpError::ConnectFailed { .. }), "{err}");
        assert_eq!(err.response_flag().map(|f| f.code()), Some("UF"));
        assert!(err.is_connect_failure());
        // The client is closed, not left hanging.
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).await.unwrap_or(0), 0);
        assert_eq!((stats.sent(), stats.received()), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn idle_connection_is_closed() {
    bounded(async {
        let (up, _server) = start_upstream(|mut s| async move {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        })
        .await;
        let opts = TcpProxyOptions {
            idle_timeout: Some(Duration::from_millis(200)),
            ..TcpProxyOptions::default()
        };
        let (addr, stats, proxy) = start_proxy(up, opts).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        let err = proxy.await.expect("proxy").expect_err("must time out");
        assert!(
            matches!(err, TcpError::IdleTimeout(d) if d == Duration::from_millis(200)),
            "{err}"
        );
        assert_eq!(err.response_flag(), None);
        let mut buf = [0u8; 1];
        assert_eq!(
            c.read(&mut buf).await.unwrap_or(0),
            0,
            "client sees the close"
        );
        assert_eq!(stats.received(), 4);
    })
    .await;
}

#[tokio::test]
async fn upstream_reset_is_uc() {
    bounded(async {
        let (up, server) = start_upstream(|mut s| async move {
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.expect("read");
            reset(s);
        })
        .await;
        let (addr, _stats, proxy) = start_proxy(up, TcpProxyOptions::default()).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        server.await.expect("server");
        let err = proxy.await.expect("proxy").expect_err("must fail");
        assert!(matches!(err, TcpError::UpstreamReset(_)), "{err}");
        assert_eq!(err.response_flag().map(|f| f.code()), Some("UC"));
    })
    .await;
}

#[tokio::test]
async fn downstream_reset_is_dc() {
    bounded(async {
        let (up, _server) = start_upstream(|mut s| async move {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        })
        .await;
        let (addr, stats, proxy) = start_proxy(up, TcpProxyOptions::default()).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        // Wait until the proxy has forwarded the bytes, so it is connected and reading.
        while stats.received() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        reset(c);
        let err = proxy.await.expect("proxy").expect_err("must fail");
        assert!(matches!(err, TcpError::DownstreamDisconnect(_)), "{err}");
        assert_eq!(err.response_flag().map(|f| f.code()), Some("DC"));
    })
    .await;
}

#[tokio::test]
async fn keepalive_settings_are_applied_to_upstream() {
    bounded(async {
        let (up, server) = start_upstream(|mut s| async move {
            s.write_all(b"hi").await.expect("write");
        })
        .await;
        let pool = ConnectionPool {
            connect_timeout: Some(Duration::from_secs(2)),
            tcp_keepalive: Some(TcpKeepalive {
                probes: Some(3),
                time: Some(Duration::from_secs(30)),
                interval: Some(Duration::from_secs(5)),
            }),
            ..ConnectionPool::default()
        };
        let opts = TcpProxyOptions::from_pool(&pool);
        let conn = trellis_proxy::tcp::connect(up, &opts)
            .await
            .expect("connect");
        let sock = socket2::SockRef::from(&conn);
        assert!(sock.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            sock.tcp_keepalive_time().expect("time"),
            Duration::from_secs(30)
        );
        assert_eq!(
            sock.tcp_keepalive_interval().expect("interval"),
            Duration::from_secs(5)
        );
        assert_eq!(sock.tcp_keepalive_retries().expect("probes"), 3);
        server.await.expect("server");
    })
    .await;
}

#[test]
fn options_from_pool_take_istio_and_envoy_defaults() {
    let d = TcpProxyOptions::from_pool(&ConnectionPool::default());
    assert_eq!(d.connect_timeout, Duration::from_secs(10));
    assert_eq!(d.idle_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(d.keepalive, None);
    assert_eq!(d, TcpProxyOptions::default());
    let off = TcpProxyOptions::from_pool(&ConnectionPool {
        idle_timeout: Some(Duration::ZERO),
        ..ConnectionPool::default()
    });
    assert_eq!(off.idle_timeout, None);
}
