//! Parsers for single values. Each returns the reason a value is refused; the caller adds
//! the flag or variable name.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, StatusCode, Uri};

/// `0.0.0.0:8080`, `[::]:8080`, `localhost:8080`, or `:8080` for every IPv4 address.
pub(super) fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    const HINT: &str = "expected an address such as 0.0.0.0:8080, 127.0.0.1:0 or :8080";
    if let Some(port_text) = s.strip_prefix(':') {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port(port_text)?)));
    }
    if let Some(port_text) = s.strip_prefix("localhost:") {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port(port_text)?)));
    }
    s.parse().map_err(|_| HINT.to_owned())
}

pub(super) fn port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| "expected a port number from 0 to 65535".to_owned())
}

/// A service, version or pod name: shown in JSON and logs, so anything printable will do,
/// but an empty name would make the answers ambiguous.
pub(super) fn name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else if s.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(s.to_owned())
    }
}

/// `http://inventory:8080/stock`; the scheme may be left out (`inventory:8080/stock`).
/// Only plain HTTP: in a mesh the sidecar originates TLS, the app never does.
pub(super) fn call_url(s: &str) -> Result<Uri, String> {
    let full = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    let uri: Uri = full
        .parse()
        .map_err(|e| format!("not a URL such as http://inventory:8080/stock: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "scheme {other}:// is not supported; use http:// (the sidecar adds mTLS)"
            ));
        }
        None => return Err("missing http:// scheme".into()),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(uri),
        _ => Err("the URL names no host".into()),
    }
}

/// A header name, lower-cased as HTTP/2 requires.
pub(super) fn header_name(s: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(s.to_ascii_lowercase().as_bytes())
        .map_err(|_| "not a valid HTTP header name".to_owned())
}

/// `0.25`, `1`, or `25%`.
pub(super) fn fraction(s: &str) -> Result<f64, String> {
    const RANGE: &str = "must be a fraction from 0.0 to 1.0 (or a percentage such as 25%)";
    let value = match s.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| RANGE.to_owned())?;
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(RANGE.into())
    }
}

/// An error status: an injected "failure" that answered 2xx would not look like one to
/// retries, outlier detection or metrics.
pub(super) fn failure_status(s: &str) -> Result<StatusCode, String> {
    const RANGE: &str = "must be an HTTP error status from 400 to 599";
    let code: u16 = s.parse().map_err(|_| RANGE.to_owned())?;
    if (400..=599).contains(&code) {
        StatusCode::from_u16(code).map_err(|_| RANGE.to_owned())
    } else {
        Err(RANGE.into())
    }
}

/// `250ms`, `2s`, `1.5s`, `1m`, `1h`, or `0`. A bare number other than 0 is refused:
/// `--latency 200` could mean milliseconds or seconds, and guessing wrong by 1000× is
/// worse than asking.
pub(super) fn duration(s: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a duration such as 250ms, 2s, 1.5s or 1m";
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| HINT.to_owned())?;
    let seconds = match unit.trim() {
        "" if n == 0.0 => 0.0,
        "" => return Err(format!("{HINT}: add a unit (ms, s, m or h)")),
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{HINT}: the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| HINT.to_owned())
}

/// A duration that must not be zero (a zero timeout would fail every call).
pub(super) fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        Err("must be greater than zero".into())
    } else {
        Ok(d)
    }
}
