//! The HTTP/1.1 wire format both sides of the proxy share (RFC 9112): header lines, chunked
//! coding, decimal and chunk-size parsing, and the body decoder ([`BodyDecoder`]) that reads
//! a message body straight out of a connection's read buffer. The downstream server
//! (`http::h1`) decodes request bodies with it, the upstream client (`upstream::h1`)
//! response bodies.

mod decode;
mod raw_head;
#[cfg(test)]
mod tests;

pub(crate) use decode::{BodyDecoder, FramingError, Source};
pub use raw_head::RawHead;
pub(crate) use raw_head::{
    FieldAt, FieldKind, HeadError, RawHeadSource, parse_request, parse_response,
};

use ::http::header::{HeaderMap, HeaderName, HeaderValue};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, BytesMut};
use tokio::io::AsyncRead;

/// Upper bound on a head (start line and headers) or trailer section this side parses, as
/// Envoy's default `max_response_headers_kb` (60 KiB).
pub(crate) const MAX_HEAD_BYTES: usize = 60 * 1024;

/// Upper bound on the number of headers in one head or trailer section (hyper's and
/// Envoy's default: 100).
pub(crate) const MAX_HEADERS: usize = 100;

/// Reads are made into at least this much free buffer space (also a connection's first
/// read buffer).
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// Reads more bytes from `io` into `buf`; `Ok(0)` at the end of the stream.
pub(crate) fn poll_fill<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    buf.reserve(READ_CHUNK);
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Upper bound on one chunk-size line (size and extensions).
pub(crate) const MAX_CHUNK_LINE: usize = 4 * 1024;

/// A header map for `n` headers: `spare`'s storage when there is one (a map cleared after
/// its message was written), so that parsing a head allocates nothing but its values.
pub(crate) fn header_map(spare: &mut Option<HeaderMap>, n: usize) -> HeaderMap {
    match spare.take() {
        Some(mut map) => {
            map.reserve(n);
            map
        }
        None => HeaderMap::with_capacity(n),
    }
}

/// Keeps `map`'s storage for the next head (see [`header_map`]).
pub(crate) fn recycle(spare: &mut Option<HeaderMap>, mut map: HeaderMap) {
    map.clear();
    *spare = Some(map);
}

/// Appends `name: value\r\n`.
pub(crate) fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// `n` in decimal, written at the end of `buf`.
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Appends `content-length: n\r\n`.
pub(crate) fn put_content_length(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    put_header(out, b"content-length", format_u64(n, &mut digits));
}

/// Appends one chunk of a chunked body: size line, data, CRLF.
pub(crate) fn encode_chunk(data: &[u8], out: &mut BytesMut) {
    if data.is_empty() {
        return;
    }
    out.reserve(data.len() + 20);
    let mut line = [0u8; 18];
    let mut at = 16;
    let mut n = data.len();
    loop {
        at -= 1;
        line[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&line[at..16]);
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Appends the last chunk of a chunked body, with `trailers` when there are any.
pub(crate) fn encode_last_chunk(trailers: Option<&HeaderMap>, out: &mut BytesMut) {
    out.put_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// A `Content-Length` value: 1 to 19 ASCII digits, nothing else.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Parses a chunk-size line at the front of `buf`: `Some((line_len, size))`, `None`
/// while incomplete.
pub(crate) fn parse_chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, FramingError> {
    match httparse::parse_chunk_size(buf) {
        Ok(httparse::Status::Complete((len, size))) => Ok(Some((len, size))),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_CHUNK_LINE => {
            Err(FramingError::Malformed("chunk size line too long"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(FramingError::Malformed("chunk size")),
    }
}

/// Parses the trailer section (ending with an empty line) at the front of `buf`:
/// `Some((len, trailers))`, `None` while incomplete.
pub(crate) fn parse_trailers(buf: &[u8]) -> Result<Option<(usize, HeaderMap)>, FramingError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete((len, parsed))) => {
            let mut trailers = HeaderMap::with_capacity(parsed.len());
            for h in parsed {
                let name = HeaderName::from_bytes(h.name.as_bytes())
                    .map_err(|_| FramingError::Malformed("trailer name"))?;
                let value = HeaderValue::from_bytes(h.value)
                    .map_err(|_| FramingError::Malformed("trailer value"))?;
                trailers.append(name, value);
            }
            Ok(Some((len, trailers)))
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            Err(FramingError::Malformed("trailer section too large"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(FramingError::Malformed("trailers")),
    }
}
