//! Running `trellis up` on a copy of the shop example for the end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_trellis");

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `trellis up` on a copy of `examples/shop` whose gateway listens on a free port.
pub struct UpRun {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub state: PathBuf,
    pub gateway: SocketAddr,
    pub monitoring: SocketAddr,
    pub table: String,
}

impl UpRun {
    pub fn start(tag: &str, extra: &[&str]) -> UpRun {
        let base =
            std::env::temp_dir().join(format!("trellis-up-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let state = base.join("state");
        let (dir, gateway) = shop_copy(&base.join("shop"));
        let monitoring = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let xds = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new(BIN);
        cmd.arg("up")
            .arg(&dir)
            .args(["--state-dir"])
            .arg(&state)
            .args(["--monitoring-addr", &monitoring.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !extra.contains(&"--xds-addr") && extra.contains(&"explicit") {
            cmd.args(["--xds-addr", &xds.to_string()]);
        }
        let mut child = cmd.spawn().expect("spawn trellis up");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut table = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                table.push_str(&line);
                table.push('\n');
                if line.starts_with("Stop:") {
                    let _ = tx.send(table.clone());
                }
            }
        });
        let err_log = base.join("up.stderr");
        let mut err_file = std::fs::File::create(&err_log).expect("stderr log");
        std::thread::spawn(move || {
            let mut s = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = err_file.write_all(&buf[..n]);
            }
        });
        let table = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(t) => t,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "trellis up did not become ready:\n{}",
                    std::fs::read_to_string(&err_log).unwrap_or_default()
                );
            }
        };
        UpRun {
            child: Some(child),
            dir,
            state,
            gateway,
            monitoring,
            table,
        }
    }

    /// Rewrites one configuration file (write + rename, as editors save).
    pub fn edit(&self, file: &str, f: impl FnOnce(String) -> String) {
        let path = self.dir.join(file);
        let text = f(std::fs::read_to_string(&path).expect("read"));
        let tmp = self.dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(tmp, path).expect("rename");
    }

    /// `/stats/prometheus` of the sidecar of `workload` (e.g. `frontend-0`), whose admin
    /// address is the table's sixth column.
    pub fn sidecar_stats(&self, workload: &str) -> String {
        let row = self
            .table
            .lines()
            .find(|l| l.starts_with(workload))
            .unwrap_or_else(|| panic!("no row for {workload}:\n{}", self.table));
        let admin = row.split_whitespace().nth(5).expect("admin column");
        http_get(
            admin.parse().expect("admin address"),
            "x",
            "/stats/prometheus",
            &[],
        )
        .1
    }

    /// Runs `trellis args…` and returns its standard output.
    pub fn trellis(&self, args: &[&str]) -> String {
        let out = Command::new(BIN).args(args).output().expect("run trellis");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pids of every process the run started (not its own), from its state file.
    pub fn pids(&self) -> Vec<u32> {
        let own = self.child.as_ref().map(Child::id);
        pids_in(&self.state)
            .into_iter()
            .filter(|p| Some(*p) != own)
            .collect()
    }

    /// The logs directory's files, concatenated (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.state.join("logs")) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("== {}\n{tail}\n", e.path().display()));
            }
        }
        out
    }

    /// SIGTERM, then checks the run exited 0, every process is gone and the state file too.
    pub fn stop_and_check(mut self, pids: &[u32]) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "trellis up did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "trellis up exited with {status}");
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(*pid),
                "process {pid} still runs"
            );
        }
        assert!(
            !self.state.join("state.json").exists(),
            "state file left behind"
        );
    }
}

impl Drop for UpRun {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.split(") ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

/// One HTTP/1.0 GET: status and body.
pub fn http_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, "connect failed".into());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{extra}\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// The `service` of a demo answer.
pub fn service_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["service"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `n` GETs of `path` through `gw` from 8 threads: the `version` of each answer (or the
/// status and body of a failure).
pub fn many(gw: SocketAddr, path: &str, headers: &[(&str, &str)], n: usize) -> Vec<String> {
    let workers = 8.min(n.max(1));
    let per = n.div_ceil(workers);
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut handles = Vec::new();
    for w in 0..workers {
        let count = per.min(n.saturating_sub(w * per));
        let path = path.to_owned();
        let headers = headers.clone();
        handles.push(std::thread::spawn(move || {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            (0..count)
                .map(|_| {
                    let (status, body) = http_get(gw, "shop.local", &path, &h);
                    serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["version"].as_str().map(str::to_owned))
                        .filter(|_| status == 200)
                        .unwrap_or_else(|| format!("{status} {body}"))
                })
                .collect::<Vec<_>>()
        }));
    }
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect()
}

/// A copy of the shop example in `dir` with its gateway on a free port (returned).
pub fn shop_copy(dir: &Path) -> (PathBuf, SocketAddr) {
    std::fs::create_dir_all(dir).expect("dir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let port = free_port();
    for entry in std::fs::read_dir(&example).expect("example") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&p)
                .expect("read")
                .replace(
                    "port: {number: 8080, name: http, protocol: HTTP}",
                    &format!("port: {{number: {port}, name: http, protocol: HTTP}}"),
                )
                // Fast answers: the ratio test sends a thousand requests.
                .replace(", --latency, 20ms, --latency-jitter, 50ms", "");
            std::fs::write(dir.join(p.file_name().expect("name")), text).expect("write");
        }
    }
    (dir.to_path_buf(), SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Every pid in the state file of `state` (the supervisor's too).
pub fn pids_in(state: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(state.join("state.json")).expect("state file");
    let v: serde_json::Value = serde_json::from_str(&text).expect("state JSON");
    let mut pids: Vec<u32> = v["processes"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["pid"].as_u64())
                .map(|p| p as u32)
                .filter(|p| *p != 0)
                .collect()
        })
        .unwrap_or_default();
    if let Some(p) = v["pid"].as_u64() {
        pids.push(p as u32);
    }
    pids
}

/// Waits (up to 20 s) until no process of `pids` runs.
pub fn wait_all_gone(pids: &[u32]) {
    let start = Instant::now();
    loop {
        let left: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists() && !is_zombie(*p))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still running: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Root with `ip`, `iptables`, `setpriv` and `curl`, or why not. Without root the transparent
/// tests cannot run; with root, missing tools are a setup error
/// (scripts/install-test-deps.sh installs them), so the test fails rather than skipping.
pub fn transparent_possible() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    if !root {
        return Err("transparent mode needs root".into());
    }
    for tool in ["ip", "iptables", "setpriv", "curl"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        assert!(found, "{tool} is missing: run scripts/install-test-deps.sh");
    }
    Ok(())
}

/// Nothing named with `prefix` is left: namespaces, the bridge, host rules, hosts files.
pub fn assert_no_leftovers(prefix: &str) {
    let run = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .expect("run");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let netns = run(&["ip", "netns", "list"]);
    assert!(
        !netns.contains(&format!("{prefix}-")),
        "namespaces left: {netns}"
    );
    let links = run(&["ip", "-o", "link", "show"]);
    assert!(
        !links.contains(&format!("{prefix}0")),
        "bridge left: {links}"
    );
    for chain in ["FORWARD", "INPUT"] {
        let rules = run(&["iptables", "-S", chain]);
        assert!(
            !rules.contains(&format!("trellis:{prefix}")),
            "host rules left: {rules}"
        );
    }
    let netns_dirs: Vec<_> = std::fs::read_dir("/etc/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(netns_dirs.is_empty(), "hosts files left: {netns_dirs:?}");
}

/// Runs `trellis down` with `args` and checks it succeeded.
pub fn down(args: &[&str], state: &Path) {
    let out = Command::new(BIN)
        .arg("down")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .expect("run trellis down");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends SIGTERM to `child` and waits (at most `within`) for it to exit.
pub fn sigterm_and_wait(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(start.elapsed() < within, "exits after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
