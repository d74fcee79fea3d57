use std::mem::MaybeUninit;

use proptest::prelude::*;

use super::*;

fn parse(text: &[u8]) -> Result<Option<ParsedHead>, HeadError> {
    parse_response(&mut text.to_vec())
}

fn fields(head: &ParsedHead) -> Vec<(String, String)> {
    head.fields
        .fields()
        .map(|(n, v, _)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn invalid(text: &str) -> HeadError {
    match parse(text.as_bytes()) {
        Err(e) => e,
        Ok(other) => panic!("{text:?} accepted: {other:?}"),
    }
}

#[test]
fn a_typical_head_parses_with_lower_case_names_and_trimmed_values() {
    let text = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 05 Dec 2026 18:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\nX-Tab:\tv 1\t \r\nConnection: keep-alive\r\n\r\nbody";
    let head = parse(text).expect("valid").expect("complete");
    assert_eq!((head.code, head.http10), (200, false));
    assert_eq!(head.len, text.len() - 4);
    assert_eq!(
        fields(&head),
        [
            ("server", "nginx/1.22.1"),
            ("date", "Sat, 05 Dec 2026 18:00:00 GMT"),
            ("content-type", "text/plain"),
            ("content-length", "1024"),
            ("x-tab", "v 1"),
            ("connection", "keep-alive"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    let kinds: Vec<_> = head.fields.fields().map(|(_, _, k)| k).collect();
    use FieldKind::*;
    assert_eq!(kinds, [Other, Date, Other, ContentLength, Other, HopByHop]);
}

#[test]
fn lenient_where_httparse_is() {
    // Bare line feeds, empty lines before the status line, no reason phrase, an empty
    // value, obs-text in values and reasons, HTTP/1.0.
    let head = parse(b"\r\n\nHTTP/1.0 404\nA:\nB: caf\xc3\xa9\n\n")
        .expect("valid")
        .expect("complete");
    assert_eq!((head.code, head.http10), (404, true));
    assert_eq!(
        fields(&head),
        [("a", ""), ("b", "café")].map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    let head = parse(b"HTTP/1.1 200 \xff ok\t\r\n\r\n")
        .expect("valid")
        .expect("complete");
    assert_eq!(head.code, 200);
}

#[test]
fn hostile_heads_are_refused_by_what_is_wrong() {
    use HeadError::Invalid;
    let cases = [
        ("SSH-2.0-OpenSSH", "status line"),
        ("HTTP/2.0 200 OK\r\n\r\n", "status line"),
        ("HTTP/1.2 200 OK\r\n\r\n", "HTTP version"),
        ("HTTP/1.1  200 OK\r\n\r\n", "status code"),
        ("HTTP/1.1 20 OK\r\n\r\n", "status code"),
        ("HTTP/1.1 200OK\r\n\r\n", "reason phrase"),
        ("HTTP/1.1 200 O\x00K\r\n\r\n", "reason phrase"),
        ("HTTP/1.1 200 OK\r\r\n\r\n", "reason phrase"),
        ("\rHTTP/1.1 200 OK\r\n\r\n", "status line"),
        (
            "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
            "obsolete line folding",
        ),
        (
            "HTTP/1.1 200 OK\r\na: b\r\n\tc\r\n\r\n",
            "obsolete line folding",
        ),
        ("HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", "header name"),
        ("HTTP/1.1 200 OK\r\nname : x\r\n\r\n", "header name"),
        ("HTTP/1.1 200 OK\r\n: x\r\n\r\n", "header name"),
        ("HTTP/1.1 200 OK\r\nna(me: x\r\n\r\n", "header name"),
        ("HTTP/1.1 200 OK\r\nno-colon\r\n\r\n", "header name"),
        ("HTTP/1.1 200 OK\r\n\rx\r\n\r\n", "header name"),
        ("HTTP/1.1 200 OK\r\na: b\rc\r\n\r\n", "header value"),
        ("HTTP/1.1 200 OK\r\na: b\x00c\r\n\r\n", "header value"),
        (
            "HTTP/1.1 200 OK\r\na: 0123456789\x7f\r\n\r\n",
            "header value",
        ),
        (
            "HTTP/1.1 200 OK\r\na: 01234567\x1b89\r\n\r\n",
            "header value",
        ),
    ];
    for (text, what) in cases {
        assert_eq!(invalid(text), Invalid(what), "{text:?}");
    }
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    assert_eq!(
        invalid(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
        HeadError::TooManyFields
    );
    let at_most: String = (0..MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    let head = parse(format!("HTTP/1.1 200 OK\r\n{at_most}\r\n").as_bytes());
    assert_eq!(
        head.expect("valid")
            .expect("complete")
            .fields
            .fields()
            .count(),
        100
    );
    let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD_BYTES));
    assert_eq!(invalid(&huge), HeadError::TooLarge);
    // A complete head that ends past the bound is too large too, not misread.
    let huge = format!(
        "HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n",
        "a".repeat(MAX_HEAD_BYTES)
    );
    assert_eq!(invalid(&huge), HeadError::TooLarge);
}

#[test]
fn every_prefix_of_a_valid_head_is_incomplete() {
    let text = b"\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nx: \t\r\nY:z\n\r\n";
    for end in 0..text.len() {
        let prefix = &text[..end];
        assert!(
            matches!(parse(prefix), Ok(None)),
            "{:?}",
            String::from_utf8_lossy(prefix)
        );
    }
    assert_eq!(
        parse(text).expect("valid").expect("complete").len,
        text.len()
    );
}

/// What httparse (default settings, as hyper uses it) makes of `text`: the head's length,
/// code, version and fields (names lower-cased); `Err(true)` while incomplete,
/// `Err(false)` for an error.
type Reference = Result<(usize, u16, bool, Vec<(Vec<u8>, Vec<u8>)>), bool>;

fn httparse(text: &[u8]) -> Reference {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        text,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) => Ok((
            len,
            parsed.code.unwrap_or_default(),
            parsed.version == Some(0),
            parsed
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase().into_bytes(), h.value.to_vec()))
                .collect(),
        )),
        Ok(httparse::Status::Partial) => Err(true),
        Err(_) => Err(false),
    }
}

fn ours(text: &[u8]) -> Reference {
    match parse(text) {
        Ok(Some(head)) => Ok((
            head.len,
            head.code,
            head.http10,
            head.fields
                .fields()
                .map(|(n, v, _)| (n.to_vec(), v.to_vec()))
                .collect(),
        )),
        Ok(None) => Err(true),
        Err(_) => Err(false),
    }
}

/// Pieces response heads are made of, valid and not.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        Just(b"HTTP/1.0 304 \r\n".to_vec()),
        Just(b"HTTP/1.1 101\n".to_vec()),
        Just(b"Content-Length: 12\r\n".to_vec()),
        Just(b"transfer-encoding:chunked\n".to_vec()),
        Just(b"X-Long: abcdefghijklmnopqrstuvwxyz \t\r\n".to_vec()),
        Just(b"x-tab:\tab\tcd\x80\xffefghij\x7f\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b": ".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\r".to_vec()),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 1..12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Same answers as httparse: what it completes, the parser completes identically;
    /// what it refuses, the parser never completes; the parser refuses nothing httparse
    /// would still wait on or accept.
    #[test]
    fn answers_as_httparse_does(
        pieces in proptest::collection::vec(piece(), 1..10),
        start_valid in any::<bool>(),
        end_valid in any::<bool>(),
    ) {
        let mut text = Vec::new();
        if start_valid {
            text.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        }
        for p in &pieces {
            text.extend_from_slice(p);
        }
        if end_valid {
            text.extend_from_slice(b"\r\n\r\n");
        }
        let (theirs, mine) = (httparse(&text), ours(&text));
        match &theirs {
            Ok(_) => prop_assert_eq!(&mine, &theirs),
            Err(false) => prop_assert!(mine.is_err(), "httparse refuses, we accept: {:?}", mine),
            Err(true) => prop_assert!(mine == Err(true), "httparse waits, we answer {:?}", mine),
        }
        if mine == Err(false) {
            prop_assert_eq!(theirs, Err(false));
        }
    }
}
