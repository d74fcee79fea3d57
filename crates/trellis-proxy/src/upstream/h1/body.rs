//! The body of an HTTP/1.1 upstream response, read straight off its connection by
//! whoever polls it (the downstream connection's task): no task of its own, no channel.
//! Once the last byte is read the connection goes back to its pool, before the last
//! frame is handed out, so a consumer that stops at `is_end_stream` loses nothing.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncWriteExt, copy_bidirectional};
use tokio::net::TcpStream;

use super::codec::{self, ResponseFraming};
use super::{Conn, Error, Home};

/// An HTTP/1.1 response body streaming from its upstream connection.
#[derive(Debug)]
pub struct ResponseBody {
    state: State,
    /// The connection while bytes of this body remain to be read (or, for an upgrade,
    /// until it is taken).
    conn: Option<Box<Conn>>,
    /// Where the connection goes back once the body is read; `None`: it is closed then.
    home: Option<Home>,
}

#[derive(Debug)]
enum State {
    /// Nothing (more) to read.
    Done,
    /// This many body bytes remain.
    Length(u64),
    /// Chunked: at a chunk-size line.
    ChunkSize,
    /// Chunked: this many bytes of the current chunk remain, then its CRLF.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data.
    ChunkEnd,
    /// Chunked: the trailer section after the last chunk.
    Trailers,
    /// Everything until the server closes.
    UntilClose,
    /// The connection switched protocols; [`ResponseBody::take_upgrade`] hands it over.
    Upgrade,
}

impl ResponseBody {
    /// The body framed by `framing` on `conn`; the connection returns to `home` after it
    /// (when there is one: `None` closes it).
    pub(super) fn new(framing: ResponseFraming, conn: Box<Conn>, home: Option<Home>) -> Self {
        let state = match framing {
            ResponseFraming::Empty => State::Done,
            ResponseFraming::Length(n) => State::Length(n),
            ResponseFraming::Chunked => State::ChunkSize,
            ResponseFraming::UntilClose => State::UntilClose,
            ResponseFraming::Upgrade => State::Upgrade,
        };
        let mut body = ResponseBody {
            state,
            conn: Some(conn),
            home,
        };
        if matches!(body.state, State::Done) {
            body.finish();
        }
        body
    }

    /// The upgraded connection of a `101 Switching Protocols` response (once).
    pub fn take_upgrade(&mut self) -> Option<Upgraded> {
        if !matches!(self.state, State::Upgrade) {
            return None;
        }
        self.state = State::Done;
        self.conn.take().map(|conn| Upgraded {
            io: conn.io,
            read: conn.read,
        })
    }

    /// The body has been read to its end: the connection goes home (or is closed).
    fn finish(&mut self) {
        self.state = State::Done;
        if let (Some(conn), Some(home)) = (self.conn.take(), self.home.take()) {
            home.release(conn);
        }
    }

    /// Up to `remaining` body bytes from `conn` (reading when none are buffered), and how
    /// many remain after them; a close before that is [`Error::Truncated`].
    fn poll_data(
        conn: &mut Conn,
        remaining: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(Bytes, u64), Error>> {
        if conn.read.is_empty() && ready!(conn.poll_fill(cx))? == 0 {
            return Poll::Ready(Err(Error::Truncated));
        }
        let take = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(conn.read.len());
        let data = conn.read.split_to(take).freeze();
        Poll::Ready(Ok((data, remaining - take as u64)))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        loop {
            let Some(conn) = self.conn.as_deref_mut() else {
                return Poll::Ready(None);
            };
            match self.state {
                State::Done | State::Upgrade => return Poll::Ready(None),
                State::Length(remaining) => {
                    let (data, left) = ready!(Self::poll_data(conn, remaining, cx))?;
                    self.state = State::Length(left);
                    if left == 0 {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose => {
                    if conn.read.is_empty() && ready!(conn.poll_fill(cx))? == 0 {
                        self.state = State::Done;
                        self.conn = None;
                        return Poll::Ready(None);
                    }
                    let data = conn.read.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::ChunkSize => match codec::parse_chunk_size(&conn.read)? {
                    Some((len, 0)) => {
                        conn.read.advance(len);
                        self.state = State::Trailers;
                    }
                    Some((len, size)) => {
                        conn.read.advance(len);
                        self.state = State::ChunkData(size);
                    }
                    None => {
                        if ready!(conn.poll_fill(cx))? == 0 {
                            return Poll::Ready(Some(Err(Error::Truncated)));
                        }
                    }
                },
                State::ChunkData(remaining) => {
                    let (data, left) = ready!(Self::poll_data(conn, remaining, cx))?;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::ChunkEnd => {
                    if conn.read.len() < 2 {
                        if ready!(conn.poll_fill(cx))? == 0 {
                            return Poll::Ready(Some(Err(Error::Truncated)));
                        }
                        continue;
                    }
                    if &conn.read[..2] != b"\r\n" {
                        return Poll::Ready(Some(Err(Error::Malformed("chunk end"))));
                    }
                    conn.read.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => match codec::parse_trailers(&conn.read)? {
                    Some((len, trailers)) => {
                        conn.read.advance(len);
                        self.finish();
                        if trailers.is_empty() {
                            return Poll::Ready(None);
                        }
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    None => {
                        if ready!(conn.poll_fill(cx))? == 0 {
                            return Poll::Ready(Some(Err(Error::Truncated)));
                        }
                    }
                },
            }
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
        let next = this.poll_next(cx);
        if let Poll::Ready(Some(Err(_))) = &next {
            // A broken body: the connection is in an unknown state, close it.
            this.state = State::Done;
            this.conn = None;
        }
        next
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done | State::Upgrade)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done | State::Upgrade => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
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
