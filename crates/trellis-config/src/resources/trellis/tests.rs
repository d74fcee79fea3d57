//! LocalWorkload: loading (both `env` forms, unknown fields with positions) and validation.

use super::*;
use crate::diag::{Code, Diagnostic, Severity};
use crate::load::{LoadOptions, load_str};
use crate::resources::Spec;

fn load(spec: &str) -> (Option<LocalWorkload>, Vec<Diagnostic>) {
    let text = format!(
        "apiVersion: trellis.dev/v1alpha1\nkind: LocalWorkload\nmetadata: {{name: orders-v1, namespace: shop}}\nspec:\n{spec}"
    );
    let loaded = load_str("w.yaml", &text, &LoadOptions::default());
    let w = loaded.resources.into_iter().find_map(|r| match r.spec {
        Spec::LocalWorkload(w) => Some(*w),
        _ => None,
    });
    (w, loaded.diagnostics)
}

/// (line, column, message) of every error.
fn errors(d: &[Diagnostic]) -> Vec<(u32, u32, String)> {
    d.iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.line, d.column, d.message.clone()))
        .collect()
}

fn has_error(d: &[Diagnostic], line: u32, fragment: &str) -> bool {
    errors(d)
        .iter()
        .any(|(l, _, m)| *l == line && m.contains(fragment))
}

const MINIMAL: &str = "  command: trellis\n  port: 8080\n";

#[test]
fn the_documented_example_loads() {
    let (w, d) = load(
        r#"  serviceAccount: orders
  labels: {app: orders, version: v1}
  command: trellis
  args: [demo, --service, orders]
  env: {LOG: debug}
  port: 8080
  replicas: 2
  workingDir: ./
"#,
    );
    assert!(d.is_empty(), "{d:#?}");
    let w = w.expect("loaded");
    assert_eq!(w.service_account(), "orders");
    assert_eq!(w.labels.get("version").map(String::as_str), Some("v1"));
    assert_eq!((w.command.as_str(), w.args.len()), ("trellis", 3));
    assert_eq!(w.env.vars().get("LOG").copied(), Some("debug"));
    assert_eq!((w.port(), w.replicas()), (Some(8080), 2));
    assert_eq!(w.working_dir.as_deref(), Some("./"));
}

#[test]
fn defaults() {
    let (w, d) = load(MINIMAL);
    assert!(d.is_empty(), "{d:#?}");
    let w = w.expect("loaded");
    assert_eq!(w.service_account(), "default");
    assert_eq!(w.replicas(), 1);
    assert!(w.labels.is_empty() && w.args.is_empty() && w.env.vars().is_empty());
    assert_eq!(w.working_dir, None);
    let (w, d) = load("  command: x\n  port: 1\n  replicas: 0\n  env: ~\n");
    assert!(d.is_empty(), "{d:#?}");
    assert_eq!(
        w.map(|w| w.replicas()),
        Some(0),
        "0 defines without starting"
    );
}

#[test]
fn env_list_form_later_entries_win() {
    let (w, d) = load(&format!(
        "{MINIMAL}  env:\n  - {{name: LOG, value: info}}\n  - name: MODE\n    value: fast\n  - {{name: LOG, value: debug}}\n  - {{name: EMPTY}}\n"
    ));
    assert!(d.is_empty(), "{d:#?}");
    let w = w.expect("loaded");
    assert!(matches!(w.env, Env::List(ref l) if l.len() == 4));
    let vars = w.env.vars();
    assert_eq!(vars.get("LOG").copied(), Some("debug"));
    assert_eq!(vars.get("MODE").copied(), Some("fast"));
    assert_eq!(vars.get("EMPTY").copied(), Some(""));
}

#[test]
fn unknown_fields_are_errors_with_positions() {
    let (_, d) = load(&format!(
        "{MINIMAL}  replica: 2\n  env:\n  - {{name: A, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}\n"
    ));
    let unknown: Vec<(u32, u32)> = d
        .iter()
        .filter(|d| d.code == Code::UnknownField)
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(unknown, [(7, 3), (9, 15)], "{d:#?}");
    let (_, d) = load("  command: x\n  port: 1\n  env: just-a-string\n");
    assert!(has_error(&d, 7, "invalid type"), "{d:#?}");
}

#[test]
fn validation_rules() {
    let (_, d) = load("  labels: {app: orders}\n");
    assert!(has_error(&d, 5, "`spec.command`"), "{d:#?}");
    assert!(has_error(&d, 5, "`spec.port`"), "{d:#?}");
    let (_, d) = load("  command: '  '\n  port: 0\n  replicas: 65\n");
    assert!(has_error(&d, 5, "`spec.command`"), "{d:#?}");
    assert!(has_error(&d, 6, "port 0 is out of range"), "{d:#?}");
    assert!(
        has_error(&d, 7, "replicas must be 0 to 64, got 65"),
        "{d:#?}"
    );
    let (_, d) = load("  command: x\n  port: 70000\n  replicas: -1\n");
    assert!(has_error(&d, 6, "port 70000"), "{d:#?}");
    assert!(has_error(&d, 7, "got -1"), "{d:#?}");
    let (_, d) = load(
        "  command: x\n  port: 80\n  serviceAccount: Orders_SA\n  labels:\n    Example.com/app: x\n    'bad key': y\n    version: 'v1 beta'\n    ok: ''\n",
    );
    assert!(has_error(&d, 7, "service account \"Orders_SA\""), "{d:#?}");
    assert!(
        has_error(&d, 9, "invalid label key \"Example.com/app\""),
        "{d:#?}"
    );
    assert!(has_error(&d, 10, "invalid label key \"bad key\""), "{d:#?}");
    assert!(has_error(&d, 11, "invalid value \"v1 beta\""), "{d:#?}");
    assert_eq!(errors(&d).len(), 4, "an empty label value is valid: {d:#?}");
    let (_, d) = load("  command: x\n  port: 80\n  env:\n  - {value: x}\n  - {name: 'A=B'}\n");
    assert!(has_error(&d, 8, "`spec.env[0].name`"), "{d:#?}");
    assert!(has_error(&d, 9, "\"A=B\""), "{d:#?}");
    let (_, d) = load("  command: x\n  port: 80\n  env: {'': x, 'B=C': y}\n");
    assert!(has_error(&d, 7, "name \"\""), "{d:#?}");
    assert!(has_error(&d, 7, "\"B=C\""), "{d:#?}");
}
