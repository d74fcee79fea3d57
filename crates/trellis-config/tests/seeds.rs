//! The seed configurations (`shared/fixtures/seed-configs`, copied to `tests/seeds/`) are what users
//! copy from guides, mistakes included. Each is analyzed on its own, as `trellis analyze FILE` would,
//! and the exact diagnostics are compared with `tests/seeds/<file>.expected` (reviewed by hand; to
//! regenerate after an intended change run with `TRELLIS_BLESS=1` and review the diff).

use std::path::{Path, PathBuf};
use trellis_config::{LoadOptions, analyze, load_str};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seeds")
}

fn seed_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seeds_dir())
        .expect("tests/seeds")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn render(file: &Path) -> String {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let text = std::fs::read_to_string(file).expect("seed is UTF-8");
    let loaded = load_str(name, &text, &LoadOptions::default());
    let mut out = String::new();
    for d in analyze::analyze(&loaded) {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

#[test]
fn every_seed_has_exactly_the_expected_diagnostics() {
    let bless = std::env::var_os("TRELLIS_BLESS").is_some();
    let mut failures = Vec::new();
    let files = seed_files();
    assert!(
        files.len() >= 56,
        "expected all seed files, found {}",
        files.len()
    );
    for f in &files {
        let got = render(f);
        let expected_path = f.with_extension("yaml.expected");
        if bless {
            std::fs::write(&expected_path, &got).expect("write expected");
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "== {}\n-- expected\n{want}-- got\n{got}",
                f.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} seeds differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The copy in this repository must match the shared fixtures when they are present, so new or
/// changed seeds are noticed.
#[test]
fn seed_copies_match_the_shared_fixtures() {
    let shared =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/seed-configs");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        eprintln!("{} not present; nothing to compare", shared.display());
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let ours = seeds_dir().join(&name);
        let theirs = std::fs::read(e.path()).expect("read shared seed");
        let mine = std::fs::read(&ours).unwrap_or_default();
        assert!(
            mine == theirs,
            "tests/seeds/{} differs from the shared fixture; copy it and bless",
            name.to_string_lossy()
        );
    }
}
