//! Generates the Rust code of every `.proto` under `proto/` with protox (a
//! pure-Rust protobuf compiler, so no `protoc` is needed on the machine) and
//! writes the file descriptor set that gRPC server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let files = [
        "pharos/alert/v1/alert.proto",
        "pharos/config/v1/config.proto",
        "pharos/ingest/v1/ingest.proto",
        "pharos/query/v1/query.proto",
        "pharos/search/v1/search.proto",
        "third_party/prometheus/prompb/remote.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let descriptors = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("pharos_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::PharosCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
