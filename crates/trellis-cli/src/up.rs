//! `trellis up`: the local mesh in the foreground (Ctrl-C stops it), or detached.

use std::io::{Read as _, Seek as _};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use trellis_up::{Mode, Up, UpError, UpOptions, state};

use crate::cli::{UpArgs, UpMode};

pub fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    if args.detach {
        return detach(args);
    }
    // One thread: supervised children get SIGTERM if the thread that started them dies
    // (setpriv --pdeathsig), so that thread must be the process' own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args))
}

fn options(args: &UpArgs) -> anyhow::Result<UpOptions> {
    let exe = std::env::current_exe().context("cannot find the trellis binary")?;
    let mut opts = UpOptions::new(args.paths.clone(), exe);
    opts.namespace.clone_from(&args.namespace);
    opts.mode = match args.mode {
        UpMode::Auto => None,
        UpMode::Explicit => Some(Mode::Explicit),
        UpMode::Transparent => Some(Mode::Transparent),
    };
    opts.xds_addr = args.xds_addr;
    opts.monitoring_addr = args.monitoring_addr;
    opts.gateway_bind = args.gateway_bind;
    if let Some(d) = &args.state_dir {
        opts.state_dir.clone_from(d);
    }
    opts.explicit_range = args.explicit_range;
    let (base, len) = args.pod_range;
    opts.net.subnet = base;
    opts.net.prefix_len = len;
    opts.net.host_ip = Ipv4Addr::from(u32::from(base) + 1);
    opts.net.prefix.clone_from(&args.net_prefix);
    opts.net.bridge = format!("{}0", args.net_prefix);
    opts.follow = !args.no_follow;
    opts.ready_timeout = args.ready_timeout;
    opts.metrics_names = args.metrics_names.map(|m| m.as_str().to_owned());
    Ok(opts)
}

async fn serve(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let opts = options(args)?;
    let mut up = match Up::start(opts).await {
        Ok(up) => up,
        Err(UpError::Config(refused)) => {
            eprintln!("error: configuration refused");
            for d in &refused.diagnostics {
                eprintln!("  {d}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    print!("{}", trellis_up::table::render(&up));
    let stop = async {
        if let Err(e) = crate::signals::terminated().await {
            eprintln!("error: cannot listen for signals: {e}");
        }
    };
    up.run(stop).await;
    up.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Starts `trellis up` again without `--detach`, in its own session with its output in
/// `<state dir>/up.log`, and returns once its state file says it is ready.
fn detach(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let opts = options(args)?;
    std::fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("cannot create {}", opts.state_dir.display()))?;
    let log_path = opts.state_dir.join("up.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let rest: Vec<_> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    let mut child = std::process::Command::new("setsid")
        .arg(&opts.trellis_bin)
        .args(&rest)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the background trellis up (is `setsid` installed?)")?;
    let started = Instant::now();
    let limit = opts.ready_timeout + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            eprintln!("error: trellis up stopped ({status}); its output:");
            eprint!("{}", tail(&log_path));
            return Ok(ExitCode::from(1));
        }
        if let Some(s) = state::read(&opts.state_dir)
            && s.pid == child.id()
            && s.ready
        {
            print!("{}", s.table);
            println!(
                "Running in the background (pid {}); its log: {}",
                s.pid,
                log_path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if started.elapsed() > limit {
            eprintln!(
                "error: trellis up is not ready after {limit:?}; see {}",
                log_path.display()
            );
            return Ok(ExitCode::from(1));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The last few KiB of a log.
fn tail(path: &std::path::Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(4096)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}
