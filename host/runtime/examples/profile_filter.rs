//! Temporary profiling harness (not part of the diff): runs the signal filter
//! N times. `profile_filter wasm|clone|native N SIZE PAYLOAD`
use std::hint::black_box;
use fnaa_runtime::{Event, ProcessorInstance, Runtime, RuntimeConfig};

fn batch(size: usize, payload: usize) -> Vec<Event> {
    (0..size)
        .map(|i| {
            let ty = if i % 2 == 0 { "kytos/topology.link_up" } else { "kytos/of_core.v0x04.messages.in.ofpt_echo_request" };
            let mut json = format!(r#"{{"seq":{i},"link":"{i:08}","pad":""#);
            let fill = payload.saturating_sub(json.len() + 2);
            json.extend(std::iter::repeat_n('x', fill));
            json.push_str("\"}");
            Event::new(format!("{i}"), "/kytos/napps/topology", ty).with_data("application/json", json.into_bytes())
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    let size: usize = args[3].parse().unwrap();
    let payload: usize = args[4].parse().unwrap();
    let deadline: u64 = args.get(5).map_or(1000, |s| s.parse().unwrap());
    let events = batch(size, payload);
    let runtime = Runtime::new(RuntimeConfig { cache_dir: None, call_deadline_ms: deadline, ..RuntimeConfig::default() }).unwrap();
    let builtin = fnaa_plugins::find("signal").unwrap();
    let plugin = match std::env::var("FNAA_TMP_WASM") {
        Ok(path) => runtime.load("signal", &std::fs::read(path).unwrap()).unwrap(),
        Err(_) => runtime.load(builtin.name, builtin.wasm).unwrap(),
    };
    let config = vec![("types".to_owned(), "kytos/topology.*".to_owned())];
    let mut wasm = ProcessorInstance::new(&runtime, &plugin, "bench", &config).unwrap();
    let start = std::time::Instant::now();
    match mode {
        "wasm" => for _ in 0..n { black_box(wasm.process("in", events.clone()).unwrap()); },
        "clone" => for _ in 0..n { black_box(events.clone()); },
        "native" => for _ in 0..n {
            let b = black_box(events.clone());
            black_box(b.into_iter().filter(|e| e.ty.starts_with("kytos/topology.")).collect::<Vec<_>>());
        },
        "live" => {
            let bridge = fnaa_plugins::find("bridge").unwrap();
            let bridge = runtime.load(bridge.name, bridge.wasm).unwrap();
            black_box(make_all(&runtime, &bridge, n));
        }
        _ => panic!(),
    }
    eprintln!("{mode}: {:.0} ns/call", start.elapsed().as_nanos() as f64 / n as f64);
}

#[inline(never)]
fn make_all(runtime: &Runtime, plugin: &fnaa_runtime::Plugin, n: usize) -> Vec<ProcessorInstance> {
    (0..n).map(|i| ProcessorInstance::new(runtime, plugin, &format!("sub-{i}"), &[]).unwrap()).collect()
}
