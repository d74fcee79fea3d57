//! Writing a response on a downstream HTTP/1.1 connection, as hyper's server would: the
//! status line, the headers as they are (lower-case), a framing header when the response
//! has none (`content-length` when the body's length is known, else chunked), `date` and
//! `connection: close` when hyper would add them; then the body, gathered behind the head
//! so that a small response leaves in one write.
//!
//! Trailers go out only on a chunked body to a client that sent `TE: trailers`. A body
//! that fails half-way, or does not match its `content-length`, ends the connection
//! (HTTP/1.1 has no other way to tell the client the response is incomplete).

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use ::http::Response;
use ::http::header::{self, HeaderMap};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame};

use super::head::Facts;
use super::wire::SharedWire;
use crate::h1::{
    FieldKind, RawHead, RawHeadSource, encode_chunk, encode_last_chunk, parse_decimal,
    put_content_length, put_header, recycle,
};

/// Response bytes gathered before they are written (a large body streams out in steps
/// of about this much).
const MAX_WRITE_BUFFER: usize = 64 * 1024;

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body at all (`HEAD`, 1xx, 204, 304).
    None,
    /// Exactly this many bytes still to send.
    Length(u64),
    /// Chunked.
    Chunked,
}

/// Writes `resp` for a request with `facts`; `keep_alive` says whether the connection may
/// carry another request as far as the request and the listener are concerned. Returns
/// whether it still may after this response (its own `connection: close`, a body that
/// did not end cleanly); an error means the client cannot be written to.
pub(super) async fn write<B>(
    wire: &SharedWire,
    out: &mut BytesMut,
    resp: Response<B>,
    facts: Facts,
    keep_alive: bool,
    spare: &mut Option<HeaderMap>,
) -> io::Result<bool>
where
    B: Body<Data = Bytes> + RawHeadSource + Unpin,
{
    let (parts, mut body) = resp.into_parts();
    out.clear();
    let raw = body.take_raw_head();
    let (mut framing, mut keep_alive) =
        encode_head(&parts, raw.as_ref(), &body, facts, keep_alive, out);
    drop(raw);
    recycle(spare, parts.headers);
    if framing == Framing::None {
        drop(body);
        flush(wire, out).await?;
        return Ok(keep_alive);
    }
    loop {
        let step = poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
            Poll::Pending if !out.is_empty() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        let frame = match step {
            // Nothing ready: send what is gathered meanwhile.
            None => {
                flush(wire, out).await?;
                continue;
            }
            Some(frame) => frame,
        };
        match frame {
            Some(Ok(frame)) => {
                if !encode_frame(frame, &mut framing, facts, out) {
                    keep_alive = false;
                    break;
                }
                if body.is_end_stream() {
                    keep_alive &= end(framing, out);
                    break;
                }
            }
            None => {
                keep_alive &= end(framing, out);
                break;
            }
            Some(Err(_)) => {
                // The upstream broke off: what came is sent, the connection ends.
                keep_alive = false;
                break;
            }
        }
        if out.len() >= MAX_WRITE_BUFFER {
            flush(wire, out).await?;
        }
    }
    flush(wire, out).await?;
    Ok(keep_alive)
}

/// Writes the status line and headers (`raw`'s forwarded fields, then the map's);
/// returns the body's framing and whether the connection stays open after it
/// (`keep_alive` unless the response says `close`).
fn encode_head<B: Body>(
    parts: &::http::response::Parts,
    raw: Option<&RawHead>,
    body: &B,
    facts: Facts,
    keep_alive: bool,
    out: &mut BytesMut,
) -> (Framing, bool) {
    let status = parts.status;
    out.reserve(256 + parts.headers.len() * 32);
    if status == ::http::StatusCode::OK {
        out.put_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(status.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.put_slice(b"\r\n");
    }
    let code = status.as_u16();
    let bodiless = facts.head || (100..200).contains(&code) || code == 204 || code == 304;
    let mut seen = Seen::default();
    for (name, value, kind) in raw.into_iter().flat_map(RawHead::forwarded) {
        let keep = match kind {
            FieldKind::ContentLength => seen.length(value),
            FieldKind::Date => {
                seen.date = true;
                true
            }
            _ => true,
        };
        if keep {
            put_header(out, name, value);
        }
    }
    for (name, value) in &parts.headers {
        if name == header::TRANSFER_ENCODING {
            // Framing is this connection's business (the forwarding path strips it).
            continue;
        }
        if name == header::CONTENT_LENGTH {
            if !seen.length(value.as_bytes()) {
                continue;
            }
        } else if name == header::CONNECTION {
            seen.connection = true;
            seen.close |= value
                .as_bytes()
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name == header::DATE {
            seen.date = true;
        }
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let framing = if bodiless {
        Framing::None
    } else if let Some(n) = seen.length {
        Framing::Length(n)
    } else if let Some(n) = body.size_hint().exact() {
        put_content_length(out, n);
        Framing::Length(n)
    } else if body.is_end_stream() {
        put_content_length(out, 0);
        Framing::Length(0)
    } else {
        out.put_slice(b"transfer-encoding: chunked\r\n");
        Framing::Chunked
    };
    let keep_alive = keep_alive && !seen.close;
    if !keep_alive && !seen.connection {
        out.put_slice(b"connection: close\r\n");
    }
    if !seen.date {
        put_date(out);
    }
    out.put_slice(b"\r\n");
    (framing, keep_alive)
}

/// What the headers written so far said about framing and the connection.
#[derive(Default)]
struct Seen {
    /// The first valid `content-length`.
    length: Option<u64>,
    /// A `connection` header was written.
    connection: bool,
    /// It says `close`.
    close: bool,
    /// A `date` header was written.
    date: bool,
}

impl Seen {
    /// Notes a `content-length` value; `false` when it must not be written (a second
    /// or invalid length would only confuse the client).
    fn length(&mut self, value: &[u8]) -> bool {
        match parse_decimal(value.trim_ascii()) {
            Some(n) if self.length.is_none() => {
                self.length = Some(n);
                true
            }
            _ => false,
        }
    }
}

/// Appends one body frame; `false` when the body is longer than its `content-length`
/// (what fits is kept, the connection must end).
fn encode_frame(
    frame: Frame<Bytes>,
    framing: &mut Framing,
    facts: Facts,
    out: &mut BytesMut,
) -> bool {
    match frame.into_data() {
        Ok(data) => match framing {
            Framing::Length(left) => {
                let fits = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                out.put_slice(&data[..fits]);
                *left -= fits as u64;
                fits == data.len()
            }
            Framing::Chunked => {
                encode_chunk(&data, out);
                true
            }
            Framing::None => true,
        },
        Err(frame) => {
            if let (Ok(trailers), Framing::Chunked) = (frame.into_trailers(), *framing) {
                encode_last_chunk(facts.trailers.then_some(&trailers), out);
                *framing = Framing::None;
            }
            true
        }
    }
}

/// Ends the body; `false` when it came short of its `content-length`.
fn end(framing: Framing, out: &mut BytesMut) -> bool {
    match framing {
        Framing::Chunked => {
            encode_last_chunk(None, out);
            true
        }
        Framing::Length(left) => left == 0,
        Framing::None => true,
    }
}

/// Writes all of `out` to the client.
async fn flush(wire: &SharedWire, out: &mut BytesMut) -> io::Result<()> {
    poll_fn(|cx| poll_write_all(wire, out, cx)).await
}

fn poll_write_all(
    wire: &SharedWire,
    out: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let mut w = super::wire::lock(wire)?;
    while !out.is_empty() {
        let n = match Pin::new(&mut *w.io).poll_write(cx, out) {
            Poll::Ready(r) => r?,
            Poll::Pending => return Poll::Pending,
        };
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        out.advance(n);
    }
    Poll::Ready(Ok(()))
}

thread_local! {
    /// The `date` value of the current second (IMF-fixdate, 29 bytes), as hyper caches it.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((0, [b' '; 29])) };
}

/// Appends `date: <now>`.
fn put_date(out: &mut BytesMut) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(second, value)| {
        if *second != secs {
            let text = httpdate::fmt_http_date(now);
            if text.len() == value.len() {
                value.copy_from_slice(text.as_bytes());
                *second = secs;
            }
        }
        put_header(out, b"date", value);
    });
}
