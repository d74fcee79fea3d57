//! A plain HTTP/1.0 GET for the CLI's debug-page reads (`trellis status`, `trellis up`'s
//! readiness checks): one request per connection, the whole body read, no TLS.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// `GET path` on `addr` (`host:port`); the body of a 2xx answer.
pub fn get(addr: &str, path: &str) -> anyhow::Result<String> {
    let (status, body) = get_status(addr, path)?;
    if !(200..300).contains(&status) {
        bail!("GET {path} answered {status}: {}", body.trim());
    }
    Ok(body)
}

/// `GET path` on `addr`: the status code and body, whatever the status.
pub fn get_status(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("{addr} is not an address"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the answer is not HTTP")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the answer has no status")?;
    Ok((status, body.to_owned()))
}
