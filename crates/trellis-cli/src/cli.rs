//! The command line: subcommands and their flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Trellis: a service mesh that runs the Istio, Gateway API, Linkerd and SMI configuration you
/// already have.
#[derive(Debug, Parser)]
#[command(name = "trellis", version, about, long_about = None)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace); `TRELLIS_LOG` overrides it.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files for errors, like `istioctl analyze`.
    ///
    /// Exit status: 0 when no error was found, 1 when errors were found, 2 when the analysis could
    /// not run (for example a path that does not exist).
    Analyze(AnalyzeArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Files or directories (read recursively: *.yaml, *.yml, *.json). `-` reads standard input.
    #[arg(required_unless_present = "list_codes")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Namespace for resources that do not name one.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Lowest severity to print (info, warning, error).
    #[arg(long, default_value = "info")]
    pub output_threshold: String,
    /// Print every diagnostic code with its meaning and exit.
    #[arg(long)]
    pub list_codes: bool,
}
