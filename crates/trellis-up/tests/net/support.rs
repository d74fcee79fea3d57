//! Helpers of the namespace tests: Python servers and clients run inside namespaces,
//! process and cleanup guards, and the check that nothing with the test's names is left.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trellis_up::net::{Namespace, NetConfig, cleanup_leftovers, command_in};

/// Python for servers and clients: a system one, executable by uid 1337 too (a pyenv
/// shim under /root is not).
pub const PYTHON: &str = "/usr/bin/python3";
pub const PROXY: Option<(u32, u32)> = Some((1337, 1337));
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Answers every connection with `<banner> <original destination>` and closes it; the
/// original destination comes from `SO_ORIGINAL_DST` (80), as the proxy reads it.
pub const SERVER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        d = c.getsockopt(socket.SOL_IP, 80, 16)
        dst = "%s:%d" % (socket.inet_ntoa(d[4:8]), int.from_bytes(d[2:4], "big"))
    except OSError:
        dst = "-"
    c.sendall(("%s %s\n" % (sys.argv[2], dst)).encode())
    c.close()
"#;

/// Prints the first line the server sends, or `ERR <exception>`.
pub const CLIENT: &str = r#"
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    print(c.makefile().readline().strip())
except Exception as e:
    print("ERR", type(e).__name__)
"#;

/// Resolves each name read from stdin with the C library (so through /etc/hosts), one
/// answer per line: a program that keeps running while the hosts file changes.
pub const RESOLVER: &str = r#"
import socket, sys
print("ready", flush=True)
for line in sys.stdin:
    try:
        print(socket.gethostbyname(line.strip()), flush=True)
    except Exception as e:
        print("ERR", type(e).__name__, flush=True)
"#;

/// Nothing with the test's names is left on the machine.
pub fn assert_clean(cfg: &NetConfig) {
    let netns = sh("ip", &["netns", "list"]);
    assert!(!netns.contains("trltest-"), "namespaces left: {netns}");
    let bridge = Command::new("ip")
        .args(["link", "show", &cfg.bridge])
        .output()
        .expect("ip");
    assert!(!bridge.status.success(), "bridge left");
    let links = sh("ip", &["-o", "link", "show"]);
    assert!(
        !links
            .lines()
            .any(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with("trt"))),
        "veths left: {links}"
    );
    for chain in ["FORWARD", "INPUT"] {
        let rules = sh("iptables", &["-S", chain]);
        assert!(!rules.contains("trltest"), "rules left: {rules}");
    }
    if let Ok(dirs) = std::fs::read_dir("/etc/netns") {
        let left: Vec<_> = dirs
            .flatten()
            .filter(|d| d.file_name().to_string_lossy().starts_with("trltest-"))
            .collect();
        assert!(left.is_empty(), "hosts directories left: {left:?}");
    }
}

/// Runs a command on the host, returning its stdout; panics if it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts [`SERVER`] on `port` inside `ns` and waits until it listens.
pub fn start(ns: &Namespace, run_as: Option<(u32, u32)>, port: u16, banner: &str) -> Child {
    let args = ["-c", SERVER, &port.to_string(), banner].map(OsString::from);
    let mut child = command_in(ns, run_as, OsStr::new(PYTHON), &args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    let stdout = child.stdout.as_mut().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("read");
    assert_eq!(
        line.trim(),
        "ready",
        "server {banner} on {port} did not start"
    );
    child
}

/// Runs [`CLIENT`] inside `ns` against `ip:port`.
pub fn client(ns: &Namespace, run_as: Option<(u32, u32)>, ip: Ipv4Addr, port: u16) -> String {
    let args = ["-c", CLIENT, &ip.to_string(), &port.to_string()].map(OsString::from);
    let out = command_in(ns, run_as, OsStr::new(PYTHON), &args)
        .output()
        .expect("client");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Connects from the host to `ip:port` and reads the first line.
pub fn host_client(ip: Ipv4Addr, port: u16) -> String {
    let addr = SocketAddr::from((ip, port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect from the host");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    text.trim().to_owned()
}

pub fn first_word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or_default()
}

/// A port of `ip` on the host with nothing listening.
pub fn closed_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn exited_soon(mut child: Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

pub struct Resolver {
    pub child: Child,
    lines: BufReader<std::process::ChildStdout>,
}

impl Resolver {
    pub fn start(ns: &Namespace) -> Resolver {
        let mut child = command_in(
            ns,
            None,
            OsStr::new(PYTHON),
            &["-c".into(), RESOLVER.into()],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn resolver");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut ready = String::new();
        lines.read_line(&mut ready).expect("read");
        assert_eq!(ready.trim(), "ready");
        Resolver { child, lines }
    }

    pub fn resolve(&mut self, name: &str) -> String {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{name}").expect("write");
        stdin.flush().expect("flush");
        let mut answer = String::new();
        self.lines.read_line(&mut answer).expect("read");
        answer.trim().to_owned()
    }
}

/// Processes started inside namespaces, killed when dropped (also while unwinding from
/// a failed assertion, before the network they run in is torn down).
#[derive(Default)]
pub struct Procs(Vec<Child>);

impl Procs {
    pub fn push(&mut self, child: Child) {
        self.0.push(child);
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes everything with the test's names when the test ends, however it ends.
pub struct Cleanup(pub NetConfig);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let report = cleanup_leftovers(&self.0);
        for error in report.errors {
            eprintln!("cleanup: {error}");
        }
    }
}
