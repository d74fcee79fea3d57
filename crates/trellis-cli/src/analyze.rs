//! `trellis analyze`: load, analyze, print, and exit 0 (no errors), 1 (errors) or 2 (could not run).

use crate::cli::{AnalyzeArgs, OutputFormat};
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::process::ExitCode;
use trellis_config::{Code, LoadOptions, Loaded, Severity, analyze, load_paths, load_str};

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.list_codes {
        for code in Code::ALL {
            writeln!(
                out,
                "{}\t{}\t{}",
                code,
                code.default_severity(),
                code.title()
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let threshold = match args.output_threshold.to_ascii_lowercase().as_str() {
        "info" => Severity::Info,
        "warning" | "warn" => Severity::Warning,
        "error" => Severity::Error,
        other => bail!("--output-threshold {other:?}: expected info, warning or error"),
    };
    let opts = LoadOptions {
        default_namespace: args.namespace.clone(),
    };
    let (stdin, files): (Vec<_>, Vec<_>) = args
        .paths
        .iter()
        .cloned()
        .partition(|p| p.as_os_str() == "-");
    let mut loaded = if files.is_empty() {
        Loaded::default()
    } else {
        load_paths(&files, &opts)?
    };
    if !stdin.is_empty() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        let from_stdin = load_str("<stdin>", &text, &opts);
        loaded.resources.extend(from_stdin.resources);
        loaded.diagnostics.extend(from_stdin.diagnostics);
        loaded.files += 1;
    }
    let report = analyze::analyze(&loaded);
    let shown: Vec<_> = report.iter().filter(|d| d.severity >= threshold).collect();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &shown)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            for d in &shown {
                writeln!(out, "{d}")?;
            }
            if shown.is_empty() {
                eprintln!(
                    "No validation issues found when analyzing {} resources in {} files.",
                    loaded.resources.len(),
                    loaded.files
                );
            }
        }
    }
    out.flush()?;
    let errors = report.iter().any(|d| d.severity == Severity::Error);
    Ok(if errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
