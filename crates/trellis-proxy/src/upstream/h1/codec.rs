//! The HTTP/1.1 wire format of the upstream side: request heads written straight into the
//! connection's write buffer, response heads parsed with `httparse` out of its read
//! buffer, and the framing rules of RFC 9112 §6 for both directions.

use std::mem::MaybeUninit;

use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::{Method, StatusCode, Version, request};
use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Error;

/// Upper bound on a response head (status line and headers), as Envoy's default
/// `max_response_headers_kb` (60 KiB).
pub(super) const MAX_HEAD_BYTES: usize = 60 * 1024;

/// Upper bound on the number of response headers (hyper's and Envoy's default: 100).
const MAX_HEADERS: usize = 100;

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestFraming {
    /// No body and no framing header (a `GET` without a body).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (length unknown up front).
    Chunked,
}

impl RequestFraming {
    /// The framing for a body that is `exact` bytes long when known; `had_length` says
    /// whether the client sent `Content-Length` itself. Methods without defined body
    /// semantics get no `Content-Length: 0` unless the client sent one (as hyper does).
    pub(super) fn choose(method: &Method, exact: Option<u64>, had_length: bool) -> Self {
        match exact {
            Some(0) if !had_length && !carries_body(method) => RequestFraming::None,
            Some(n) => RequestFraming::Length(n),
            None => RequestFraming::Chunked,
        }
    }
}

/// Methods whose requests are expected to carry content (RFC 9110 §9.3).
fn carries_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Writes the request line and headers of `head` (origin form: the path only) and the
/// framing header into `out`. `Content-Length` and `Transfer-Encoding` of the head are
/// replaced by `framing`.
pub(super) fn encode_head(head: &request::Parts, framing: RequestFraming, out: &mut BytesMut) {
    let target = if head.method == Method::CONNECT {
        head.uri.authority().map_or("/", |a| a.as_str())
    } else {
        head.uri.path_and_query().map_or("/", |p| p.as_str())
    };
    out.reserve(64 + target.len() + head.headers.len() * 32);
    out.put_slice(head.method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    if !head.headers.contains_key(header::HOST)
        && let Some(authority) = head.uri.authority()
    {
        put_header(out, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in &head.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            let mut digits = itoa_buf();
            put_header(out, b"content-length", format_u64(n, &mut digits));
        }
        RequestFraming::Chunked => put_header(out, b"transfer-encoding", b"chunked"),
    }
    out.put_slice(b"\r\n");
}

fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `n` in decimal, written at the end of `buf`.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
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

/// Appends one chunk of a chunked body: size line, data, CRLF.
pub(super) fn encode_chunk(data: &[u8], out: &mut BytesMut) {
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
pub(super) fn encode_last_chunk(trailers: Option<&HeaderMap>, out: &mut BytesMut) {
    out.put_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// A parsed response head.
#[derive(Debug)]
pub(super) struct ResponseHead {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
}

impl ResponseHead {
    /// How the body that follows is framed, for a response to `method` (RFC 9112 §6.3).
    pub(super) fn framing(&self, method: &Method) -> Result<ResponseFraming, Error> {
        let status = self.status.as_u16();
        if status == 101 {
            return Ok(ResponseFraming::Upgrade);
        }
        if *method == Method::HEAD || (100..200).contains(&status) || status == 204 || status == 304
        {
            return Ok(ResponseFraming::Empty);
        }
        if let Some(te) = self
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
        {
            let last = te.as_bytes().rsplit(|b| *b == b',').next().unwrap_or(b"");
            return Ok(if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                ResponseFraming::Chunked
            } else {
                ResponseFraming::UntilClose
            });
        }
        let mut length = None;
        for value in self.headers.get_all(header::CONTENT_LENGTH) {
            for part in value.as_bytes().split(|b| *b == b',') {
                let n =
                    parse_decimal(part.trim_ascii()).ok_or(Error::Malformed("content-length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Error::Malformed("conflicting content-length values"));
                }
                length = Some(n);
            }
        }
        Ok(match length {
            Some(0) => ResponseFraming::Empty,
            Some(n) => ResponseFraming::Length(n),
            None => ResponseFraming::UntilClose,
        })
    }

    /// Whether the server lets the connection carry another request after this response
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub(super) fn keeps_alive(&self) -> bool {
        let mut close = false;
        let mut keep_alive = false;
        for value in self.headers.get_all(header::CONNECTION) {
            for token in value.as_bytes().split(|b| *b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        !close
            && (self.version == Version::HTTP_11 || keep_alive)
            && !(self.headers.contains_key(header::TRANSFER_ENCODING)
                && self.headers.contains_key(header::CONTENT_LENGTH))
    }
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResponseFraming {
    /// No body (`HEAD`, 1xx, 204, 304, `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes (the connection is not reused).
    UntilClose,
    /// `101 Switching Protocols`: the connection now carries another protocol.
    Upgrade,
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Parses one response head from the front of `buf` and removes it from there; `None`
/// while the head is incomplete. Header values share one copy of the head, so `buf`'s
/// memory is not held by the response after it is forwarded.
pub(super) fn parse_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, Error> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(Error::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::Malformed("too many headers")),
        Err(_) => return Err(Error::Malformed("response head")),
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(Error::Malformed("status code"))?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let base = buf.as_ptr() as usize;
    let copy = Bytes::copy_from_slice(&buf[..len]);
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| Error::Malformed("header name"))?;
        let start = h.value.as_ptr() as usize - base;
        let value = HeaderValue::from_maybe_shared(copy.slice(start..start + h.value.len()))
            .map_err(|_| Error::Malformed("header value"))?;
        headers.append(name, value);
    }
    buf.advance(len);
    Ok(Some(ResponseHead {
        status,
        version,
        headers,
    }))
}

/// Upper bound on one chunk-size line (size and extensions).
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Parses a chunk-size line at the front of `buf`: `Some((line_len, size))`, `None`
/// while incomplete.
pub(super) fn parse_chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, Error> {
    match httparse::parse_chunk_size(buf) {
        Ok(httparse::Status::Complete((len, size))) => Ok(Some((len, size))),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_CHUNK_LINE => {
            Err(Error::Malformed("chunk size line too long"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(Error::Malformed("chunk size")),
    }
}

/// Parses the trailer section (ending with an empty line) at the front of `buf`:
/// `Some((len, trailers))`, `None` while incomplete.
pub(super) fn parse_trailers(buf: &[u8]) -> Result<Option<(usize, HeaderMap)>, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete((len, parsed))) => {
            let mut trailers = HeaderMap::with_capacity(parsed.len());
            for h in parsed {
                let name = HeaderName::from_bytes(h.name.as_bytes())
                    .map_err(|_| Error::Malformed("trailer name"))?;
                let value = HeaderValue::from_bytes(h.value)
                    .map_err(|_| Error::Malformed("trailer value"))?;
                trailers.append(name, value);
            }
            Ok(Some((len, trailers)))
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => Err(Error::HeadTooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(Error::Malformed("trailers")),
    }
}

#[cfg(test)]
mod tests;
