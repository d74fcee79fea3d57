//! `trellis`: the service mesh's single binary. `main` only parses the command line and maps the
//! outcome to an exit code; each subcommand lives in its own module.
#![forbid(unsafe_code)]

mod analyze;
mod cli;
mod control;
mod http_get;
mod proxy;
mod signals;
mod status;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.log_level.as_deref());
    let result = match cli.command {
        cli::Command::Version => {
            println!("trellis {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Analyze(args) => analyze::run(&args),
        cli::Command::Proxy(args) => proxy::run(&args),
        cli::Command::Control(args) => control::run(&args),
        cli::Command::Status(args) => status::run(&args),
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

fn init_tracing(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRELLIS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level.unwrap_or("warn")))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
