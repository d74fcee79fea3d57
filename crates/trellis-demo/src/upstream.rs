//! Calls to the configured upstreams, made for every inbound request. Each call's answer
//! becomes one entry of the response's `upstream` array: the upstream's own JSON when it
//! answered 2xx with JSON (so a chain of demo services nests naturally), otherwise an
//! object saying what went wrong, so a failure deep in the chain is visible at the edge.

mod connector;

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response, Uri};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::value::RawValue;
use tokio::task::JoinSet;

use crate::DemoConfig;
use crate::answer::{Body, Entry, Failure};
use connector::OutboundConnector;

/// Upstream answers larger than this are refused: the demo nests them in its own answer,
/// and a runaway chain should fail visibly rather than grow without bound.
const MAX_BODY: usize = 1 << 20;

/// How much of a non-JSON body an error entry quotes.
const QUOTE_CHARS: usize = 256;

/// The response header the trellis proxy sets on answers it generated itself (`UF`, `NR`,
/// `UT`, …): quoted in error entries so the cause of a mesh failure shows in the JSON.
const FLAGS_HEADER: &str = "x-trellis-flags";

/// The outcome of calling every upstream for one request.
pub(crate) struct CallResults {
    /// One entry per configured call, in the configured order.
    pub(crate) entries: Vec<Entry>,
    /// Whether any call failed (the demo then answers 502).
    pub(crate) failed: bool,
}

/// The configured calls and the pooled keep-alive client that makes them.
pub(crate) struct Upstreams {
    client: Client<OutboundConnector, Empty<Bytes>>,
    calls: Vec<Uri>,
    timeout: Duration,
    propagate: Vec<HeaderName>,
}

impl Upstreams {
    pub(crate) fn new(config: &DemoConfig) -> Upstreams {
        let client = Client::builder(TokioExecutor::new())
            // The timer lets the pool close connections idle longer than this; without one
            // idle connections would only be found dead when next used.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(OutboundConnector::new(config.outbound.clone()));
        Upstreams {
            client,
            calls: config.calls.clone(),
            timeout: config.call_timeout,
            propagate: config.propagate.clone(),
        }
    }

    /// Calls every upstream concurrently, copying the propagated headers of `inbound`.
    /// Dropping the future (the client went away) cancels the calls still running.
    pub(crate) async fn call_all(&self, inbound: &HeaderMap) -> CallResults {
        if self.calls.is_empty() {
            return CallResults {
                entries: Vec::new(),
                failed: false,
            };
        }
        let headers = self.propagated(inbound);
        let mut tasks = JoinSet::new();
        for (index, uri) in self.calls.iter().enumerate() {
            let call = call(
                self.client.clone(),
                uri.clone(),
                headers.clone(),
                self.timeout,
            );
            tasks.spawn(async move { (index, call.await) });
        }
        let mut outcomes: Vec<Option<Entry>> = Vec::new();
        outcomes.resize_with(self.calls.len(), || None);
        while let Some(joined) = tasks.join_next().await {
            // A call task cannot panic short of a bug; that call's slot then stays empty
            // and is reported below rather than taking the request down.
            if let Ok((index, entry)) = joined
                && let Some(slot) = outcomes.get_mut(index)
            {
                *slot = Some(entry);
            }
        }
        let entries: Vec<Entry> = outcomes
            .into_iter()
            .zip(&self.calls)
            .map(|(entry, uri)| {
                entry.unwrap_or_else(|| {
                    let error = "the call was aborted".to_owned();
                    Entry::Failure(Failure::new(uri.to_string(), None, error))
                })
            })
            .collect();
        let failed = entries.iter().any(Entry::is_failure);
        CallResults { entries, failed }
    }

    /// The inbound headers that travel on to upstreams (every value of each).
    fn propagated(&self, inbound: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for name in &self.propagate {
            for value in inbound.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
        out
    }
}

/// One GET, bounded by `timeout` from connecting to the last body byte.
async fn call(
    client: Client<OutboundConnector, Empty<Bytes>>,
    uri: Uri,
    headers: HeaderMap,
    timeout: Duration,
) -> Entry {
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| error_chain(&e))?;
        read_body(response).await
    };
    let url = uri.to_string();
    let (parts, body) = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(message)) => return Entry::Failure(Failure::new(url, None, message)),
        Err(_) => {
            let message = format!("timed out after {}", fmt_duration(timeout));
            return Entry::Failure(Failure::new(url, None, message));
        }
    };
    // Parsed as a `RawValue`: validated, but nested exactly as sent.
    let json = serde_json::from_slice::<Box<RawValue>>(&body).ok();
    let status = parts.status;
    let error = match (status.is_success(), json) {
        (true, Some(json)) => return Entry::Answer(json),
        (true, None) => "the answer is not JSON".to_owned(),
        (false, _) => format!("upstream answered {status}"),
    };
    let mut failure = Failure::new(url, Some(status.as_u16()), error);
    failure.flags = parts
        .headers
        .get(FLAGS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    failure.body = quote_body(&body);
    Entry::Failure(failure)
}

/// The response head and its whole body, up to [`MAX_BODY`].
async fn read_body(response: Response<Incoming>) -> Result<(http::response::Parts, Bytes), String> {
    let (parts, body) = response.into_parts();
    let collected = Limited::new(body, MAX_BODY).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            format!("the answer is larger than {MAX_BODY} bytes")
        } else {
            format!("reading the answer failed: {}", error_chain(e.as_ref()))
        }
    })?;
    Ok((parts, collected.to_bytes()))
}

/// What a failed answer said: its JSON when it is JSON (a failing demo upstream's own
/// answer nests), else the start of its text; nothing when it was empty.
fn quote_body(raw: &[u8]) -> Option<Body> {
    if let Ok(json) = serde_json::from_slice::<Box<RawValue>>(raw) {
        return Some(Body::Json(json));
    }
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut quoted: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        quoted.push('…');
    }
    Some(Body::Text(quoted))
}

/// An error and its causes on one line: hyper's own messages ("client error (Connect)")
/// say little without the OS error underneath.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// `250ms`, `5s` or `1.5s`, as the flags are written.
fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 && d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
