//! Test-only processor: its `mode` selects one behaviour, for the host's
//! tests of sandboxing, limits and the WIT round trip. Never deploy it.
//!
//! | `mode` | extra keys (default) | behaviour of `process` |
//! | --- | --- | --- |
//! | `echo` | | emits every input event again as a new event (`emit`, not `forward`), so the whole event crosses the boundary both ways |
//! | `loop` | | loops forever |
//! | `grow` | | allocates 1 MiB blocks until allocation fails, then fails the batch with the amount; traps instead if the host traps on a refused `memory.grow` |
//! | `trap` | | panics (a wasm trap) |
//! | `flood` | `count` (1000000), `forward` (false) | outputs `count` copies of each event: new events (`emit`), or references (`forward`) with `forward=true` |
//! | `counter` | | per event, increments the counter in state key `counter` (decimal text) and emits the input event with the count as `text/plain` data |
//! | `log-flood` | `lines` (100000) | writes `lines` info records, then forwards the batch |
//! | `stdout` | | prints a line to stdout and one to stderr, then forwards the batch |
//! | `sleep`, `busy` | `millis` (1000) | spins for `millis` milliseconds of monotonic time, then forwards the batch |
//! | `fail` | | fails the batch (`process-error::failed`) |
//! | `invalid` | | reports event 0 invalid (`process-error::invalid-event`) |
//! | `env` | | emits one event (type `fnaa.probe.env`, source `/fnaa/probe`) whose JSON data tells what ambient authority it has: `{"env":["NAME=value",..],"args":[..],"can_read_root":bool,"root_error":"..."\|null}` |
//!
//! Every output goes to port `out`. Unknown keys, and keys of another mode,
//! are refused.

use std::time::{Duration, Instant};

use fnaa_sdk::json::serde_json::json;
use fnaa_sdk::{
    Config, DEFAULT_OUTPUT, Event, InitError, Outputs, PluginInfo, ProcessError, Processor, log,
    state,
};

/// The behaviour selected by `mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Re-emit every event as a new event.
    Echo,
    /// Loop forever.
    Loop,
    /// Allocate until allocation fails.
    Grow,
    /// Panic.
    Trap,
    /// Output `count` copies of each event.
    Flood {
        /// Copies per input event.
        count: u64,
        /// Forward references instead of emitting new events.
        forward: bool,
    },
    /// Count events in state.
    Counter,
    /// Write `lines` log records per call.
    LogFlood {
        /// Records per call.
        lines: u64,
    },
    /// Print to stdout and stderr.
    Stdout,
    /// Spin for a while.
    Busy(Duration),
    /// Fail the batch.
    Fail,
    /// Report event 0 invalid.
    Invalid,
    /// Report the environment and filesystem access.
    Env,
}

impl Mode {
    /// Reads `mode` and its keys, refusing keys that mode does not use.
    pub fn from_config(config: &Config) -> Result<Self, InitError> {
        let mode = config.require("mode")?.trim();
        let (mode, extra_keys): (Mode, &[&str]) = match mode {
            "echo" => (Mode::Echo, &[]),
            "loop" => (Mode::Loop, &[]),
            "grow" => (Mode::Grow, &[]),
            "trap" => (Mode::Trap, &[]),
            "flood" => {
                let forward = config.bool_or("forward", false)?;
                let count = config.parse_or("count", 1_000_000)?;
                (Mode::Flood { count, forward }, &["count", "forward"])
            }
            "counter" => (Mode::Counter, &[]),
            "log-flood" => (
                Mode::LogFlood {
                    lines: config.parse_or("lines", 100_000)?,
                },
                &["lines"],
            ),
            "stdout" => (Mode::Stdout, &[]),
            "sleep" | "busy" => (
                Mode::Busy(Duration::from_millis(config.parse_or("millis", 1000)?)),
                &["millis"],
            ),
            "fail" => (Mode::Fail, &[]),
            "invalid" => (Mode::Invalid, &[]),
            "env" => (Mode::Env, &[]),
            other => {
                return Err(InitError::invalid_value(
                    "mode",
                    format!("unknown mode `{other}`"),
                ));
            }
        };
        let mut known = vec!["mode"];
        known.extend_from_slice(extra_keys);
        config.reject_unknown(&known)?;
        Ok(mode)
    }
}

/// The probe processor.
#[derive(Debug)]
pub struct Probe {
    mode: Mode,
}

/// State key of the `counter` mode.
pub const COUNTER_KEY: &str = "counter";

fn forward_all(batch: &[Event], out: &mut Outputs) {
    for index in 0..batch.len() {
        out.forward(index, DEFAULT_OUTPUT);
    }
}

impl Processor for Probe {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "probe",
            env!("CARGO_PKG_VERSION"),
            "test-only processor whose `mode` selects a misbehaviour or a round trip",
            false,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        Ok(Probe {
            mode: Mode::from_config(&config)?,
        })
    }

    fn process(
        &mut self,
        _port: &str,
        batch: Vec<Event>,
        out: &mut Outputs,
    ) -> Result<(), ProcessError> {
        match &self.mode {
            Mode::Echo => batch
                .into_iter()
                .for_each(|event| out.emit(event, DEFAULT_OUTPUT)),
            Mode::Loop => loop {
                std::hint::spin_loop();
            },
            Mode::Grow => return Err(grow()),
            Mode::Trap => trap(),
            Mode::Flood { count, forward } => {
                for (index, event) in batch.iter().enumerate() {
                    for _ in 0..*count {
                        if *forward {
                            out.forward(index, DEFAULT_OUTPUT);
                        } else {
                            out.emit(event.clone(), DEFAULT_OUTPUT);
                        }
                    }
                }
            }
            Mode::Counter => {
                let mut count: u64 = state::get(COUNTER_KEY)
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| text.parse().ok())
                    .unwrap_or(0);
                for mut event in batch {
                    count += 1;
                    event.data_content_type = Some("text/plain".to_owned());
                    event.data = Some(count.to_string().into_bytes());
                    out.emit(event, DEFAULT_OUTPUT);
                }
                state::set(COUNTER_KEY, count.to_string().as_bytes())
                    .map_err(ProcessError::failed)?;
            }
            Mode::LogFlood { lines } => {
                for line in 0..*lines {
                    log::info(&format!("probe log line {line}"));
                }
                forward_all(&batch, out);
            }
            Mode::Stdout => {
                println!("probe: a line on stdout");
                eprintln!("probe: a line on stderr");
                forward_all(&batch, out);
            }
            Mode::Busy(duration) => {
                let start = Instant::now();
                while start.elapsed() < *duration {
                    std::hint::spin_loop();
                }
                forward_all(&batch, out);
            }
            Mode::Fail => return Err(ProcessError::failed("probe: failure requested")),
            Mode::Invalid => {
                return Err(ProcessError::invalid_event(
                    0,
                    "probe: invalid event requested",
                ));
            }
            Mode::Env => out.emit(env_report(), DEFAULT_OUTPUT),
        }
        Ok(())
    }
}

/// Allocates 1 MiB blocks until the allocator refuses, and reports how many
/// it got.
fn grow() -> ProcessError {
    const BLOCK: usize = 1 << 20;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block: Vec<u8> = Vec::new();
        if blocks.try_reserve(1).is_err() || block.try_reserve_exact(BLOCK).is_err() {
            break;
        }
        // Keeps the optimiser from removing the allocation.
        blocks.push(std::hint::black_box(block));
    }
    ProcessError::failed(format!(
        "probe: memory exhausted after {} MiB",
        blocks.len()
    ))
}

#[allow(clippy::panic)]
fn trap() -> ! {
    panic!("probe: trap requested")
}

/// An event telling which environment variables and arguments the guest
/// sees and whether it can list `/`.
fn env_report() -> Event {
    let env: Vec<String> = std::env::vars_os()
        .map(|(name, value)| format!("{}={}", name.to_string_lossy(), value.to_string_lossy()))
        .collect();
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let root = std::fs::read_dir("/");
    let report = json!({
        "env": env,
        "args": args,
        "can_read_root": root.is_ok(),
        "root_error": root.err().map(|e| e.to_string()),
    });
    Event::new("probe-env", "/fnaa/probe", "fnaa.probe.env")
        .with_data("application/json", report.to_string())
}

fnaa_sdk::export_processor!(Probe);

#[cfg(test)]
mod tests {
    use fnaa_sdk::Output;

    use super::*;

    fn probe(pairs: &[(&str, &str)]) -> Result<Probe, InitError> {
        Probe::init(Config::from_pairs(pairs.iter().copied()))
    }

    fn run(p: &mut Probe, batch: Vec<Event>) -> Result<Outputs, ProcessError> {
        let mut out = Outputs::new();
        p.process("in", batch, &mut out)?;
        Ok(out)
    }

    #[test]
    fn echo_emits_new_events_field_for_field() {
        let mut e = Event::new("1", "/s", "t").with_data("application/json", b"{}".to_vec());
        e.subject = Some("s".into());
        let out = run(&mut probe(&[("mode", "echo")]).unwrap(), vec![e.clone()]).unwrap();
        assert_eq!(out.as_slice()[0].output, Output::Emit(e));
    }

    #[test]
    fn flood_counts() {
        let out = run(
            &mut probe(&[("mode", "flood"), ("count", "3")]).unwrap(),
            vec![Event::new("1", "/s", "t")],
        )
        .unwrap();
        assert_eq!(out.len(), 3);
        let out = run(
            &mut probe(&[("mode", "flood"), ("count", "2"), ("forward", "true")]).unwrap(),
            vec![Event::new("1", "/s", "t")],
        )
        .unwrap();
        assert_eq!(out.as_slice()[1].output, Output::Forward(0));
    }

    #[test]
    fn counter_survives_a_new_instance() {
        let batch = || vec![Event::new("1", "/s", "t"), Event::new("2", "/s", "t")];
        run(&mut probe(&[("mode", "counter")]).unwrap(), batch()).unwrap();
        let out = run(&mut probe(&[("mode", "counter")]).unwrap(), batch()).unwrap();
        let Output::Emit(last) = &out.as_slice()[1].output else {
            panic!("counter emits")
        };
        assert_eq!(last.data.as_deref(), Some(&b"4"[..]));
    }

    #[test]
    fn errors_on_request() {
        assert_eq!(
            run(&mut probe(&[("mode", "fail")]).unwrap(), vec![]).err(),
            Some(ProcessError::failed("probe: failure requested"))
        );
        assert!(matches!(
            run(&mut probe(&[("mode", "invalid")]).unwrap(), vec![]),
            Err(ProcessError::InvalidEvent { index: 0, .. })
        ));
    }

    #[test]
    fn busy_spins_then_forwards() {
        let start = Instant::now();
        let out = run(
            &mut probe(&[("mode", "busy"), ("millis", "20")]).unwrap(),
            vec![Event::new("1", "/s", "t")],
        )
        .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(out.as_slice()[0].output, Output::Forward(0));
    }

    #[test]
    fn env_reports_json() {
        let out = run(&mut probe(&[("mode", "env")]).unwrap(), vec![]).unwrap();
        let Output::Emit(event) = &out.as_slice()[0].output else {
            panic!("env emits")
        };
        let report = fnaa_sdk::json::parse_data(event).unwrap();
        assert!(report["can_read_root"].is_boolean());
        assert!(report["env"].as_array().is_some_and(|env| {
            env.iter()
                .all(|v| v.as_str().is_some_and(|s| s.contains('=')))
        }));
    }

    #[test]
    fn configuration() {
        assert_eq!(probe(&[]).err(), Some(InitError::MissingKey("mode".into())));
        assert!(
            matches!(probe(&[("mode", "dance")]), Err(InitError::InvalidValue { key, .. }) if key == "mode")
        );
        assert_eq!(
            probe(&[("mode", "echo"), ("count", "1")]).err(),
            Some(InitError::UnknownKey("count".into()))
        );
        assert!(
            matches!(probe(&[("mode", "flood"), ("count", "x")]), Err(InitError::InvalidValue { key, .. }) if key == "count")
        );
        assert!(probe(&[("mode", "sleep"), ("millis", "5")]).is_ok());
    }
}
