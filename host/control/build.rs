//! Compiles the gRPC admin API (`proto/fnaa_control.proto`) with protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/fnaa_control.proto");
    tonic_prost_build::configure().compile_protos(&["proto/fnaa_control.proto"], &["proto"])?;
    Ok(())
}
