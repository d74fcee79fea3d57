//! `examples/mistakes/<CODE>-*.yaml` holds one small example per diagnostic code. These tests prove
//! that each example really produces its code, that every code has an example, and that the code
//! reference in `docs/analyzer.md` is exactly what the analyzer prints for those examples
//! (regenerate with `TRELLIS_BLESS=1 cargo test -p trellis-config --test mistakes`).

use std::path::{Path, PathBuf};
use trellis_config::{Code, LoadOptions, analyze, load_str};

const BEGIN: &str = "<!-- BEGIN GENERATED: codes (tests/mistakes.rs) -->";
const END: &str = "<!-- END GENERATED: codes -->";

/// Codes that need something other than a file to happen.
const NO_EXAMPLE: &[(Code, &str)] = &[(
    Code::ReadFailed,
    "a file that cannot be read (permissions, I/O error) is reported with this code",
)];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples() -> Vec<(Code, PathBuf)> {
    let mut out: Vec<(Code, PathBuf)> = std::fs::read_dir(root().join("examples/mistakes"))
        .expect("examples/mistakes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            let code = Code::ALL
                .iter()
                .copied()
                .find(|c| name.starts_with(c.as_str()))?;
            Some((code, p))
        })
        .collect();
    out.sort();
    out
}

fn analyze_file(p: &Path) -> Vec<trellis_config::Diagnostic> {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let text = std::fs::read_to_string(p).expect("example is UTF-8");
    analyze::analyze(&load_str(name, &text, &LoadOptions::default()))
}

#[test]
fn every_example_produces_its_code_and_every_code_has_an_example() {
    let ex = examples();
    for code in Code::ALL {
        let has = ex.iter().any(|(c, _)| c == code) || NO_EXAMPLE.iter().any(|(c, _)| c == code);
        assert!(has, "no example in examples/mistakes for {code}");
    }
    for (code, path) in &ex {
        let diags = analyze_file(path);
        assert!(
            diags.iter().any(|d| d.code == *code),
            "{} does not produce {code}: {:#?}",
            path.display(),
            diags.iter().map(|d| d.to_string()).collect::<Vec<_>>()
        );
    }
}

fn generated_reference() -> String {
    let ex = examples();
    let mut out = String::new();
    out.push_str("| code | severity | meaning |\n|---|---|---|\n");
    for code in Code::ALL {
        out.push_str(&format!(
            "| [{code}](#{}) | {} | {} |\n",
            code.as_str().to_lowercase(),
            code.default_severity(),
            code.title()
        ));
    }
    for code in Code::ALL {
        out.push_str(&format!(
            "\n### {code}\n\n**{}** — {}.\n\n",
            code.default_severity(),
            code.title()
        ));
        if let Some((_, why)) = NO_EXAMPLE.iter().find(|(c, _)| c == code) {
            out.push_str(&format!("No example file: {why}.\n"));
            continue;
        }
        for (_, path) in ex.iter().filter(|(c, _)| c == code) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let text = std::fs::read_to_string(path).expect("read example");
            out.push_str(&format!(
                "`examples/mistakes/{name}`:\n\n```yaml\n{}```\n\n",
                text
            ));
            out.push_str("`trellis analyze` prints:\n\n```\n");
            for d in analyze_file(path) {
                out.push_str(&d.to_string());
                out.push('\n');
            }
            out.push_str("```\n");
        }
    }
    out
}

#[test]
fn docs_analyzer_md_matches_the_examples() {
    let path = root().join("docs/analyzer.md");
    let doc = std::fs::read_to_string(&path).expect("docs/analyzer.md");
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/analyzer.md lacks the generated-section markers");
    };
    let current = &doc[b + BEGIN.len()..e];
    let want = format!("\n{}\n", generated_reference());
    if std::env::var_os("TRELLIS_BLESS").is_some() {
        let updated = format!("{}{BEGIN}{want}{}", &doc[..b], &doc[e..]);
        std::fs::write(&path, updated).expect("write docs");
        return;
    }
    assert!(
        current == want,
        "docs/analyzer.md is out of date; run with TRELLIS_BLESS=1 and review the diff"
    );
}
