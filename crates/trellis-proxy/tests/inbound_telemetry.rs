//! The server side of a call: two real proxies on 127.0.0.1, a client sidecar (`frontend`)
//! and the sidecar of `orders` whose inbound listener is the service's endpoint. Requests
//! go app → client proxy → server proxy's inbound → app, and each side reports what it
//! saw: the client with `reporter="source"`, the server with `reporter="destination"` and
//! the caller's labels learned from the peer header. Opaque TCP and HTTP/2 on the inbound
//! side, and a caller the server cannot trust, are covered below.

#[path = "listeners/tools.rs"]
mod listener_tools;
mod support;
#[path = "http_telemetry/tools.rs"]
mod tools;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use trellis_proxy::server::{InboundSettings, ProxyServer, ProxySettings};
use trellis_proxy::telemetry::metrics::MetricsNames;
use trellis_proxy::telemetry::{
    AccessLogConfig, AccessLogDestination, AccessLogFormat, SourceIdentity,
};

use listener_tools::Echo;
use support::{Backend, LIMIT, TempDir, client, get, send};
use tools::{json_lines, sum};

const HOST: &str = "orders.shop.svc.cluster.local";

/// A port free on 127.0.0.1 right now, for an address the configuration must name before
/// the listener binds it.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind free port");
    l.local_addr().expect("addr").port()
}

/// `orders` inside the mesh, one port of `protocol`, its one endpoint at `127.0.0.1:port`
/// (the server sidecar's inbound listener), labelled as the `orders-v1` workload.
fn orders(protocol: &str, port: u16) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: orders, namespace: shop}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {{number: 80, name: main, protocol: {protocol}}}
  endpoints:
  - address: 127.0.0.1
    ports: {{main: {port}}}
    labels: {{app: orders, version: v1}}
"#
    )
}

fn identity(workload: &str, app: &str) -> SourceIdentity {
    SourceIdentity {
        workload: workload.into(),
        namespace: "shop".into(),
        app: app.into(),
        version: "v1".into(),
        principal: format!("spiffe://cluster.local/ns/shop/sa/{app}"),
    }
}

/// A proxy serving `dir` as `who`, with an inbound listener on `inbound` for the
/// application at `app` when given. The server side writes its JSON access log to
/// `server-access.log` in `dir`; the client side logs nothing.
async fn proxy(
    dir: &TempDir,
    who: SourceIdentity,
    inbound: Option<(u16, SocketAddr)>,
) -> ProxyServer {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut s = ProxySettings::new(vec![dir.0.clone()]);
    s.outbound_addr = any;
    s.admin_addr = any;
    s.health_addr = None;
    s.vip_listeners = false;
    s.watch = false;
    s.load.default_namespace = "shop".into();
    s.runtime.client_namespace = "shop".into();
    s.source = who;
    // Istio's names and Linkerd's: both views of the destination side are checked.
    s.metrics.names = MetricsNames::Both;
    let log = AccessLogDestination::File(dir.0.join("server-access.log"));
    s.access_log = AccessLogConfig {
        format: AccessLogFormat::Json,
        destination: if inbound.is_some() {
            log
        } else {
            AccessLogDestination::Off
        },
    };
    s.inbound = inbound.map(|(port, app)| InboundSettings {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        app: Some(app),
    });
    ProxyServer::start(s).await.expect("proxy starts")
}

async fn metrics(server: &ProxyServer) -> String {
    get(&client(), server.admin_addr(), "admin", "/stats/prometheus")
        .await
        .body
}

/// The server's metrics once `metric` summed over `needles` reaches `want` (a request is
/// recorded as its last byte leaves, a moment before or after the client has it), or
/// after two seconds, for the assertion to show what there was.
async fn metrics_when(server: &ProxyServer, metric: &str, needles: &[&str], want: u64) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = metrics(server).await;
        if sum(&text, metric, needles) == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    text
}

/// Both sidecars of a call, over a configuration directory written by the test.
struct Pair {
    client: ProxyServer,
    server: ProxyServer,
    inbound: SocketAddr,
    dir: TempDir,
}

async fn pair(tag: &str, protocol: &str, app: SocketAddr) -> Pair {
    let dir = TempDir::new(tag);
    let port = free_port();
    std::fs::write(dir.0.join("mesh.yaml"), orders(protocol, port)).expect("write config");
    let client = proxy(&dir, identity("frontend-v1", "frontend"), None).await;
    let server = proxy(&dir, identity("orders-v1", "orders"), Some((port, app))).await;
    let inbound = server.inbound_addr().expect("inbound bound");
    Pair {
        client,
        server,
        inbound,
        dir,
    }
}

#[tokio::test]
async fn both_sidecars_report_a_call_and_the_server_names_its_caller() {
    timeout(LIMIT, async {
        let app = Backend::ok("orders").await;
        let p = pair("inbound-http", "HTTP", app.addr).await;
        let c = client();
        for _ in 0..5 {
            let a = get(&c, p.client.outbound_addr(), HOST, "/orders").await;
            assert_eq!((a.status.as_u16(), a.body.as_str()), (200, "orders"));
        }
        assert_eq!(app.count(), 5);
        let seen = &app.seen()[0];
        assert!(
            !seen.headers.contains_key("x-trellis-peer"),
            "the peer header reached the application: {:?}",
            seen.headers
        );
        assert!(seen.headers.contains_key("x-request-id"));

        let caller = [
            "reporter=\"destination\"",
            "source_workload=\"frontend-v1\"",
            "source_workload_namespace=\"shop\"",
            "source_principal=\"unknown\"",
            "source_app=\"frontend\"",
            "source_version=\"v1\"",
            "destination_workload=\"orders-v1\"",
            "destination_app=\"orders\"",
            "destination_service=\"orders.shop.svc.cluster.local\"",
            "destination_service_name=\"orders\"",
            "destination_service_namespace=\"shop\"",
            "request_protocol=\"http\"",
            "response_code=\"200\"",
            "connection_security_policy=\"none\"",
        ];
        let text = metrics_when(&p.server, "istio_requests_total", &caller, 5).await;
        assert_eq!(sum(&text, "istio_requests_total", &caller), 5, "{text}");
        assert_eq!(
            sum(&text, "istio_request_duration_milliseconds_count", &caller),
            5
        );
        // Under Linkerd's names the same records are the inbound direction.
        let inbound = [
            "direction=\"inbound\"",
            "authority=\"orders.shop.svc.cluster.local\"",
            "tls=\"no_identity\"",
        ];
        assert_eq!(sum(&text, "request_total", &inbound), 5, "{text}");
        let ok = [
            &inbound[..],
            &["status_code=\"200\"", "classification=\"success\""],
        ]
        .concat();
        assert_eq!(sum(&text, "response_total", &ok), 5, "{text}");
        // The server's proxy makes no outbound call, so it reports no source side.
        assert_eq!(
            sum(&text, "istio_requests_total", &["reporter=\"source\""]),
            0
        );
        let source = [
            "reporter=\"source\"",
            "source_workload=\"frontend-v1\"",
            "destination_workload_namespace=\"shop\"",
            "destination_app=\"orders\"",
            "response_code=\"200\"",
        ];
        let text = metrics_when(&p.client, "istio_requests_total", &source, 5).await;
        assert_eq!(sum(&text, "istio_requests_total", &source), 5, "{text}");
        assert_eq!(
            sum(&text, "istio_requests_total", &["reporter=\"destination\""]),
            0
        );

        // One access-log line per request on the server side, naming the inbound cluster
        // and the application, with the id the client's proxy generated and forwarded.
        let log = p.dir.0.join("server-access.log");
        let mut lines = json_lines(&log);
        for _ in 0..200 {
            if lines.len() == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            lines = json_lines(&log);
        }
        assert_eq!(lines.len(), 5, "{lines:?}");
        let line = &lines[0];
        assert_eq!(
            line["route_name"],
            "inbound|80||orders.shop.svc.cluster.local"
        );
        assert_eq!(line["upstream_host"], app.addr.to_string());
        assert_eq!(line["upstream_service"], HOST);
        assert_eq!(line["response_code"], 200);
        assert_eq!(line["path"], "/orders");
        let id = seen.headers["x-request-id"].to_str().expect("ascii id");
        assert_eq!(line["x_request_id"], id);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_application_that_refuses_connections_is_a_503_uf_on_the_server_side() {
    timeout(LIMIT, async {
        let dead = support::dead_port();
        let gone = SocketAddr::from(([127, 0, 0, 1], dead.port()));
        let p = pair("inbound-uf", "HTTP", gone).await;
        let a = get(&client(), p.client.outbound_addr(), HOST, "/").await;
        assert_eq!(a.status.as_u16(), 503);
        // The server's proxy answered; the client's forwards its flag unchanged.
        assert_eq!(a.flag(), "UF");
        let failed = [
            "reporter=\"destination\"",
            "source_workload=\"frontend-v1\"",
            "response_code=\"503\"",
            "response_flags=\"UF\"",
        ];
        let text = metrics_when(&p.server, "istio_requests_total", &failed, 1).await;
        assert_eq!(sum(&text, "istio_requests_total", &failed), 1, "{text}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_caller_without_a_valid_peer_header_is_unknown() {
    timeout(LIMIT, async {
        let app = Backend::ok("orders").await;
        let p = pair("inbound-spoof", "HTTP", app.addr).await;
        // Straight to the server's sidecar, as a client outside the mesh would come.
        let c = client();
        let plain = get(&c, p.inbound, HOST, "/").await;
        assert_eq!(plain.status.as_u16(), 200);
        let bad = [("x-trellis-peer", "workload=a b\"c")];
        let spoofed = send(&c, p.inbound, http::Method::GET, HOST, "/", &bad).await;
        assert_eq!(spoofed.status.as_u16(), 200);
        let unknown = [
            "reporter=\"destination\"",
            "source_workload=\"unknown\"",
            "destination_workload=\"orders-v1\"",
        ];
        let text = metrics_when(&p.server, "istio_requests_total", &unknown, 2).await;
        assert_eq!(sum(&text, "istio_requests_total", &unknown), 2, "{text}");
        assert!(!app.seen()[1].headers.contains_key("x-trellis-peer"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn http2_callers_reach_the_application_in_http2() {
    timeout(LIMIT, async {
        let app = Backend::ok("orders").await;
        let p = pair("inbound-h2", "HTTP2", app.addr).await;
        // h2c with prior knowledge; `:authority` names the service.
        let tcp = TcpStream::connect(p.client.outbound_addr())
            .await
            .expect("connect");
        let (mut h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(format!("http://{HOST}/h2"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = h2.send_request(req).await.expect("answer");
        assert_eq!(resp.status().as_u16(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"orders");
        assert_eq!(app.seen()[0].version, Version::HTTP_2);
        let caller = [
            "reporter=\"destination\"",
            "source_workload=\"frontend-v1\"",
        ];
        let text = metrics_when(&p.server, "istio_requests_total", &caller, 1).await;
        assert_eq!(sum(&text, "istio_requests_total", &caller), 1, "{text}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn opaque_tcp_on_the_inbound_side_is_counted_for_the_service() {
    timeout(LIMIT, async {
        let app = SocketAddr::from(([127, 0, 0, 1], Echo::start("echo").await.port));
        let p = pair("inbound-tcp", "TCP", app).await;
        let s = TcpStream::connect(p.inbound).await.expect("connect");
        let (r, mut w) = s.into_split();
        w.write_all(b"hello\n").await.expect("write");
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).await.expect("read");
        assert_eq!(line, "echo:hello\n");
        drop(w);
        let tcp = [
            "reporter=\"destination\"",
            "destination_workload=\"orders-v1\"",
            "destination_service=\"orders.shop.svc.cluster.local\"",
            "request_protocol=\"tcp\"",
        ];
        let closed = "istio_tcp_connections_closed_total";
        let text = metrics_when(&p.server, closed, &tcp, 1).await;
        assert_eq!(
            sum(&text, "istio_tcp_connections_opened_total", &tcp),
            1,
            "{text}"
        );
        assert_eq!(sum(&text, closed, &tcp), 1, "{text}");
        assert_eq!(sum(&text, "istio_tcp_received_bytes_total", &tcp), 6);
        assert_eq!(sum(&text, "istio_tcp_sent_bytes_total", &tcp), 11);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn services_outside_the_mesh_never_see_the_peer_header() {
    timeout(LIMIT, async {
        let api = Backend::ok("api").await;
        let dir = TempDir::new("peer-external");
        let entry = format!(
            r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api, namespace: shop}}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {}}}
"#,
            api.port()
        );
        std::fs::write(dir.0.join("mesh.yaml"), entry).expect("write config");
        let client = proxy(&dir, identity("frontend-v1", "frontend"), None).await;
        // Even one the application set itself is taken off.
        let spoof = [("x-trellis-peer", "workload=admin")];
        let c = support::client();
        let a = send(
            &c,
            client.outbound_addr(),
            http::Method::GET,
            "api.example.com",
            "/",
            &spoof,
        )
        .await;
        assert_eq!(a.status.as_u16(), 200);
        assert!(!api.seen()[0].headers.contains_key("x-trellis-peer"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn websocket_upgrades_pass_through_both_sidecars() {
    timeout(LIMIT, async {
        let app = support::echo_upgrade_backend().await;
        let p = pair("inbound-ws", "HTTP", app).await;
        support::websocket_echo(p.client.outbound_addr(), HOST).await;
        let upgraded = [
            "reporter=\"destination\"",
            "source_workload=\"frontend-v1\"",
            "response_code=\"101\"",
        ];
        let text = metrics_when(&p.server, "istio_requests_total", &upgraded, 1).await;
        assert_eq!(sum(&text, "istio_requests_total", &upgraded), 1, "{text}");
    })
    .await
    .expect("test timed out");
}
