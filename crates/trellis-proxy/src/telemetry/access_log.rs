//! One access-log line per request, JSON by default (one object per line, for log pipelines) or
//! Envoy's default text format (for people used to `kubectl logs istio-proxy`).
//!
//! Lines are written into a caller-owned `String` that is reused between requests, so logging does
//! not allocate per request once the buffer has grown.

mod writer;

pub use writer::{
    AccessLogConfig, AccessLogDestination, AccessLogError, AccessLogWriter, LogEntry, QUEUE_LINES,
};

use super::flags::ResponseFlags;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The output format, chosen by option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line, for log pipelines.
    #[default]
    Json,
    /// Envoy's default text format, for people used to reading proxy logs.
    Text,
}

/// Everything one line says about a request.
#[derive(Debug, Clone, Default)]
pub struct AccessLogRecord<'a> {
    pub start_time: Option<SystemTime>,
    pub method: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    /// `HTTP/1.1`, `HTTP/2`, or `TCP` for opaque connections.
    pub protocol: &'a str,
    /// 0 when no response was sent (downstream disconnect before it).
    pub status: u16,
    pub flags: ResponseFlags,
    /// Why, in words (the flags' reasons, or `via_upstream`).
    pub details: &'a str,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub duration: Duration,
    /// `ip:port` of the endpoint that answered; empty when none did.
    pub upstream_host: &'a str,
    /// The destination service (FQDN).
    pub upstream_service: &'a str,
    /// Attempts made (1 + retries).
    pub attempts: u32,
    pub request_id: &'a str,
    pub user_agent: &'a str,
    pub downstream_remote: &'a str,
    /// The route's name or origin (`VirtualService ns/name`).
    pub route: &'a str,
}

impl AccessLogRecord<'_> {
    /// Append this record, formatted, and a newline to `out`.
    pub fn write(&self, format: AccessLogFormat, out: &mut String) {
        match format {
            AccessLogFormat::Json => self.write_json(out),
            AccessLogFormat::Text => self.write_text(out),
        }
        out.push('\n');
    }

    fn write_json(&self, out: &mut String) {
        out.push('{');
        let mut first = true;
        let mut field = |out: &mut String, name: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
        };
        field(out, "start_time");
        out.push('"');
        write_rfc3339(out, self.start_time);
        out.push('"');
        for (name, value) in [
            ("method", self.method),
            ("authority", self.authority),
            ("path", self.path),
            ("protocol", self.protocol),
        ] {
            field(out, name);
            json_string(out, value);
        }
        field(out, "response_code");
        let _ = write!(out, "{}", self.status);
        field(out, "response_flags");
        let _ = write!(out, "\"{}\"", self.flags);
        field(out, "response_code_details");
        json_string(out, self.details);
        for (name, value) in [
            ("bytes_received", self.bytes_received),
            ("bytes_sent", self.bytes_sent),
        ] {
            field(out, name);
            let _ = write!(out, "{value}");
        }
        field(out, "duration");
        let _ = write!(out, "{}", self.duration.as_millis());
        for (name, value) in [
            ("upstream_host", self.upstream_host),
            ("upstream_service", self.upstream_service),
        ] {
            field(out, name);
            json_string(out, value);
        }
        field(out, "attempts");
        let _ = write!(out, "{}", self.attempts);
        for (name, value) in [
            ("x_request_id", self.request_id),
            ("user_agent", self.user_agent),
            ("downstream_remote_address", self.downstream_remote),
            ("route_name", self.route),
        ] {
            field(out, name);
            json_string(out, value);
        }
        out.push('}');
    }

    /// Envoy's default format:
    /// `[START] "METHOD PATH PROTOCOL" CODE FLAGS DETAILS RX TX DURATION "UA" "ID" "AUTHORITY" "UPSTREAM"`.
    fn write_text(&self, out: &mut String) {
        out.push('[');
        write_rfc3339(out, self.start_time);
        let _ = write!(
            out,
            "] \"{} {} {}\" {} {} {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" attempts={}",
            dash(self.method),
            dash(self.path),
            dash(self.protocol),
            self.status,
            self.flags,
            dash(self.details),
            self.bytes_received,
            self.bytes_sent,
            self.duration.as_millis(),
            dash(self.user_agent),
            dash(self.request_id),
            dash(self.authority),
            dash(self.upstream_host),
            self.attempts
        );
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// A JSON string with the escapes JSON requires (quotes, backslash, control characters).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2026-11-22T01:02:03.456Z`, computed without a time-zone library (UTC only).
fn write_rfc3339(out: &mut String, t: Option<SystemTime>) {
    let Some(since) = t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) else {
        out.push('-');
        return;
    };
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for all dates after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::flags::ResponseFlag;

    fn record() -> AccessLogRecord<'static> {
        let mut flags = ResponseFlags::default();
        flags.insert(ResponseFlag::UpstreamRequestTimeout);
        AccessLogRecord {
            start_time: Some(UNIX_EPOCH + Duration::from_millis(1_795_395_723_456)),
            method: "GET",
            authority: "orders:8080",
            path: "/orders?id=\"7\"",
            protocol: "HTTP/1.1",
            status: 504,
            flags,
            details: "the upstream did not answer within the route timeout",
            bytes_received: 0,
            bytes_sent: 24,
            duration: Duration::from_millis(3001),
            upstream_host: "127.0.0.1:9001",
            upstream_service: "orders.shop.svc.cluster.local",
            attempts: 3,
            request_id: "abc",
            user_agent: "curl/8",
            downstream_remote: "127.0.0.1:50000",
            route: "VirtualService shop/orders",
        }
    }

    #[test]
    fn json_lines_are_valid_json_with_every_field() {
        let mut out = String::new();
        record().write(AccessLogFormat::Json, &mut out);
        assert!(out.ends_with("}\n"));
        assert!(out.starts_with("{\"start_time\":\"2026-11-23T"), "{out}");
        for needle in [
            "\"response_code\":504",
            "\"response_flags\":\"UT\"",
            "\"path\":\"/orders?id=\\\"7\\\"\"",
            "\"duration\":3001",
            "\"attempts\":3",
            "\"x_request_id\":\"abc\"",
            "\"upstream_host\":\"127.0.0.1:9001\"",
        ] {
            assert!(out.contains(needle), "{needle} missing in {out}");
        }
    }

    #[test]
    fn text_lines_follow_envoys_default_order() {
        let mut out = String::new();
        let mut r = record();
        r.user_agent = "";
        r.write(AccessLogFormat::Text, &mut out);
        assert!(
            out.contains("] \"GET /orders?id=\"7\" HTTP/1.1\" 504 UT the upstream did not answer"),
            "{out}"
        );
        assert!(
            out.contains(
                " 0 24 3001 \"-\" \"abc\" \"orders:8080\" \"127.0.0.1:9001\" attempts=3\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn dates_are_correct_utc() {
        let mut out = String::new();
        write_rfc3339(&mut out, Some(UNIX_EPOCH));
        assert_eq!(out, "1970-01-01T00:00:00.000Z");
        out.clear();
        // 2024-02-29T12:34:56.789Z, a leap day.
        write_rfc3339(
            &mut out,
            Some(UNIX_EPOCH + Duration::from_millis(1_709_210_096_789)),
        );
        assert_eq!(out, "2024-02-29T12:34:56.789Z");
        out.clear();
        write_rfc3339(&mut out, None);
        assert_eq!(out, "-");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\u{1}b\tc");
        assert_eq!(out, "\"a\\u0001b\\tc\"");
    }
}
