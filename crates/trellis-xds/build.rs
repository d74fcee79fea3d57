//! Compiles Trellis' protobuf resources with protox (pure Rust, no `protoc` on the machine) and
//! generates the prost message types into OUT_DIR.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "trellis/mesh/v1/mesh.proto",
        "trellis/xds/v1/resources.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed=proto/{f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
