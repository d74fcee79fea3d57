//! Links the release `trellis` binary with its functions in a measured order (see
//! `scripts/gen-link-order.sh` and docs/performance.md, "Code layout"): the functions a
//! proxy runs at startup and per request come first, packed together, so an idle sidecar
//! maps a few MiB of code instead of most of the binary, and the request path shares fewer
//! pages and TLB entries.
//!
//! Only for release builds on x86_64 Linux (GNU), where rustc links with its bundled LLD,
//! which understands `--symbol-ordering-file`. `TRELLIS_LINK_ORDER=0` turns it off (e.g.
//! when linking with GNU ld, which does not). Names the file does not list, or that a
//! change renamed, keep the linker's default place: a stale file costs memory, never
//! correctness.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=TRELLIS_LINK_ORDER");
    let wanted = env::var("TRELLIS_LINK_ORDER").map_or(true, |v| v != "0");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = |key: &str, want: &str| env::var(key).is_ok_and(|v| v == want);
    let lld_by_default = target("CARGO_CFG_TARGET_OS", "linux")
        && target("CARGO_CFG_TARGET_ARCH", "x86_64")
        && target("CARGO_CFG_TARGET_ENV", "gnu");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let file = Path::new(&dir).join("link-order.txt");
    if wanted && release && lld_by_default && file.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            file.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
