//! What every part of the benchmark uses: the wasm plugins, the events
//! (their data carries the send time), the counting consumer ([`drain`]),
//! CPU and pipeline reports, and the result rows.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fnaa_dataplane::DataPlane;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::pipeline::wasm::WasmPlugins;
use fnaa_dataplane::transport::Source;
use fnaa_event::binding::{Binding, Codec as BindingCodec};
use fnaa_event::{AttributeValue, Event};
use fnaa_runtime::{Runtime, RuntimeConfig};

use crate::common;
use crate::common::pipeline::{Tally, ev_id};

/// Environment variable `name` as a number, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn verbose() -> bool {
    std::env::var_os("BENCH_VERBOSE").is_some()
}

pub fn monitor() -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new("bench client", Duration::from_secs(60)))
}

pub fn wasm_plugins() -> Arc<WasmPlugins> {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let r = runtime.clone();
    Arc::new(WasmPlugins::new(runtime, move |name| {
        let p = fnaa_plugins::find(name).ok_or_else(|| format!("no embedded plugin `{name}`"))?;
        Ok(r.load(name, p.wasm)?)
    }))
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A Kytos-like event, ~300 bytes in structured mode; its data carries the
/// send time for latency measurements.
pub fn event(i: usize) -> Event {
    let mut e = Event::new(ev_id(i), "/kytos/topology", "kytos/topology.link_up").with_data(
        "application/json",
        format!(r#"{{"link":"{i}","status":"up","sent_us":{}}}"#, now_us()).into_bytes(),
    );
    e.subject = Some(format!("link/{i}"));
    e.time = Some("2026-11-22T10:00:00Z".into());
    e.set_extension("category", AttributeValue::String("operational".into()));
    e
}

fn sent_us(e: &Event) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(e.data.as_deref()?).ok()?;
    v["sent_us"].as_u64()
}

/// Receives until `n` distinct event ids arrived, decoding with `binding`;
/// returns the time `n` events take at the steady rate and the per-event
/// latencies (µs).
///
/// The steady rate is measured from the arrival that brings the count past
/// a quarter of `n` to the last arrival: it leaves out the start-up of
/// either side (connecting, joining a consumer group, the first fetch) and
/// the first burst (a pipeline delivers whole batches, a first-to-last
/// measurement would count its first batch as if it took no time).
pub async fn drain(
    source: &mut dyn Source,
    binding: Binding,
    n: usize,
    timeout: Duration,
    linger: Duration,
) -> (Duration, Vec<u64>) {
    let mut codec = BindingCodec::new(binding, &[]).unwrap();
    let start = Instant::now();
    let mut quarter: Option<(Instant, usize)> = None;
    let mut last = start;
    // (time since start, events seen) after every receive, for BENCH_VERBOSE.
    let mut timeline: Vec<(f64, usize)> = Vec::new();
    let mut tally = Tally::new();
    let mut latencies = Vec::with_capacity(n);
    while tally.distinct() < n && start.elapsed() < timeout {
        let Ok(batch) =
            tokio::time::timeout(Duration::from_secs(5), source.recv(2000, linger)).await
        else {
            continue;
        };
        let batch = batch.unwrap();
        let arrived = Instant::now();
        let now = now_us();
        for r in &batch {
            // A `kcat -C | kcat -P` pipe copies values only: its output has
            // no content-type header, but the value is still the JSON event.
            let decoded = codec
                .decode(&r.message, (0, 0))
                .or_else(|_| fnaa_event::from_json(&r.message.payload).map_err(|e| e.to_string()));
            if let Ok(e) = decoded {
                if let Some(t) = sent_us(&e) {
                    latencies.push(now.saturating_sub(t));
                }
                tally.add(&e.id);
            }
        }
        last = arrived;
        timeline.push(((arrived - start).as_secs_f64(), tally.distinct()));
        if quarter.is_none() && tally.distinct() >= n / 4 {
            quarter = Some((arrived, tally.distinct()));
        }
        source
            .acker()
            .ack(batch.into_iter().map(|r| r.token).collect())
            .await
            .unwrap();
    }
    let missing = tally.missing(0..n);
    assert!(
        missing.is_empty(),
        "only {} of {n} events arrived, e.g. {:?} missing",
        tally.distinct(),
        &missing[..missing.len().min(10)]
    );
    if verbose() {
        let at = |fraction: f64| {
            timeline
                .iter()
                .find(|(_, count)| *count as f64 >= fraction * n as f64)
                .map_or(f64::NAN, |(t, _)| *t)
        };
        eprintln!(
            "   arrivals (s after the consumer started): first {:.3}, 25% {:.3}, 50% {:.3}, 75% {:.3}, all {:.3}; {} duplicates",
            at(0.0),
            at(0.25),
            at(0.5),
            at(0.75),
            at(1.0),
            tally.duplicates()
        );
    }
    let steady = match quarter {
        Some((at, count)) if count < n && last > at => {
            (last - at).mul_f64(n as f64 / (n - count) as f64)
        }
        // Everything came at once: no rate to measure, say so loudly.
        _ => Duration::from_secs(1_000_000),
    };
    (steady, latencies)
}

/// [`drain`] on `consumer`, with `copier` started only once the consumer
/// consumes (so that it counts from the first copied event on, whatever
/// its own start-up takes); returns what both returned.
pub async fn drain_copied<T>(
    consumer: &mut dyn Source,
    binding: Binding,
    n: usize,
    copier: impl std::future::Future<Output = T>,
) -> ((Duration, Vec<u64>), T) {
    let ready = consumer.ready();
    let copy = async move {
        ready.await;
        copier.await
    };
    tokio::join!(
        drain(
            consumer,
            binding,
            n,
            Duration::from_secs(300),
            Duration::from_millis(2)
        ),
        copy
    )
}

/// With `BENCH_VERBOSE` set, prints a pipeline's counters (batches, batch
/// and stage latencies) to stderr.
pub fn report_plane(plane: &DataPlane) {
    if !verbose() {
        return;
    }
    for (name, m) in plane.metrics() {
        eprintln!(
            "   {name}: {} in, {} out, {} batches (avg {:.0}), batch p50 {} us p99 {} us, stage p50 {} us p99 {} us",
            m.events_in,
            m.events_out,
            m.batches,
            m.events_in as f64 / m.batches.max(1) as f64,
            m.batch_latency_p50_us,
            m.batch_latency_p99_us,
            m.stage_latency_p50_us,
            m.stage_latency_p99_us
        );
    }
}

/// CPU time (user + system, seconds) of this process, or of the processes
/// whose command line contains `needle`.
fn cpu_seconds(needle: Option<&str>) -> f64 {
    let ticks = |stat: &str| -> f64 {
        // Fields after the command name (which may contain spaces).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (u, s) = (
            f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
            f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
        );
        (u + s) / 100.0
    };
    match needle {
        None => std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| ticks(&s)),
        Some(needle) => std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
            })
            .map(|e| std::fs::read_to_string(e.path().join("stat")).map_or(0.0, |s| ticks(&s)))
            .sum(),
    }
}

/// With `BENCH_VERBOSE` set, prints the CPU time brokers A and B and this
/// process (producer, consumer and, for fnaa, the pipeline) used since
/// `before`.
pub fn report_cpu(
    label: &str,
    a: &common::Mosquitto,
    b: &common::Mosquitto,
    before: (f64, f64, f64),
) {
    if !verbose() {
        return;
    }
    let (ca, cb) = (
        a.conf().display().to_string(),
        b.conf().display().to_string(),
    );
    eprintln!(
        "   {label}: CPU s: broker A {:.2}, broker B {:.2}, bench process {:.2}",
        cpu_seconds(Some(&ca)) - before.0,
        cpu_seconds(Some(&cb)) - before.1,
        cpu_seconds(None) - before.2
    );
}

pub fn cpu_now(a: &common::Mosquitto, b: &common::Mosquitto) -> (f64, f64, f64) {
    (
        cpu_seconds(Some(&a.conf().display().to_string())),
        cpu_seconds(Some(&b.conf().display().to_string())),
        cpu_seconds(None),
    )
}

pub fn percentile(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// One measurement.
pub struct Row {
    pub bench: String,
    pub variant: String,
    pub events: usize,
    pub seconds: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Row {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// A row for `events` that took `elapsed`, with latency percentiles from
/// `lat` (µs); printed as it is made.
pub fn row(bench: &str, variant: &str, events: usize, elapsed: Duration, mut lat: Vec<u64>) -> Row {
    let (p50, p99) = if lat.is_empty() {
        (None, None)
    } else {
        (
            Some(percentile(&mut lat, 0.5) as f64 / 1000.0),
            Some(percentile(&mut lat, 0.99) as f64 / 1000.0),
        )
    };
    let r = Row {
        bench: bench.into(),
        variant: variant.into(),
        events,
        seconds: elapsed.as_secs_f64(),
        p50_ms: p50,
        p99_ms: p99,
    };
    eprintln!(
        "{bench:>16} | {variant:<34} | {:>9.0} ev/s | {:.2} s",
        r.rate(),
        r.seconds
    );
    r
}
