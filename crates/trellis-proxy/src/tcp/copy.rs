//! The byte pump between two connections: both directions in one task, with half-close
//! propagation, live byte counters and an idle timer that any progress re-arms.
//!
//! It is a hand-written poll loop rather than `tokio::io::copy_bidirectional` for three
//! reasons the mesh needs: counters must be readable while the connection lives (metrics),
//! an error must say which side failed (`UC` versus `DC`), and idleness is "no byte in
//! either direction", which only a loop that sees both directions can tell.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, sleep};

/// Buffer per direction. Envoy uses up to 1 MiB of watermarked buffers per connection;
/// 16 KiB per direction matches a TLS record and keeps idle long-lived connections cheap.
const BUF_SIZE: usize = 16 * 1024;

/// Which operation of a direction failed.
#[derive(Debug)]
pub(crate) enum PipeError {
    /// Reading from the source side failed.
    Read(io::Error),
    /// Writing (or shutting down) the destination side failed.
    Write(io::Error),
}

/// How the pump ended with an error, attributed to a side.
#[derive(Debug)]
pub(crate) enum PumpError {
    /// The downstream side (client) failed.
    Downstream(io::Error),
    /// The upstream side (server) failed.
    Upstream(io::Error),
    /// No byte moved in either direction for the idle timeout.
    Idle,
}

/// One direction: read from a source into `buf`, write it all to a destination, and when
/// the source ends, shut the destination's write side down so the peer sees EOF too.
struct Pipe<'c> {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    read_eof: bool,
    finished: bool,
    counter: &'c AtomicU64,
}

impl<'c> Pipe<'c> {
    fn new(counter: &'c AtomicU64) -> Self {
        Pipe {
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            read_eof: false,
            finished: false,
            counter,
        }
    }

    /// Moves as many bytes as are ready. Sets `progressed` when any byte was read or
    /// written; returns `Ready(Ok)` once the direction is complete (EOF passed on).
    fn poll_pump<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut src: Pin<&mut R>,
        mut dst: Pin<&mut W>,
        progressed: &mut bool,
    ) -> Poll<Result<(), PipeError>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        if self.finished {
            return Poll::Ready(Ok(()));
        }
        loop {
            if self.start == self.end && !self.read_eof {
                let mut rb = ReadBuf::new(&mut self.buf);
                ready!(src.as_mut().poll_read(cx, &mut rb)).map_err(PipeError::Read)?;
                let n = rb.filled().len();
                if n == 0 {
                    self.read_eof = true;
                } else {
                    (self.start, self.end) = (0, n);
                    *progressed = true;
                }
            }
            while self.start < self.end {
                let pending = self.buf.get(self.start..self.end).unwrap_or_default();
                let n = ready!(dst.as_mut().poll_write(cx, pending)).map_err(PipeError::Write)?;
                if n == 0 {
                    return Poll::Ready(Err(PipeError::Write(io::ErrorKind::WriteZero.into())));
                }
                self.start += n;
                self.counter.fetch_add(n as u64, Ordering::Relaxed);
                *progressed = true;
            }
            if self.read_eof {
                ready!(dst.as_mut().poll_shutdown(cx)).map_err(PipeError::Write)?;
                self.finished = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Copies `down` <-> `up` until both directions have ended, one side fails, or nothing
/// moves for `idle` (`None`: no idle limit). Bytes written to `up` are added to `to_up`,
/// bytes written to `down` to `to_down`, as they are written.
pub(crate) async fn pump<D, U>(
    down: &mut D,
    up: &mut U,
    to_up: &AtomicU64,
    to_down: &AtomicU64,
    idle: Option<Duration>,
) -> Result<(), PumpError>
where
    D: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut upstream_dir = Pipe::new(to_up);
    let mut downstream_dir = Pipe::new(to_down);
    // Only polled when an idle timeout is set; creating it costs no timer registration.
    let timer = sleep(idle.unwrap_or_default());
    tokio::pin!(timer);
    poll_fn(|cx| {
        let mut progressed = false;
        let a = upstream_dir.poll_pump(
            cx,
            Pin::new(&mut *down),
            Pin::new(&mut *up),
            &mut progressed,
        );
        if let Poll::Ready(Err(e)) = a {
            return Poll::Ready(Err(match e {
                PipeError::Read(e) => PumpError::Downstream(e),
                PipeError::Write(e) => PumpError::Upstream(e),
            }));
        }
        let b = downstream_dir.poll_pump(
            cx,
            Pin::new(&mut *up),
            Pin::new(&mut *down),
            &mut progressed,
        );
        if let Poll::Ready(Err(e)) = b {
            return Poll::Ready(Err(match e {
                PipeError::Read(e) => PumpError::Upstream(e),
                PipeError::Write(e) => PumpError::Downstream(e),
            }));
        }
        if a.is_ready() && b.is_ready() {
            return Poll::Ready(Ok(()));
        }
        let Some(idle_for) = idle else {
            return Poll::Pending;
        };
        if progressed {
            timer.as_mut().reset(Instant::now() + idle_for);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(PumpError::Idle)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
