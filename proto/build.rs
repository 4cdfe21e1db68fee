//! Compiles the gRPC contract with a pure-Rust protobuf compiler, so no
//! `protoc` needs to be installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/apigw/admin.proto", "proto/apigw/config.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
