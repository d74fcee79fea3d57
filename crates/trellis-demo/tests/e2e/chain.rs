//! Chains of demo services: nesting, failures visible at the edge, h2c, draining.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use trellis_demo::DemoFlags;

use crate::support::{
    PATIENCE, closed_port, gated_upstream, get, recording_upstream, service, silent_upstream, start,
};

#[tokio::test]
async fn a_chain_of_services_nests_every_answer() {
    let inventory = service("inventory", "v1", &[]).await;
    let payments = service("payments", "v3", &[]).await;
    let orders = service(
        "orders",
        "v2",
        &[inventory.url("/stock"), payments.url("/pay?amount=3")],
    )
    .await;
    let frontend = service("frontend", "v1", &[orders.url("/orders")]).await;

    let answer = get(frontend.addr, "/shop", &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let expected = json!({
        "service": "frontend", "version": "v1", "pod": "frontend-v1-pod", "path": "/shop",
        "upstream": [{
            "service": "orders", "version": "v2", "pod": "orders-v2-pod", "path": "/orders",
            "upstream": [
                {"service": "inventory", "version": "v1", "pod": "inventory-v1-pod",
                 "path": "/stock", "upstream": []},
                {"service": "payments", "version": "v3", "pod": "payments-v3-pod",
                 "path": "/pay", "upstream": []},
            ],
        }],
    });
    assert_eq!(answer.json(), expected);
    // Keys in reading order at every level, upstream answers nested as they were sent.
    let reading_order = concat!(
        r#"{"service":"frontend","version":"v1","pod":"frontend-v1-pod","path":"/shop","#,
        r#""upstream":[{"service":"orders","version":"v2","#
    );
    assert!(answer.body.starts_with(reading_order), "{}", answer.body);

    // Again, over the same pooled upstream connections: same answer.
    assert_eq!(get(frontend.addr, "/shop", &[]).await.json(), expected);

    for server in [frontend, orders, payments, inventory] {
        server.stop().await.expect("clean stop");
    }
}

#[tokio::test]
async fn healthz_answers_ok_without_calling_anyone() {
    let closed = closed_port();
    let down = format!("http://127.0.0.1:{}/", closed.port());
    let flags = DemoFlags {
        calls: vec![down],
        fail_rate: Some("1".into()),
        latency: Some("10s".into()),
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    let answer = get(server.addr, "/healthz", &[]).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn a_down_upstream_gives_502_naming_its_url() {
    let closed = closed_port();
    let down = format!("http://127.0.0.1:{}/stock", closed.port());
    let payments = service("payments", "v1", &[]).await;
    let orders = service("orders", "v1", &[down.clone(), payments.url("/pay")]).await;
    let frontend = service("frontend", "v1", &[orders.url("/orders")]).await;

    let answer = get(orders.addr, "/orders", &[]).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["service"], "orders");
    let failed = &body["upstream"][0];
    assert_eq!(failed["url"], down, "{body}");
    assert!(failed["status"].is_null(), "{body}");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    // The healthy upstream's answer is still there.
    assert_eq!(body["upstream"][1]["service"], "payments", "{body}");

    // One hop further out, the failure is still visible, with the orders answer inside.
    let answer = get(frontend.addr, "/", &[]).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let body = answer.json();
    let entry = &body["upstream"][0];
    assert_eq!(entry["url"], orders.url("/orders"), "{body}");
    assert_eq!(entry["status"], 502, "{body}");
    assert_eq!(entry["body"]["upstream"][0]["url"], down, "{body}");
}

#[tokio::test]
async fn non_json_and_slow_upstreams_are_failures() {
    let (text_addr, _heads) = recording_upstream(200, "text/plain", "hello").await;
    let (teapot_addr, _heads2) = recording_upstream(503, "text/plain", "no healthy upstream").await;
    let silent = silent_upstream().await;
    let flags = DemoFlags {
        calls: vec![
            format!("http://{text_addr}/"),
            format!("http://{teapot_addr}/"),
            format!("http://{silent}/slow"),
        ],
        call_timeout: Some("300ms".into()),
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    let answer = get(server.addr, "/", &[]).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let body = answer.json();
    let [text, unavailable, slow] = [0, 1, 2].map(|i| &body["upstream"][i]);
    assert_eq!(text["status"], 200, "{body}");
    assert_eq!(text["body"], "hello", "{body}");
    assert!(text["error"].as_str().is_some_and(|e| e.contains("JSON")));
    assert_eq!(unavailable["status"], 503, "{body}");
    assert_eq!(unavailable["body"], "no healthy upstream", "{body}");
    assert_eq!(slow["url"], format!("http://{silent}/slow"));
    assert!(slow["status"].is_null(), "{body}");
    assert_eq!(slow["error"], "timed out after 300ms", "{body}");
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let server = service("orders", "v1", &[]).await;
    let stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let request = http::Request::get(server.url("/over-h2"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let exchange = async {
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
    };
    let body = tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("in time");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["path"], "/over-h2");
    assert_eq!(json["service"], "orders");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let (gated, mut arrived, gate) = gated_upstream().await;
    let flags = DemoFlags {
        calls: vec![format!("http://{gated}/")],
        call_timeout: Some("60s".into()),
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/slow", &[]).await });
    // The upstream call has started, so the request is in flight at the demo server.
    tokio::time::timeout(PATIENCE, arrived.recv())
        .await
        .expect("the call arrives in time")
        .expect("the call arrives");
    let stopping = tokio::spawn(server.stop());
    // The listener closes first ...
    let refused = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, refused)
        .await
        .expect("stops accepting");
    // ... and the request in flight still gets its answer.
    gate.add_permits(1);
    let answer = in_flight.await.expect("request task");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["upstream"][0], serde_json::json!({}));
    stopping
        .await
        .expect("stop task")
        .expect("a clean stop after the drain");
}
