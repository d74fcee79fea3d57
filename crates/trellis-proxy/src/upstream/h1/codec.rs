//! The HTTP/1.1 wire format of the upstream side: request heads written straight into the
//! connection's write buffer, response heads parsed out of its read buffer
//! (`h1::parse_response`), and the framing rules of RFC 9112 §6 for both directions.

use ::http::header;
use ::http::{Method, StatusCode, Version, request};
use bytes::{Buf, BufMut, BytesMut};

use super::Error;

pub(super) use crate::h1::MAX_HEAD_BYTES;
use crate::h1::{
    FieldKind, HeadError, RawHead, parse_decimal, parse_response, put_content_length, put_header,
};

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
        RequestFraming::Length(n) => put_content_length(out, n),
        RequestFraming::Chunked => put_header(out, b"transfer-encoding", b"chunked"),
    }
    out.put_slice(b"\r\n");
}

/// A parsed response head: its fields stay in the bytes they came in
/// ([`RawHead`]); a header map is built only for whoever needs one.
#[derive(Debug)]
pub(super) struct ResponseHead {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    pub(super) fields: RawHead,
    framing: FramingHeaders,
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
        if let Some(chunked) = self.framing.chunked {
            return Ok(if chunked {
                ResponseFraming::Chunked
            } else {
                ResponseFraming::UntilClose
            });
        }
        Ok(match self.framing.length.map_err(Error::Malformed)? {
            Some(0) => ResponseFraming::Empty,
            Some(n) => ResponseFraming::Length(n),
            None => ResponseFraming::UntilClose,
        })
    }

    /// Whether the server lets the connection carry another request after this response
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub(super) fn keeps_alive(&self) -> bool {
        let f = &self.framing;
        // Both framings at once: answered, then never trusted again.
        let both_framings = f.chunked.is_some() && !matches!(f.length, Ok(None));
        !f.close && (self.version == Version::HTTP_11 || f.keep_alive) && !both_framings
    }
}

/// The framing headers of a response head, gathered while it is parsed (so that deciding
/// how to read the body looks nothing up in the header map).
#[derive(Debug, Clone, Copy)]
pub(super) struct FramingHeaders {
    /// Whether the last transfer coding is `chunked`; `None` without `Transfer-Encoding`.
    chunked: Option<bool>,
    /// The `Content-Length` (all values agreeing), or why it is unusable.
    length: Result<Option<u64>, &'static str>,
    /// `Connection: close`.
    close: bool,
    /// `Connection: keep-alive`.
    keep_alive: bool,
}

impl Default for FramingHeaders {
    fn default() -> Self {
        FramingHeaders {
            chunked: None,
            length: Ok(None),
            close: false,
            keep_alive: false,
        }
    }
}

impl FramingHeaders {
    /// Notes one header of the head (`name` lower-cased, of `kind`).
    fn note(&mut self, name: &[u8], kind: FieldKind, value: &[u8]) {
        match kind {
            FieldKind::ContentLength => {
                for part in value.split(|b| *b == b',') {
                    self.length = match (parse_decimal(part.trim_ascii()), self.length) {
                        (_, Err(e)) => Err(e),
                        (None, _) => Err("content-length"),
                        (Some(n), Ok(Some(l))) if l != n => {
                            Err("conflicting content-length values")
                        }
                        (Some(n), Ok(_)) => Ok(Some(n)),
                    };
                }
            }
            FieldKind::HopByHop if name == b"transfer-encoding" => {
                let last = value.rsplit(|b| *b == b',').next().unwrap_or(b"");
                self.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            FieldKind::HopByHop if name == b"connection" => {
                for token in value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            _ => {}
        }
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

/// Parses one response head from the front of `buf` and removes it from there; `None`
/// while the head is incomplete. The head's fields stay in a copy of its bytes (names
/// lower-cased), so `buf`'s memory is not held by the response after it is forwarded.
pub(super) fn parse_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, Error> {
    let parsed = match parse_response(buf) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(HeadError::TooLarge) => return Err(Error::HeadTooLarge),
        Err(HeadError::TooManyFields) => return Err(Error::Malformed("too many headers")),
        Err(HeadError::Invalid(what)) => return Err(Error::Malformed(what)),
    };
    let status = StatusCode::from_u16(parsed.code).map_err(|_| Error::Malformed("status code"))?;
    let version = if parsed.http10 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut fields = parsed.fields;
    let mut framing = FramingHeaders::default();
    for (name, value, kind) in fields.fields() {
        framing.note(name, kind, value);
    }
    // The body is framed by the coding (RFC 9112 §6.3): a length next to it is wrong.
    if framing.chunked.is_some() {
        fields.drop_kind(FieldKind::ContentLength);
    }
    buf.advance(parsed.len);
    Ok(Some(ResponseHead {
        status,
        version,
        fields,
        framing,
    }))
}

#[cfg(test)]
mod tests;
