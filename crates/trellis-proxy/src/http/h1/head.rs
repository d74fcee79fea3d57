//! Request heads read by the downstream HTTP/1.1 server: parsed in one pass out of the
//! connection's read buffer (`h1::parse_request`: names lower-cased in place, values
//! found and checked eight bytes at a time), and sorted into the requests this server
//! serves itself and those it leaves to hyper ([`Parsed::Elsewhere`]).
//!
//! Served here: HTTP/1.1 requests other than `CONNECT`, without `Upgrade` or `Expect`,
//! with at most one `Host`, whose body is absent, has one valid `Content-Length` or is
//! exactly `chunked`. Everything
//! else — HTTP/1.0, upgrades, `100-continue`, the HTTP/2 preface, malformed or oversized
//! heads, ambiguous framing, request targets that are not visible ASCII — goes to hyper
//! with the bytes read so far, so each of those cases keeps hyper's answer (400, 431,
//! 501, ...) and its tests.

use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::{Method, Request, Uri, Version};
use bytes::{Buf, Bytes, BytesMut};

use crate::h1::{BodyDecoder, FieldAt, MAX_HEADERS, parse_decimal, parse_request};

/// What the front of the read buffer holds.
#[allow(clippy::large_enum_variant)] // Moved once per request: boxing would allocate.
pub(super) enum Parsed {
    /// A complete request head for this server (removed from the buffer), its body's
    /// framing and its connection facts.
    Head(Request<()>, BodyDecoder, Facts),
    /// Not complete yet.
    Partial,
    /// A head this server leaves to hyper (nothing consumed; field names may have been
    /// lower-cased in place, which changes nothing to HTTP or to hyper's parse).
    Elsewhere,
}

/// What the server needs to know about a request besides its head.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Facts {
    /// `Connection: close`: the connection ends after the response.
    pub(super) close: bool,
    /// `TE: trailers`: a chunked response may carry trailers.
    pub(super) trailers: bool,
    /// A `HEAD` request: the response has no body.
    pub(super) head: bool,
}

/// Limits from the listener's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest head served here; longer ones go to hyper (which answers 431).
    pub(crate) head_bytes: usize,
    /// Most headers served here; more go to hyper (431).
    pub(crate) headers: usize,
}

/// The longest head parsed here whatever the limit (field positions are 16 bits);
/// longer ones, under a larger limit, go to hyper.
const MAX_PARSED: usize = u16::MAX as usize;

/// A header whose value decides how the request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    ContentLength,
    TransferEncoding,
    Connection,
    Host,
    Te,
    /// `upgrade` or `expect`: hyper's to serve.
    Elsewhere,
    Other,
}

/// The header name of a lower-case field name, and its role: the names clients send
/// most are matched to the `http` crate's constants, sparing the generic parse.
fn name_of(name: &[u8]) -> Option<(HeaderName, Role)> {
    let known = match name {
        b"host" => (header::HOST, Role::Host),
        b"accept" => (header::ACCEPT, Role::Other),
        b"user-agent" => (header::USER_AGENT, Role::Other),
        b"content-length" => (header::CONTENT_LENGTH, Role::ContentLength),
        b"content-type" => (header::CONTENT_TYPE, Role::Other),
        b"accept-encoding" => (header::ACCEPT_ENCODING, Role::Other),
        b"accept-language" => (header::ACCEPT_LANGUAGE, Role::Other),
        b"authorization" => (header::AUTHORIZATION, Role::Other),
        b"cookie" => (header::COOKIE, Role::Other),
        b"connection" => (header::CONNECTION, Role::Connection),
        b"transfer-encoding" => (header::TRANSFER_ENCODING, Role::TransferEncoding),
        b"te" => (header::TE, Role::Te),
        b"upgrade" => (header::UPGRADE, Role::Elsewhere),
        b"expect" => (header::EXPECT, Role::Elsewhere),
        _ => {
            let name = HeaderName::from_bytes(name).ok()?;
            // Standard names not listed above are never one of the roles (all listed).
            return Some((name, Role::Other));
        }
    };
    Some(known)
}

/// Parses the request head at the front of `buf`.
/// `spare` lends its storage to the header map (see [`crate::h1::header_map`]).
pub(super) fn parse(buf: &mut BytesMut, limits: Limits, spare: &mut Option<HeaderMap>) -> Parsed {
    if buf.starts_with(b"PRI ") || (!buf.is_empty() && b"PRI ".starts_with(&buf[..])) {
        // The HTTP/2 preface (or its beginning): hyper's protocol sniffing decides.
        return Parsed::Elsewhere;
    }
    let bound = limits.head_bytes.min(MAX_PARSED);
    let scanned = buf.len().min(bound);
    let mut fields = [FieldAt::default(); MAX_HEADERS];
    let head = match parse_request(&mut buf[..scanned], &mut fields) {
        Ok(Some(head)) => head,
        Ok(None) if buf.len() < bound => return Parsed::Partial,
        _ => return Parsed::Elsewhere,
    };
    let fields = &fields[..head.fields];
    if fields.len() > limits.headers {
        return Parsed::Elsewhere;
    }
    let Ok(method) = Method::from_bytes(&buf[head.method.0..head.method.1]) else {
        return Parsed::Elsewhere;
    };
    if method == Method::CONNECT {
        return Parsed::Elsewhere;
    }
    let copy = Bytes::copy_from_slice(&buf[..head.len]);
    let Ok(uri) = Uri::from_maybe_shared(copy.slice(head.target.0..head.target.1)) else {
        return Parsed::Elsewhere;
    };
    let mut headers = crate::h1::header_map(spare, fields.len());
    let mut facts = Facts {
        head: method == Method::HEAD,
        ..Facts::default()
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut host = false;
    for f in fields {
        let name = &copy[usize::from(f.name)..usize::from(f.name_end)];
        let Some((name, role)) = name_of(name) else {
            return Parsed::Elsewhere;
        };
        let value = copy.slice(usize::from(f.value)..usize::from(f.value_end));
        let Ok(value) = HeaderValue::from_maybe_shared(value) else {
            return Parsed::Elsewhere;
        };
        match role {
            Role::Other => {}
            Role::ContentLength => match parse_decimal(value.as_bytes()) {
                Some(n) if length.is_none() => length = Some(n),
                _ => return Parsed::Elsewhere,
            },
            Role::TransferEncoding => {
                if chunked || !value.as_bytes().eq_ignore_ascii_case(b"chunked") {
                    return Parsed::Elsewhere;
                }
                chunked = true;
            }
            Role::Connection => {
                for token in value.as_bytes().split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"upgrade") {
                        return Parsed::Elsewhere;
                    }
                    facts.close |= token.eq_ignore_ascii_case(b"close");
                }
            }
            Role::Host => {
                if host {
                    return Parsed::Elsewhere; // 400 (`guard::check`)
                }
                host = true;
            }
            Role::Elsewhere => return Parsed::Elsewhere,
            Role::Te => {
                facts.trailers |= value
                    .as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
            }
        }
        headers.append(name, value);
    }
    let body = match (length, chunked) {
        (Some(_), true) => return Parsed::Elsewhere,
        (Some(n), false) => BodyDecoder::length(n),
        (None, true) => BodyDecoder::ChunkSize,
        (None, false) => BodyDecoder::Done,
    };
    buf.advance(head.len);
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Head(request, body, facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        head_bytes: 64 * 1024,
        headers: 100,
    };

    fn parsed(text: &str) -> (Parsed, BytesMut) {
        let mut buf = BytesMut::from(text.as_bytes());
        (parse(&mut buf, LIMITS, &mut None), buf)
    }

    #[test]
    fn ordinary_heads_are_served_here() {
        let (p, rest) = parsed(
            "POST /a?b=1 HTTP/1.1\r\nHost: reviews\r\nContent-Length: 3\r\nConnection: keep-alive, close\r\nTE: trailers\r\n\r\nabc",
        );
        let Parsed::Head(req, body, facts) = p else {
            panic!("not served here")
        };
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/a?b=1");
        assert_eq!(req.headers()["host"], "reviews");
        assert_eq!(body, BodyDecoder::Length(3));
        assert!(facts.close && facts.trailers && !facts.head);
        assert_eq!(&rest[..], b"abc");

        let (p, _) = parsed("GET http://reviews:9080/x HTTP/1.1\nHost: reviews\n\n");
        let Parsed::Head(req, body, _) = p else {
            panic!("not served here")
        };
        assert_eq!(
            req.uri().authority().map(|a| a.as_str()),
            Some("reviews:9080")
        );
        assert!(body.is_done());

        let (p, _) = parsed("PUT / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert!(matches!(p, Parsed::Head(_, BodyDecoder::ChunkSize, _)));
        let (p, rest) = parsed("GET / HTTP/1.1\r\nHost: a");
        assert!(matches!(p, Parsed::Partial));
        assert_eq!(rest.len(), 23);
    }

    #[test]
    fn everything_else_goes_to_hyper_untouched() {
        for text in [
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "PR",
            "GET / HTTP/1.0\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nX A: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET /\0 HTTP/1.1\r\n\r\n",
        ] {
            let (p, rest) = parsed(text);
            assert!(matches!(p, Parsed::Elsewhere), "{text:?}");
            // Nothing consumed; names may be lower-cased (case-insensitive in HTTP).
            assert_eq!(
                rest.to_ascii_lowercase(),
                text.to_ascii_lowercase().into_bytes(),
                "{text:?}"
            );
        }
        let many: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
        let (p, _) = parsed(&format!("GET / HTTP/1.1\r\n{many}\r\n"));
        assert!(matches!(p, Parsed::Elsewhere));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nx: aaaaaaaaaaaaaaaa"[..]);
        let small = Limits {
            head_bytes: 20,
            headers: 100,
        };
        assert!(matches!(
            parse(&mut buf, small, &mut None),
            Parsed::Elsewhere
        ));
    }
}
