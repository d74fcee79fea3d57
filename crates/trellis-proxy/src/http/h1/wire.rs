//! A downstream HTTP/1.1 connection's socket and read buffer, shared between the
//! connection's loop and the body of the request in progress ([`WireBody`]), which reads
//! straight off it wherever it is polled (the forwarding path, a retry buffer, an HTTP/2
//! client's connection task). Neither holds the lock across an await.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::h1::{BodyDecoder, FramingError, Source};

/// What a downstream connection runs on (the accepted socket behind the listener's
/// timeouts), type-erased so that request bodies have one type.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The socket and what was read from it.
pub(super) struct Wire {
    pub(super) io: Box<dyn Io>,
    /// Bytes read and not yet consumed (the rest of a head, body bytes, a pipelined
    /// request).
    pub(super) read: BytesMut,
    /// The current request's body.
    pub(super) body: BodyDecoder,
    /// The number of the request `body` belongs to: a body left over from an earlier
    /// request reads nothing.
    pub(super) request: u64,
    /// Reading a request body failed: the connection cannot be trusted any more.
    pub(super) broken: bool,
}

impl Wire {
    pub(super) fn new(io: Box<dyn Io>) -> Wire {
        Wire {
            io,
            read: BytesMut::with_capacity(crate::h1::READ_CHUNK),
            body: BodyDecoder::Done,
            request: 0,
            broken: false,
        }
    }

    /// Gives the read buffer's memory back while the connection waits for its next
    /// request with nothing buffered (see [`super::RELEASE_IDLE_AFTER`]); the next read
    /// waits without a buffer.
    pub(super) fn release_buffer(&mut self) {
        debug_assert!(self.read.is_empty(), "released with bytes buffered");
        self.read = BytesMut::new();
    }
}

/// Bytes read onto the stack while the read buffer is released: enough for most request
/// heads, so one read usually brings the whole head into the new buffer.
const FIRST_READ: usize = 2 * 1024;

impl Source for Wire {
    fn buffer(&mut self) -> &mut BytesMut {
        &mut self.read
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() == 0 {
            // Released: wait for the next bytes without holding a heap buffer.
            let mut first = [0u8; FIRST_READ];
            let mut buf = ReadBuf::new(&mut first);
            ready!(Pin::new(&mut *self.io).poll_read(cx, &mut buf))?;
            let n = buf.filled().len();
            if n > 0 {
                self.read.reserve(crate::h1::READ_CHUNK);
                self.read.extend_from_slice(buf.filled());
            }
            return Poll::Ready(Ok(n));
        }
        crate::h1::poll_fill(&mut *self.io, &mut self.read, cx)
    }
}

/// The connection's state, shared with its current request body.
pub(super) type SharedWire = Arc<Mutex<Wire>>;

/// Locks the wire; a poisoned lock (a panic elsewhere) fails the connection.
pub(super) fn lock(wire: &SharedWire) -> io::Result<MutexGuard<'_, Wire>> {
    wire.lock()
        .map_err(|_| io::Error::other("connection state poisoned"))
}

/// The body of a request read by the HTTP/1.1 server, decoded off the connection as it
/// is polled.
pub struct WireBody {
    /// The connection until the body has ended (`None`: no body, or read to its end).
    wire: Option<SharedWire>,
    /// Which request of the connection this is.
    request: u64,
}

impl fmt::Debug for WireBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireBody")
            .field("request", &self.request)
            .field("ended", &self.wire.is_none())
            .finish()
    }
}

impl WireBody {
    /// A request without a body.
    pub(super) fn empty() -> WireBody {
        WireBody {
            wire: None,
            request: 0,
        }
    }

    /// The body of request number `request`, whose decoder is already in `wire`.
    pub(super) fn new(wire: SharedWire, request: u64) -> WireBody {
        WireBody {
            wire: Some(wire),
            request,
        }
    }
}

impl Body for WireBody {
    type Data = Bytes;
    type Error = FramingError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, FramingError>>> {
        let this = self.get_mut();
        let Some(shared) = &this.wire else {
            return Poll::Ready(None);
        };
        let mut w = lock(shared)?;
        if w.request != this.request {
            drop(w);
            this.wire = None;
            return Poll::Ready(None);
        }
        let mut decoder = w.body;
        let polled = decoder.poll_frame(&mut *w, cx);
        w.body = decoder;
        let ended = match &polled {
            Poll::Ready(Some(Err(_))) => {
                w.broken = true;
                true
            }
            Poll::Ready(_) => decoder.is_done(),
            Poll::Pending => false,
        };
        drop(w);
        if ended {
            this.wire = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.wire.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.wire {
            None => SizeHint::with_exact(0),
            Some(shared) => match shared.lock() {
                Ok(w) if w.request == self.request => w.body.size_hint(),
                _ => SizeHint::with_exact(0),
            },
        }
    }
}

/// A connection handed to hyper: the bytes already read come first.
pub(crate) struct Rewind {
    prefix: Bytes,
    io: Box<dyn Io>,
}

impl Rewind {
    pub(super) fn new(wire: Wire) -> Rewind {
        Rewind {
            prefix: wire.read.freeze(),
            io: wire.io,
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut *this.io).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix[..n]);
        this.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = &mut *self.get_mut().io;
        ready!(Pin::new(io).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }
}
