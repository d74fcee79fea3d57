//! One request: `/healthz` answers at once; anything else waits out the injected latency,
//! may fail on purpose, calls the upstreams and answers with the JSON that names this
//! service and nests what the upstreams said.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::App;
use crate::answer::{Injected, Served, to_json};

/// The readiness path: always 200 with no faults and no calls, so a probe reports whether
/// the process serves, not whether injected failures or upstreams happen to succeed.
const HEALTH_PATH: &str = "/healthz";

pub(super) async fn handle(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let response = if request.uri().path() == HEALTH_PATH {
        text(StatusCode::OK, "ok")
    } else {
        answer(app, &request).await
    };
    tracing::debug!(
        method = %request.method(),
        path = %request.uri().path(),
        version = ?request.version(),
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request",
    );
    response
}

async fn answer(app: &App, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let config = &app.config;
    let delay = delay(config.latency, config.latency_jitter, rand::random());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // `random()` is uniform on [0, 1): a rate of 0 never fails and a rate of 1 always does.
    if config.fail_rate > 0.0 && rand::random::<f64>() < config.fail_rate {
        let body = Injected {
            service: &config.service,
            version: &config.version,
            pod: &config.pod,
            error: "injected failure",
        };
        return json_response(config.fail_status, to_json(&body));
    }
    let results = app.upstreams.call_all(request.headers()).await;
    let body = Served {
        service: &config.service,
        version: &config.version,
        pod: &config.pod,
        path: request.uri().path(),
        upstream: &results.entries,
    };
    // 502 like a gateway whose upstream failed: a caller (or a sidecar's retry policy and
    // metrics) sees the failure without parsing the body, and the body says where.
    let status = if results.failed {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    json_response(status, to_json(&body))
}

/// `latency` plus `random` (in [0, 1)) times `jitter`.
fn delay(latency: Duration, jitter: Duration, random: f64) -> Duration {
    if jitter.is_zero() {
        latency
    } else {
        latency.saturating_add(jitter.mul_f64(random.clamp(0.0, 1.0)))
    }
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_latency_plus_a_share_of_the_jitter() {
        let ms = Duration::from_millis;
        assert_eq!(delay(ms(200), Duration::ZERO, 0.9), ms(200));
        assert_eq!(delay(ms(200), ms(100), 0.0), ms(200));
        assert_eq!(delay(ms(200), ms(100), 0.5), ms(250));
        assert!(delay(ms(200), ms(100), 0.999_999) < ms(300));
        assert_eq!(delay(Duration::ZERO, ms(100), 0.25), ms(25));
    }
}
