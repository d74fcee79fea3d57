//! Parses an HTTP/1.1 response head (RFC 9112 §4, §5) straight into a [`RawHead`]: one
//! pass over each line that lower-cases the field name in place, decides its
//! [`FieldKind`] and checks its value, instead of `httparse` finding the fields and a
//! second pass over them doing the rest (1,300 of the 28,900 instructions the proxy
//! spent per request, docs/performance.md).
//!
//! The grammar is `httparse`'s with its default settings (a property test holds the two
//! to the same answers): `HTTP/1.0` or `HTTP/1.1`, one space, three digits, and a reason
//! phrase after one space or none; fields are a token, a colon, and a value of visible
//! characters, spaces, tabs and obs-text with the whitespace around it trimmed; lines end
//! in CRLF or a bare LF; empty lines before the status line are skipped. Refused: a line
//! that starts with whitespace (obsolete line folding), whitespace before the colon, an
//! empty name, any other control character (a CR not ending its line included), more
//! than [`MAX_HEADERS`] fields.

use bytes::Bytes;

use super::{Field, FieldKind, RawHead};
use crate::h1::{MAX_HEAD_BYTES, MAX_HEADERS};

/// Why a response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    /// No complete head within [`MAX_HEAD_BYTES`].
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    /// More than [`MAX_HEADERS`] fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyFields,
    /// Not an HTTP/1.x response head; the part that is wrong.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ParsedHead {
    /// The status code's three digits as a number (100 to 999 not checked).
    pub(crate) code: u16,
    /// `HTTP/1.0`.
    pub(crate) http10: bool,
    /// The fields, in a copy of the head's bytes.
    pub(crate) fields: RawHead,
    /// How many bytes of the buffer the head took (status line to the empty line).
    pub(crate) len: usize,
}

/// The lower-case form of each byte allowed in a field name (a `tchar`, RFC 9110 §5.6.2),
/// 0 for every other byte.
static NAME_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'A'..=b'Z' => c + 32,
            b'a'..=b'z' | b'0'..=b'9' => c,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
            | b'`' | b'|' | b'~' => c,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Fields a head is expected to have; more grow the vector.
const USUAL_FIELDS: usize = 16;

/// Parses the response head at the front of `buf`: `None` while it is incomplete. Field
/// names are lower-cased in `buf` itself (which is harmless to bytes that will be parsed
/// again: names are case-insensitive).
pub(crate) fn parse_response(buf: &mut [u8]) -> Result<Option<ParsedHead>, HeadError> {
    let scanned = buf.len().min(MAX_HEAD_BYTES);
    match parse_within(&mut buf[..scanned])? {
        None if buf.len() >= MAX_HEAD_BYTES => Err(HeadError::TooLarge),
        parsed => Ok(parsed),
    }
}

/// [`parse_response`] over a buffer of at most [`MAX_HEAD_BYTES`].
fn parse_within(buf: &mut [u8]) -> Result<Option<ParsedHead>, HeadError> {
    let Some(at) = skip_empty_lines(buf)? else {
        return Ok(None);
    };
    let Some((code, http10, next)) = status_line(buf, at)? else {
        return Ok(None);
    };
    let mut fields = Vec::with_capacity(USUAL_FIELDS);
    let Some(at) = field_section(buf, next, |buf, at, colon, start, end| {
        if fields.len() == MAX_HEADERS {
            return Err(HeadError::TooManyFields);
        }
        fields.push(field(buf, at, colon, start, end)?);
        Ok(())
    })?
    else {
        return Ok(None);
    };
    Ok(Some(ParsedHead {
        code,
        http10,
        fields: RawHead {
            bytes: Bytes::copy_from_slice(&buf[..at]),
            fields,
        },
        len: at,
    }))
}

/// One field of a request head parsed by [`parse_request`]: where its name (lower-cased
/// in place) and its value (the whitespace around it left out) are in the buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FieldAt {
    pub(crate) name: u16,
    pub(crate) name_end: u16,
    pub(crate) value: u16,
    pub(crate) value_end: u16,
}

/// A request head parsed by [`parse_request`]: where its method and request-target are,
/// how many fields it has (the first ones of the caller's array) and its length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestAt {
    pub(crate) method: (usize, usize),
    pub(crate) target: (usize, usize),
    pub(crate) fields: usize,
    pub(crate) len: usize,
}

/// Parses the HTTP/1.1 request head at the front of `buf` (at most 64 KiB, so positions
/// fit 16 bits) into `fields`: `None` while it is incomplete. The request line must be
/// `token SP target SP HTTP/1.1` with a target of visible ASCII; fields follow the
/// grammar of [`parse_response`]'s, names lower-cased in `buf` itself; empty lines before
/// the request line are skipped (RFC 9112 §2.2). More fields than `fields` holds is an
/// error, as is anything else (another version included): the caller's server leaves
/// such heads to a general parser.
pub(crate) fn parse_request(
    buf: &mut [u8],
    fields: &mut [FieldAt],
) -> Result<Option<RequestAt>, HeadError> {
    if buf.len() > usize::from(u16::MAX) {
        return Err(HeadError::TooLarge);
    }
    let Some(start) = skip_empty_lines(buf)? else {
        return Ok(None);
    };
    let Some((method, target, next)) = request_line(buf, start)? else {
        return Ok(None);
    };
    let mut n = 0;
    let Some(at) = field_section(buf, next, |_, at, colon, value, value_end| {
        let Some(slot) = fields.get_mut(n) else {
            return Err(HeadError::TooManyFields);
        };
        // Below u16::MAX: checked above.
        let pos = |n: usize| u16::try_from(n).map_err(|_| HeadError::TooLarge);
        *slot = FieldAt {
            name: pos(at)?,
            name_end: pos(colon)?,
            value: pos(value)?,
            value_end: pos(value_end)?,
        };
        n += 1;
        Ok(())
    })?
    else {
        return Ok(None);
    };
    Ok(Some(RequestAt {
        method,
        target,
        fields: n,
        len: at,
    }))
}

/// `METHOD SP target SP HTTP/1.1` starting at `at`: where the method and the target are
/// and where the fields start.
#[allow(clippy::type_complexity)] // Three positions, named at the one call site.
fn request_line(
    buf: &[u8],
    at: usize,
) -> Result<Option<((usize, usize), (usize, usize), usize)>, HeadError> {
    let Some(i) = word_then_space(buf, at, |b| NAME_BYTES[usize::from(b)] != 0, "method")? else {
        return Ok(None);
    };
    let method = (at, i);
    let start = i + 1;
    let Some(i) = word_then_space(buf, start, |b| (0x21..=0x7e).contains(&b), "request target")?
    else {
        return Ok(None);
    };
    let target = (start, i);
    const VERSION: &[u8] = b"HTTP/1.1";
    let rest = &buf[i + 1..];
    let Some(version) = rest.get(..VERSION.len()) else {
        if !VERSION.starts_with(rest) {
            return Err(HeadError::Invalid("HTTP version"));
        }
        return Ok(None);
    };
    if version != VERSION {
        return Err(HeadError::Invalid("HTTP version"));
    }
    let end = i + 1 + VERSION.len();
    let next = match buf.get(end) {
        Some(b'\n') => end + 1,
        Some(b'\r') => match buf.get(end + 1) {
            Some(b'\n') => end + 2,
            Some(_) => return Err(HeadError::Invalid("request line")),
            None => return Ok(None),
        },
        Some(_) => return Err(HeadError::Invalid("request line")),
        None => return Ok(None),
    };
    Ok(Some((method, target, next)))
}

/// The end of a non-empty run of bytes `allowed` from `at`, which a space must follow
/// (`what` names the part in the error).
fn word_then_space(
    buf: &[u8],
    at: usize,
    allowed: impl Fn(u8) -> bool,
    what: &'static str,
) -> Result<Option<usize>, HeadError> {
    let end = buf[at..]
        .iter()
        .position(|b| !allowed(*b))
        .map_or(buf.len(), |n| at + n);
    match buf.get(end) {
        None => Ok(None),
        Some(b' ') if end > at => Ok(Some(end)),
        Some(_) => Err(HeadError::Invalid(what)),
    }
}

/// What the line at `at` of a head's field section is.
enum Line {
    /// A field line (its first byte is not whitespace).
    Field,
    /// The empty line ending the head; the head's length.
    End(usize),
    /// Not known yet.
    Incomplete,
}

/// Whether the line at `at` ends the head or is a field (an obsolete folded line or a
/// CR not ending an empty line is an error).
fn line_at(buf: &[u8], at: usize) -> Result<Line, HeadError> {
    match buf.get(at) {
        Some(b'\n') => Ok(Line::End(at + 1)),
        Some(b'\r') => match buf.get(at + 1) {
            Some(b'\n') => Ok(Line::End(at + 2)),
            Some(_) => Err(HeadError::Invalid("header name")),
            None => Ok(Line::Incomplete),
        },
        Some(b' ' | b'\t') => Err(HeadError::Invalid("obsolete line folding")),
        Some(_) => Ok(Line::Field),
        None => Ok(Line::Incomplete),
    }
}

/// Where the status line starts: after any empty lines.
fn skip_empty_lines(buf: &[u8]) -> Result<Option<usize>, HeadError> {
    let mut at = 0;
    loop {
        match buf.get(at) {
            Some(b'\n') => at += 1,
            Some(b'\r') => match buf.get(at + 1) {
                Some(b'\n') => at += 2,
                Some(_) => return Err(HeadError::Invalid("status line")),
                None => return Ok(None),
            },
            Some(_) => return Ok(Some(at)),
            None => return Ok(None),
        }
    }
}

/// `HTTP/1.x NNN reason`: the code, whether the version is 1.0, and where the fields
/// start.
fn status_line(buf: &[u8], at: usize) -> Result<Option<(u16, bool, usize)>, HeadError> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let line = &buf[at..];
    // `HTTP/1.1 200` and the byte after it.
    let Some(&[v0, v1, v2, v3, v4, v5, v6, version, space, a, b, c, after]) = line.get(..13) else {
        // Not even the start of a status line: no need to wait for the rest of it.
        if !PREFIX.starts_with(&line[..line.len().min(PREFIX.len())]) {
            return Err(HeadError::Invalid("status line"));
        }
        return Ok(None);
    };
    if [v0, v1, v2, v3, v4, v5, v6] != *PREFIX || space != b' ' {
        return Err(HeadError::Invalid("status line"));
    }
    let http10 = match version {
        b'1' => false,
        b'0' => true,
        _ => return Err(HeadError::Invalid("HTTP version")),
    };
    if ![a, b, c].iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Invalid("status code"));
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    let next = match after {
        b' ' => match value_line(buf, at + 13) {
            Ok(Some((_, _, next))) => next,
            Ok(None) => return Ok(None),
            Err(_) => return Err(HeadError::Invalid("reason phrase")),
        },
        b'\n' => at + 13,
        b'\r' => match buf.get(at + 13) {
            Some(b'\n') => at + 14,
            Some(_) => return Err(HeadError::Invalid("reason phrase")),
            None => return Ok(None),
        },
        _ => return Err(HeadError::Invalid("reason phrase")),
    };
    Ok(Some((code, http10, next)))
}

/// The field of a response head whose name starts at `at` and ends at `colon`, its value
/// from `start` to `end`.
fn field(
    buf: &[u8],
    at: usize,
    colon: usize,
    start: usize,
    end: usize,
) -> Result<Field, HeadError> {
    let (name, value) = (&buf[at..colon], &buf[start..end]);
    // Positions are below MAX_HEAD_BYTES (the caller's bound), which fits 16 bits.
    let pos = |n: usize| u16::try_from(n).map_err(|_| HeadError::TooLarge);
    Ok(Field {
        name: pos(at)?,
        name_len: pos(name.len())?,
        value: pos(start)?,
        value_len: pos(value.len())?,
        kind: FieldKind::of_lowercase(name, value),
    })
}

/// The field lines from `at` to the empty line that ends the head, each handed to `each`
/// as (buffer, name start, colon, value start, value end) once its name is lower-cased:
/// the head's length, or `None` while it is incomplete.
fn field_section(
    buf: &mut [u8],
    mut at: usize,
    mut each: impl FnMut(&[u8], usize, usize, usize, usize) -> Result<(), HeadError>,
) -> Result<Option<usize>, HeadError> {
    loop {
        match line_at(buf, at)? {
            Line::Field => {}
            Line::End(next) => return Ok(Some(next)),
            Line::Incomplete => return Ok(None),
        }
        let Some((colon, start, end, next)) = field_positions(buf, at)? else {
            return Ok(None);
        };
        each(buf, at, colon, start, end)?;
        at = next;
    }
}

/// One `name: value` line starting at `at`, its name lower-cased in place: where the
/// colon is, where the value starts and ends, and where the next line starts.
fn field_positions(
    buf: &mut [u8],
    at: usize,
) -> Result<Option<(usize, usize, usize, usize)>, HeadError> {
    let Some(rest) = buf.get_mut(at..) else {
        return Ok(None);
    };
    let mut name_len = None;
    for (i, b) in rest.iter_mut().enumerate() {
        let lower = NAME_BYTES[usize::from(*b)];
        if lower == 0 {
            name_len = Some(i);
            break;
        }
        *b = lower;
    }
    let Some(name_len) = name_len else {
        return Ok(None);
    };
    let colon = at + name_len;
    if name_len == 0 || buf[colon] != b':' {
        return Err(HeadError::Invalid("header name"));
    }
    let Some((start, end, next)) = value_line(buf, colon + 1)? else {
        return Ok(None);
    };
    Ok(Some((colon, start, end, next)))
}

/// The rest of a line from `at` as a field value (or reason phrase): where the value
/// starts and ends, the whitespace around it left out, and where the next line starts;
/// `None` without the line's end yet. Every byte must be HTAB, SP, a visible character
/// or obs-text (RFC 9110 §5.5), and a CR must end the line. Found and checked in one pass,
/// eight bytes at a time: values make up most of a head.
fn value_line(buf: &[u8], mut at: usize) -> Result<Option<(usize, usize, usize)>, HeadError> {
    while let Some(b' ' | b'\t') = buf.get(at) {
        at += 1;
    }
    let start = at;
    loop {
        // Up to the next control character (or DEL).
        at += match buf.get(at..at + 8) {
            Some(chunk) => match first_control(chunk) {
                Some(i) => i,
                None => {
                    at += 8;
                    continue;
                }
            },
            None => match buf[at..].iter().position(|b| *b < 0x20 || *b == 0x7f) {
                Some(i) => i,
                None => return Ok(None),
            },
        };
        let (end, next) = match buf[at] {
            b'\t' => {
                at += 1;
                continue;
            }
            b'\n' => (at, at + 1),
            b'\r' => match buf.get(at + 1) {
                Some(b'\n') => (at, at + 2),
                Some(_) => return Err(HeadError::Invalid("header value")),
                None => return Ok(None),
            },
            _ => return Err(HeadError::Invalid("header value")),
        };
        let trimmed = buf[start..end]
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(start, |i| start + i + 1);
        return Ok(Some((start, trimmed, next)));
    }
}

/// The position of the first byte of `chunk` (eight bytes) below 0x20 or equal to 0x7f.
fn first_control(chunk: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = ONES * 0x80;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    let x = u64::from_le_bytes(word);
    // The classic "has a byte less than n" test (n <= 0x80): the lowest flagged byte is
    // exact (a borrow can only flag bytes above a true one). DEL: x ^ 0x7f.. has a zero.
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    let y = x ^ (ONES * 0x7f);
    let delete = y.wrapping_sub(ONES) & !y & HIGH;
    let flagged = below_space | delete;
    (flagged != 0).then(|| (flagged.trailing_zeros() / 8) as usize)
}

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod tests;
