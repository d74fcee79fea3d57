//! The request-head parser against httparse (the parser hyper uses, default settings).

use std::mem::MaybeUninit;

use proptest::prelude::*;

use super::*;

/// Method, target, fields (names lower-cased) and length of a complete head;
/// `Err(true)` while incomplete, `Err(false)` for an error.
type Answer = Result<(Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, usize), bool>;

fn ours(text: &[u8]) -> Answer {
    let mut buf = text.to_vec();
    let mut fields = [FieldAt::default(); MAX_HEADERS];
    match parse_request(&mut buf, &mut fields) {
        Ok(Some(head)) => Ok((
            buf[head.method.0..head.method.1].to_vec(),
            buf[head.target.0..head.target.1].to_vec(),
            fields[..head.fields]
                .iter()
                .map(|f| {
                    let range = |a: u16, b: u16| buf[usize::from(a)..usize::from(b)].to_vec();
                    (range(f.name, f.name_end), range(f.value, f.value_end))
                })
                .collect(),
            head.len,
        )),
        Ok(None) => Err(true),
        Err(_) => Err(false),
    }
}

/// httparse's answer, and whether the head is one this parser means to take: HTTP/1.1
/// with a target of visible ASCII.
fn httparse(text: &[u8]) -> (Answer, bool) {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, text, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => {
            let target = req.path.unwrap_or_default().as_bytes().to_vec();
            let ours = req.version == Some(1) && target.iter().all(|b| (0x21..=0x7e).contains(b));
            let answer = Ok((
                req.method.unwrap_or_default().as_bytes().to_vec(),
                target,
                req.headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase().into_bytes(), h.value.to_vec()))
                    .collect(),
                len,
            ));
            (answer, ours)
        }
        Ok(httparse::Status::Partial) => (Err(true), true),
        Err(_) => (Err(false), false),
    }
}

#[test]
fn a_typical_head() {
    let text = b"GET /api/v1?x=1 HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Tab:\tv 1\t \r\n\r\nbody";
    let (method, target, fields, len) = ours(text).expect("complete");
    assert_eq!(
        (&method[..], &target[..]),
        (&b"GET"[..], &b"/api/v1?x=1"[..])
    );
    assert_eq!(len, text.len() - 4);
    let fields: Vec<(String, String)> = fields
        .into_iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(&n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("host", "reviews:9080"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "*/*"),
            ("x-tab", "v 1"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    // Empty lines before the request line are skipped; bare line feeds end lines.
    let (_, _, fields, len) = ours(b"\r\n\nPOST / HTTP/1.1\nA:\n\n").expect("complete");
    assert_eq!((fields.len(), len), (1, 23));
}

#[test]
fn what_is_left_to_hyper() {
    for text in [
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET /\x7f HTTP/1.1\r\n\r\n",
        "GET /café HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\r\n\r\n",
        "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
        "GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
        "GET / HTTP/1.1\r\na: b\x00c\r\n\r\n",
    ] {
        assert_eq!(ours(text.as_bytes()), Err(false), "{text:?}");
    }
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    assert_eq!(
        ours(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
        Err(false)
    );
    let text = b"\r\nDELETE /a/b HTTP/1.1\r\nContent-Length: 0\r\nx: \t\r\nY:z\n\r\n";
    for end in 0..text.len() {
        assert_eq!(ours(&text[..end]), Err(true), "{:?}", &text[..end]);
    }
}

/// Pieces request heads are made of, valid and not.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET / HTTP/1.1\r\n".to_vec()),
        Just(b"POST /a?b=c HTTP/1.1\n".to_vec()),
        Just(b"OPTIONS * HTTP/1.0\r\n".to_vec()),
        Just(b"Host: reviews\r\n".to_vec()),
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
        Just(b" HTTP/1.1".to_vec()),
        "[a-zA-Z0-9!#$%&'*+.^_`|~/?=-]{1,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 1..12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// What the parser completes, httparse completes identically; what httparse
    /// refuses or waits on, the parser never completes; every head httparse completes
    /// that is HTTP/1.1 with a visible-ASCII target, the parser completes too, and it
    /// refuses no beginning of such a head.
    #[test]
    fn agrees_with_httparse(
        pieces in proptest::collection::vec(piece(), 1..10),
        start_valid in any::<bool>(),
        end_valid in any::<bool>(),
    ) {
        let mut text = Vec::new();
        if start_valid {
            text.extend_from_slice(b"GET /x HTTP/1.1\r\n");
        }
        for p in &pieces {
            text.extend_from_slice(p);
        }
        if end_valid {
            text.extend_from_slice(b"\r\n\r\n");
        }
        let ((theirs, meant), mine) = (httparse(&text), ours(&text));
        match (&theirs, &mine) {
            (_, Ok(_)) => prop_assert_eq!(&mine, &theirs),
            (Ok(_), _) => prop_assert!(!meant, "httparse completes, we answer {:?}", mine),
            (Err(true), Err(false)) => {
                // Refusing what httparse still waits on is fine where the whole head
                // would not be ours anyway.
                let mut whole = text.clone();
                whole.extend_from_slice(b"\r\n\r\n");
                let (completed, meant) = httparse(&whole);
                prop_assert!(completed.is_err() || !meant, "we refuse the start of {:?}", String::from_utf8_lossy(&whole));
            }
            _ => {}
        }
    }
}
