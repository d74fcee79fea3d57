//! The client's connector: connects to the upstream itself, or to the HTTP proxy when the
//! environment names one. A proxied connection is marked as such, which makes hyper's
//! client write absolute-form request lines (`GET http://inventory:8080/stock HTTP/1.1`)
//! on it, the form an HTTP proxy (and so an explicit-mode sidecar) expects.
//!
//! Connections are pooled by the request's scheme and authority; whether an authority goes
//! through the proxy never changes during the process's life, so a pooled connection is
//! always reused the way it was opened.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use http::uri::Authority;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::Outbound;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Failing to reach the proxy is named as such: "connection refused" alone would point at
/// the upstream, while it is the sidecar that is missing.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the HTTP proxy {proxy}")]
struct ProxyConnectError {
    proxy: Authority,
    #[source]
    source: BoxError,
}

#[derive(Clone)]
pub(crate) struct OutboundConnector {
    http: HttpConnector,
    outbound: Arc<Outbound>,
}

impl OutboundConnector {
    pub(crate) fn new(outbound: Outbound) -> OutboundConnector {
        let mut http = HttpConnector::new();
        // Small JSON requests and answers: waiting for Nagle's algorithm would only add
        // latency to every hop of the chain.
        http.set_nodelay(true);
        OutboundConnector {
            http,
            outbound: Arc::new(outbound),
        }
    }
}

impl Service<Uri> for OutboundConnector {
    type Response = OutboundIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<OutboundIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        let proxy = self.outbound.proxy_for(&destination).cloned();
        // HttpConnector is a cheap handle (its settings are shared); each call gets its own.
        let mut http = self.http.clone();
        Box::pin(async move {
            let Some(proxy) = proxy else {
                let io = http.call(destination).await?;
                return Ok(OutboundIo { io, proxied: false });
            };
            let proxy_uri = Uri::builder()
                .scheme("http")
                .authority(proxy.clone())
                .path_and_query("/")
                .build()?;
            match http.call(proxy_uri).await {
                Ok(io) => Ok(OutboundIo { io, proxied: true }),
                Err(e) => Err(ProxyConnectError {
                    proxy,
                    source: e.into(),
                }
                .into()),
            }
        })
    }
}

/// A TCP connection that remembers whether it leads to a proxy.
pub(crate) struct OutboundIo {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for OutboundIo {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

// Plain delegation: `OutboundIo` is `Unpin`, so pinning is only passed through.
impl Read for OutboundIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for OutboundIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
