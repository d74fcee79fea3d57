//! Backends the telemetry tests need beyond `support`: one whose response streams slowly (so
//! a client can leave mid-body) and a gRPC server answering a status in its trailers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Serves `answer` for every request on a fresh port (HTTP/1.1 and h2c).
async fn serve<B, F>(answer: F) -> SocketAddr
where
    F: Fn() -> B + Clone + Send + Sync + 'static,
    B: Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| {
                    let body = answer();
                    async move { Ok::<_, Infallible>(Response::new(body)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A response body of `left` 1 KiB frames, 20 ms apart: long enough for a client to leave.
struct SlowBody {
    left: usize,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Body for SlowBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        ready!(self.sleep.as_mut().poll(cx));
        self.left -= 1;
        let next = tokio::time::Instant::now() + Duration::from_millis(20);
        self.sleep.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 1024])))))
    }
}

/// A backend whose responses stream for about ten seconds.
pub async fn streaming() -> SocketAddr {
    serve(|| SlowBody {
        left: 500,
        sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
    })
    .await
}

/// A gRPC response body: one message, then trailers with `grpc-status`.
pub struct GrpcBody {
    message: Option<Bytes>,
    status: Option<&'static str>,
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(m) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(m))));
        }
        Poll::Ready(self.status.take().map(|s| {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static(s));
            Ok(Frame::trailers(trailers))
        }))
    }
}

/// A gRPC server answering every call with an empty message and `grpc-status: status`.
pub async fn grpc(status: &'static str) -> SocketAddr {
    serve(move || GrpcBody {
        // An empty message: not compressed, length 0.
        message: Some(Bytes::from_static(&[0, 0, 0, 0, 0])),
        status: Some(status),
    })
    .await
}
