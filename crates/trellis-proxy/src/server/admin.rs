//! The admin endpoint (default 127.0.0.1:15000), with Envoy's paths so existing habits
//! and probes work: `/ready`, `/stats/prometheus`, `/config_dump`, `/clusters` and
//! `POST /quitquitquit`. Off the request path: it may allocate and format freely.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::store::ConfigStore;
use crate::runtime::Runtime;
use crate::telemetry::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, ProxyMetrics};

/// What the admin pages read.
pub struct AdminState {
    /// The serving configuration and reload history.
    pub store: Arc<ConfigStore>,
    /// The runtime in use (endpoint health for `/clusters`).
    pub runtime: watch::Receiver<Arc<Runtime>>,
    /// The registry behind `/stats/prometheus`.
    pub metrics: Arc<ProxyMetrics>,
    /// Set when the proxy drains: `/ready` answers 503 so load balancers stop sending.
    pub draining: AtomicBool,
    /// Set once a configuration serves (at once from a directory; after the control
    /// plane's first update over xDS): `/ready` answers 503 before.
    pub configured: AtomicBool,
    /// The xDS stream's state, when the configuration comes from a control plane.
    pub xds: Option<watch::Receiver<trellis_xds::client::ClientStatus>>,
    /// Notified by `/quitquitquit`.
    pub quit: Notify,
}

/// Which pages a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// Everything (the admin port, loopback only).
    Admin,
    /// Only `/healthz/ready` (Istio's health port 15021, which kubelet probes reach).
    Health,
}

/// Serves `pages` until the task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, pages: Pages) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move {
                    let resp = match pages {
                        Pages::Admin => route(&state, &req),
                        Pages::Health if req.uri().path() == "/healthz/ready" => {
                            route(&state, &req)
                        }
                        Pages::Health => {
                            text(StatusCode::NOT_FOUND, "only /healthz/ready here\n".into())
                        }
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn route(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let json = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "format=json"));
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/ready" | "/healthz/ready") => {
            if state.draining.load(Ordering::Relaxed) {
                text(StatusCode::SERVICE_UNAVAILABLE, "DRAINING\n".into())
            } else if !state.configured.load(Ordering::Acquire) {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "NOT READY: no configuration from the control plane yet\n".into(),
                )
            } else {
                text(StatusCode::OK, "LIVE\n".into())
            }
        }
        (&Method::GET, "/stats/prometheus") => {
            let mut out = String::with_capacity(16 * 1024);
            state.metrics.encode(&mut out);
            with_type(StatusCode::OK, METRICS_CONTENT_TYPE, out)
        }
        (&Method::GET, "/config_dump") => match serde_json::to_string_pretty(&config_dump(state)) {
            Ok(body) => with_type(StatusCode::OK, "application/json", body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        },
        (&Method::GET, "/clusters") => {
            let runtime = Arc::clone(&state.runtime.borrow());
            if json {
                match serde_json::to_string_pretty(&clusters_json(&runtime)) {
                    Ok(body) => with_type(StatusCode::OK, "application/json", body),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
                }
            } else {
                text(StatusCode::OK, clusters_text(&runtime))
            }
        }
        (&Method::POST, "/quitquitquit") => {
            state.quit.notify_one();
            text(StatusCode::OK, "OK\n".into())
        }
        (_, "/quitquitquit") => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into()),
        (_, "/") => text(StatusCode::OK, INDEX.into()),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("no admin page {}\n{INDEX}", req.uri().path()),
        ),
    }
}

const INDEX: &str = "admin commands are:\n  /ready: 200 LIVE when serving, 503 while draining\n  /stats/prometheus: metrics in Prometheus text format\n  /config_dump: the active configuration as JSON\n  /clusters: endpoints with health and ejection state (?format=json)\n  /quitquitquit (POST): exit\n";

/// The store's view plus, when the configuration comes from a control plane, the state
/// of the xDS stream.
fn config_dump(state: &AdminState) -> serde_json::Value {
    let mut v = serde_json::to_value(state.store.view()).unwrap_or(serde_json::Value::Null);
    if let (Some(rx), serde_json::Value::Object(map)) = (&state.xds, &mut v) {
        let status = rx.borrow().clone();
        map.insert(
            "xds".to_owned(),
            serde_json::to_value(status).unwrap_or(serde_json::Value::Null),
        );
    }
    v
}

/// Envoy's cluster name for a (service, subset, port): `outbound|port|subset|host`.
fn cluster_name(host: &str, subset: Option<&str>, port: u16) -> String {
    format!("outbound|{port}|{}|{host}", subset.unwrap_or(""))
}

/// Envoy's `/clusters` text: `cluster::address::stat::value` lines.
fn clusters_text(runtime: &Runtime) -> String {
    let mut out = String::new();
    for c in runtime.clusters() {
        for (port, backend) in c.set.ports() {
            let name = cluster_name(&c.host, c.subset.as_deref(), port);
            for ep in backend.endpoints() {
                let addr = ep.address();
                let health = if ep.is_healthy() {
                    "healthy"
                } else {
                    "/failed_outlier_check"
                };
                let _ = writeln!(out, "{name}::{addr}::health_flags::{health}");
                let _ = writeln!(out, "{name}::{addr}::weight::{}", ep.weight());
                let _ = writeln!(out, "{name}::{addr}::rq_active::{}", ep.outstanding());
            }
        }
    }
    out
}

#[derive(serde::Serialize)]
struct ClusterJson {
    name: String,
    service: String,
    subset: Option<String>,
    port: u16,
    endpoints: Vec<EndpointJson>,
}

#[derive(serde::Serialize)]
struct EndpointJson {
    address: String,
    weight: u32,
    healthy: bool,
    active_requests: u64,
}

fn clusters_json(runtime: &Runtime) -> Vec<ClusterJson> {
    let mut out = Vec::new();
    for c in runtime.clusters() {
        for (port, backend) in c.set.ports() {
            out.push(ClusterJson {
                name: cluster_name(&c.host, c.subset.as_deref(), port),
                service: c.host.clone(),
                subset: c.subset.clone(),
                port,
                endpoints: backend
                    .endpoints()
                    .iter()
                    .map(|ep| EndpointJson {
                        address: ep.address().to_owned(),
                        weight: ep.weight(),
                        healthy: ep.is_healthy(),
                        active_requests: ep.outstanding(),
                    })
                    .collect(),
            });
        }
    }
    out
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp
}
