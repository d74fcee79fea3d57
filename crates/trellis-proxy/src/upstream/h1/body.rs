//! The body of an HTTP/1.1 upstream response, read straight off its connection by
//! whoever polls it (the downstream connection's task): no task of its own, no channel.
//! Once the last byte is read the connection goes back to its pool, before the last
//! frame is handed out, so a consumer that stops at `is_end_stream` loses nothing.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncWriteExt, copy_bidirectional};
use tokio::net::TcpStream;

use super::codec::ResponseFraming;
use super::{Conn, Error, Home};
use crate::h1::{BodyDecoder, RawHead};

/// An HTTP/1.1 response body streaming from its upstream connection.
#[derive(Debug)]
pub struct ResponseBody {
    /// Where reading the body stands.
    decoder: BodyDecoder,
    /// `101 Switching Protocols`: the connection carries another protocol now;
    /// [`ResponseBody::take_upgrade`] hands it over.
    upgrade: bool,
    /// The connection while bytes of this body remain to be read (or, for an upgrade,
    /// until it is taken).
    conn: Option<Box<Conn>>,
    /// Where the connection goes back once the body is read; `None`: it is closed then.
    home: Option<Home>,
    /// The response's header fields while they are still the bytes they came in (the
    /// response's header map holds what was added on the way). Boxed: the response is
    /// moved through every layer of the forwarding path, a pointer is cheaper to move.
    head: Option<Box<RawHead>>,
}

impl ResponseBody {
    /// The body framed by `framing` on `conn`; the connection returns to `home` after it
    /// (when there is one: `None` closes it). `head`: the response's fields, when they
    /// are not in its header map.
    pub(super) fn new(
        framing: ResponseFraming,
        conn: Box<Conn>,
        home: Option<Home>,
        head: Option<RawHead>,
    ) -> Self {
        let decoder = match framing {
            ResponseFraming::Empty | ResponseFraming::Upgrade => BodyDecoder::Done,
            ResponseFraming::Length(n) => BodyDecoder::length(n),
            ResponseFraming::Chunked => BodyDecoder::ChunkSize,
            ResponseFraming::UntilClose => BodyDecoder::UntilClose,
        };
        let mut body = ResponseBody {
            decoder,
            upgrade: framing == ResponseFraming::Upgrade,
            conn: Some(conn),
            home,
            head: head.map(Box::new),
        };
        if body.decoder.is_done() && !body.upgrade {
            body.finish();
        }
        body
    }

    /// Keeps `headers`' storage (cleared) for the connection's next response head when
    /// it has none, as a request head lent to the connection cannot be recycled by it.
    pub fn keep_spare_headers(&mut self, headers: ::http::HeaderMap) {
        if let Some(conn) = &mut self.conn
            && conn.spare.is_none()
        {
            crate::h1::recycle(&mut conn.spare, headers);
        }
    }

    /// The response's header fields when they are still in the bytes they came in.
    pub(crate) fn raw_head(&self) -> Option<&RawHead> {
        self.head.as_deref()
    }

    /// Takes the response's header fields kept as bytes (once).
    pub(crate) fn take_raw_head(&mut self) -> Option<RawHead> {
        self.head.take().map(|head| *head)
    }

    /// The upgraded connection of a `101 Switching Protocols` response (once).
    pub fn take_upgrade(&mut self) -> Option<Upgraded> {
        if !self.upgrade {
            return None;
        }
        self.upgrade = false;
        self.conn.take().map(|conn| Upgraded {
            io: conn.io,
            read: conn.read,
        })
    }

    /// The body has been read to its end: the connection goes home (or is closed).
    fn finish(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some(home)) = (conn, self.home.take()) {
            home.release(conn);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_deref_mut() else {
            return Poll::Ready(None);
        };
        if this.upgrade {
            return Poll::Ready(None);
        }
        let next = ready!(this.decoder.poll_frame(conn, cx));
        match &next {
            Some(Err(_)) => {
                // A broken body: the connection is in an unknown state, close it.
                this.decoder = BodyDecoder::Done;
                this.conn = None;
            }
            // Read to its end before the last frame is handed out: a consumer that stops
            // at `is_end_stream` loses nothing and the connection is home already.
            _ if this.decoder.is_done() => this.finish(),
            _ => {}
        }
        Poll::Ready(next.map(|r| r.map_err(Error::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done() || self.conn.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.upgrade || self.conn.is_none() {
            return SizeHint::with_exact(0);
        }
        self.decoder.size_hint()
    }
}

/// A connection taken over after `101 Switching Protocols`, with any bytes the server
/// sent after its response head.
#[derive(Debug)]
pub struct Upgraded {
    io: TcpStream,
    read: BytesMut,
}

impl Upgraded {
    /// Copies bytes both ways between `other` and this connection until one side closes;
    /// returns the bytes sent to and received from the upstream.
    pub async fn tunnel<T>(mut self, other: &mut T) -> std::io::Result<(u64, u64)>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let early = self.read.len() as u64;
        if early > 0 {
            other.write_all(&self.read).await?;
        }
        let (sent, received) = copy_bidirectional(other, &mut self.io).await?;
        Ok((sent, received + early))
    }
}
