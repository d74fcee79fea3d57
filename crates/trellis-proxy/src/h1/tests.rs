use std::task::{Context, Poll, Waker};

use bytes::BytesMut;

use super::*;

#[test]
fn chunk_sizes_and_trailers() {
    assert_eq!(parse_chunk_size(b"1A;ext=1\r\n").ok(), Some(Some((10, 26))));
    assert_eq!(parse_chunk_size(b"1A").ok(), Some(None));
    assert!(parse_chunk_size(b"zz\r\n").is_err());
    assert!(parse_chunk_size(&[b'1'; MAX_CHUNK_LINE]).is_err());
    let (len, trailers) = parse_trailers(b"grpc-status: 0\r\n\r\nnext")
        .expect("valid")
        .expect("complete");
    assert_eq!(len, 18);
    assert_eq!(trailers["grpc-status"], "0");
    let (len, trailers) = parse_trailers(b"\r\n").expect("valid").expect("complete");
    assert_eq!((len, trailers.len()), (2, 0));
    assert!(
        parse_trailers(b"grpc-status: 0\r\n")
            .expect("valid")
            .is_none()
    );
}

#[test]
fn encoding_helpers() {
    let mut out = BytesMut::new();
    put_content_length(&mut out, 1024);
    encode_chunk(b"", &mut out);
    encode_chunk(&[b'a'; 26], &mut out);
    encode_last_chunk(None, &mut out);
    let text = String::from_utf8(out.to_vec()).expect("utf-8");
    assert_eq!(
        text,
        format!(
            "content-length: 1024\r\n1a\r\n{}\r\n0\r\n\r\n",
            "a".repeat(26)
        )
    );
    assert_eq!(parse_decimal(b"0"), Some(0));
    assert_eq!(parse_decimal(b"18446744073709551615"), None);
    assert_eq!(parse_decimal(b"+1"), None);
    assert_eq!(parse_decimal(b""), None);
}

/// Everything `poll_frame` yields from `bytes` alone, and the decoder's state after.
fn decode(mut decoder: BodyDecoder, bytes: &[u8]) -> (Vec<u8>, bool, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let mut body = Vec::new();
    let mut trailers = false;
    let mut cx = Context::from_waker(Waker::noop());
    let mut src = Eof(&mut buf);
    loop {
        match decoder.poll_frame(&mut src, &mut cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => body.extend_from_slice(&data),
                Err(_) => trailers = true,
            },
            Poll::Ready(None) => break,
            Poll::Ready(Some(Err(e))) => panic!("decode error: {e}"),
            Poll::Pending => panic!("incomplete"),
        }
    }
    (body, trailers, buf)
}

struct Eof<'a>(&'a mut BytesMut);

impl Source for Eof<'_> {
    fn buffer(&mut self) -> &mut BytesMut {
        self.0
    }
    fn poll_fill(&mut self, _cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(0))
    }
}

#[test]
fn bodies_stop_at_their_framing() {
    let (body, _, rest) = decode(BodyDecoder::length(3), b"abcGET /");
    assert_eq!((&body[..], &rest[..]), (&b"abc"[..], &b"GET /"[..]));
    let chunked = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\ngrpc-status: 0\r\n\r\nnext";
    let (body, trailers, rest) = decode(BodyDecoder::ChunkSize, chunked);
    assert_eq!(&body[..], b"abcde");
    assert!(trailers);
    assert_eq!(&rest[..], b"next");
    let (body, trailers, _) = decode(BodyDecoder::ChunkSize, b"1\r\nz\r\n0\r\n\r\n");
    assert_eq!((&body[..], trailers), (&b"z"[..], false));
    let (body, _, _) = decode(BodyDecoder::UntilClose, b"all of it");
    assert_eq!(&body[..], b"all of it");
}

#[test]
fn broken_bodies_are_errors() {
    let mut cx = Context::from_waker(Waker::noop());
    for (decoder, bytes) in [
        (BodyDecoder::length(5), &b"abc"[..]),
        (BodyDecoder::ChunkSize, b"3\r\nabcdef\r\n"),
        (BodyDecoder::ChunkSize, b"zz\r\n"),
        (BodyDecoder::ChunkSize, b"ffffffffffffffffff\r\n"),
        (BodyDecoder::ChunkSize, b"3\r\nab"),
    ] {
        let mut decoder = decoder;
        let mut buf = BytesMut::from(bytes);
        let mut src = Eof(&mut buf);
        let failed = loop {
            match decoder.poll_frame(&mut src, &mut cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(_))) => break true,
                Poll::Ready(None) | Poll::Pending => break false,
            }
        };
        assert!(failed, "{bytes:?}");
    }
}

#[test]
fn buffered_bodies_are_skipped_without_reading() {
    let mut buf = BytesMut::from(&b"4\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\n"[..]);
    let mut decoder = BodyDecoder::ChunkSize;
    assert!(decoder.skip_buffered(&mut buf).expect("valid"));
    assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
    let mut buf = BytesMut::from(&b"abc"[..]);
    let mut decoder = BodyDecoder::length(10);
    assert!(!decoder.skip_buffered(&mut buf).expect("valid"));
    assert_eq!(decoder, BodyDecoder::Length(7));
    assert!(buf.is_empty());
}
