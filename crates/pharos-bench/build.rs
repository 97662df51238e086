//! Generates the etcd v3 client (KV and Watch) from the vendored protos in
//! `proto/third_party` with protox, so the benchmark needs no `protoc` and no
//! etcd client crate with its own build requirements.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let third_party = manifest_dir.join("../../proto/third_party");
    println!(
        "cargo:rerun-if-changed={}",
        third_party.join("etcd").display()
    );
    let descriptors = protox::compile(["etcd/api/etcdserverpb/rpc.proto"], [&third_party])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
