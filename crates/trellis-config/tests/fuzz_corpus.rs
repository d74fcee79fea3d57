//! Every input in the fuzz corpus runs through the same entry point as the fuzz target, as an
//! ordinary test: nothing may panic, and each must finish quickly (the whole corpus, seeds and
//! hostile inputs, well under the test timeout).

use std::path::Path;

#[test]
fn fuzz_corpus_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/load_analyze");
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let bytes = std::fs::read(e.path()).expect("read corpus file");
        let _ = trellis_config::check_untrusted(&bytes);
        n += 1;
    }
    assert!(n >= 60, "corpus too small: {n} inputs");
}
