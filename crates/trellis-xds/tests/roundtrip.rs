//! Meshes compiled from real configurations (the examples and the analyzer's seed
//! configurations) survive model -> protobuf -> bytes -> protobuf -> model unchanged, piece by
//! piece as the xDS resources carry them.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use prost::Message;
use trellis_config::{LoadOptions, analyze, load_paths, snapshot};
use trellis_model::Mesh;
use trellis_xds::convert::DecodeError;
use trellis_xds::pb::mesh as pb;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Encodes `value` to bytes and back, and checks nothing changed.
fn round_trip<M, P>(value: &M, what: &str)
where
    M: PartialEq + Debug + TryFrom<P, Error = DecodeError>,
    P: Message + Default + for<'a> From<&'a M>,
{
    let bytes = P::from(value).encode_to_vec();
    let decoded = P::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = M::try_from(decoded).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(&back, value, "{what} changed on the way");
}

/// How much of a mesh went through, so the test can tell it checked something.
#[derive(Debug, Default)]
struct Seen {
    services: usize,
    endpoints: usize,
    http_routes: usize,
    gateways: usize,
    workloads: usize,
    security_policies: usize,
    telemetry: usize,
}

fn round_trip_mesh(mesh: &Mesh, source: &str, seen: &mut Seen) {
    for s in &mesh.services {
        round_trip::<_, pb::Service>(s, &format!("{source}: service {}", s.host));
        for (i, e) in s.endpoints.iter().enumerate() {
            round_trip::<_, pb::Endpoint>(e, &format!("{source}: {} endpoint {i}", s.host));
        }
        seen.services += 1;
        seen.endpoints += s.endpoints.len();
        seen.http_routes += s.http_routes.len();
    }
    for g in &mesh.gateways {
        round_trip::<_, pb::Gateway>(g, &format!("{source}: gateway {}", g.name));
        seen.gateways += 1;
        seen.http_routes += g
            .virtual_hosts
            .iter()
            .map(|vh| vh.http_routes.len())
            .sum::<usize>();
    }
    for w in &mesh.workloads {
        round_trip::<_, pb::Workload>(w, &format!("{source}: workload {}", w.name));
        seen.workloads += 1;
    }
    round_trip::<_, pb::SecurityPolicies>(&mesh.security, &format!("{source}: security"));
    let sec = &mesh.security;
    seen.security_policies +=
        sec.peer_authentication.len() + sec.authorization.len() + sec.request_authentication.len();
    for (i, t) in mesh.telemetry.iter().enumerate() {
        round_trip::<_, pb::TelemetryPolicy>(t, &format!("{source}: telemetry {i}"));
        seen.telemetry += 1;
    }
}

/// The mesh of a configuration that may contain mistakes: the analyzer compiles what it can,
/// as `trellis analyze` does, where a snapshot would refuse the whole file.
fn compile_anyway(file: &Path) -> Mesh {
    let loaded = load_paths(&[file.to_path_buf()], &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    analyze::analyze_and_compile(&loaded).1.mesh
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn examples_round_trip() {
    let mut seen = Seen::default();
    for example in ["shop", "proxy-demo"] {
        let dir = repo().join("examples").join(example);
        let snap = snapshot::snapshot(&[dir], &LoadOptions::default())
            .unwrap_or_else(|e| panic!("examples/{example}: {e}"));
        round_trip_mesh(&snap.mesh, example, &mut seen);
    }
    // Guards against a loader change that compiles the examples into (nearly) empty meshes,
    // which would make this test pass without checking anything.
    assert!(
        seen.services > 0
            && seen.endpoints > 0
            && seen.http_routes > 0
            && seen.gateways > 0
            && seen.workloads > 0
            && seen.security_policies > 0,
        "the examples compiled to too little: {seen:?}"
    );
}

#[test]
fn seed_configurations_round_trip() {
    let seeds = yaml_files(&repo().join("crates/trellis-config/tests/seeds"));
    assert!(
        seeds.len() >= 56,
        "expected the seed files, found {}",
        seeds.len()
    );
    let mut seen = Seen::default();
    for file in &seeds {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        round_trip_mesh(&compile_anyway(file), &name.unwrap_or_default(), &mut seen);
    }
    // Most seeds are single mistakes, so each mesh is small; together they still reach every
    // top-level type.
    assert!(
        seen.services > 5
            && seen.http_routes > 0
            && seen.gateways > 0
            && seen.telemetry > 0
            && seen.workloads > 0
            && seen.security_policies > 0,
        "seeds compiled to too little: {seen:?}"
    );
}

#[test]
fn mistake_examples_round_trip() {
    let mut seen = Seen::default();
    for file in yaml_files(&repo().join("examples/mistakes")) {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        round_trip_mesh(&compile_anyway(&file), &name.unwrap_or_default(), &mut seen);
    }
    assert!(seen.services > 0, "{seen:?}");
}
