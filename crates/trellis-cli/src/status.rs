//! `trellis status`: the proxies connected to a control plane and how far each has synced,
//! read from its `/debug/syncz` page, in the shape of `istioctl proxy-status`.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use crate::cli::{OutputFormat, StatusArgs};

/// Resource types in the order the table shows them.
const TYPES: [&str; 4] = ["mesh", "services", "endpoints", "gateways"];

pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let body = crate::http_get::get(&args.control_plane, "/debug/syncz")
        .with_context(|| format!("cannot reach the control plane at {}", args.control_plane))?;
    let syncz: Value =
        serde_json::from_str(&body).context("the control plane's answer is not JSON")?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&syncz)?),
        OutputFormat::Text => print!("{}", table(&syncz)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The table: one line per proxy, then the reason of every refusal.
pub fn table(syncz: &Value) -> String {
    let proxies = syncz["proxies"].as_array().cloned().unwrap_or_default();
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "KIND".into(),
        "VERSION".into(),
        "MESH".into(),
        "SERVICES".into(),
        "ENDPOINTS".into(),
        "GATEWAYS".into(),
    ]];
    let mut nacks = String::new();
    for p in &proxies {
        let name = p["proxy"].as_str().unwrap_or("?").to_owned();
        let acked = TYPES
            .iter()
            .filter_map(|t| p["types"][t]["version_acked"].as_str())
            .max_by_key(|v| v.trim_start_matches('v').parse::<u64>().unwrap_or(0))
            .unwrap_or("-");
        let mut row = vec![
            name.clone(),
            p["kind"].as_str().unwrap_or("?").to_owned(),
            acked.to_owned(),
        ];
        for t in TYPES {
            let ty = &p["types"][t];
            let state = if ty.is_null() {
                "-".to_owned()
            } else {
                state(ty)
            };
            if let Some(msg) = ty["nack"]["message"].as_str() {
                let _ = writeln!(
                    nacks,
                    "{name} refused {t} {}: {msg}",
                    ty["nack"]["version"].as_str().unwrap_or("?")
                );
            }
            row.push(state);
        }
        rows.push(row);
    }
    let mut out = trellis_up::table::columns(&rows);
    if proxies.is_empty() {
        out.push_str("(no proxies connected)\n");
    }
    if !nacks.is_empty() {
        out.push('\n');
        out.push_str(&nacks);
    }
    out
}

/// SYNCED, STALE, NACKED or NOT SENT, as istioctl names them.
fn state(ty: &Value) -> String {
    if !ty["nack"].is_null() {
        "NACKED".into()
    } else if ty["version_sent"].is_null() {
        "NOT SENT".into()
    } else if ty["pending"].as_u64().unwrap_or(0) > 0 {
        "STALE".into()
    } else {
        format!("SYNCED ({})", ty["resources"].as_u64().unwrap_or(0))
    }
}
