//! Readiness checks while starting: a proxy's `/ready`, an application answering HTTP, a port
//! accepting connections.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The status of `GET path` on `addr`, or `None` when there is no HTTP answer within a second.
pub async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: trellis-up\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut head = vec![0u8; 64];
        let n = s.read(&mut head).await.ok()?;
        let line = std::str::from_utf8(head.get(..n)?).ok()?;
        line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
}

/// Whether `addr` accepts a TCP connection within a second.
pub async fn accepts(addr: SocketAddr) -> bool {
    tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child that will use it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
