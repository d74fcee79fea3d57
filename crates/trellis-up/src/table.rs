//! The table `trellis up` prints once the mesh is ready: what runs where.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::launcher::Up;

/// Renders the table for `up`.
pub fn render(up: &Up) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trellis up: the mesh is running ({})",
        up.mode().describe()
    );
    let (xds, monitoring) = up.control_plane();
    let _ = writeln!(
        out,
        "\nCONTROL PLANE  xds {xds}  monitoring {}  (trellis status --control-plane {0})",
        monitoring.map_or_else(|| "-".to_owned(), |m| m.to_string())
    );
    let mut rows = vec![vec![
        "GATEWAY".to_owned(),
        "SERVES".into(),
        "LISTENS".into(),
        "ADMIN".into(),
    ]];
    let mut first_url = None;
    for g in up.gateways() {
        let listens: Vec<String> = g
            .spec
            .ports
            .iter()
            .map(|p| format!("http://{}", SocketAddr::new(g.bind, *p)))
            .collect();
        if first_url.is_none() {
            first_url = listens.first().cloned();
        }
        rows.push(vec![
            format!("{}.{}", g.spec.name, g.spec.namespace),
            g.spec.serves.join(","),
            listens.join(" "),
            g.admin.to_string(),
        ]);
    }
    if rows.len() > 1 {
        out.push('\n');
        out.push_str(&columns(&rows));
    }
    let mut rows = vec![vec![
        "WORKLOAD".to_owned(),
        "NAMESPACE".into(),
        "ADDRESS".into(),
        "VERSION".into(),
        "APP PID".into(),
        "SIDECAR ADMIN".into(),
        "RESTARTS".into(),
    ]];
    for i in up.instances() {
        rows.push(vec![
            i.spec.name(),
            i.spec.namespace.clone(),
            SocketAddr::from((i.address, i.spec.port)).to_string(),
            i.spec
                .labels
                .get("version")
                .cloned()
                .unwrap_or_else(|| "-".into()),
            i.app.pid().map_or_else(|| "-".into(), |p| p.to_string()),
            i.admin.to_string(),
            (i.app.restarts() + i.sidecar.restarts()).to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&columns(&rows));
    let _ = writeln!(out, "\nLogs: {}", up.logs().display());
    if let Some(url) = first_url {
        let _ = writeln!(out, "Try:  curl {url}/");
    }
    let _ = writeln!(out, "Stop: Ctrl-C (or `trellis down` when detached)");
    out
}

/// Left-aligned columns separated by two spaces (the CLI's tables all look alike).
pub fn columns(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
