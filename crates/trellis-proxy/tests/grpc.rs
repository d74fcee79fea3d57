//! gRPC end to end through the proxy: a tonic client speaking h2c to the outbound
//! listener, routed by `:authority` to a tonic server behind a ServiceEntry port with
//! protocol GRPC (so the proxy speaks HTTP/2 upstream). Uses the standard health service
//! (tonic-health ships its generated code): `Check` is unary, `Watch` server-streaming.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{LIMIT, TestProxy, service_entry};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as Wire;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::HealthReporter;

const AUTHORITY: &str = "http://orders.shop.svc.cluster.local:8080";

/// Starts a gRPC health server; its reporter changes what it answers.
async fn grpc_backend() -> (SocketAddr, HealthReporter) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (reporter, service) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, reporter)
}

/// A proxy for one gRPC backend and a client whose requests carry the service's
/// authority but connect to the proxy.
async fn setup() -> (HealthClient<Channel>, HealthReporter) {
    let (addr, reporter) = grpc_backend().await;
    let proxy = TestProxy::start(&service_entry("orders", "GRPC", &[(addr.port(), "v1")])).await;
    let channel = Endpoint::from_shared(format!("http://{}", proxy.addr))
        .expect("endpoint")
        .origin(AUTHORITY.parse().expect("origin"))
        .connect()
        .await
        .expect("connect to the proxy");
    (HealthClient::new(channel), reporter)
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

#[tokio::test]
async fn unary_calls_and_status_codes_pass_through() {
    tokio::time::timeout(LIMIT, async {
        let (mut client, reporter) = setup().await;
        reporter
            .set_service_status("shop.Orders", ServingStatus::Serving)
            .await;
        for _ in 0..20 {
            let resp = client.check(check("shop.Orders")).await.expect("check");
            assert_eq!(resp.get_ref().status, Wire::Serving as i32);
        }
        // The overall server status ("" service) is set by tonic-health.
        let resp = client.check(check("")).await.expect("check");
        assert_eq!(resp.get_ref().status, Wire::Serving as i32);

        // An unknown service: grpc-status NOT_FOUND, carried in the trailers.
        let err = client
            .check(check("shop.Unknown"))
            .await
            .expect_err("unknown service");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");

        reporter
            .set_service_status("shop.Orders", ServingStatus::NotServing)
            .await;
        let resp = client.check(check("shop.Orders")).await.expect("check");
        assert_eq!(resp.get_ref().status, Wire::NotServing as i32);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn server_streaming_delivers_messages_over_time() {
    tokio::time::timeout(LIMIT, async {
        let (mut client, reporter) = setup().await;
        reporter
            .set_service_status("shop.Orders", ServingStatus::Serving)
            .await;
        let mut stream = client
            .watch(check("shop.Orders"))
            .await
            .expect("watch")
            .into_inner();
        let next = |s: HealthCheckResponse| s.status;
        let first = stream.message().await.expect("message").expect("open");
        assert_eq!(next(first), Wire::Serving as i32);
        // Each change on the server arrives as its own message on the open stream.
        for (status, wire) in [
            (ServingStatus::NotServing, Wire::NotServing),
            (ServingStatus::Serving, Wire::Serving),
            (ServingStatus::NotServing, Wire::NotServing),
        ] {
            tokio::time::sleep(Duration::from_millis(100)).await;
            reporter.set_service_status("shop.Orders", status).await;
            let msg = stream.message().await.expect("message").expect("open");
            assert_eq!(next(msg), wire as i32);
        }
        // Several watchers at once share one HTTP/2 connection through the proxy.
        let mut others = Vec::new();
        for _ in 0..5 {
            others.push(
                client
                    .watch(check("shop.Orders"))
                    .await
                    .expect("watch")
                    .into_inner(),
            );
        }
        reporter
            .set_service_status("shop.Orders", ServingStatus::Serving)
            .await;
        for s in others.iter_mut().chain(std::iter::once(&mut stream)) {
            // A new watcher first sees the current status, then the change.
            let mut last = s.message().await.expect("message").expect("open").status;
            if last != Wire::Serving as i32 {
                last = s.message().await.expect("message").expect("open").status;
            }
            assert_eq!(last, Wire::Serving as i32);
        }
    })
    .await
    .expect("test timed out");
}

/// The wire view of one call: a raw HTTP/2 request through the proxy, so the test sees
/// where `grpc-status` travels (trailers after a message, or a trailers-only response).
#[tokio::test]
async fn grpc_status_travels_in_trailers() {
    tokio::time::timeout(LIMIT, async {
        let (addr, reporter) = grpc_backend().await;
        reporter
            .set_service_status("shop.Orders", ServingStatus::Serving)
            .await;
        let yaml = service_entry("orders", "GRPC", &[(addr.port(), "v1")]);
        let proxy = TestProxy::start(&yaml).await;
        let stream = tokio::net::TcpStream::connect(proxy.addr)
            .await
            .expect("connect");
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        let call = |service: &str| {
            // HealthCheckRequest { service }: field 1, length-delimited.
            let mut msg = vec![0x0a, service.len() as u8];
            msg.extend_from_slice(service.as_bytes());
            let mut frame = vec![0u8];
            frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            frame.extend_from_slice(&msg);
            http::Request::post(format!("{AUTHORITY}/grpc.health.v1.Health/Check"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(http_body_util::Full::new(bytes::Bytes::from(frame)))
                .expect("request")
        };
        use http_body_util::BodyExt;
        let resp = send
            .send_request(call("shop.Orders"))
            .await
            .expect("answer");
        assert_eq!(resp.status(), http::StatusCode::OK);
        assert!(resp.headers().get("grpc-status").is_none());
        let body = resp.into_body().collect().await.expect("body");
        let trailers = body.trailers().cloned().expect("trailers forwarded");
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"0"[..])
        );
        // 5-byte prefix + HealthCheckResponse { status: SERVING (1) }.
        assert_eq!(&body.to_bytes()[..], &[0, 0, 0, 0, 2, 0x08, 1]);

        let resp = send
            .send_request(call("shop.Unknown"))
            .await
            .expect("answer");
        let status = resp.headers().get("grpc-status").cloned();
        let body = resp.into_body().collect().await.expect("body");
        let status = status.or_else(|| body.trailers().and_then(|t| t.get("grpc-status").cloned()));
        assert_eq!(
            status.as_ref().map(|v| v.as_bytes()),
            Some(&b"5"[..]),
            "NOT_FOUND"
        );
    })
    .await
    .expect("test timed out");
}
