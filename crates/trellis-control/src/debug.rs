//! The monitoring endpoint (Istio's 15014): `/metrics`, `/ready`, and the debug pages
//! `trellis status` reads.
//!
//! | path | answers |
//! |---|---|
//! | `/metrics` | control-plane metrics, Prometheus text |
//! | `/ready` | `200` once a configuration is served |
//! | `/debug/syncz` | JSON: every connected proxy, per resource type sent/ACKed/NACKed (like istiod's) |
//! | `/debug/config` | JSON: the configuration version, its warnings, the last refused change |
//! | `/debug/mesh` | JSON: the whole compiled mesh model |

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::registry::ProxyStatus;
use crate::server::ControlState;

/// `/debug/syncz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Syncz {
    /// Configuration version being served.
    pub version: String,
    /// Connected proxies.
    pub proxies: Vec<ProxyStatus>,
}

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<ControlState>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "monitoring accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(page(&state, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn page(state: &ControlState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/metrics" | "/stats/prometheus" => {
            respond(StatusCode::OK, METRICS_CONTENT_TYPE, state.metrics.encode())
        }
        "/ready" => text(StatusCode::OK, "ready\n"),
        "/debug/syncz" => {
            let version = state.snapshots.borrow().version_info();
            json(&Syncz {
                version,
                proxies: state.registry.statuses(),
            })
        }
        "/debug/config" => {
            let cfg = state
                .config
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            json(&cfg)
        }
        "/debug/mesh" => {
            let snap = Arc::clone(&state.snapshots.borrow());
            json(&*snap.mesh)
        }
        "/" => text(
            StatusCode::OK,
            "trellis control plane: /metrics /ready /debug/syncz /debug/config /debug/mesh\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Response<Full<Bytes>> {
    match serde_json::to_string_pretty(v) {
        Ok(body) => respond(StatusCode::OK, "application/json", body + "\n"),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.to_owned())
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}
