//! Reporting each request once it is over: Istio's request metrics, the proxy's retry and
//! overflow counters, and the access-log line.
//!
//! An [`Observation`] starts when the request arrives and travels inside the response body
//! ([`ObservedBody`]), so it sees the last byte leave (or the client go away): it records when
//! the body ends, or — if the body or the request future is dropped before that — records the
//! request as a downstream disconnect (`DC`). Nothing here formats a string or takes a lock in
//! the steady state: label sets come prepared from the backend, and access-log facts are
//! reference-counted clones handed to the writer thread.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use ::http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use ::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, Version};
use bytes::Buf;
use http_body_util::Either;
use hyper::body::{Body, Frame, SizeHint};

use super::body::ClientBody;
use super::{Exchange, HttpProxy, ProxyBody};
use crate::h1::{FieldKind, RawHead, RawHeadSource};
use crate::telemetry::access_log::LogEntry;
use crate::telemetry::flags::ResponseFlag;
use crate::telemetry::metrics::{RequestOutcome, RequestProtocol};
use crate::telemetry::{RequestId, request_id};

/// The request facts an access-log line needs, captured only when the log is on.
struct RequestFacts {
    start_time: SystemTime,
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    version: Version,
    request_id: RequestId,
    user_agent: Option<HeaderValue>,
}

/// One request being reported; records exactly once (on [`Observation::finish`] or drop).
pub(super) struct Observation {
    /// The listener (its telemetry), also borrowed by the forwarding path.
    pub(super) proxy: Arc<HttpProxy>,
    /// What forwarding learned; filled in place.
    pub(super) exchange: Exchange,
    started: Instant,
    protocol: RequestProtocol,
    /// HEAD responses carry no body: an unpolled body is not a disconnect.
    head: bool,
    /// The response body was empty from the start (hyper may never poll it).
    empty: bool,
    /// Request head size (as HTTP/1.1 text) plus declared body length.
    request_bytes: u64,
    request_body_bytes: u64,
    /// 0 until a response exists.
    status: u16,
    response_head_bytes: u64,
    response_body_bytes: u64,
    grpc_status: Option<u16>,
    /// Boxed: the observation rides in every response by value, and most run without a log.
    log: Option<Box<RequestFacts>>,
    done: bool,
}

impl Observation {
    /// Starts observing `req` from `peer`. With the access log on, it also settles the
    /// request id here (validating or generating `x-request-id`, as forwarding would) so the
    /// logged id is the one the upstream sees.
    pub(super) fn start(
        proxy: Arc<HttpProxy>,
        req: &mut Request<ClientBody>,
        peer: std::net::SocketAddr,
    ) -> Observation {
        let headers = req.headers();
        let grpc = headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let body = req.body().size_hint().lower();
        let head = req.uri().path_and_query().map_or(1, |p| p.as_str().len())
            + req.method().as_str().len()
            + 12;
        let request_bytes = head as u64 + headers_len(headers) + body;
        let log = proxy.telemetry.access_log_enabled().then(|| {
            let id = RequestId::from_request(req.headers());
            req.headers_mut()
                .insert(&request_id::HEADER, id.header_value().clone());
            Box::new(RequestFacts {
                start_time: SystemTime::now(),
                method: req.method().clone(),
                uri: req.uri().clone(),
                host: req.headers().get(HOST).cloned(),
                version: req.version(),
                request_id: id,
                user_agent: req.headers().get(USER_AGENT).cloned(),
            })
        });
        Observation {
            exchange: Exchange {
                peer: Some(peer),
                ..Exchange::default()
            },
            started: Instant::now(),
            protocol: if grpc {
                RequestProtocol::Grpc
            } else {
                RequestProtocol::Http
            },
            head: req.method() == Method::HEAD,
            empty: false,
            request_bytes,
            request_body_bytes: body,
            status: 0,
            response_head_bytes: 0,
            response_body_bytes: 0,
            grpc_status: None,
            log,
            done: false,
            proxy,
        }
    }

    /// Notes the response (status, flag of a local reply, gRPC status in its headers) and
    /// moves this observation into its body, which records when it ends.
    pub(super) fn respond(
        mut self,
        resp: Response<ProxyBody>,
    ) -> Response<ObservedBody<ProxyBody>> {
        self.empty = resp.body().is_end_stream();
        if let Some(flag) = resp.extensions().get::<ResponseFlag>() {
            self.exchange.flags.insert(*flag);
        }
        self.status = resp.status().as_u16();
        // An upstream's fields may still be the bytes they came in (see `RawHead`).
        let raw = match resp.body() {
            Either::Left(upstream) => upstream.raw_head(),
            Either::Right(_) => None,
        };
        self.response_head_bytes =
            17 + headers_len(resp.headers()) + raw.map_or(0, RawHead::forwarded_len);
        if self.protocol == RequestProtocol::Grpc {
            self.grpc_status = raw
                .and_then(|r| r.first(FieldKind::GrpcStatus))
                .and_then(grpc_status_bytes)
                .or_else(|| grpc_status(resp.headers()));
        }
        resp.map(|inner| ObservedBody {
            inner,
            obs: self,
            ended: false,
        })
    }

    /// Records the request once; `disconnected` adds `DC` (the client left before the end).
    fn finish(&mut self, disconnected: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let ex = &mut self.exchange;
        if disconnected {
            ex.flags
                .insert(ResponseFlag::DownstreamConnectionTermination);
        }
        let duration = self.started.elapsed();
        let telemetry = &self.proxy.telemetry;
        let metrics = telemetry.metrics();
        let labels = match &ex.inbound {
            Some(inbound) => Cow::Owned(telemetry.inbound_labels(
                ex.service.as_ref(),
                inbound.caller.as_ref(),
                self.protocol,
            )),
            None => telemetry.labels(
                ex.backend.as_deref().map(|b| b.labels()),
                ex.service.as_ref(),
                ex.endpoint,
                self.protocol,
            ),
        };
        metrics.record_request(
            &labels,
            &RequestOutcome {
                response_code: self.status,
                grpc_status: self.grpc_status,
                flags: ex.flags,
                duration,
                request_bytes: self.request_bytes,
                response_bytes: self.response_head_bytes + self.response_body_bytes,
            },
        );
        metrics.record_retries(u64::from(ex.attempts.saturating_sub(1)));
        if ex.flags.contains(ResponseFlag::UpstreamOverflow) {
            metrics.record_upstream_overflow();
        }
        let Some(facts) = self.log.take().map(|f| *f) else {
            return;
        };
        let upstream_host = match (&ex.backend, ex.endpoint, &ex.inbound) {
            (Some(b), Some(i), _) => b.labels().address(i).cloned(),
            (_, _, Some(inbound)) if ex.attempts > 0 => Some(Arc::clone(&inbound.app)),
            _ => None,
        };
        telemetry.log(LogEntry {
            start_time: facts.start_time,
            method: facts.method,
            uri: facts.uri,
            host: facts.host,
            version: facts.version,
            status: self.status,
            flags: ex.flags,
            via_upstream: ex.attempts > 0 && self.status != 0,
            bytes_received: self.request_body_bytes,
            bytes_sent: self.response_body_bytes,
            duration,
            upstream_host,
            upstream_service: ex.service.clone(),
            attempts: ex.attempts,
            request_id: facts.request_id,
            user_agent: facts.user_agent,
            peer: ex.peer,
            route: ex.route.clone(),
        });
    }
}

impl Drop for Observation {
    /// Still unrecorded here means the request future was cancelled before a response
    /// existed: the client went away (hyper drops the service future).
    fn drop(&mut self) {
        self.finish(true);
    }
}

/// A response body that reports its request when it is dropped: by then whoever wrote it
/// has sent its last bytes, so recording (metrics, access log) stays off the response's
/// path and the duration covers the whole response, as Envoy's does.
pub(super) struct ObservedBody<B> {
    inner: B,
    obs: Observation,
    /// The body reached its end (or the upstream broke it off): not a client disconnect.
    ended: bool,
}

impl<B> Body for ObservedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.obs.response_body_bytes += data.remaining() as u64;
                } else if let Some(trailers) = frame.trailers_ref()
                    && this.obs.protocol == RequestProtocol::Grpc
                {
                    this.obs.grpc_status = grpc_status(trailers).or(this.obs.grpc_status);
                }
                this.ended |= this.inner.is_end_stream();
            }
            Some(Err(_)) => {
                // The upstream broke off mid-body: the client gets a truncated response.
                this.obs
                    .exchange
                    .flags
                    .insert(ResponseFlag::UpstreamConnectionTermination);
                this.ended = true;
            }
            None => this.ended = true,
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: RawHeadSource> RawHeadSource for ObservedBody<B> {
    fn take_raw_head(&mut self) -> Option<RawHead> {
        self.inner.take_raw_head()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        // Dropped before its end: the connection went away mid-response. A body that never
        // needed polling (empty, or a HEAD response) is complete.
        let complete = self.ended || self.obs.head || self.obs.empty;
        self.obs.finish(!complete);
    }
}

/// Header block size as HTTP/1.1 text (`name: value\r\n`), the size Istio's byte metrics use.
fn headers_len(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
        .sum::<u64>()
        + 2
}

/// The `grpc-status` header's name.
pub(super) static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// `grpc-status` as a number, when present and valid.
pub(super) fn grpc_status<N: std::str::FromStr>(headers: &HeaderMap) -> Option<N> {
    grpc_status_value(headers.get(&GRPC_STATUS)?)
}

/// A `grpc-status` value as a number.
pub(super) fn grpc_status_value<N: std::str::FromStr>(value: &HeaderValue) -> Option<N> {
    grpc_status_bytes(value.as_bytes())
}

/// A `grpc-status` value's bytes as a number.
pub(super) fn grpc_status_bytes<N: std::str::FromStr>(value: &[u8]) -> Option<N> {
    std::str::from_utf8(value).ok()?.parse().ok()
}
