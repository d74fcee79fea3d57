//! Compiles Trellis' protobuf resources with protox (pure Rust, no `protoc` on the machine) and
//! generates the prost message types into OUT_DIR.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "trellis/mesh/v1/common.proto",
        "trellis/mesh/v1/filters.proto",
        "trellis/mesh/v1/routes.proto",
        "trellis/mesh/v1/policy.proto",
        "trellis/mesh/v1/gateway.proto",
        "trellis/mesh/v1/security.proto",
        "trellis/mesh/v1/telemetry.proto",
        "trellis/mesh/v1/mesh.proto",
        "trellis/xds/v1/resources.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed=proto/{f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        // Maps as BTreeMap: the model's maps are BTreeMaps, and prost writes map entries in
        // iteration order, so the same model always encodes to the same bytes (HashMap order
        // varies per process), which keeps resource hashes and versions stable.
        .btree_map(["."])
        .compile_fds(fds)?;
    Ok(())
}
