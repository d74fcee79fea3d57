//! The inbound listener and graceful stop over loopback, and transparent capture
//! (`SO_ORIGINAL_DST`) in a private network namespace with an iptables `REDIRECT` rule.

mod support;
#[path = "listeners/tools.rs"]
mod tools;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use trellis_proxy::listener::{InboundListener, OutboundListener};
use trellis_proxy::runtime::Runtime;

use support::{Backend, LIMIT, client, get};
use tools::{Echo, Harness, orders, ping, service};

#[tokio::test]
async fn inbound_forwards_http_and_opaque_bytes_to_the_app() {
    timeout(LIMIT, async {
        let app = Backend::ok("app").await;
        let echo = Echo::start("e").await;
        let h = Harness::new(Runtime::default());
        let start = |app: u16| {
            let ctx = Arc::clone(&h.ctx);
            async move {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind inbound");
                let target = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), app);
                let inbound = InboundListener::new(listener, Some(target), ctx);
                let addr = inbound.local_addr().expect("addr");
                tokio::spawn(inbound.run());
                addr
            }
        };
        let http_in = start(app.port()).await;
        let answer = get(&client(), http_in, "anything", "/hello").await;
        assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "app"));
        assert_eq!(app.seen()[0].uri, "/hello");

        let tcp_in = start(echo.port).await;
        assert_eq!(ping(tcp_in).await, "e:ping\n");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_open_inbound_connection_does_not_keep_an_old_configuration() {
    timeout(LIMIT, async {
        let app = Backend::ok("app").await;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind inbound");
        let addr = listener.local_addr().expect("addr");
        // The listener's address is the service's endpoint: its HTTP port is served as HTTP.
        let yaml = service(
            "orders",
            "127.0.0.98",
            80,
            "http",
            "HTTP",
            &[(addr.port(), "a")],
        );
        let h = Harness::new(support::runtime(&yaml, |_| {}));
        let inbound = InboundListener::new(listener, Some(app.addr), Arc::clone(&h.ctx));
        tokio::spawn(inbound.run());
        let next = support::runtime(&yaml, |_| {});
        support::assert_connection_does_not_pin_config(&h.config, addr, "orders", next).await;
        assert_eq!(app.count(), 2);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_drain_waits_for_open_connections() {
    timeout(LIMIT, async {
        let echo = Echo::start("e").await;
        let h = Harness::new(Runtime::default());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind inbound");
        let inbound = InboundListener::new(
            listener,
            Some(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), echo.port)),
            Arc::clone(&h.ctx),
        );
        let addr = inbound.local_addr().expect("addr");
        let task = tokio::spawn(inbound.run());
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        w.write_all(b"x\n").await.expect("write");
        r.read_line(&mut line).await.expect("read");
        assert_eq!(h.ctx.connections.open(), 1);

        h.stop.send_replace(true);
        task.await
            .expect("listener task")
            .expect("listener stops cleanly");
        // The freed port is anyone's: usually the connection is refused, but a test running
        // alongside may have bound it, or the kernel may pick it for the client and connect
        // the socket to itself (TCP self-connect). What must not happen is this listener
        // taking the connection: it would count it and the echo app would answer.
        if let Ok(s) = TcpStream::connect(addr).await {
            let (r2, mut w2) = s.into_split();
            let mut r2 = BufReader::new(r2);
            let mut answer = String::new();
            let _ = w2.write_all(b"z\n").await;
            let _ = timeout(Duration::from_millis(200), r2.read_line(&mut answer)).await;
            assert_ne!(answer, "e:z\n", "still accepting after shutdown");
        }
        assert_eq!(
            h.ctx.connections.open(),
            1,
            "still accepting after shutdown"
        );
        assert!(!h.ctx.connections.wait_idle(Duration::from_millis(50)).await);
        // The open connection still works during the drain.
        line.clear();
        w.write_all(b"y\n").await.expect("write");
        r.read_line(&mut line).await.expect("read");
        assert_eq!(line, "e:y\n");
        drop((r, w));
        assert!(h.ctx.connections.wait_idle(Duration::from_secs(10)).await);
        assert_eq!(h.ctx.connections.open(), 0);
    })
    .await
    .expect("test timed out");
}

/// Where the namespaced run's outbound listener listens; the REDIRECT rule sends
/// captured traffic here.
const CAPTURE_PORT: u16 = 15099;
/// Traffic to this address is captured inside the namespace.
const CAPTURED_VIP: &str = "127.0.0.99";

/// Transparent capture end to end: re-runs this binary's `captured_in_namespace` test in a
/// private network namespace (`unshare -n`) whose iptables `nat OUTPUT` chain redirects
/// TCP to 127.0.0.99 to the outbound listener, as the sidecar's capture rules will.
/// Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN), `unshare`, `ip` and `iptables`; without
/// them it prints why and does nothing. The namespace leaves the host's firewall alone.
#[test]
fn transparent_capture_via_iptables_redirect() {
    let have = |tool: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success())
    };
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    if !root {
        eprintln!("skipped: transparent capture needs root");
        return;
    }
    // As root the test must run: missing tools are a setup error that
    // scripts/install-test-deps.sh fixes, not a reason to pass silently.
    for tool in ["unshare", "ip", "iptables"] {
        assert!(
            have(tool),
            "{tool} is missing: run scripts/install-test-deps.sh"
        );
    }
    let exe = std::env::current_exe().expect("test binary path");
    let script = format!(
        "ip link set lo up && iptables -t nat -A OUTPUT -p tcp -d {CAPTURED_VIP} -j REDIRECT --to-ports {CAPTURE_PORT} && exec \"$0\" --exact captured_in_namespace --ignored --nocapture"
    );
    let mut child = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .arg(&exe)
        .env("TRELLIS_CAPTURE_NETNS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    let deadline = std::time::Instant::now() + LIMIT;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("namespaced capture test timed out");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("Operation not permitted") {
        eprintln!("skipped: no permission for network namespaces or iptables: {stderr}");
        return;
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
}

/// Runs only inside the namespace set up by `transparent_capture_via_iptables_redirect`.
#[tokio::test]
#[ignore = "run by transparent_capture_via_iptables_redirect inside a network namespace"]
async fn captured_in_namespace() {
    if std::env::var_os("TRELLIS_CAPTURE_NETNS").is_none() {
        eprintln!("not in the capture namespace; run transparent_capture_via_iptables_redirect");
        return;
    }
    timeout(LIMIT, async {
        let echo = Echo::start("a").await;
        let (a, b) = (Backend::ok("a").await, Backend::ok("b").await);
        let yaml = format!(
            "{}{}",
            service("db", CAPTURED_VIP, 7000, "tcp", "TCP", &[(echo.port, "a")]),
            orders(CAPTURED_VIP, 80, a.port(), b.port())
        );
        let h = Harness::new(support::runtime(&yaml, |_| {}));
        let listener = TcpListener::bind(("127.0.0.1", CAPTURE_PORT))
            .await
            .expect("bind outbound");
        tokio::spawn(OutboundListener::new(listener, Arc::clone(&h.ctx)).run());
        let vip: IpAddr = CAPTURED_VIP.parse().expect("ip");
        // Captured opaque TCP: routed by the original destination's service.
        assert_eq!(ping(SocketAddr::new(vip, 7000)).await, "a:ping\n");
        assert_eq!(echo.accepted(), 1);
        // Captured HTTP: detected on the HTTP port and routed by the HTTP routes.
        let c = client();
        let captured = get(
            &c,
            SocketAddr::new(vip, 80),
            "orders.shop.svc.cluster.local",
            "/b/x",
        )
        .await;
        assert_eq!(
            (captured.status.as_u16(), captured.body.as_str()),
            (200, "b")
        );
        // Dialing the listener itself is still the explicit HTTP proxy.
        let explicit = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), CAPTURE_PORT);
        let direct = get(&c, explicit, "orders.shop.svc.cluster.local", "/").await;
        assert_eq!((direct.status.as_u16(), direct.body.as_str()), (200, "a"));
        assert_eq!((a.count(), b.count()), (1, 1));
    })
    .await
    .expect("test timed out");
}
