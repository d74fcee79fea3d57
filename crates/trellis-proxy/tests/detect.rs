//! Protocol detection on real loopback connections: what the client sends (possibly in
//! pieces, possibly nothing) and what detection concludes, with every byte still readable
//! afterwards.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout};
use trellis_model::Protocol;
use trellis_proxy::detect::{DetectOptions, DetectPlan, Detected, detect, detect_with_plan};

/// Every test finishes well within this, whatever goes wrong.
const BOUND: Duration = Duration::from_secs(10);

/// Sends `chunks` (each after its delay), keeps the connection open (or half-closes it
/// when `close` is set) until detection is done, and returns the verdict, how long it
/// took, and all bytes the server can still read afterwards.
async fn sniff(
    chunks: &[(u64, &[u8])],
    close: bool,
    plan: DetectPlan,
    opts: DetectOptions,
) -> (Detected, Duration, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let owned: Vec<(u64, Vec<u8>)> = chunks.iter().map(|(d, b)| (*d, b.to_vec())).collect();
    let (release, released) = oneshot::channel::<()>();
    let client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        for (delay, bytes) in owned {
            sleep(Duration::from_millis(delay)).await;
            s.write_all(&bytes).await.expect("write");
        }
        if close {
            s.shutdown().await.expect("shutdown");
        }
        let _ = released.await;
        // Dropping the socket ends the stream so the server can read to EOF.
    });
    let (server, _) = listener.accept().await.expect("accept");
    let started = Instant::now();
    let detected = detect_with_plan(&server, plan, &opts)
        .await
        .expect("detect");
    let took = started.elapsed();
    let _ = release.send(());
    let mut server = server;
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.expect("read");
    client.await.expect("client");
    (detected, took, rest)
}

async fn sniff_full(chunks: &[(u64, &[u8])], timeout_ms: u64) -> (Detected, Duration, Vec<u8>) {
    let opts = DetectOptions {
        timeout: Duration::from_millis(timeout_ms),
    };
    bounded(sniff(chunks, false, DetectPlan::Sniff, opts)).await
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    timeout(BOUND, f)
        .await
        .expect("test exceeded its time bound")
}

/// A TLS 1.3-style ClientHello record: SNI, supported_versions, ALPN h2 and a key share.
fn client_hello(sni: &str) -> Vec<u8> {
    fn ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    let mut exts = Vec::new();
    let name = sni.as_bytes();
    let mut sni_ext = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    ext(&mut exts, 0x002b, &[2, 0x03, 0x04]); // supported_versions: TLS 1.3
    ext(&mut exts, 0x0010, &[0, 3, 2, b'h', b'2']); // ALPN
    ext(&mut exts, 0x0000, &sni_ext);
    let mut share = vec![0, 36, 0, 0x1d, 0, 32];
    share.extend_from_slice(&[9; 32]);
    ext(&mut exts, 0x0033, &share); // key_share x25519
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[1; 32]); // random
    body.push(32);
    body.extend_from_slice(&[2; 32]); // legacy session id
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    record.extend_from_slice(&[0x01, 0, (body.len() >> 8) as u8, body.len() as u8]);
    record.extend_from_slice(&body);
    record
}

#[tokio::test]
async fn http1_request_line_is_http1_and_not_consumed() {
    let req: &[u8] = b"GET /productpage HTTP/1.1\r\nHost: bookinfo\r\n\r\n";
    let (d, _, rest) = sniff_full(&[(0, req)], 100).await;
    assert_eq!(d, Detected::Http1);
    assert_eq!(rest, req);
}

#[tokio::test]
async fn trickled_request_line_waits_for_the_decisive_bytes() {
    // Generous timeout: this checks that detection waits for more bytes, not its speed.
    let (d, _, rest) = sniff_full(&[(0, b"OPT"), (30, b"IONS * HTTP/1.1\r\n\r\n")], 2000).await;
    assert_eq!(d, Detected::Http1);
    assert_eq!(rest, b"OPTIONS * HTTP/1.1\r\n\r\n");
}

#[tokio::test]
async fn h2_preface_is_http2() {
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS frame
    let (d, _, rest) = sniff_full(&[(0, &bytes[..10]), (30, &bytes[10..])], 2000).await;
    assert_eq!(d, Detected::Http2);
    assert_eq!(rest, bytes);
}

#[tokio::test]
async fn tls_client_hello_yields_lowercased_sni() {
    let hello = client_hello("Reviews.Default.svc.cluster.local");
    let (d, _, rest) = sniff_full(
        &[(0, &hello[..3]), (30, &hello[3..40]), (30, &hello[40..])],
        2000,
    )
    .await;
    assert_eq!(
        d,
        Detected::Tls {
            sni: Some("reviews.default.svc.cluster.local".into())
        }
    );
    assert_eq!(rest, hello);
}

#[tokio::test]
async fn truncated_client_hello_is_tls_without_sni() {
    let hello = client_hello("ratings.default.svc.cluster.local");
    let (d, took, _) = sniff_full(&[(0, &hello[..hello.len() - 20])], 100).await;
    assert_eq!(d, Detected::Tls { sni: None });
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn malformed_client_hello_is_tls_without_sni() {
    // A complete record whose body is garbage: lengths point past the end.
    let mut record = vec![0x16, 0x03, 0x01, 0x00, 0x30, 0x01, 0xff, 0xff, 0xff];
    record.extend_from_slice(&[0xee; 0x30 - 4]);
    let (d, _, rest) = sniff_full(&[(0, &record)], 100).await;
    assert_eq!(d, Detected::Tls { sni: None });
    assert_eq!(rest, record);
    // A record header with an impossible version byte is not TLS at all.
    let (d, _, _) = sniff_full(&[(0, &[0x16, 0x03, 0x09, 0, 5, 1, 2, 3, 4, 5])], 100).await;
    assert_eq!(d, Detected::Opaque);
}

#[tokio::test]
async fn other_bytes_are_opaque() {
    let (d, _, rest) = sniff_full(&[(0, b"*1\r\n$4\r\nPING\r\n")], 100).await;
    assert_eq!(d, Detected::Opaque);
    assert_eq!(rest, b"*1\r\n$4\r\nPING\r\n");
}

#[tokio::test]
async fn server_first_protocol_is_opaque_within_the_timeout() {
    let (d, took, rest) = sniff_full(&[], 100).await;
    assert_eq!(d, Detected::Opaque);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(rest.is_empty());
}

#[tokio::test]
async fn half_closed_client_decides_without_waiting_for_the_timeout() {
    let opts = DetectOptions {
        timeout: Duration::from_secs(30),
    };
    let (d, _, rest) = bounded(sniff(&[(0, b"GE")], true, DetectPlan::Sniff, opts)).await;
    assert_eq!(d, Detected::Opaque);
    assert_eq!(rest, b"GE");
}

#[tokio::test]
async fn declared_ports_skip_or_narrow_sniffing() {
    let opts = DetectOptions::default();
    let plan = |p| DetectPlan::for_protocol(p);
    // Declared TCP: opaque even though the bytes look like HTTP.
    let (d, _, _) = bounded(sniff(
        &[(0, b"GET / HTTP/1.1\r\n")],
        false,
        plan(Protocol::Tcp),
        opts,
    ))
    .await;
    assert_eq!(d, Detected::Opaque);
    // Declared HTTP: any non-preface bytes are HTTP/1, silence defaults to HTTP/1.
    let (d, _, _) = bounded(sniff(
        &[(0, b"BREW /pot HTTP/1.1\r\n")],
        false,
        plan(Protocol::Http),
        opts,
    ))
    .await;
    assert_eq!(d, Detected::Http1);
    let (d, _, _) = bounded(sniff(&[], false, plan(Protocol::Http), opts)).await;
    assert_eq!(d, Detected::Http1);
    // Declared gRPC: the preface is HTTP/2, and so is silence.
    let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let (d, _, _) = bounded(sniff(&[(0, preface)], false, plan(Protocol::Grpc), opts)).await;
    assert_eq!(d, Detected::Http2);
    let (d, _, _) = bounded(sniff(&[], false, plan(Protocol::Grpc), opts)).await;
    assert_eq!(d, Detected::Http2);
    // Declared TLS: SNI is read; plaintext is passed through as opaque.
    let hello = client_hello("db.example.com");
    let (d, _, _) = bounded(sniff(&[(0, &hello)], false, plan(Protocol::Tls), opts)).await;
    assert_eq!(
        d,
        Detected::Tls {
            sni: Some("db.example.com".into())
        }
    );
    let (d, _, _) = bounded(sniff(
        &[(0, b"GET / HTTP/1.1\r\n")],
        false,
        plan(Protocol::Https),
        opts,
    ))
    .await;
    assert_eq!(d, Detected::Opaque);
}

#[tokio::test]
async fn detect_is_the_undeclared_plan() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client
        .write_all(b"DELETE /x HTTP/1.1\r\n")
        .await
        .expect("write");
    let (server, _) = listener.accept().await.expect("accept");
    let d = bounded(detect(&server, &DetectOptions::default()))
        .await
        .expect("detect");
    assert_eq!(d, Detected::Http1);
}
