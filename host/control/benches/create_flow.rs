//! CREATE FLOW per second with 1,000 concurrent authenticated FNAP
//! sessions against a server on loopback, with the redb store on disk
//! (durable commits) and in-memory provisioning.
//!
//! Run: `cargo bench -p fnaa-control --bench create_flow`
//! (`FNAA_BENCH_SESSIONS`, `FNAA_BENCH_PER_SESSION`, `FNAA_BENCH_ROUNDS`
//! change the load). Prints each round and the median.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fnaa_control::client::Client;
use fnaa_control::config::ControlConfig;
use fnaa_control::names::DnsName;
use fnaa_control::provision::memory::{MemoryDirectory, MemoryPipelines, MemoryProvisioner};
use fnaa_control::service::{Backends, Principal};
use fnaa_control::store::RedbStore;
use fnaa_control::{CancellationToken, ControlPlane};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: do
    // a tiny run then, so that the target stays compiled and working.
    let quick = !std::env::args().any(|a| a == "--bench");
    let sessions = if quick {
        10
    } else {
        env("FNAA_BENCH_SESSIONS", 1000)
    };
    let per_session = if quick {
        2
    } else {
        env("FNAA_BENCH_PER_SESSION", 20)
    };
    let rounds = if quick {
        1
    } else {
        env("FNAA_BENCH_ROUNDS", 5)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(sessions, per_session, rounds));
}

async fn run(sessions: usize, per_session: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ControlConfig::default();
    config.fnap.listen = Some("127.0.0.1:0".parse().unwrap());
    config.fnap.max_connections = sessions + 16;
    config.fnap.hostname = "bench.example".into();
    config.grpc.listen = None;
    config.store.path = dir.path().join("state.redb");
    let backends = Backends {
        provisioner: Arc::new(MemoryProvisioner::new(
            "kafka",
            &["kafka.bench.example:9092"],
        )),
        directory: Arc::new(MemoryDirectory::default()),
        pipelines: Arc::new(MemoryPipelines::default()),
        peers: Arc::new(fnaa_control::provision::memory_peers::MemoryPeers::default()),
    };
    let store = Arc::new(RedbStore::open(&config.store.path).unwrap());
    let plane = ControlPlane::start_with_store(&config, store, backends, None)
        .await
        .unwrap();
    let service = plane.service().clone();
    service
        .add_user(&Principal::Operator, "bench", "bench-password")
        .await
        .unwrap();
    let namespace = DnsName::parse("flows.bench.example").unwrap();
    service
        .create_namespace(&Principal::Operator, &namespace, Some("bench"))
        .await
        .unwrap();
    let address = plane.fnap_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(plane.run(shutdown.clone()));

    // Logins are not what is measured: do them 64 at a time so that the
    // argon2 checks do not starve each other's timeouts.
    let login_started = Instant::now();
    let login_slots = Arc::new(tokio::sync::Semaphore::new(64));
    let mut logins = Vec::new();
    for _ in 0..sessions {
        let login_slots = Arc::clone(&login_slots);
        logins.push(tokio::spawn(async move {
            let _slot = login_slots.acquire().await.unwrap();
            let mut client = Client::connect(address, Duration::from_secs(120), None)
                .await
                .unwrap();
            client
                .authenticate_plain("bench", "bench-password")
                .await
                .unwrap();
            client
        }));
    }
    let mut clients = Vec::new();
    for login in logins {
        clients.push(login.await.unwrap());
    }
    println!(
        "{sessions} sessions authenticated in {:.1} s",
        login_started.elapsed().as_secs_f64()
    );

    let mut rates = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (index, mut client) in clients.drain(..).enumerate() {
            tasks.push(tokio::spawn(async move {
                for n in 0..per_session {
                    let flow = format!("r{round}-s{index}-n{n}.flows.bench.example");
                    client.create_flow(&flow, false).await.unwrap();
                }
                client
            }));
        }
        for task in tasks {
            clients.push(task.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let rate = (sessions * per_session) as f64 / elapsed;
        println!(
            "round {round}: {} CREATE FLOW in {elapsed:.2} s = {rate:.0}/s",
            sessions * per_session
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "median: {:.0} CREATE FLOW/s with {sessions} concurrent sessions ({} per round)",
        rates[rates.len() / 2],
        sessions * per_session
    );
    for client in clients {
        let _ = client.quit().await;
    }
    shutdown.cancel();
    let _ = server.await;
}
