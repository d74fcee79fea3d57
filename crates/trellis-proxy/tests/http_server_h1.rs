//! The proxy's own HTTP/1.1 server, on raw TCP: pipelined requests, request bodies (by
//! length and chunked) read off the connection and the connection reused after them,
//! bodies nobody read, `Connection: close`, `HEAD`, chunked responses and trailers, and a
//! connection that moves to hyper half-way (an HTTP/1.0 request after HTTP/1.1 ones).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use support::{Backend, LIMIT, runtime, service_entry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use trellis_proxy::http::{ServeOptions, serve};

const HOST: &str = "orders";

async fn proxy_for(port: u16) -> SocketAddr {
    let yaml = service_entry("orders", "HTTP", &[(port, "v1")]);
    let (_, rx) = watch::channel(Arc::new(runtime(&yaml, |_| {})));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(serve(listener, rx, ServeOptions::default()));
    addr
}

/// One response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Trailer lines of a chunked body.
    trailers: Vec<String>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response to a request of `method` from `conn` (`buf` keeps what was read
/// beyond it).
async fn read_answer(conn: &mut TcpStream, buf: &mut Vec<u8>, method: &str) -> Answer {
    let (status, headers, head_len) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(n) = resp.parse(buf).expect("valid response head") {
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_ascii_lowercase(), value)
                })
                .collect::<Vec<_>>();
            break (resp.code.expect("status"), headers, n);
        }
        fill(conn, buf).await;
    };
    buf.drain(..head_len);
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
    };
    if method == "HEAD" {
        return answer;
    }
    if let Some(len) = answer.header("content-length") {
        let len: usize = len.parse().expect("content-length");
        while buf.len() < len {
            fill(conn, buf).await;
        }
        answer.body = buf.drain(..len).collect();
        return answer;
    }
    assert_eq!(
        answer.header("transfer-encoding"),
        Some("chunked"),
        "{answer:?}"
    );
    loop {
        let line = read_line(conn, buf).await;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or(""), 16).expect("size");
        if size == 0 {
            break;
        }
        while buf.len() < size + 2 {
            fill(conn, buf).await;
        }
        answer.body.extend(buf.drain(..size));
        assert_eq!(buf.drain(..2).collect::<Vec<_>>(), b"\r\n");
    }
    loop {
        let line = read_line(conn, buf).await;
        if line.is_empty() {
            return answer;
        }
        answer.trailers.push(line);
    }
}

async fn read_line(conn: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..at]).into_owned();
            buf.drain(..at + 2);
            return line;
        }
        fill(conn, buf).await;
    }
}

async fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = conn.read(&mut chunk).await.expect("read");
    assert!(
        n > 0,
        "closed early; have {:?}",
        String::from_utf8_lossy(buf)
    );
    buf.extend_from_slice(&chunk[..n]);
}

/// Whether the proxy closes `conn` within a second.
async fn closes(conn: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), conn.read(&mut chunk)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A raw client connection and what it has read beyond the last answer.
struct Client {
    conn: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(proxy: SocketAddr) -> Client {
        let conn = TcpStream::connect(proxy).await.expect("connect");
        Client {
            conn,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, text: &[u8]) {
        self.conn.write_all(text).await.expect("send");
    }

    /// Reads the answer to a request of `method`.
    async fn answer(&mut self, method: &str) -> Answer {
        read_answer(&mut self.conn, &mut self.buf, method).await
    }

    /// Sends one request and reads its answer.
    async fn ask(&mut self, request: &str) -> Answer {
        self.send(request.as_bytes()).await;
        let method = request.split(' ').next().unwrap_or("GET");
        self.answer(method).await
    }

    /// Whether the proxy closes the connection within a second.
    async fn closes(&mut self) -> bool {
        closes(&mut self.conn).await
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_for(backend.port()).await;
        let mut client = Client::connect(proxy).await;
        let reqs: String = (1..=3)
            .map(|i| format!("GET /r{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
            .collect();
        client.send(reqs.as_bytes()).await;
        for _ in 1..=3 {
            let a = client.answer("GET").await;
            assert_eq!((a.status, &a.body[..]), (200, &b"v1"[..]));
            assert!(a.header("date").is_some(), "{a:?}");
        }
        let uris: Vec<String> = backend.seen().into_iter().map(|s| s.uri).collect();
        assert_eq!(uris, ["/r1", "/r2", "/r3"]);
        assert!(!client.closes().await, "kept alive");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn request_bodies_stream_through_and_the_connection_is_reused() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_for(backend.port()).await;
        let mut client = Client::connect(proxy).await;
        let big = "x".repeat(200 * 1024);
        let sends = [
            format!("POST /len HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\n\r\nhello"),
            format!(
                "POST /chunked HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
            ),
            format!(
                "PUT /big HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\n\r\n{big}",
                big.len()
            ),
            format!("GET /after HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
        ];
        for send in &sends {
            let a = client.ask(send).await;
            assert_eq!(a.status, 200, "{a:?}");
        }
        let seen = backend.seen();
        let bodies: Vec<usize> = seen.iter().map(|s| s.body.len()).collect();
        assert_eq!(bodies, [5, 7, big.len(), 0]);
        assert_eq!(&seen[0].body[..], b"hello");
        assert_eq!(&seen[1].body[..], b"abcdefg");
        assert!(seen[2].body.iter().all(|b| *b == b'x'));
    })
    .await
    .expect("test timed out");
}

/// A keep-alive connection idle for more than a second gives its buffers back; the next
/// requests are read into new ones: a head longer than the first read, a head sent in
/// pieces, a body, and pipelined requests.
#[tokio::test]
async fn connections_idle_past_the_buffer_release_keep_serving() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_for(backend.port()).await;
        let mut client = Client::connect(proxy).await;
        let pad = "p".repeat(5000);
        let a = client
            .ask(&format!("GET /before HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let a = client
            .ask(&format!(
                "POST /long HTTP/1.1\r\nHost: {HOST}\r\nX-Pad: {pad}\r\nContent-Length: 5\r\n\r\nhello"
            ))
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let piecewise = format!("GET /pieces HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        let (first, rest) = piecewise.split_at(7);
        client.send(first.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.send(rest.as_bytes()).await;
        let a = client.answer("GET").await;
        assert_eq!(a.status, 200, "{a:?}");
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let reqs: String = (1..=2)
            .map(|i| format!("GET /r{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
            .collect();
        client.send(reqs.as_bytes()).await;
        for _ in 1..=2 {
            assert_eq!(client.answer("GET").await.status, 200);
        }
        let seen = backend.seen();
        let uris: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["/before", "/long", "/pieces", "/r1", "/r2"]);
        assert_eq!(&seen[1].body[..], b"hello");
        assert_eq!(seen[1].headers["x-pad"].as_bytes(), pad.as_bytes());
        assert!(!client.closes().await, "kept alive");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn unread_bodies_are_skipped_when_buffered_else_the_connection_closes() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_for(backend.port()).await;
        // Unknown host: answered locally (404 NR) without reading the body.
        let mut client = Client::connect(proxy).await;
        client
            .send(
                b"POST / HTTP/1.1\r\nHost: nowhere\r\nContent-Length: 4\r\n\r\nbody\
                  GET /next HTTP/1.1\r\nHost: orders\r\n\r\n",
            )
            .await;
        let a = client.answer("POST").await;
        assert_eq!(a.status, 404, "{a:?}");
        let a = client.answer("GET").await;
        assert_eq!((a.status, &a.body[..]), (200, &b"v1"[..]));
        assert_eq!(backend.seen()[0].uri, "/next");

        // A body that has not arrived cannot be skipped: the connection ends.
        let mut client = Client::connect(proxy).await;
        let a = client
            .ask("POST / HTTP/1.1\r\nHost: nowhere\r\nContent-Length: 100\r\n\r\nsome")
            .await;
        assert_eq!(a.status, 404);
        assert_eq!(a.header("connection"), Some("close"), "{a:?}");
        assert!(client.closes().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn connection_close_head_and_a_switch_to_hyper() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("v1").await;
        let proxy = proxy_for(backend.port()).await;
        let mut client = Client::connect(proxy).await;
        let a = client
            .ask(&format!("HEAD /h HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
            .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-length"), Some("2"), "{a:?}");
        // HTTP/1.0 is hyper's: the connection moves there with the bytes read so far.
        let old = format!("GET /old HTTP/1.0\r\nHost: {HOST}\r\nConnection: keep-alive\r\n\r\n");
        let a = client.ask(&old).await;
        assert_eq!((a.status, &a.body[..]), (200, &b"v1"[..]));
        assert!(client.buf.is_empty(), "HEAD response had no body");
        let last = format!("GET /last HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
        let a = client.ask(&last).await;
        assert_eq!(a.status, 200);
        assert!(client.closes().await, "closed after Connection: close");
        let uris: Vec<String> = backend.seen().into_iter().map(|s| s.uri).collect();
        assert_eq!(uris, ["/h", "/old", "/last"]);

        // Served here from the start: `Connection: close` is answered in kind.
        let mut client = Client::connect(proxy).await;
        let close = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
        let a = client.ask(&close).await;
        assert_eq!(a.header("connection"), Some("close"), "{a:?}");
        assert!(client.closes().await);
    })
    .await
    .expect("test timed out");
}

/// A backend answering every request (a head without a body) with `answer`.
async fn canned_backend(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..at + 4);
                        if conn.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// A backend answering every request with a chunked body and a trailer.
async fn chunked_backend() -> u16 {
    canned_backend(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\nx-check: 7\r\n\r\n",
    )
    .await
}

#[tokio::test]
async fn chunked_responses_carry_trailers_only_to_clients_that_accept_them() {
    tokio::time::timeout(LIMIT, async {
        let proxy = proxy_for(chunked_backend().await).await;
        let mut client = Client::connect(proxy).await;
        let a = client
            .ask(&format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
            .await;
        assert_eq!((a.status, &a.body[..]), (200, &b"hello world"[..]));
        assert!(a.trailers.is_empty(), "{a:?}");
        let te = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nTE: trailers\r\n\r\n");
        let a = client.ask(&te).await;
        assert_eq!(&a.body[..], b"hello world");
        assert_eq!(a.trailers, ["x-check: 7"]);
    })
    .await
    .expect("test timed out");
}

/// A backend answering every request with a head written the way servers write them:
/// mixed-case names, connection-specific headers, a repeated `Set-Cookie`, its own `Date`.
async fn untidy_backend() -> u16 {
    canned_backend(
        b"HTTP/1.1 200 OK\r\nServer: untidy/1.0\r\n\
          Date: Tue, 01 Dec 2026 10:00:00 GMT\r\nConnection: keep-alive\r\n\
          Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n\
          Set-Cookie: a=1\r\nX-Trace:   t-42  \r\nSet-Cookie: b=2\r\n\
          TE: gzip\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await
}

/// What the client must see of `untidy_backend`'s head, whoever writes the response.
fn assert_untidy_head(headers: &[(String, String)], how: &str) {
    let all = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(all("server"), ["untidy/1.0"], "{how}: {headers:?}");
    assert_eq!(all("date"), ["Tue, 01 Dec 2026 10:00:00 GMT"], "{how}");
    assert_eq!(all("set-cookie"), ["a=1", "b=2"], "{how}: {headers:?}");
    assert_eq!(all("x-trace"), ["t-42"], "{how}");
    assert_eq!(all("content-length"), ["5"], "{how}");
    for hop in ["keep-alive", "proxy-connection", "te"] {
        assert!(all(hop).is_empty(), "{how}: {hop} forwarded: {headers:?}");
    }
    assert!(
        !all("connection").contains(&"keep-alive"),
        "{how}: the upstream's connection header forwarded: {headers:?}"
    );
}

/// A response nobody edits is written from the bytes it came in: the same headers reach
/// the client as when the fields go through a header map (an HTTP/1.0 request, served by
/// hyper, and h2c), connection-specific ones left out, names in lower case.
#[tokio::test]
async fn untouched_upstream_heads_reach_every_client_whole_and_without_hop_by_hop_headers() {
    tokio::time::timeout(LIMIT, async {
        let proxy = proxy_for(untidy_backend().await).await;
        let mut client = Client::connect(proxy).await;
        for _ in 0..2 {
            let a = client
                .ask(&format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
                .await;
            assert_eq!((a.status, &a.body[..]), (200, &b"hello"[..]));
            assert_untidy_head(&a.headers, "own HTTP/1.1 server");
        }
        let mut buf = Vec::new();
        client.buf.clear();
        client
            .send(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
            .await;
        loop {
            fill(&mut client.conn, &mut buf).await;
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.truncate(at);
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let names: Vec<&str> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split(':').next())
            .collect();
        assert!(
            names.iter().all(|n| *n == n.to_ascii_lowercase()),
            "names in lower case: {head}"
        );

        let mut client = Client::connect(proxy).await;
        let a = client
            .ask(&format!("GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n"))
            .await;
        assert_eq!((a.status, &a.body[..]), (200, &b"hello"[..]));
        assert_untidy_head(&a.headers, "HTTP/1.0");

        let stream = TcpStream::connect(proxy).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .uri(format!("http://{HOST}/"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("h2 response");
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        assert_untidy_head(&headers, "h2c");
    })
    .await
    .expect("test timed out");
}

/// Upstream heads that are not HTTP/1.1, or that would slip a header past the proxy (a
/// CR inside a value, a folded line, whitespace before the colon), end as a 502 `UPE`
/// that says what was wrong, and nothing of them reaches the client; the lenient forms servers do send (bare line
/// feeds, tabs and obs-text in values, no reason phrase) pass.
#[tokio::test]
async fn hostile_upstream_heads_get_502_and_lenient_ones_pass() {
    tokio::time::timeout(LIMIT, async {
        let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "a".repeat(70_000));
        let hostile: [(&'static [u8], &str); 7] = [
            (
                b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok",
                "header value",
            ),
            (
                b"HTTP/1.1 200 OK\r\nX-A: a\r\n Set-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok",
                "obsolete line folding",
            ),
            (
                b"HTTP/1.1 200 OK\r\nSet-Cookie : evil=1\r\nContent-Length: 2\r\n\r\nok",
                "header name",
            ),
            (
                b"HTTP/1.1 200 OK\r\nSet-Cookie: evil=1\0\r\nContent-Length: 2\r\n\r\nok",
                "header value",
            ),
            (
                b"HTTP/1.1 2000 OK\r\nSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok",
                "reason phrase",
            ),
            (
                b"HTTP/2.0 200 OK\r\nSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok",
                "status line",
            ),
            (
                Box::leak(huge.into_bytes().into_boxed_slice()),
                "response head too large",
            ),
        ];
        for (answer, what) in hostile {
            let shown = String::from_utf8_lossy(&answer[..answer.len().min(60)]).into_owned();
            let proxy = proxy_for(canned_backend(answer).await).await;
            let mut client = Client::connect(proxy).await;
            let a = client
                .ask(&format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
                .await;
            assert_eq!(a.status, 502, "{shown:?}: {a:?}");
            assert_eq!(a.header("x-trellis-flags"), Some("UPE"), "{shown:?}");
            let body = String::from_utf8_lossy(&a.body);
            assert_eq!(
                body,
                format!("UPE: the upstream's response was not valid HTTP ({what})\n"),
                "{shown:?}"
            );
            assert!(
                a.header("set-cookie").is_none() && a.header("x-big").is_none(),
                "{shown:?}: {a:?}"
            );
        }
        let lenient =
            b"\r\nHTTP/1.1 200\nX-Tab:\tv\t1 \nX-Obs: caf\xc3\xa9\nContent-Length: 2\n\nok";
        let proxy = proxy_for(canned_backend(lenient).await).await;
        let mut client = Client::connect(proxy).await;
        let a = client
            .ask(&format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
            .await;
        assert_eq!((a.status, &a.body[..]), (200, &b"ok"[..]), "{a:?}");
        assert_eq!(a.header("x-tab"), Some("v\t1"));
        assert_eq!(a.header("x-obs"), Some("café"));
    })
    .await
    .expect("test timed out");
}
