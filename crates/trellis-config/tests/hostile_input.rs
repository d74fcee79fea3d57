//! Bad input gets a clear diagnostic, never a panic or a hang, and never hides the good input
//! around it. Limits are documented in docs/analyzer.md.

use proptest::prelude::*;
use trellis_config::{Code, LoadOptions, load_bytes, load_paths, load_str};

fn service(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\nspec:\n  ports:\n  - port: 80\n    name: http\n"
    )
}

#[test]
fn a_thousand_documents_with_one_syntax_error_lose_only_that_one() {
    let mut docs: Vec<String> = (0..1000).map(service).collect();
    docs[500] = "apiVersion: v1\nkind: Service\nmetadata: {name: broken\n".into();
    let text = docs.join("---\n");
    let loaded = load_str("many.yaml", &text, &LoadOptions::default());
    assert_eq!(loaded.resources.len(), 999);
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::YamlSyntax)
        .collect();
    assert_eq!(errors.len(), 1, "{:?}", loaded.diagnostics);
    // Document 500 starts after 500 documents of 8 lines and 500 separators.
    let first_line = 500 * 9 + 1;
    assert!(
        errors[0].line >= first_line && errors[0].line <= first_line + 3,
        "line {}",
        errors[0].line
    );
}

#[test]
fn a_thousand_documents_with_one_schema_error_lose_only_that_one() {
    let mut docs: Vec<String> = (0..1000).map(service).collect();
    docs[10] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: eighty\n".into();
    let loaded = load_str("many.yaml", &docs.join("---\n"), &LoadOptions::default());
    assert_eq!(loaded.resources.len(), 999);
    let bad: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::SchemaValidation)
        .collect();
    assert_eq!(bad.len(), 1, "{:?}", loaded.diagnostics);
    assert_eq!((bad[0].name.as_str(), bad[0].line), ("bad", 10 * 9 + 7));
}

#[test]
fn invalid_utf8_is_reported_with_its_position() {
    let loaded = load_bytes(
        "bin.yaml",
        b"apiVersion: v1\nkind: Service\nmetadata:\n  name: \xff\n",
        &LoadOptions::default(),
    );
    assert!(loaded.resources.is_empty());
    let d = &loaded.diagnostics[0];
    assert_eq!((d.code, d.line, d.column), (Code::YamlSyntax, 4, 9));
    assert!(d.message.contains("UTF-8"));
}

#[test]
fn alias_bombs_are_refused() {
    let mut t = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..15 {
        t.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    let loaded = load_str("bomb.yaml", &t, &LoadOptions::default());
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.code == Code::InputLimit),
        "{:?}",
        loaded.diagnostics
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for text in [
        "[".repeat(100_000),
        "- ".repeat(100_000),
        "{a: ".repeat(100_000),
    ] {
        let loaded = load_str("deep.yaml", &text, &LoadOptions::default());
        assert!(!loaded.diagnostics.is_empty());
    }
}

#[test]
fn files_over_the_size_limit_are_reported_not_read() {
    let dir = std::env::temp_dir().join(format!("trellis-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("huge.yaml");
    let f = std::fs::File::create(&path).expect("create");
    // Sparse: costs no disk, but its length is over the limit.
    f.set_len(trellis_config::load::MAX_FILE_BYTES + 1)
        .expect("set_len");
    let loaded = load_paths(std::slice::from_ref(&dir), &LoadOptions::default()).expect("load");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].code, Code::InputLimit);
}

#[test]
fn a_large_valid_file_loads_completely() {
    let text: String = (0..20_000).map(service).collect::<Vec<_>>().join("---\n");
    let loaded = load_str("big.yaml", &text, &LoadOptions::default());
    assert_eq!(loaded.resources.len(), 20_000);
}

#[test]
fn missing_paths_are_an_error_not_a_diagnostic() {
    let r = load_paths(&["/nonexistent/trellis".into()], &LoadOptions::default());
    assert!(r.is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = trellis_config::check_untrusted(&bytes);
    }

    #[test]
    fn random_yaml_like_text_never_panics(s in "[a-z:\\- \\[\\]{}&*!|>'\"#\n0-9.~<]{0,400}") {
        let _ = trellis_config::check_untrusted(s.as_bytes());
    }
}
