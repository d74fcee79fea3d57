//! `trellis`: the service mesh's single binary. `main` only parses the command line and maps the
//! outcome to an exit code; each subcommand lives in its own module.
#![forbid(unsafe_code)]

mod analyze;
mod cli;
mod control;
mod demo;
mod down;
mod http_get;
mod proxy;
mod signals;
mod status;
mod up;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The demo logs one line per request at debug; the HTTP libraries' own debug lines
    // (connection pooling, dialing) would bury them. `TRELLIS_LOG` can still ask for them.
    let quiet_http = matches!(cli.command, cli::Command::Demo(_));
    init_tracing(cli.log_level.as_deref(), quiet_http);
    let result = match cli.command {
        cli::Command::Version => {
            println!("trellis {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Analyze(args) => analyze::run(&args),
        cli::Command::Proxy(args) => proxy::run(&args),
        cli::Command::Control(args) => control::run(&args),
        cli::Command::Status(args) => status::run(&args),
        cli::Command::Demo(args) => demo::run(&args),
        cli::Command::Up(args) => up::run(&args),
        cli::Command::Down(args) => down::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2: the command could not run (as `trellis analyze` documents).
            ExitCode::from(2)
        }
    }
}

fn init_tracing(level: Option<&str>, quiet_http: bool) {
    let level = level.unwrap_or("warn");
    let verbose = level.eq_ignore_ascii_case("debug") || level.eq_ignore_ascii_case("trace");
    let directives = if quiet_http && verbose {
        format!("{level},hyper=info,hyper_util=info,h2=info")
    } else {
        level.to_owned()
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRELLIS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&directives))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
