//! Classification of a connection's first bytes, as a pure function of what has been peeked
//! so far. Kept free of I/O so the rules can be tested exhaustively and fuzzed; the peek loop
//! in [`super`] only decides *when* to call it again.

use super::tls;

/// The HTTP/2 client connection preface (RFC 9113 §3.4), sent first by every h2c client
/// with prior knowledge and by h2 clients after ALPN.
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/1 request-line starts, method plus the space that must follow it. `PRI` is
/// deliberately absent: it only ever starts the HTTP/2 preface.
const H1_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];

/// The longest prefix any rule needs before it can decide without TLS: the h2 preface.
pub(crate) const SNIFF_LEN: usize = H2_PREFACE.len();

/// TLS record content type `handshake`.
const TLS_HANDSHAKE: u8 = 0x16;

/// Size of a TLS record header: type, version (2), length (2).
pub(crate) const TLS_RECORD_HEADER: usize = 5;

/// A TLS record's body may carry at most 2^14 bytes of plaintext (RFC 8446 §5.1); a
/// ClientHello record longer than that is not one we can parse from a single record.
pub(crate) const TLS_MAX_RECORD: usize = 16 * 1024;

/// What the bytes seen so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Still ambiguous: more bytes could change the answer.
    NeedMore,
    /// A request line of HTTP/1.x.
    Http1,
    /// The full HTTP/2 preface.
    Http2,
    /// A TLS handshake record header; the full record is `record_len` bytes including
    /// the header (at most `TLS_RECORD_HEADER + TLS_MAX_RECORD`), or `None` when the
    /// record is larger than we are willing to buffer, so SNI will not be extracted.
    Tls { record_len: Option<usize> },
    /// None of the above: proxy as opaque TCP.
    Opaque,
}

/// Classifies `bytes`, the first bytes of the connection (possibly fewer than a decision
/// needs). The rules never look past [`SNIFF_LEN`] bytes except for the TLS record header.
pub(crate) fn classify(bytes: &[u8]) -> Verdict {
    let Some(&first) = bytes.first() else {
        return Verdict::NeedMore;
    };
    if first == TLS_HANDSHAKE {
        return classify_tls(bytes);
    }
    match prefix_state(bytes, H2_PREFACE) {
        Prefix::Complete => return Verdict::Http2,
        Prefix::Partial => return Verdict::NeedMore,
        Prefix::Mismatch => {}
    }
    let mut partial = false;
    for method in H1_METHODS {
        match prefix_state(bytes, method) {
            Prefix::Complete => return Verdict::Http1,
            Prefix::Partial => partial = true,
            Prefix::Mismatch => {}
        }
    }
    if partial {
        Verdict::NeedMore
    } else {
        Verdict::Opaque
    }
}

/// The TLS rule: `0x16 0x03 0x00..=0x04` followed by a two-byte record length.
fn classify_tls(bytes: &[u8]) -> Verdict {
    match bytes.get(1) {
        None => return Verdict::NeedMore,
        Some(0x03) => {}
        Some(_) => return Verdict::Opaque,
    }
    match bytes.get(2) {
        None => return Verdict::NeedMore,
        Some(0x00..=0x04) => {}
        Some(_) => return Verdict::Opaque,
    }
    match tls::record_body_len(bytes) {
        None => Verdict::NeedMore,
        Some(0) => Verdict::Opaque,
        Some(len) if len > TLS_MAX_RECORD => Verdict::Tls { record_len: None },
        Some(len) => Verdict::Tls {
            record_len: Some(TLS_RECORD_HEADER + len),
        },
    }
}

/// How `bytes` relates to an expected `pattern`.
enum Prefix {
    /// `bytes` starts with the whole pattern.
    Complete,
    /// `bytes` is a proper prefix of the pattern: cannot tell yet.
    Partial,
    /// `bytes` diverges from the pattern.
    Mismatch,
}

fn prefix_state(bytes: &[u8], pattern: &[u8]) -> Prefix {
    if bytes.len() >= pattern.len() {
        if bytes.starts_with(pattern) {
            Prefix::Complete
        } else {
            Prefix::Mismatch
        }
    } else if pattern.starts_with(bytes) {
        Prefix::Partial
    } else {
        Prefix::Mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_methods_need_the_space() {
        for m in H1_METHODS {
            assert_eq!(classify(m), Verdict::Http1, "{m:?}");
            assert_eq!(classify(&m[..m.len() - 1]), Verdict::NeedMore, "{m:?}");
        }
        assert_eq!(classify(b"GET /index.html HTTP/1.1\r\n"), Verdict::Http1);
        assert_eq!(classify(b"GETX"), Verdict::Opaque);
        assert_eq!(classify(b"get / HTTP/1.1"), Verdict::Opaque);
        assert_eq!(classify(b"PRI "), Verdict::NeedMore);
        assert_eq!(classify(b"PRI * HTTP/1.1\r\n"), Verdict::Opaque);
    }

    #[test]
    fn h2_preface_is_http2_only_when_complete() {
        assert_eq!(classify(H2_PREFACE), Verdict::Http2);
        assert_eq!(classify(&H2_PREFACE[..10]), Verdict::NeedMore);
        let mut more = H2_PREFACE.to_vec();
        more.extend_from_slice(&[0, 0, 0, 4, 0]);
        assert_eq!(classify(&more), Verdict::Http2);
    }

    #[test]
    fn tls_header_rules() {
        assert_eq!(classify(&[0x16]), Verdict::NeedMore);
        assert_eq!(classify(&[0x16, 0x03, 0x01, 0x00]), Verdict::NeedMore);
        assert_eq!(
            classify(&[0x16, 0x03, 0x01, 0x00, 0x10]),
            Verdict::Tls {
                record_len: Some(21)
            }
        );
        assert_eq!(
            classify(&[0x16, 0x03, 0x01, 0x40, 0x01]),
            Verdict::Tls { record_len: None }
        );
        assert_eq!(classify(&[0x16, 0x03, 0x05]), Verdict::Opaque);
        assert_eq!(classify(&[0x16, 0x02]), Verdict::Opaque);
        assert_eq!(classify(&[0x16, 0x03, 0x01, 0x00, 0x00]), Verdict::Opaque);
    }

    #[test]
    fn other_bytes_are_opaque() {
        assert_eq!(classify(b""), Verdict::NeedMore);
        assert_eq!(classify(b"\x00\x00\x00\x01"), Verdict::Opaque);
        assert_eq!(classify(b"SSH-2.0-OpenSSH"), Verdict::Opaque);
        assert_eq!(classify(b"*1\r\n$4\r\nPING\r\n"), Verdict::Opaque);
    }
}
