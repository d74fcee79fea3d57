//! `trellis down`: stops a `trellis up` through its state file, and removes whatever a killed
//! run left behind (processes, network namespaces, the bridge, host rules).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use trellis_up::net::{NetConfig, cleanup_leftovers};
use trellis_up::process::{alive, signal};
use trellis_up::state;

use crate::cli::DownArgs;

pub fn run(args: &DownArgs) -> anyhow::Result<ExitCode> {
    let dir = args.state_dir.clone().unwrap_or_else(state::default_dir);
    let mut net = NetConfig {
        prefix: args.net_prefix.clone(),
        bridge: format!("{}0", args.net_prefix),
        ..NetConfig::default()
    };
    match state::read(&dir) {
        None => println!("no trellis up state in {}", dir.display()),
        Some(s) => {
            if same_process(s.pid, "trellis") {
                println!("stopping trellis up (pid {})", s.pid);
                signal(s.pid, false);
                if !wait_gone(s.pid, Duration::from_secs(30)) {
                    println!("trellis up did not stop in 30s; killing it");
                    signal(s.pid, true);
                }
            }
            for p in &s.processes {
                if p.pid != 0
                    && !p.cmdline.is_empty()
                    && state::cmdline(p.pid).as_deref() == Some(p.cmdline.as_str())
                {
                    println!("stopping {} (pid {})", p.name, p.pid);
                    signal(p.pid, false);
                    if !wait_gone(p.pid, Duration::from_secs(5)) {
                        signal(p.pid, true);
                    }
                }
            }
            if let Some(n) = &s.net {
                net.prefix.clone_from(&n.prefix);
                net.bridge.clone_from(&n.bridge);
            }
            state::remove(&dir);
        }
    }
    if nix_is_root() {
        let report = cleanup_leftovers(&net);
        for line in &report.removed {
            println!("removed {line}");
        }
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    println!("down: nothing of trellis up is left running");
    Ok(ExitCode::SUCCESS)
}

fn same_process(pid: u32, needle: &str) -> bool {
    pid != 0 && alive(pid) && state::cmdline(pid).is_some_and(|c| c.contains(needle))
}

fn wait_gone(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    !alive(pid)
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}
