//! The body of a request as the client sends it: read by hyper (HTTP/2, and HTTP/1.1
//! connections hyper serves) or by our own HTTP/1.1 server straight off the connection
//! ([`h1::WireBody`](super::h1::WireBody)).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::h1::WireBody;
use crate::h1::FramingError;

/// A client's request body.
#[derive(Debug)]
pub enum ClientBody {
    /// Read by hyper.
    Hyper(Incoming),
    /// Read by the proxy's HTTP/1.1 server.
    Wire(WireBody),
}

/// Why reading a client's request body failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// hyper's reading failed (the client went away, bad framing).
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The HTTP/1.1 server's reading failed (the client went away, bad chunking).
    #[error(transparent)]
    Wire(#[from] FramingError),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        match self.get_mut() {
            ClientBody::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(ClientBodyError::from))),
            ClientBody::Wire(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(ClientBodyError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(b) => b.is_end_stream(),
            ClientBody::Wire(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(b) => b.size_hint(),
            ClientBody::Wire(b) => b.size_hint(),
        }
    }
}
