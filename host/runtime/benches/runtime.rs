//! Runtime benchmarks for BENCHMARKS.md. Each figure is the median of many
//! interleaved samples, so that machine noise hits both sides of a ratio
//! alike.
//!
//!   cargo bench -p fnaa-runtime --bench runtime            # everything
//!   cargo bench -p fnaa-runtime --bench runtime -- filter  # one part: filter | epoch | live | registered

use std::hint::black_box;
use std::time::{Duration, Instant};

use fnaa_runtime::{Event, InstancePool, ProcessorInstance, Runtime, RuntimeConfig};

const SAMPLES: usize = 31;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Nanoseconds per call of `f`, one sample: enough calls to last ~20 ms.
fn sample(calls: usize, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

/// How many calls of `f` take about `target`.
fn calibrate(f: &mut dyn FnMut(), target: Duration) -> usize {
    let mut calls = 1;
    loop {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        if start.elapsed() >= target / 4 || calls >= 1 << 24 {
            return (calls * 4).max(1);
        }
        calls *= 2;
    }
}

/// Median ns per call of `a` and of `b`, sampled alternately.
fn compare(a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> (f64, f64) {
    let target = Duration::from_millis(20);
    let (calls_a, calls_b) = (calibrate(a, target), calibrate(b, target));
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        sa.push(sample(calls_a, a));
        sb.push(sample(calls_b, b));
    }
    (median(sa), median(sb))
}

/// Kytos-like events: half are topology events the filter keeps.
fn batch(size: usize, payload: usize) -> Vec<Event> {
    (0..size)
        .map(|i| {
            let ty = if i % 2 == 0 {
                "kytos/topology.link_up"
            } else {
                "kytos/of_core.v0x04.messages.in.ofpt_echo_request"
            };
            let mut json = format!(r#"{{"seq":{i},"link":"{i:08}","pad":""#);
            let fill = payload.saturating_sub(json.len() + 2);
            json.extend(std::iter::repeat_n('x', fill));
            json.push_str("\"}");
            Event::new(format!("{i}"), "/kytos/napps/topology", ty)
                .with_data("application/json", json.into_bytes())
        })
        .collect()
}

fn runtime(deadline_ms: u64) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: None,
        call_deadline_ms: deadline_ms,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn load(runtime: &Runtime, name: &str) -> fnaa_runtime::Plugin {
    let builtin = fnaa_plugins::find(name).expect("plugin built");
    runtime
        .load(builtin.name, builtin.wasm)
        .expect("plugin loads")
}

fn signal(runtime: &Runtime) -> ProcessorInstance {
    let plugin = load(runtime, "signal");
    let config = vec![("types".to_owned(), "kytos/topology.*".to_owned())];
    ProcessorInstance::new(runtime, &plugin, "bench", &config).expect("signal starts")
}

fn filter() {
    println!(
        "\n### signal filter `types=kytos/topology.*`: wasm host call path vs native closure\n"
    );
    println!(
        "| event size | batch | wasm ns/batch | native ns/batch | wasm events/s | ratio (native time / wasm time) |"
    );
    println!("|---|---|---|---|---|---|");
    let runtime = runtime(1_000);
    let mut wasm = signal(&runtime);
    // The native baseline: the same filter (the SDK compiles `prefix*` to
    // `starts_with`) as a closure over the same owned batch.
    let native = |batch: Vec<Event>| -> Vec<Event> {
        batch
            .into_iter()
            .filter(|e| e.ty.starts_with("kytos/topology."))
            .collect()
    };
    for payload in [256, 1024] {
        for size in [1, 16, 64] {
            let events = batch(size, payload);
            let kept = wasm
                .process("in", events.clone())
                .expect("filter runs")
                .len();
            assert_eq!(
                kept,
                native(events.clone()).len(),
                "both sides filter alike"
            );
            // Both sides receive an owned copy of the batch, as a pipeline
            // hands it over; the copy is part of both measurements.
            let (wasm_ns, native_ns) = compare(
                &mut || {
                    black_box(wasm.process("in", events.clone()).expect("filter runs"));
                },
                &mut || {
                    black_box(native(black_box(events.clone())));
                },
            );
            println!(
                "| {payload} B | {size} | {wasm_ns:.0} | {native_ns:.0} | {:.0} | {:.2}x |",
                size as f64 * 1e9 / wasm_ns,
                native_ns / wasm_ns
            );
        }
    }
}

fn epoch() {
    println!("\n### epoch interruption (CPU deadline) on vs off: signal filter, batch 64, 256 B\n");
    let events = batch(64, 256);
    let (on_rt, off_rt) = (runtime(1_000), runtime(0));
    let (mut on, mut off) = (signal(&on_rt), signal(&off_rt));
    let (on_ns, off_ns) = compare(
        &mut || {
            black_box(on.process("in", events.clone()).expect("runs"));
        },
        &mut || {
            black_box(off.process("in", events.clone()).expect("runs"));
        },
    );
    println!("| deadline | ns/batch |\n|---|---|\n| off | {off_ns:.0} |\n| on | {on_ns:.0} |");
    println!(
        "\ncost of epoch interruption: {:+.1}%",
        (on_ns / off_ns - 1.0) * 100.0
    );
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn live(pooling: bool) {
    let allocator = if pooling {
        "pooling allocator"
    } else {
        "on-demand allocator"
    };
    println!("\n### 10,000 live instances (bridge, instantiate + init), {allocator}\n");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        pooling,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugin = load(&runtime, "bridge");
    // Warm the code paths (and the allocator) once.
    drop(ProcessorInstance::new(&runtime, &plugin, "warm", &[]).expect("instance"));
    let before = rss_bytes();
    let start = Instant::now();
    let instances: Vec<ProcessorInstance> = (0..10_000)
        .map(|i| {
            ProcessorInstance::new(&runtime, &plugin, &format!("sub-{i}"), &[]).expect("instance")
        })
        .collect();
    let elapsed = start.elapsed();
    let after = rss_bytes();
    println!(
        "| instances | time | per instance | RSS added | RSS per instance |\n|---|---|---|---|---|\n| {} | {:.3} s | {:.1} µs | {:.0} MiB | {:.1} KiB |",
        instances.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / instances.len() as f64,
        mib(after.saturating_sub(before)),
        after.saturating_sub(before) as f64 / 1024.0 / instances.len() as f64
    );
}

fn registered() {
    println!(
        "\n### 100,000 registered subscriptions under eviction (stateful collector, at most 10,000 live)\n"
    );
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        max_live_instances: 10_000,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugin = load(&runtime, "collector");
    let pool = InstancePool::new(&runtime);
    let config = vec![
        ("dedup".to_owned(), "true".to_owned()),
        ("window".to_owned(), "16".to_owned()),
    ];
    let before = rss_bytes();
    for i in 0..100_000 {
        pool.register(&format!("sub-{i}"), &plugin, &config)
            .expect("register");
    }
    let registered_rss = rss_bytes();
    let events = batch(1, 256);
    let start = Instant::now();
    for i in 0..100_000 {
        pool.process(&format!("sub-{i}"), "in", events.clone())
            .expect("process");
    }
    let elapsed = start.elapsed();
    let after = rss_bytes();
    let stats = pool.stats();
    println!(
        "| registered | live | created | evicted | RSS after registering | RSS after one batch each | time for one batch each |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {:.0} MiB | {:.0} MiB | {:.1} s |",
        stats.registered,
        stats.live,
        stats.created,
        stats.evicted,
        mib(registered_rss),
        mib(after),
        elapsed.as_secs_f64()
    );
    println!("\n(process RSS before registering: {:.0} MiB)", mib(before));
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |part: &str| wanted.is_empty() || wanted.iter().any(|w| w == part);
    println!("fnaa-runtime benchmarks; medians of {SAMPLES} interleaved samples");
    if run("live") {
        live(false);
    }
    if run("live-pooling") {
        live(true);
    }
    if run("registered") {
        registered();
    }
    if run("filter") {
        filter();
    }
    if run("epoch") {
        epoch();
    }
}
