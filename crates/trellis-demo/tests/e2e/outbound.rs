//! Where calls go (directly, or through an HTTP proxy as to an explicit-mode sidecar) and
//! which headers travel with them.

use std::collections::HashMap;

use tokio::sync::mpsc::error::TryRecvError;
use trellis_demo::DemoFlags;

use crate::support::{closed_port, get, recording_proxy, recording_upstream, service, start};

fn calling(calls: &[&str]) -> DemoFlags {
    DemoFlags {
        service: Some("orders".into()),
        calls: calls.iter().map(|c| (*c).to_owned()).collect(),
        ..DemoFlags::default()
    }
}

#[tokio::test]
async fn trellis_outbound_sends_absolute_form_requests_to_the_proxy() {
    let inventory = service("inventory", "v1", &[]).await;
    let routes = HashMap::from([("inventory:8080".to_owned(), inventory.addr)]);
    let (proxy, mut seen) = recording_proxy(routes).await;
    // `inventory` resolves nowhere: only the proxy knows where it is, as in a mesh.
    let proxy_value = proxy.to_string();
    let env = [
        ("TRELLIS_OUTBOUND", proxy_value.as_str()),
        ("HTTP_PROXY", "http://127.0.0.1:1"),
    ];
    let orders = start(calling(&["http://inventory:8080/stock?sku=7"]), &env).await;

    let answer = get(orders.addr, "/orders", &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["upstream"][0]["service"], "inventory");
    let recorded = seen.try_recv().expect("the call went through the proxy");
    assert_eq!(
        recorded.request_line,
        "GET http://inventory:8080/stock?sku=7 HTTP/1.1"
    );
    assert_eq!(recorded.header("host"), Some("inventory:8080"));
}

#[tokio::test]
async fn http_proxy_is_used_and_no_proxy_bypasses_it() {
    let inventory = service("inventory", "v1", &[]).await;
    let payments = service("payments", "v1", &[]).await;
    let routes = HashMap::from([("inventory".to_owned(), inventory.addr)]);
    let (proxy, mut seen) = recording_proxy(routes).await;
    let proxy_url = format!("http://{proxy}");
    let payments_url = payments.url("/pay");
    let env = [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ];
    // Port 80 is implied: the Host header then carries no port, as curl would send it.
    let orders = start(calling(&["http://inventory/stock", &payments_url]), &env).await;

    let answer = get(orders.addr, "/", &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["upstream"][0]["service"], "inventory", "{body}");
    assert_eq!(body["upstream"][1]["service"], "payments", "{body}");
    let recorded = seen.try_recv().expect("inventory went through the proxy");
    assert_eq!(recorded.request_line, "GET http://inventory/stock HTTP/1.1");
    assert_eq!(recorded.header("host"), Some("inventory"));
    // Both calls are answered, so a proxied payments call would have been recorded already.
    assert!(
        matches!(seen.try_recv(), Err(TryRecvError::Empty)),
        "127.0.0.1 is in NO_PROXY"
    );
}

#[tokio::test]
async fn a_missing_proxy_is_named_in_the_error() {
    let closed = closed_port();
    let proxy = format!("127.0.0.1:{}", closed.port());
    let env = [("TRELLIS_OUTBOUND", proxy.as_str())];
    let orders = start(calling(&["http://inventory:8080/stock"]), &env).await;
    let answer = get(orders.addr, "/", &[]).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let body = answer.json();
    let error = body["upstream"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("HTTP proxy {proxy}")), "{body}");
}

#[tokio::test]
async fn trace_and_routing_headers_reach_the_upstream_through_every_hop() {
    let (recorder, mut seen) = recording_upstream(200, "application/json", "{}").await;
    let orders = service("orders", "v2", &[format!("http://{recorder}/inventory")]).await;
    let frontend = service("frontend", "v1", &[orders.url("/orders")]).await;

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [
        ("x-request-id", "req-42"),
        ("traceparent", traceparent),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("canary", "true"),
        ("x-user", "alice"),
        ("x-not-propagated", "1"),
    ];
    let answer = get(frontend.addr, "/", &headers).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let recorded = seen.try_recv().expect("the chain reached the recorder");
    assert_eq!(recorded.header("x-request-id"), Some("req-42"));
    assert_eq!(recorded.header("traceparent"), Some(traceparent));
    assert_eq!(
        recorded.header("x-b3-traceid"),
        Some("80f198ee56343ba864fe8b2a57d3eff7")
    );
    assert_eq!(recorded.header("canary"), Some("true"));
    assert_eq!(recorded.header("x-user"), Some("alice"));
    assert_eq!(recorded.header("x-not-propagated"), None);
}

#[tokio::test]
async fn propagate_replaces_the_default_routing_headers() {
    let (recorder, mut seen) = recording_upstream(200, "application/json", "{}").await;
    let flags = DemoFlags {
        calls: vec![format!("http://{recorder}/")],
        propagate: vec!["X-Tenant".into()],
        ..DemoFlags::default()
    };
    let server = start(flags, &[]).await;
    let headers = [
        ("x-tenant", "acme"),
        ("canary", "true"),
        ("x-request-id", "r1"),
    ];
    assert_eq!(get(server.addr, "/", &headers).await.status, 200);
    let recorded = seen.try_recv().expect("called");
    assert_eq!(recorded.header("x-tenant"), Some("acme"));
    assert_eq!(recorded.header("x-request-id"), Some("r1"));
    assert_eq!(recorded.header("canary"), None);
}
