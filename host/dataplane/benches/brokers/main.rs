//! Data-plane benchmarks, side by side in one run on this machine:
//!
//! 1. MQTT -> MQTT: a pipeline with the wasm `mqtt` connector and the wasm
//!    `bridge` processor vs Mosquitto's own bridge (`connection`/`topic`);
//! 2. AMQP -> AMQP: a pipeline with the wasm `amqp` connector vs RabbitMQ's
//!    shovel plugin (`ack-mode = on-confirm`, the same guarantee);
//! 3. Kafka -> Kafka (tansu): a pipeline with the wasm `kafka` connector vs
//!    a `kcat -C | kcat -P` pipe;
//! 4. the latency the wasm stage adds: decode + bridge + encode per batch,
//!    wasm vs the same binding code compiled natively, and the end-to-end
//!    latency of single events through an MQTT pipeline, wasm vs native.
//!
//! Every pipeline runs `at-least-once` (the default): a message is
//! acknowledged at its source only after the sink broker confirmed it.
//!
//! Rates are steady rates at the counting consumer: from the arrival that
//! brings the count past a quarter of the events to the last arrival (so
//! neither side's start-up nor a pipeline's first whole batch counts); the
//! time column is the time all the events take at that rate.
//!
//! ```text
//! cargo bench -p fnaa-dataplane --bench brokers              # 20 000 events, 3 rounds
//! cargo bench -p fnaa-dataplane --bench brokers -- 50000 5   # events per run, rounds
//! ```
//!
//! Environment: `BENCH_ONLY=mqtt|amqp|kafka|latency` runs one part;
//! `BENCH_VERBOSE=1` prints the pipelines' counters, the arrival timeline
//! and (MQTT) the CPU time of each broker and of this process;
//! `BENCH_MQTT_BATCH` (2000), `BENCH_KAFKA_BATCH` (2000),
//! `BENCH_KAFKA_LINGER_MS` (2) set the pipelines' batches;
//! `BENCH_KAFKA_SINK_MODE` (`structured`) is the Kafka pipeline's output
//! mode;
//! `BENCH_MQTT_PRODUCER_CHUNK` (1000) is how many events the MQTT
//! producer publishes before it waits for their PUBACKs;
//! `BENCH_KAFKA_SCALE` (5) multiplies the events of the Kafka part;
//! `BENCH_KAFKA_FETCH_WAIT_MS` (10) is every Kafka consumer's
//! `fetch.wait.max.ms`.
//!
//! Needs mosquitto, RabbitMQ on 127.0.0.1:5672 with `rabbitmq_shovel`
//! enabled, tansu, kcat (see `tests/common`).
//!
//! One file per part: [`mqtt`], [`amqp`], [`kafka`], [`latency`] (the wasm
//! stage and single events); [`harness`] has what they share (events,
//! the counting consumer, reports) on top of the pipeline harness of the
//! tests (`tests/common/pipeline.rs`: brokers, pipelines from TOML,
//! producers of numbered events, tallies of what came back).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

mod amqp;
mod harness;
mod kafka;
mod latency;
mod mqtt;

use std::time::Instant;

use harness::Row;

fn medians(rows: &[Row]) -> Vec<Row> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.bench.clone(), r.variant.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(bench, variant)| {
            let mut secs: Vec<f64> = rows
                .iter()
                .filter(|r| r.bench == bench && r.variant == variant)
                .map(|r| r.seconds)
                .collect();
            secs.sort_by(f64::total_cmp);
            let events = rows
                .iter()
                .find(|r| r.bench == bench)
                .map_or(0, |r| r.events);
            let all = secs
                .iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(" · ");
            Row {
                bench,
                variant: format!("{variant} ({all} s)"),
                events,
                seconds: secs[secs.len() / 2],
                p50_ms: None,
                p99_ms: None,
            }
        })
        .collect()
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| bench | variant (rounds) | events | median time (s) | events/s | ratio vs peer |\n|---|---|---:|---:|---:|---:|\n",
    );
    for pair in rows.chunks(2) {
        let ratio = if pair.len() == 2 {
            pair[0].rate() / pair[1].rate()
        } else {
            f64::NAN
        };
        for (i, r) in pair.iter().enumerate() {
            s.push_str(&format!(
                "| {} | {} | {} | {:.2} | {:.0} | {} |\n",
                r.bench,
                r.variant.replace('|', "\\|"),
                r.events,
                r.seconds,
                r.rate(),
                if i == 0 {
                    format!("**{ratio:.2}x**")
                } else {
                    "1.00x".into()
                }
            ));
        }
    }
    s
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let n = numbers.next().unwrap_or(20_000);
    let rounds = numbers.next().unwrap_or(3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        if only.is_empty() || only == "mqtt" {
            all.extend(rt.block_on(mqtt::mqtt(n)));
        }
        if only.is_empty() || only == "amqp" {
            all.extend(rt.block_on(amqp::amqp(n)));
        }
        if only.is_empty() || only == "kafka" {
            all.extend(rt.block_on(kafka::kafka(n)));
        }
    }
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only == "latency" {
        for r in rt.block_on(latency::latency(1000)) {
            println!(
                "| {} | {} | {:.2} | {:.2} |",
                r.variant,
                r.events,
                r.p50_ms.unwrap_or(f64::NAN),
                r.p99_ms.unwrap_or(f64::NAN)
            );
        }
        return;
    }
    if !only.is_empty() {
        println!("{}", table(&medians(&all)));
        return;
    }
    let throughput = medians(&all);
    let stage_rows = latency::stage(&[1, 10, 100, 500]);
    let latency_rows = rt.block_on(latency::latency(1000));

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "\n<!-- generated by `cargo bench -p fnaa-dataplane --bench brokers -- {n} {rounds}` in {:.0} s -->",
        started.elapsed().as_secs_f64()
    );
    println!(
        "Machine: {cpu}, {cores} cores (brokers, producers, consumers and the host all share them).\n"
    );
    println!(
        "### Throughput, side by side ({n} events of ~300 bytes, at-least-once, median of {rounds} interleaved rounds)\n"
    );
    println!("{}", table(&throughput));
    println!(
        "### Latency of the wasm stage (decode -> bridge -> encode, MQTT binding, per batch, µs)\n"
    );
    println!(
        "| batch | native p50 | wasm p50 | native p99 | wasm p99 | added p50 per event | added p99 per event |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    for l in &stage_rows {
        println!("{l}");
    }
    println!(
        "\n### End-to-end latency of single events, MQTT -> MQTT pipeline (one event every 5 ms)\n"
    );
    println!("| variant | events | p50 (ms) | p99 (ms) |\n|---|---:|---:|---:|");
    for r in &latency_rows {
        println!(
            "| {} | {} | {:.2} | {:.2} |",
            r.variant,
            r.events,
            r.p50_ms.unwrap_or(f64::NAN),
            r.p99_ms.unwrap_or(f64::NAN)
        );
    }
}
