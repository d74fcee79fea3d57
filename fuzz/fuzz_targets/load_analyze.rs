//! Fuzz the whole path untrusted configuration takes: bytes -> YAML -> resources -> analysis.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run load_analyze` (see docs/analyzer.md). The corpus in
//! `fuzz/corpus/load_analyze` also runs as an ordinary test (`crates/trellis-config/tests/fuzz_corpus.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = trellis_config::check_untrusted(data);
});
