//! The fnaa host: configuration, the operator commands of the `fnaa` binary
//! and the glue that starts every part of the host. The parts live in their
//! own crates: `fnaa-runtime` (wasm plugins), `fnaa-dataplane` (brokers and
//! pipelines), `fnaa-control` (FNAP, gRPC, state) and `fnaa-fns` (DNS).

pub mod backends;
pub mod cmd;
pub mod config;
pub mod config_example;
pub mod first_start;
pub mod flow_cli;
pub mod ingest;
pub mod telemetry;
