//! Writing access-log lines off the request path: a request hands its facts (cheap clones of
//! what hyper already parsed, no formatting) to a bounded queue, and one writer thread formats
//! them into a reused buffer and writes them out, flushing whenever the queue runs empty. When
//! the writer falls behind, lines are dropped and counted instead of slowing requests down.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Uri, Version};

use super::{AccessLogFormat, AccessLogRecord};
use crate::telemetry::RequestId;
use crate::telemetry::flags::ResponseFlags;

/// Lines that may wait for the writer; past this, lines are dropped (and counted).
pub const QUEUE_LINES: usize = 1024;

/// Where access-log lines go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccessLogDestination {
    /// No access log.
    #[default]
    Off,
    /// The proxy's standard output (what `kubectl logs` shows).
    Stdout,
    /// Appended to a file, created if missing.
    File(PathBuf),
}

/// Access-log settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// JSON (default) or Envoy's text format.
    pub format: AccessLogFormat,
    /// Where lines go; off unless set.
    pub destination: AccessLogDestination,
}

/// Why the access log could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The log file cannot be opened for appending.
    #[error("cannot open access log {path}: {source}")]
    Open {
        /// The configured path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The writer thread cannot be started.
    #[error("cannot start the access-log writer: {0}")]
    Spawn(#[source] io::Error),
}

/// One request's facts for its line, owned so it can cross to the writer thread. The strings
/// are shared clones (`Bytes`/`Arc` reference counts) of what the request already holds.
#[derive(Debug)]
pub struct LogEntry {
    /// Wall-clock time the request arrived.
    pub start_time: SystemTime,
    /// Request method.
    pub method: Method,
    /// Request target as received (origin- or absolute-form).
    pub uri: Uri,
    /// The `Host` header, for origin-form requests.
    pub host: Option<HeaderValue>,
    /// Downstream protocol version.
    pub version: Version,
    /// Status sent downstream, 0 when none was.
    pub status: u16,
    /// Response flags.
    pub flags: ResponseFlags,
    /// Whether an upstream answered (else the proxy replied itself).
    pub via_upstream: bool,
    /// Request body bytes.
    pub bytes_received: u64,
    /// Response body bytes.
    pub bytes_sent: u64,
    /// Arrival to last response byte (or to the disconnect).
    pub duration: Duration,
    /// `ip:port` of the endpoint of the last attempt.
    pub upstream_host: Option<Arc<str>>,
    /// The destination service's FQDN.
    pub upstream_service: Option<Arc<str>>,
    /// Attempts made upstream.
    pub attempts: u32,
    /// The request's `x-request-id` (as forwarded).
    pub request_id: RequestId,
    /// The `User-Agent` header.
    pub user_agent: Option<HeaderValue>,
    /// The downstream client's address.
    pub peer: Option<SocketAddr>,
    /// The matched route's name.
    pub route: Option<Arc<str>>,
}

impl LogEntry {
    /// Appends the formatted line; `scratch` is a reused buffer for the peer address.
    fn write(&self, format: AccessLogFormat, out: &mut String, scratch: &mut String) {
        use std::fmt::Write as _;
        scratch.clear();
        if let Some(peer) = self.peer {
            let _ = write!(scratch, "{peer}");
        }
        fn header(v: &Option<HeaderValue>) -> &str {
            v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default()
        }
        let authority = match self.uri.authority() {
            Some(a) => a.as_str(),
            None => header(&self.host),
        };
        let details = match self.flags.iter().next() {
            Some(flag) => flag.reason(),
            None if self.via_upstream => "via_upstream",
            None => "local_reply",
        };
        AccessLogRecord {
            start_time: Some(self.start_time),
            method: self.method.as_str(),
            authority,
            path: self.uri.path_and_query().map_or("", |p| p.as_str()),
            protocol: version_text(self.version),
            status: self.status,
            flags: self.flags,
            details,
            bytes_received: self.bytes_received,
            bytes_sent: self.bytes_sent,
            duration: self.duration,
            upstream_host: self.upstream_host.as_deref().unwrap_or_default(),
            upstream_service: self.upstream_service.as_deref().unwrap_or_default(),
            attempts: self.attempts,
            request_id: self.request_id.as_str(),
            user_agent: header(&self.user_agent),
            downstream_remote: scratch,
            // A route with neither name nor origin (a service's implicit route) prints blank.
            route: self.route.as_deref().unwrap_or_default().trim(),
        }
        .write(format, out);
    }
}

/// Envoy's `%PROTOCOL%` spelling.
fn version_text(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "-",
    }
}

/// The sending side of the access log; the writer thread exits once this is dropped and the
/// queue is drained.
#[derive(Debug)]
pub struct AccessLogWriter {
    tx: SyncSender<LogEntry>,
}

impl AccessLogWriter {
    /// Starts the writer for `config`; `None` when the access log is off.
    pub fn start(config: &AccessLogConfig) -> Result<Option<AccessLogWriter>, AccessLogError> {
        let out: Box<dyn Write + Send> = match &config.destination {
            AccessLogDestination::Off => return Ok(None),
            AccessLogDestination::Stdout => Box::new(io::stdout()),
            AccessLogDestination::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| AccessLogError::Open {
                        path: path.clone(),
                        source,
                    })?,
            ),
        };
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let format = config.format;
        std::thread::Builder::new()
            .name("trellis-access-log".into())
            .spawn(move || run(rx, format, BufWriter::with_capacity(64 * 1024, out)))
            .map_err(AccessLogError::Spawn)?;
        Ok(Some(AccessLogWriter { tx }))
    }

    /// Queues a line without waiting; `false` when it was dropped (queue full or writer gone).
    pub fn try_log(&self, entry: LogEntry) -> bool {
        match self.tx.try_send(entry) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The writer thread: format, write, and flush each time the queue is empty.
fn run(rx: Receiver<LogEntry>, format: AccessLogFormat, mut out: BufWriter<Box<dyn Write + Send>>) {
    let mut line = String::with_capacity(1024);
    let mut scratch = String::with_capacity(64);
    let mut failing = false;
    while let Ok(mut entry) = rx.recv() {
        loop {
            line.clear();
            entry.write(format, &mut line, &mut scratch);
            report(out.write_all(line.as_bytes()), &mut failing);
            match rx.try_recv() {
                Ok(next) => entry = next,
                Err(_) => break,
            }
        }
        report(out.flush(), &mut failing);
    }
}

/// Logs the first write error of a run of failures (not one per line), and the recovery.
fn report(result: io::Result<()>, failing: &mut bool) {
    match result {
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!(error = %e, "writing the access log failed; dropping lines");
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("access log writable again");
        }
        _ => {}
    }
}
