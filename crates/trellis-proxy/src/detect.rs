//! Protocol detection on accepted connections, as Istio and Linkerd do it: look at the first
//! bytes *without consuming them* and pick the stack that will handle the connection (HTTP/1,
//! HTTP/2, TLS routed by SNI, or opaque TCP). The bytes stay in the kernel buffer, so the
//! chosen stack reads the connection from its very first byte.
//!
//! Detection never stalls a connection: protocols where the server speaks first (MySQL,
//! SMTP, SSH) send nothing, so after a short timeout the connection is opaque TCP. Ports
//! whose protocol is declared (port name prefix or `appProtocol`) skip sniffing where the
//! declaration already decides, see [`DetectPlan`].

mod classify;
mod tls;

use std::io;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use trellis_model::Protocol;

use classify::{H2_PREFACE, SNIFF_LEN, Verdict, classify};
pub use tls::{ClientHelloError, parse_sni};

/// What a connection carries, as far as the proxy needs to know to pick a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// An HTTP/1.x request line (known method followed by a space).
    Http1,
    /// The HTTP/2 client preface (h2c with prior knowledge).
    Http2,
    /// A TLS ClientHello. `sni` is the requested server name, lower-cased, when the
    /// ClientHello fitted in one record of at most 16 KiB and carried a valid host name.
    Tls {
        /// Server name from the SNI extension, for routing by host without terminating.
        sni: Option<String>,
    },
    /// Anything else, or nothing within the timeout: proxied as opaque TCP.
    Opaque,
}

/// Tuning for detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectOptions {
    /// How long to wait for the client's first bytes before deciding with what arrived
    /// (nothing at all means [`Detected::Opaque`]). Default 100 ms: long enough for a client
    /// on the same host or LAN, short enough not to hurt server-first protocols.
    pub timeout: Duration,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            timeout: Duration::from_millis(100),
        }
    }
}

/// How much sniffing a port needs given its declared protocol, following Istio's protocol
/// selection. Computed once per listener/port at config time, not per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectPlan {
    /// Declared TCP (or Mongo): opaque without peeking, so server-first protocols on
    /// declared ports pay no delay at all.
    Opaque,
    /// Declared HTTP or gRPC: only tell HTTP/1 from HTTP/2. When the client sends nothing
    /// decisive in time, `h2_default` picks HTTP/2 (declared `http2`/`grpc`) or HTTP/1.
    HttpVersion {
        /// Whether an undecided connection is HTTP/2.
        h2_default: bool,
    },
    /// Declared TLS/HTTPS: read the SNI; a connection that is not TLS is opaque.
    Tls,
    /// Undeclared: full detection.
    Sniff,
}

impl DetectPlan {
    /// The plan for a port of the given declared protocol.
    pub fn for_protocol(protocol: Protocol) -> DetectPlan {
        match protocol {
            Protocol::Tcp | Protocol::Mongo => DetectPlan::Opaque,
            Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb => {
                DetectPlan::HttpVersion {
                    h2_default: protocol.is_http2(),
                }
            }
            Protocol::Https | Protocol::Tls => DetectPlan::Tls,
            Protocol::Unknown => DetectPlan::Sniff,
        }
    }
}

/// Detects the protocol of `stream` by peeking, honouring the declared port protocol
/// (see [`DetectPlan::for_protocol`]). The stream's bytes are not consumed.
pub async fn detect_for_port(
    stream: &TcpStream,
    declared: Protocol,
    opts: &DetectOptions,
) -> io::Result<Detected> {
    detect_with_plan(stream, DetectPlan::for_protocol(declared), opts).await
}

/// Runs a precomputed [`DetectPlan`] on `stream`.
pub async fn detect_with_plan(
    stream: &TcpStream,
    plan: DetectPlan,
    opts: &DetectOptions,
) -> io::Result<Detected> {
    match plan {
        DetectPlan::Opaque => Ok(Detected::Opaque),
        DetectPlan::HttpVersion { h2_default } => http_version(stream, h2_default, opts).await,
        DetectPlan::Tls => Ok(match detect(stream, opts).await? {
            tls @ Detected::Tls { .. } => tls,
            _ => Detected::Opaque,
        }),
        DetectPlan::Sniff => detect(stream, opts).await,
    }
}

/// Full detection of an undeclared port: HTTP/1, HTTP/2 preface, TLS (with SNI) or opaque.
/// Returns within about `opts.timeout` whatever the client does; I/O errors (a reset while
/// peeking) are returned for the caller to log and drop the connection.
pub async fn detect(stream: &TcpStream, opts: &DetectOptions) -> io::Result<Detected> {
    let deadline = Instant::now() + opts.timeout;
    let peeker = Peeker::new(stream)?;
    let mut head = [0u8; SNIFF_LEN];
    let peeked = peeker
        .fill(&mut head, deadline, |b| classify(b) != Verdict::NeedMore)
        .await?;
    let bytes = head.get(..peeked.len).unwrap_or_default();
    Ok(match classify(bytes) {
        Verdict::Http1 => Detected::Http1,
        Verdict::Http2 => Detected::Http2,
        Verdict::Opaque | Verdict::NeedMore => Detected::Opaque,
        Verdict::Tls { record_len: None } => Detected::Tls { sni: None },
        Verdict::Tls {
            record_len: Some(len),
        } => Detected::Tls {
            sni: client_hello_sni(&peeker, len, deadline).await?,
        },
    })
}

/// Peeks the whole first TLS record (`record_len` bytes, header included) and reads its SNI.
/// A record that does not arrive in time, or does not parse, gives `None`: the connection is
/// still TLS, it just cannot be routed by name.
async fn client_hello_sni(
    peeker: &Peeker<'_>,
    record_len: usize,
    deadline: Instant,
) -> io::Result<Option<String>> {
    // One allocation of the announced size (at most 16 KiB + 5), only for TLS connections.
    let mut record = vec![0u8; record_len];
    let peeked = peeker.fill(&mut record, deadline, |_| false).await?;
    if peeked.len < record_len {
        tracing::debug!(
            have = peeked.len,
            want = record_len,
            "ClientHello incomplete; no SNI"
        );
        return Ok(None);
    }
    match parse_sni(&record) {
        Ok(sni) => Ok(sni.map(str::to_ascii_lowercase)),
        Err(error) => {
            tracing::debug!(%error, "unreadable ClientHello; no SNI");
            Ok(None)
        }
    }
}

/// Declared HTTP: HTTP/2 if the preface arrives, HTTP/1 if the bytes diverge from it, and
/// the declared default if nothing decisive arrives in time.
async fn http_version(
    stream: &TcpStream,
    h2_default: bool,
    opts: &DetectOptions,
) -> io::Result<Detected> {
    let deadline = Instant::now() + opts.timeout;
    let peeker = Peeker::new(stream)?;
    let mut head = [0u8; SNIFF_LEN];
    let diverges = |b: &[u8]| !H2_PREFACE.starts_with(b);
    let peeked = peeker.fill(&mut head, deadline, diverges).await?;
    let bytes = head.get(..peeked.len).unwrap_or_default();
    Ok(if bytes == H2_PREFACE {
        Detected::Http2
    } else if !bytes.is_empty() && diverges(bytes) {
        Detected::Http1
    } else if h2_default {
        Detected::Http2
    } else {
        Detected::Http1
    })
}

// ---- Peeking ----
//
// Waiting for a connection's first bytes without consuming them.
//
// `TcpStream::peek` returns as soon as *any* byte is buffered, so calling it in a loop
// while a client trickles in a request line would spin. Instead each attempt runs inside
// `try_io`: when a peek shows nothing new, we report `WouldBlock`, which clears tokio's
// readiness *as of before the peek*, and then sleep on `ready()` until the kernel signals
// more data, end of stream, or the deadline passes. Bytes that arrive during the peek bump
// tokio's readiness tick, so the clear is skipped and no wake-up is lost.
//
// The synchronous peek needs a `std` socket; a duplicated descriptor of the same socket
// gives one without `unsafe` (one `fcntl` per sniffed connection, closed on drop). It
// shares the non-blocking flag with the tokio socket, so it never blocks the runtime.

/// What a fill attempt ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peeked {
    /// Bytes at the start of `buf` that hold the connection's first bytes.
    len: usize,
    /// The client closed its sending side: no more bytes will come.
    eof: bool,
    /// The deadline passed before the caller's condition was met.
    timed_out: bool,
}

/// Peeks at one accepted connection through a duplicated descriptor.
struct Peeker<'a> {
    stream: &'a TcpStream,
    dup: std::net::TcpStream,
}

impl<'a> Peeker<'a> {
    /// Prepares peeking at `stream`; fails only if the descriptor cannot be duplicated
    /// (descriptor exhaustion), which the caller reports like any accept-time I/O error.
    fn new(stream: &'a TcpStream) -> io::Result<Self> {
        let dup = socket2::SockRef::from(stream).try_clone()?;
        Ok(Peeker {
            stream,
            dup: dup.into(),
        })
    }

    /// Peeks into `buf` until it is full, `enough(bytes)` says a decision can be made, the
    /// client half-closes, or `deadline` passes — whichever comes first.
    async fn fill(
        &self,
        buf: &mut [u8],
        deadline: Instant,
        enough: impl Fn(&[u8]) -> bool,
    ) -> io::Result<Peeked> {
        let mut seen = 0;
        loop {
            let attempt = self.stream.try_io(Interest::READABLE, || {
                let n = self.dup.peek(buf)?;
                if n == seen && n != 0 {
                    // Nothing new since the last look: wait for the next readiness event.
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(n)
                }
            });
            match attempt {
                // A zero-length peek on a non-empty buffer is end of stream.
                Ok(0) => return Ok(done(0, true, false)),
                Ok(n) => {
                    seen = n;
                    let bytes = buf.get(..n).unwrap_or_default();
                    if n == buf.len() || enough(bytes) {
                        return Ok(done(n, false, false));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match timeout_at(deadline, self.stream.ready(Interest::READABLE)).await {
                Err(_elapsed) => return Ok(done(seen, false, true)),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(ready)) if ready.is_read_closed() => {
                    // Closed states are never cleared by tokio, so waiting again would spin:
                    // take whatever the client sent before closing and stop.
                    let n = self.dup.peek(buf)?;
                    return Ok(done(n, true, false));
                }
                Ok(Ok(_)) => {}
            }
        }
    }
}

fn done(len: usize, eof: bool, timed_out: bool) -> Peeked {
    Peeked {
        len,
        eof,
        timed_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_declared_protocols() {
        use DetectPlan as P;
        let cases = [
            (Protocol::Tcp, P::Opaque),
            (Protocol::Mongo, P::Opaque),
            (Protocol::Http, P::HttpVersion { h2_default: false }),
            (Protocol::GrpcWeb, P::HttpVersion { h2_default: false }),
            (Protocol::Http2, P::HttpVersion { h2_default: true }),
            (Protocol::Grpc, P::HttpVersion { h2_default: true }),
            (Protocol::Tls, P::Tls),
            (Protocol::Https, P::Tls),
            (Protocol::Unknown, P::Sniff),
        ];
        for (protocol, plan) in cases {
            assert_eq!(DetectPlan::for_protocol(protocol), plan, "{protocol}");
        }
        assert_eq!(
            DetectPlan::for_protocol(Protocol::from_service_port(3306, "db", None)),
            P::Opaque
        );
    }
}
