use ::http::Request;

use ::http::{HeaderMap, HeaderValue};

use super::*;
use crate::h1::{encode_chunk, encode_last_chunk, format_u64};

fn head(method: Method, uri: &str, headers: &[(&'static str, &'static str)]) -> request::Parts {
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri.parse().expect("uri");
    for (name, value) in headers {
        req.headers_mut()
            .append(*name, HeaderValue::from_static(value));
    }
    req.into_parts().0
}

fn encoded(head: &request::Parts, framing: RequestFraming) -> String {
    let mut out = BytesMut::new();
    encode_head(head, framing, &mut out);
    String::from_utf8(out.to_vec()).expect("utf-8")
}

fn parsed(raw: &str) -> Result<Option<ResponseHead>, Error> {
    parse_head(&mut BytesMut::from(raw))
}

fn response(raw: &str) -> ResponseHead {
    parsed(raw).expect("valid").expect("complete")
}

#[test]
fn request_heads_are_in_origin_form_with_our_framing() {
    let h = head(
        Method::POST,
        "http://10.0.0.7:8080/api/v1?x=1",
        &[
            ("host", "reviews:9080"),
            ("content-length", "99"),
            ("transfer-encoding", "gzip"),
            ("x-b3", "a"),
        ],
    );
    assert_eq!(
        encoded(&h, RequestFraming::Length(5)),
        "POST /api/v1?x=1 HTTP/1.1\r\nhost: reviews:9080\r\nx-b3: a\r\ncontent-length: 5\r\n\r\n"
    );
    assert_eq!(
        encoded(&h, RequestFraming::Chunked),
        "POST /api/v1?x=1 HTTP/1.1\r\nhost: reviews:9080\r\nx-b3: a\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    // No Host: the URI's authority is the Host.
    let h = head(Method::GET, "http://10.0.0.7:8080/", &[]);
    assert_eq!(
        encoded(&h, RequestFraming::None),
        "GET / HTTP/1.1\r\nhost: 10.0.0.7:8080\r\n\r\n"
    );
}

#[test]
fn empty_bodies_get_a_length_only_where_content_is_expected() {
    let choose = RequestFraming::choose;
    assert_eq!(choose(&Method::GET, Some(0), false), RequestFraming::None);
    assert_eq!(
        choose(&Method::GET, Some(0), true),
        RequestFraming::Length(0)
    );
    assert_eq!(
        choose(&Method::POST, Some(0), false),
        RequestFraming::Length(0)
    );
    assert_eq!(
        choose(&Method::GET, Some(3), false),
        RequestFraming::Length(3)
    );
    assert_eq!(choose(&Method::PUT, None, false), RequestFraming::Chunked);
}

#[test]
fn chunks_are_hex_sized() {
    let mut out = BytesMut::new();
    encode_chunk(&[b'a'; 26], &mut out);
    encode_chunk(b"", &mut out);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    encode_last_chunk(Some(&trailers), &mut out);
    let expected = format!("1a\r\n{}\r\n0\r\ngrpc-status: 0\r\n\r\n", "a".repeat(26));
    assert_eq!(&out[..], expected.as_bytes());
    let mut digits = [0; 20];
    assert_eq!(format_u64(0, &mut digits), b"0");
    assert_eq!(format_u64(u64::MAX, &mut digits), b"18446744073709551615");
}

#[test]
fn response_heads_parse_and_leave_the_body_in_the_buffer() {
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nok"[..],
    );
    let head = parse_head(&mut buf).expect("valid").expect("complete");
    assert_eq!(head.status, StatusCode::CREATED);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(&buf[..], b"ok");
    // The values do not point into the read buffer.
    let value = head.fields.first(FieldKind::ContentLength).expect("length");
    assert_eq!(value, b"2");
    let value = value.as_ptr() as usize;
    let mut map = HeaderMap::new();
    head.fields.append_to(&mut map, true);
    assert_eq!(map.get_all("x-a").iter().count(), 2);
    let inside = buf.as_ptr() as usize - 60..buf.as_ptr() as usize + 2;
    assert!(!inside.contains(&value));
    // Partial: nothing consumed.
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
    assert!(parse_head(&mut buf).expect("valid").is_none());
    assert_eq!(buf.len(), 27);
}

#[test]
fn bad_response_heads_are_errors() {
    assert!(matches!(
        parsed("HTTP/1.1 2000 OK\r\n\r\n"),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        parsed("SSH-2.0-OpenSSH\r\n\r\n"),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        parsed("HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n"),
        Err(Error::Malformed(_))
    ));
    let many: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
    assert!(matches!(
        parsed(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
        Err(Error::Malformed("too many headers"))
    ));
    let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD_BYTES));
    assert!(matches!(parsed(&huge), Err(Error::HeadTooLarge)));
}

#[test]
fn response_framing_follows_rfc_9112() {
    let get = Method::GET;
    let framing = |raw: &str, method: &Method| response(raw).framing(method);
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n", &get).ok(),
        Some(ResponseFraming::Length(12))
    );
    assert_eq!(
        framing(
            "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n",
            &Method::HEAD
        )
        .ok(),
        Some(ResponseFraming::Empty)
    );
    for status in [
        "204 No Content",
        "304 Not Modified",
        "200 OK\r\ncontent-length: 0",
    ] {
        assert_eq!(
            framing(&format!("HTTP/1.1 {status}\r\n\r\n"), &get).ok(),
            Some(ResponseFraming::Empty),
            "{status}"
        );
    }
    assert_eq!(
        framing(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: ws\r\n\r\n",
            &get
        )
        .ok(),
        Some(ResponseFraming::Upgrade)
    );
    // Transfer-Encoding wins over Content-Length; a final coding other than chunked
    // runs until close.
    assert_eq!(
        framing(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 4\r\n\r\n",
            &get
        )
        .ok(),
        Some(ResponseFraming::Chunked)
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", &get).ok(),
        Some(ResponseFraming::UntilClose)
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\n\r\n", &get).ok(),
        Some(ResponseFraming::UntilClose)
    );
    // Repeated equal lengths are one length; differing or invalid ones are errors.
    assert_eq!(
        framing(
            "HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\ncontent-length: 3\r\n\r\n",
            &get
        )
        .ok(),
        Some(ResponseFraming::Length(3))
    );
    for bad in ["3, 4", "-1", "0x10", "", "99999999999999999999"] {
        let raw = format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n");
        assert!(framing(&raw, &get).is_err(), "{bad}");
    }
}

#[test]
fn keep_alive_needs_http_1_1_or_an_explicit_keep_alive() {
    let keeps = |raw: &str| response(raw).keeps_alive();
    assert!(keeps("HTTP/1.1 200 OK\r\n\r\n"));
    assert!(!keeps(
        "HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\n\r\n"
    ));
    assert!(!keeps("HTTP/1.0 200 OK\r\n\r\n"));
    assert!(keeps("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n"));
    // Both framings at once: answered, then never trusted again.
    assert!(!keeps(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n"
    ));
}
