//! Listeners end to end over loopback: VIP listeners routing opaque TCP by VirtualService
//! `tcp:` routes and Gateway API TCPRoute, server-first protocols, HTTP on a VIP port, the
//! outbound listener as an explicit HTTP proxy, `maxConnections`, and VIP reconcile on
//! configuration change.

mod support;
#[path = "http_telemetry/tools.rs"]
mod telemetry_tools;
#[path = "listeners/tools.rs"]
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use trellis_proxy::listener::OutboundListener;

use support::{Backend, LIMIT, client, get, runtime};
use telemetry_tools::{scrape_when, sum};
use tools::{
    DbOnVip, Echo, Harness, Session, banner_server, connect, free_port, orders, service, split,
    subsets,
};

#[tokio::test]
async fn virtual_service_tcp_split_80_20_via_vip() {
    timeout(LIMIT, async {
        let (ea, eb) = (Echo::start("a").await, Echo::start("b").await);
        let vip = "127.0.0.77";
        let port = free_port(vip);
        let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: db, namespace: shop}\nspec:\n  hosts: [db.shop.svc.cluster.local]\n  tcp:\n  - route:\n    - {destination: {host: db.shop.svc.cluster.local, subset: a}, weight: 80}\n    - {destination: {host: db.shop.svc.cluster.local, subset: b}, weight: 20}\n";
        let yaml = format!(
            "{}{}{vs}",
            service("db", vip, port, "tcp", "TCP", &[(ea.port, "a"), (eb.port, "b")]),
            subsets("db", "")
        );
        let h = Harness::new(runtime(&yaml, |_| {}));
        h.vips();
        let (a, b) = split(SocketAddr::new(vip.parse().expect("ip"), port), 1000).await;
        assert_eq!(a + b, 1000);
        // Binomial(1000, 0.8): sd 12.6; +-75 is six of them.
        assert!((725..=875).contains(&a), "a got {a} of 1000");
        assert_eq!(ea.accepted() + eb.accepted(), 1000);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gateway_api_tcp_route_on_a_service() {
    timeout(LIMIT, async {
        let (ea, eb) = (Echo::start("a").await, Echo::start("b").await);
        let vip = "127.0.0.78";
        let port = free_port(vip);
        let yaml = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: pg, namespace: shop}}\nspec:\n  clusterIP: {vip}\n  ports: [{{name: tcp-pg, port: {port}}}]\n---\n\
             apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {{name: pg, namespace: shop}}\nspec:\n  parentRefs: [{{name: pg, kind: Service, group: \"\", port: {port}}}]\n  rules:\n  - backendRefs:\n    - {{group: networking.istio.io, kind: Hostname, name: pga.shop.svc.cluster.local, port: 5432, weight: 1}}\n    - {{group: networking.istio.io, kind: Hostname, name: pgb.shop.svc.cluster.local, port: 5432, weight: 3}}\n---\n{}{}",
            service("pga", "240.0.0.1", 5432, "tcp", "TCP", &[(ea.port, "a")]),
            service("pgb", "240.0.0.2", 5432, "tcp", "TCP", &[(eb.port, "b")]),
        );
        let h = Harness::new(runtime(&yaml, |_| {}));
        h.vips();
        let (a, b) = split(SocketAddr::new(vip.parse().expect("ip"), port), 400).await;
        assert_eq!(a + b, 400);
        // Binomial(400, 0.25): sd 8.7; +-50 is almost six of them.
        assert!((50..=150).contains(&a), "a got {a} of 400");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn server_first_protocol_gets_its_banner_without_client_bytes() {
    timeout(LIMIT, async {
        let banner = banner_server("220 smtp ready\r\n").await;
        let vip = "127.0.0.79";
        let port = free_port(vip);
        // Port name without a protocol prefix: undeclared, so the proxy sniffs and must
        // give up after the detection timeout rather than wait for the client.
        let yaml = service("mail", vip, port, "mail", "", &[(banner, "a")]);
        let h = Harness::new(runtime(&yaml, |_| {}));
        h.vips();
        let mut s = connect(SocketAddr::new(vip.parse().expect("ip"), port)).await;
        let mut buf = vec![0u8; 16];
        // Generous bound: the banner must arrive without the client sending anything.
        timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("banner arrives without client bytes")
            .expect("read banner");
        assert_eq!(&buf, b"220 smtp ready\r\n");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn http_on_a_vip_port_follows_http_routes() {
    timeout(LIMIT, async {
        let (a, b) = (Backend::ok("a").await, Backend::ok("b").await);
        let vip = "127.0.0.80";
        let port = free_port(vip);
        let h = Harness::new(runtime(&orders(vip, port, a.port(), b.port()), |_| {}));
        h.vips();
        let addr = SocketAddr::new(vip.parse().expect("ip"), port);
        drop(connect(addr).await);
        let c = client();
        let host = format!("orders.shop.svc.cluster.local:{port}");
        let first = get(&c, addr, &host, "/b/item").await;
        assert_eq!((first.status.as_u16(), first.body.as_str()), (200, "b"));
        let second = get(&c, addr, &host, "/other").await;
        assert_eq!((second.status.as_u16(), second.body.as_str()), (200, "a"));
        assert_eq!((a.count(), b.count()), (1, 1));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_open_connection_to_a_vip_does_not_keep_an_old_configuration() {
    timeout(LIMIT, async {
        let (a, b) = (Backend::ok("a").await, Backend::ok("b").await);
        let vip = "127.0.0.87";
        let port = free_port(vip);
        let yaml = orders(vip, port, a.port(), b.port());
        let h = Harness::new(runtime(&yaml, |_| {}));
        h.vips();
        let addr = SocketAddr::new(vip.parse().expect("ip"), port);
        drop(connect(addr).await);
        let host = format!("orders.shop.svc.cluster.local:{port}");
        let next = runtime(&yaml, |_| {});
        support::assert_connection_does_not_pin_config(&h.config, addr, &host, next).await;
        assert_eq!(a.count(), 2);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_open_tcp_connection_keeps_its_backend_but_not_the_old_configuration() {
    timeout(LIMIT, async {
        let DbOnVip { h, addr, yaml, .. } =
            DbOnVip::start("127.0.0.88", |y| runtime(y, |_| {})).await;
        let mut session = Session::open(addr).await;
        assert_eq!(session.say("one").await, "a:one\n");
        let old = Arc::downgrade(&*h.config.borrow());
        h.config.send_replace(Arc::new(runtime(&yaml, |_| {})));
        let answer = session.say("two").await;
        assert_eq!(answer, "a:two\n", "the open connection goes on");
        assert!(
            old.upgrade().is_none(),
            "an open TCP connection still holds the replaced configuration"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn outbound_listener_serves_http_proxy_absolute_form() {
    timeout(LIMIT, async {
        let (a, b) = (Backend::ok("a").await, Backend::ok("b").await);
        let h = Harness::new(runtime(&orders("240.0.0.9", 80, a.port(), b.port()), |_| {}));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind outbound");
        let outbound = OutboundListener::new(listener, Arc::clone(&h.ctx));
        let addr = outbound.local_addr().expect("addr");
        tokio::spawn(outbound.run());
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET http://orders.shop.svc.cluster.local/b/x HTTP/1.1\r\nHost: orders.shop.svc.cluster.local\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nb"), "{answer}");
        assert_eq!((a.count(), b.count()), (0, 1));
        assert_eq!(b.seen()[0].uri, "/b/x");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn max_connections_closes_the_overflowing_connection() {
    timeout(LIMIT, async {
        let echo = Echo::start("a").await;
        let vip = "127.0.0.81";
        let port = free_port(vip);
        let yaml = format!(
            "{}{}",
            service("db", vip, port, "tcp", "TCP", &[(echo.port, "a")]),
            subsets(
                "db",
                "  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 1}\n"
            )
        );
        let h = Harness::new(runtime(&yaml, |_| {}));
        h.vips();
        let addr = SocketAddr::new(vip.parse().expect("ip"), port);
        let first = connect(addr).await;
        let (r1, mut w1) = first.into_split();
        let mut r1 = BufReader::new(r1);
        let mut line = String::new();
        w1.write_all(b"one\n").await.expect("write");
        r1.read_line(&mut line).await.expect("read");
        assert_eq!(line, "a:one\n");
        // The second connection is accepted by the listener, then closed by the proxy
        // (UO) without reaching the backend.
        let mut second = connect(addr).await;
        let _ = second.write_all(b"two\n").await;
        let mut buf = [0u8; 16];
        let n = timeout(Duration::from_secs(5), second.read(&mut buf))
            .await
            .expect("overflowing connection is closed quickly")
            .unwrap_or(0);
        assert_eq!(n, 0, "overflowing connection got data");
        assert_eq!(echo.accepted(), 1);
        // The first connection is unaffected, and its slot frees on close.
        line.clear();
        w1.write_all(b"three\n").await.expect("write");
        r1.read_line(&mut line).await.expect("read");
        assert_eq!(line, "a:three\n");
        drop((r1, w1));
        let mut answer = String::new();
        while answer.is_empty() {
            // The proxy notices the close asynchronously; retry until the slot is free.
            let s = connect(addr).await;
            let (r, mut w) = s.into_split();
            let _ = w.write_all(b"four\n").await;
            let _ = BufReader::new(r).read_line(&mut answer).await;
            if answer.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(answer, "a:four\n");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn removed_vip_stops_accepting_but_open_connections_continue() {
    timeout(LIMIT, async {
        let db = DbOnVip::start("127.0.0.82", |y| runtime(y, |_| {})).await;
        let (echo, h, addr) = (&db.echo, &db.h, db.addr);
        let mut session = Session::open(addr).await;
        assert_eq!(session.say("before").await, "a:before\n");

        let other = service("other", "127.0.0.83", 9, "tcp", "TCP", &[(echo.port, "a")]);
        h.config.send_replace(Arc::new(runtime(&other, |_| {})));
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        assert_eq!(session.say("after").await, "a:after\n");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn opaque_tcp_connections_and_bytes_are_counted_in_istio_metrics() {
    timeout(LIMIT, async {
        let echo = Echo::start("a").await;
        let (vip, dead_vip) = ("127.0.0.84", "127.0.0.85");
        let port = free_port(vip);
        let dead_port = free_port(dead_vip);
        // `dead` has an endpoint nobody listens on: its connections fail with UF.
        let refused = free_port("127.0.0.1");
        let yaml = service("db", vip, port, "tcp", "TCP", &[(echo.port, "a")])
            + &service("dead", dead_vip, dead_port, "tcp", "TCP", &[(refused, "a")]);
        let h = Harness::new(runtime(&yaml, |_| {}));
        h.vips();

        let s = connect(SocketAddr::new(vip.parse().expect("ip"), port)).await;
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        for word in ["one", "two", "three"] {
            w.write_all(format!("{word}\n").as_bytes())
                .await
                .expect("write");
            let mut line = String::new();
            r.read_line(&mut line).await.expect("read");
            assert_eq!(line, format!("a:{word}\n"));
        }
        drop(w);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.expect("read to the end");
        let mut dead = connect(SocketAddr::new(dead_vip.parse().expect("ip"), dead_port)).await;
        let mut nothing = Vec::new();
        let _ = dead.read_to_end(&mut nothing).await;

        let db = [
            "destination_service=\"db.shop.svc.cluster.local\"",
            "destination_version=\"a\"",
            "request_protocol=\"tcp\"",
        ];
        let closed = "istio_tcp_connections_closed_total";
        let within = Duration::from_secs(2);
        let text = scrape_when(h.ctx.http.telemetry(), closed, &[], 2, within).await;
        assert_eq!(
            sum(&text, "istio_tcp_connections_opened_total", &db),
            1,
            "{text}"
        );
        assert_eq!(
            sum(&text, "istio_tcp_connections_closed_total", &db),
            1,
            "{text}"
        );
        // Received from the client: "one\ntwo\nthree\n"; sent to it: each line prefixed "a:".
        assert_eq!(
            sum(&text, "istio_tcp_received_bytes_total", &db),
            14,
            "{text}"
        );
        assert_eq!(sum(&text, "istio_tcp_sent_bytes_total", &db), 20, "{text}");
        let uf = [
            "destination_service=\"dead.shop.svc.cluster.local\"",
            "response_flags=\"UF\"",
        ];
        assert_eq!(
            sum(&text, "istio_tcp_connections_closed_total", &uf),
            1,
            "{text}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_long_tcp_connection_reports_its_bytes_before_it_closes() {
    timeout(LIMIT, async {
        let DbOnVip { h, addr, .. } = DbOnVip::start("127.0.0.86", |y| runtime(y, |_| {})).await;
        let mut session = Session::open(addr).await;
        assert_eq!(session.say("hello").await, "a:hello\n");
        // Still open: the bytes arrive with the periodic report (every 5 s).
        let received = "istio_tcp_received_bytes_total";
        let within = Duration::from_secs(8);
        let text = scrape_when(h.ctx.http.telemetry(), received, &[], 6, within).await;
        assert_eq!(
            sum(&text, "istio_tcp_received_bytes_total", &[]),
            6,
            "{text}"
        );
        assert_eq!(sum(&text, "istio_tcp_sent_bytes_total", &[]), 8, "{text}");
        assert_eq!(
            sum(&text, "istio_tcp_connections_closed_total", &[]),
            0,
            "{text}"
        );
        drop(session);
    })
    .await
    .expect("test timed out");
}
