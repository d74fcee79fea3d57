//! Reading a message body off an HTTP/1.1 connection (RFC 9112 §6–7): by length, chunked
//! (with trailers), or until the peer closes. The decoder keeps only its position; the
//! bytes come from the connection's read buffer, so a body needs no buffer or task of its
//! own, and whatever follows the body (the next message) stays in the buffer.

use std::io;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};

use super::{parse_chunk_size, parse_trailers};

/// Where a body's bytes come from: a connection's read buffer and the socket behind it.
pub(crate) trait Source {
    /// Bytes read and not yet consumed.
    fn buffer(&mut self) -> &mut BytesMut;
    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>>;
}

/// Why a body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// The socket failed.
    #[error("reading the body: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection before the end of the body.
    #[error("the connection closed in the middle of the body")]
    Truncated,
    /// The body's framing is not valid HTTP/1.1 (a bad chunk size or chunk end, bad
    /// trailers).
    #[error("malformed body ({0})")]
    Malformed(&'static str),
}

/// Where a body decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyDecoder {
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
    /// Everything until the peer closes.
    UntilClose,
}

impl BodyDecoder {
    /// A body of `n` bytes (`Done` for none).
    pub(crate) fn length(n: u64) -> Self {
        if n == 0 {
            BodyDecoder::Done
        } else {
            BodyDecoder::Length(n)
        }
    }

    /// Whether the body has been read to its end.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyDecoder::Done)
    }

    /// The exact remaining length when the framing gives it.
    pub(crate) fn size_hint(&self) -> SizeHint {
        match *self {
            BodyDecoder::Done => SizeHint::with_exact(0),
            BodyDecoder::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }

    /// The next frame of the body: data as it arrives (never more than the framing
    /// allows), then the trailers of a chunked body when it has any; `None` at the end.
    /// After an error the decoder stays where it was: the connection cannot be trusted.
    pub(crate) fn poll_frame<S: Source + ?Sized>(
        &mut self,
        src: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, FramingError>>> {
        loop {
            match *self {
                BodyDecoder::Done => return Poll::Ready(None),
                BodyDecoder::Length(remaining) => {
                    let (data, left) = ready!(poll_data(src, remaining, cx))?;
                    *self = BodyDecoder::length(left);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                BodyDecoder::UntilClose => {
                    if src.buffer().is_empty() && ready!(src.poll_fill(cx))? == 0 {
                        *self = BodyDecoder::Done;
                        return Poll::Ready(None);
                    }
                    let data = src.buffer().split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                BodyDecoder::ChunkSize => match parse_chunk_size(src.buffer())? {
                    Some((len, size)) => {
                        src.buffer().advance(len);
                        *self = if size == 0 {
                            BodyDecoder::Trailers
                        } else {
                            BodyDecoder::ChunkData(size)
                        };
                    }
                    None => ready!(fill_or_truncated(src, cx))?,
                },
                BodyDecoder::ChunkData(remaining) => {
                    let (data, left) = ready!(poll_data(src, remaining, cx))?;
                    *self = if left == 0 {
                        BodyDecoder::ChunkEnd
                    } else {
                        BodyDecoder::ChunkData(left)
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                BodyDecoder::ChunkEnd => {
                    let buf = src.buffer();
                    if buf.len() < 2 {
                        ready!(fill_or_truncated(src, cx))?;
                        continue;
                    }
                    if &buf[..2] != b"\r\n" {
                        return Poll::Ready(Some(Err(FramingError::Malformed("chunk end"))));
                    }
                    buf.advance(2);
                    *self = BodyDecoder::ChunkSize;
                }
                BodyDecoder::Trailers => match parse_trailers(src.buffer())? {
                    Some((len, trailers)) => {
                        src.buffer().advance(len);
                        *self = BodyDecoder::Done;
                        if trailers.is_empty() {
                            return Poll::Ready(None);
                        }
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    None => ready!(fill_or_truncated(src, cx))?,
                },
            }
        }
    }

    /// Consumes as much of the body as `buf` already holds, without reading: whether the
    /// end was reached (so what follows in `buf` is the next message). Used to keep a
    /// connection whose request body nobody read.
    pub(crate) fn skip_buffered(&mut self, buf: &mut BytesMut) -> Result<bool, FramingError> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut src = Buffered(buf);
        loop {
            match self.poll_frame(&mut src, &mut cx) {
                Poll::Ready(None) => return Ok(true),
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Err(e),
                Poll::Pending => return Ok(false),
            }
        }
    }
}

/// Up to `remaining` body bytes (reading when none are buffered), and how many remain
/// after them; a close before that is [`FramingError::Truncated`].
fn poll_data<S: Source + ?Sized>(
    src: &mut S,
    remaining: u64,
    cx: &mut Context<'_>,
) -> Poll<Result<(Bytes, u64), FramingError>> {
    if src.buffer().is_empty() {
        ready!(fill_or_truncated(src, cx))?;
    }
    let buf = src.buffer();
    let take = usize::try_from(remaining)
        .unwrap_or(usize::MAX)
        .min(buf.len());
    let data = buf.split_to(take).freeze();
    Poll::Ready(Ok((data, remaining - take as u64)))
}

/// Reads more; the end of the stream here is [`FramingError::Truncated`].
fn fill_or_truncated<S: Source + ?Sized>(
    src: &mut S,
    cx: &mut Context<'_>,
) -> Poll<Result<(), FramingError>> {
    if ready!(src.poll_fill(cx))? == 0 {
        return Poll::Ready(Err(FramingError::Truncated));
    }
    Poll::Ready(Ok(()))
}

/// Only what is already buffered: reading more is never ready.
struct Buffered<'a>(&'a mut BytesMut);

impl Source for Buffered<'_> {
    fn buffer(&mut self) -> &mut BytesMut {
        self.0
    }

    fn poll_fill(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Pending
    }
}
