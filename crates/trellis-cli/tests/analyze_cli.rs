//! `trellis analyze` as users run it: the real binary, real files, exit statuses and both output
//! formats.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn trellis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run trellis")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_bundled_example_is_clean() {
    let o = trellis(&["analyze", "examples/shop"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "");
    assert!(String::from_utf8_lossy(&o.stderr).contains("No validation issues found"));
}

#[test]
fn errors_exit_1_with_file_line_and_code() {
    let o = trellis(&[
        "analyze",
        "examples/mistakes/IST0101-referenced-host-not-found.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "Error [IST0101] (VirtualService default/reviews) examples/mistakes/IST0101-referenced-host-not-found.yaml:24:44 Referenced host+subset not found: \"reviews+v3\"\n"
    );
}

#[test]
fn warnings_alone_exit_0() {
    let o = trellis(&["analyze", "examples/mistakes/TRL1003-deprecated-field.yaml"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("Warning [TRL1003]"));
    let o = trellis(&[
        "analyze",
        "--output-threshold",
        "error",
        "examples/mistakes/TRL1003-deprecated-field.yaml",
    ]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), ""));
}

#[test]
fn json_output_has_every_field() {
    let o = trellis(&[
        "analyze",
        "-o",
        "json",
        "examples/mistakes/TRL1001-unknown-field.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let items = v.as_array().expect("array");
    assert!(!items.is_empty());
    let first = &items[0];
    for key in [
        "severity",
        "code",
        "kind",
        "namespace",
        "name",
        "file",
        "line",
        "column",
        "message",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["severity"], "error");
    assert_eq!(first["code"], "TRL1001");
    assert_eq!(first["line"], 16);
    let o = trellis(&["analyze", "-o", "json", "examples/shop"]);
    assert_eq!(stdout(&o).trim(), "[]");
}

#[test]
fn could_not_run_exits_2() {
    let o = trellis(&["analyze", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such file or directory"));
    assert_eq!(
        trellis(&["analyze", "--output", "xml", "examples/shop"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(trellis(&["analyze"]).status.code(), Some(2));
}

#[test]
fn standard_input_is_read() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["analyze", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec: {host: x, trafficPolicy: {loadBalancer: {simple: FASTEST}}}\n")
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("<stdin>:4:") && out.contains("FASTEST"),
        "{out}"
    );
}

#[test]
fn codes_version_and_help() {
    let o = trellis(&["analyze", "--list-codes"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for code in [
        "IST0101", "IST0106", "IST0131", "TRL0001", "TRL1001", "TRL2005",
    ] {
        assert!(out.contains(code), "{code} missing from --list-codes");
    }
    let o = trellis(&["version"]);
    assert_eq!(
        stdout(&o),
        format!("trellis {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = trellis(&["--help"]);
    assert!(stdout(&o).contains("analyze"));
}

#[test]
fn the_seed_directory_finds_the_known_mistakes() {
    let o = trellis(&["analyze", "crates/trellis-config/tests/seeds"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for needle in [
        "unknown field `retries` in `spec`; it belongs in each rule under `spec.http[]`",
        "unknown field `retryBudget` in `spec.routes[0]`",
        "rule spec.http[2] has no route, redirect, directResponse or delegate",
        "duplicate key `spec`",
        // Together, the seeds' five VirtualServices for hello-service conflict.
        "(VirtualService default/hello-service-ab-test) crates/trellis-config/tests/seeds/000-05.yaml:7:5 host hello-service.default.svc.cluster.local is already routed by VirtualService default/hello-service",
    ] {
        assert!(
            out.contains(needle),
            "analyzing all seeds together lacks: {needle}"
        );
    }
    // 000-20's ServerAuthorization refers to 000-19's Server: together, the reference resolves.
    assert!(!out.contains("Server backend-server not found"));
}
