//! The listener: accepts connections, serves HTTP/1.1 or h2c (prior knowledge) on each, and
//! drains on shutdown (stop accepting, let requests in flight finish, then return).

mod handler;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::DemoConfig;
use crate::upstream::Upstreams;

/// Why the server could not start or stopped serving. The I/O error is the `source`
/// (printed by `{:#}` with anyhow, or by walking `Error::source`), not repeated here.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("accepting connections on {addr} failed")]
    Accept {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// State every connection and request shares.
pub(crate) struct App {
    pub(crate) config: DemoConfig,
    pub(crate) upstreams: Upstreams,
    http: auto::Builder<TokioExecutor>,
}

/// A bound demo server; [`DemoServer::run`] serves it.
pub struct DemoServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: Arc<App>,
}

/// Binds `config.listen` and serves until `shutdown` resolves, then drains.
pub async fn serve(
    config: DemoConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    DemoServer::bind(config).await?.run(shutdown).await
}

impl DemoServer {
    /// Binds the listening socket; requests are only served once [`DemoServer::run`] runs.
    /// Binding first lets a caller learn the port chosen for `:0` before serving.
    pub async fn bind(config: DemoConfig) -> Result<DemoServer, ServeError> {
        let addr = config.listen;
        let bind_error = |source| ServeError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let app = Arc::new(App {
            upstreams: Upstreams::new(&config),
            config,
            http: auto::Builder::new(TokioExecutor::new()),
        });
        Ok(DemoServer {
            listener,
            local_addr,
            app,
        })
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn config(&self) -> &DemoConfig {
        &self.app.config
    }

    /// Serves until `shutdown` resolves. Then the listener closes, idle connections close,
    /// HTTP/1.1 connections close after the answer in progress, HTTP/2 ones get GOAWAY and
    /// finish their streams; returns when all are done or after the drain timeout.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let DemoServer {
            listener,
            local_addr,
            app,
        } = self;
        let draining = watch::Sender::new(false);
        // Every connection task holds a clone of `open`; `closed` ends when the last one is
        // dropped, which is how the drain knows all connections are finished.
        let (open, mut closed) = mpsc::channel::<Infallible>(1);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let conn = serve_connection(
                        Arc::clone(&app),
                        stream,
                        peer,
                        draining.subscribe(),
                        open.clone(),
                    );
                    tokio::spawn(conn);
                }
                Err(e) if is_transient(&e) => {
                    // Out of descriptors or a connection reset before it was accepted:
                    // back off briefly instead of spinning or giving up.
                    tracing::warn!(error = %e, "accept failed, retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(source) => {
                    return Err(ServeError::Accept {
                        addr: local_addr,
                        source,
                    });
                }
            }
        }
        drop(listener);
        draining.send_replace(true);
        drop(open);
        let drain_timeout = app.config.drain_timeout;
        if tokio::time::timeout(drain_timeout, closed.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?drain_timeout,
                "requests still in flight after the drain timeout; stopping anyway"
            );
        }
        Ok(())
    }
}

async fn serve_connection(
    app: Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    mut draining: watch::Receiver<bool>,
    _open: mpsc::Sender<Infallible>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let handler_app = Arc::clone(&app);
    let service = service_fn(move |request| {
        let app = Arc::clone(&handler_app);
        async move { Ok::<_, Infallible>(handler::handle(&app, request).await) }
    });
    let conn = app.http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // The guard `wait_for` returns is dropped at once: it is not `Send`.
        () = async { drop(draining.wait_for(|d| *d).await) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Accept errors that concern one connection or a passing shortage of resources; anything
/// else means the listener itself is broken.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || e.raw_os_error().is_some_and(|code| {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: descriptors or memory run out for a moment.
        matches!(code, 24 | 23 | 105 | 12)
    })
}
