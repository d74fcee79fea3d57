//! Test harness: demo servers on loopback ports, a plain HTTP/1.1 client, and two
//! recording peers (an upstream and an HTTP proxy) that report the request heads they see.
//! Everything runs over real sockets; every wait is bounded so a broken build fails
//! instead of hanging.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use trellis_demo::{DemoFlags, DemoServer, ServeError, config_from};

/// Generous: the machine running the tests may be busy with other builds.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests shutdown and waits for the drain to finish.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = &mut self.task;
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the server stops")
            .expect("the server task does not panic")
    }
}

/// A demo server on a free loopback port with `flags` and only the variables in `env`.
pub async fn start(mut flags: DemoFlags, env: &[(&str, &str)]) -> Running {
    flags.listen.get_or_insert_with(|| "127.0.0.1:0".into());
    let vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = config_from(&flags, move |name| vars.get(name).cloned()).expect("valid config");
    let server = DemoServer::bind(config).await.expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// A demo service named `service` (version and pod derived from it) calling `calls`.
pub async fn service(service: &str, version: &str, calls: &[String]) -> Running {
    let flags = DemoFlags {
        service: Some(service.into()),
        version: Some(version.into()),
        pod: Some(format!("{service}-{version}-pod")),
        calls: calls.to_vec(),
        ..DemoFlags::default()
    };
    start(flags, &[]).await
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }

    /// A response header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.head, name)
    }
}

/// One HTTP/1.1 GET on a fresh connection, closed after the answer.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("an answer in time");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A request head as a peer received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub request_line: String,
    pub head: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.head, name)
    }
}

fn header_in<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one request head (these tests only send bodiless GETs).
async fn read_head(stream: &mut TcpStream) -> Option<Recorded> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).ok()?;
    let request_line = head.lines().next()?.to_owned();
    Some(Recorded { request_line, head })
}

/// An upstream that records each request head and answers `status` with `body` and
/// `content_type`, closing the connection after each answer.
pub async fn recording_upstream(
    status: u16,
    content_type: &'static str,
    body: &'static str,
) -> (SocketAddr, mpsc::UnboundedReceiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (seen, heads) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut stream).await else {
                    return;
                };
                let _ = seen.send(head);
                let answer = format!(
                    "HTTP/1.1 {status} Whatever\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, heads)
}

/// A tiny HTTP forward proxy, like an explicit-mode sidecar: records each request head,
/// looks the absolute-form target's authority up in `routes` (so tests can use service
/// names no resolver knows), forwards the request in origin form with `connection: close`
/// and relays the answer.
pub async fn recording_proxy(
    routes: HashMap<String, SocketAddr>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (seen, heads) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            let routes = routes.clone();
            tokio::spawn(async move {
                let Some(recorded) = read_head(&mut client).await else {
                    return;
                };
                let _ = seen.send(recorded.clone());
                let target = recorded.request_line.split(' ').nth(1).unwrap_or_default();
                let Some(rest) = target.strip_prefix("http://") else {
                    let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").await;
                    return;
                };
                let (authority, path) = match rest.find('/') {
                    Some(i) => rest.split_at(i),
                    None => (rest, "/"),
                };
                let Some(backend) = routes.get(authority).copied() else {
                    let _ = client.write_all(b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").await;
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(backend).await else {
                    return;
                };
                let mut head = format!("GET {path} HTTP/1.1\r\n");
                for line in recorded.head.lines().skip(1) {
                    let name = line.split(':').next().unwrap_or_default().trim();
                    if !line.is_empty() && !name.eq_ignore_ascii_case("connection") {
                        head.push_str(line);
                        head.push_str("\r\n");
                    }
                }
                head.push_str("connection: close\r\n\r\n");
                if upstream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy(&mut upstream, &mut client).await;
                let _ = client.shutdown().await;
            });
        }
    });
    (addr, heads)
}

/// An upstream that reports each request's arrival, then holds its answer (`{}`) until
/// the returned semaphore is given permits: a request can be kept in flight on purpose.
pub async fn gated_upstream() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Recorded>,
    Arc<Semaphore>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (seen, heads) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let opened = Arc::clone(&gate);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            let gate = Arc::clone(&opened);
            tokio::spawn(async move {
                let Some(head) = read_head(&mut stream).await else {
                    return;
                };
                let _ = seen.send(head);
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, heads, gate)
}

/// A loopback port that refuses connections while the value lives: bound but not
/// listening, so a parallel test cannot take it (a released port could be reused, and the
/// "down" address would answer).
pub struct ClosedPort {
    port: u16,
    _socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A loopback port with nothing listening on it (see [`ClosedPort`]).
pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    ClosedPort {
        port,
        _socket: socket,
    }
}

/// A listener that accepts connections and never answers.
pub async fn silent_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}
