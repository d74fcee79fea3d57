//! `trellis demo` as a process: it announces itself, answers its JSON (reading settings
//! from flags and the environment), logs requests at debug, exits 0 after SIGTERM, and
//! refuses a bad value with exit status 2 and a message naming the flag or variable.

mod up_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn trellis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    // The test's own environment must not steer the demo's calls or logging.
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "TRELLIS_OUTBOUND",
        "TRELLIS_LOG",
        "PORT",
    ] {
        command.env_remove(var);
    }
    command
}

/// Kills the child if the test fails half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port that was free a moment ago (bound, then released), for `--listen`.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One HTTP/1.1 GET with `Connection: close`; returns the whole response text.
fn get(addr: SocketAddr, path: &str, headers: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n{headers}\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

/// Every standard-error line, as it comes (read on a thread so the pipe never fills).
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits for a line containing `needle`, returning it.
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no stderr line containing {needle:?}: {e}"),
        }
    }
}

#[test]
fn answers_json_and_exits_0_on_sigterm() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = trellis()
        .args(["demo", "--listen", &listen, "--service", "orders"])
        .args(["--pod", "orders-1", "--log-level", "debug"])
        .env("TRELLIS_DEMO_VERSION", "v2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut guard = Guard(child);
    let lines = stderr_lines(&mut guard.0);
    let startup = wait_for_line(&lines, "listening on");
    assert_eq!(
        startup,
        format!("trellis demo: orders v2 listening on {listen}")
    );

    let addr: SocketAddr = listen.parse().expect("addr");
    let answer = get(addr, "/orders", "x-request-id: r-1\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("content-type: application/json"),
        "{answer}"
    );
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(
        json,
        serde_json::json!({
            "service": "orders", "version": "v2", "pod": "orders-1",
            "path": "/orders", "upstream": [],
        })
    );
    let health = get(addr, "/healthz", "");
    assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("ok"));
    // `--log-level debug`: one line per request.
    let logged = wait_for_line(&lines, "/orders");
    assert!(logged.contains("200"), "{logged}");

    let status = up_support::sigterm_and_wait(&mut guard.0, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn bad_values_exit_2_naming_the_flag_or_variable() {
    let out = trellis()
        .args(["demo", "--listen", "127.0.0.1:0", "--fail-rate", "2"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--fail-rate"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = trellis()
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("TRELLIS_DEMO_LATENCY", "soon")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TRELLIS_DEMO_LATENCY"), "{stderr}");
}
