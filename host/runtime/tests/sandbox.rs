//! Hostile plugins are stopped and reported, one failure mode at a time,
//! while a well-behaved instance in the same host keeps processing; the
//! stopped instance is re-created for its next batch.

mod support;

use fnaa_runtime::{ProcessError, ProcessorInstance, TrapCause};
use support::{config, event, plugin, runtime_with};

fn assert_stopped(error: ProcessError, expected: fn(&TrapCause) -> bool) {
    match &error {
        ProcessError::Trapped {
            plugin,
            instance,
            cause,
        } => {
            assert_eq!(plugin, "probe");
            assert_eq!(instance, "hostile");
            assert!(expected(cause), "unexpected cause: {cause}");
            // The message names the plugin, the instance and the cause.
            let text = error.to_string();
            assert!(text.contains("probe") && text.contains("hostile"), "{text}");
        }
        other => panic!("expected a trap, got {other}"),
    }
}

/// Runs `mode` in one instance and a bridge beside it, checks the hostile
/// call is stopped with the expected cause, that the bridge is unaffected,
/// and that the hostile instance works again once re-created.
fn hostile(mode: &str, extra: &[(&str, &str)], expected: fn(&TrapCause) -> bool) {
    let runtime = runtime_with(|c| {
        c.call_deadline_ms = 100;
        c.max_memory_bytes = 16 << 20;
        c.max_outputs_per_call = 1_000;
    });
    let probe = plugin(&runtime, "probe");
    let mut pairs = vec![("mode", mode)];
    pairs.extend_from_slice(extra);
    let mut bad = ProcessorInstance::new(&runtime, &probe, "hostile", &config(&pairs))
        .expect("hostile instance");
    let bridge = plugin(&runtime, "bridge");
    let mut good = ProcessorInstance::new(&runtime, &bridge, "good", &[]).expect("bridge instance");

    let started = std::time::Instant::now();
    let error = bad
        .process("in", vec![event("1", "t", "{}")])
        .expect_err("hostile call must fail");
    assert_stopped(error, expected);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "stopping took {:?}",
        started.elapsed()
    );
    assert!(!bad.is_live(), "a stopped instance is discarded");

    let out = good
        .process("in", vec![event("2", "t", "{}")])
        .expect("well-behaved instance keeps working");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].event.id, "2");

    // The hostile instance is re-created on its next call, and stopped again.
    let error = bad
        .process("in", vec![event("3", "t", "{}")])
        .expect_err("still hostile");
    assert_stopped(error, expected);
}

#[test]
fn infinite_loop_hits_the_deadline() {
    hostile("loop", &[], |c| {
        matches!(c, TrapCause::Deadline { millis: 100 })
    });
}

#[test]
fn memory_growth_hits_the_limit() {
    hostile("grow", &[], |c| matches!(c, TrapCause::MemoryLimit { .. }));
}

#[test]
fn trap_is_reported_with_its_cause() {
    hostile("trap", &[], |c| matches!(c, TrapCause::Trap(_)));
}

#[test]
fn output_flood_is_stopped() {
    // 5,000 forwards fit in memory but exceed the output limit.
    hostile("flood", &[("count", "5000"), ("forward", "true")], |c| {
        matches!(
            c,
            TrapCause::OutputLimit {
                count: 5_000,
                limit: 1_000
            }
        )
    });
}

#[test]
fn flood_of_new_events_hits_the_memory_limit_or_output_limit() {
    hostile("flood", &[("count", "1000000")], |c| {
        matches!(
            c,
            TrapCause::MemoryLimit { .. } | TrapCause::OutputLimit { .. }
        )
    });
}

#[test]
fn fuel_limit_stops_busy_plugins() {
    let runtime = runtime_with(|c| {
        c.call_deadline_ms = 0;
        c.fuel_per_call = Some(1_000_000);
    });
    let probe = plugin(&runtime, "probe");
    let mut bad =
        ProcessorInstance::new(&runtime, &probe, "hostile", &config(&[("mode", "loop")])).unwrap();
    let error = bad.process("in", vec![event("1", "t", "{}")]).unwrap_err();
    assert_stopped(error, |c| matches!(c, TrapCause::FuelExhausted));
}

#[test]
fn plugin_errors_are_typed_and_keep_the_instance() {
    let runtime = runtime_with(|_| {});
    let probe = plugin(&runtime, "probe");
    let mut failing =
        ProcessorInstance::new(&runtime, &probe, "failing", &config(&[("mode", "fail")])).unwrap();
    match failing.process("in", vec![event("1", "t", "{}")]) {
        Err(ProcessError::Failed { plugin, reason, .. }) => {
            assert_eq!(plugin, "probe");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(failing.is_live(), "a plugin error is not a trap");

    let mut invalid =
        ProcessorInstance::new(&runtime, &probe, "invalid", &config(&[("mode", "invalid")]))
            .unwrap();
    match invalid.process("in", vec![event("1", "t", "{}"), event("2", "t", "{}")]) {
        Err(error @ ProcessError::InvalidEvent { index: 0, .. }) => assert!(!error.is_retryable()),
        other => panic!("expected InvalidEvent, got {other:?}"),
    }
}

#[test]
fn log_flood_is_capped_and_the_call_succeeds() {
    // The cap is what is tested, not the deadline: leave room for a busy
    // machine formatting the flood.
    let runtime = runtime_with(|c| {
        c.max_log_lines_per_call = 50;
        c.call_deadline_ms = 5_000;
    });
    let probe = plugin(&runtime, "probe");
    let mut noisy =
        ProcessorInstance::new(&runtime, &probe, "noisy", &config(&[("mode", "log-flood")]))
            .unwrap();
    noisy
        .process("in", vec![event("1", "t", "{}")])
        .expect("log flooding does not fail the call");
}

#[test]
fn no_ambient_authority() {
    let runtime = runtime_with(|_| {});
    let probe = plugin(&runtime, "probe");
    let mut probe_env =
        ProcessorInstance::new(&runtime, &probe, "env", &config(&[("mode", "env")])).unwrap();
    let out = probe_env
        .process("in", vec![event("1", "t", "{}")])
        .unwrap();
    let report = String::from_utf8(out[0].event.data.clone().unwrap_or_default()).unwrap();
    // The probe reports the environment variables it sees and whether it
    // could read the root directory; the host grants neither by default.
    let report: serde_json::Value = serde_json::from_str(&report).expect("probe reports JSON");
    assert_eq!(report["env"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["can_read_root"],
        serde_json::json!(false),
        "{report}"
    );
}

#[test]
fn grants_give_exactly_what_is_configured() {
    let runtime = runtime_with(|c| {
        let grants = c.grants.entry("probe".into()).or_default();
        grants.env.insert("GREETING".into(), "hello".into());
    });
    let probe = plugin(&runtime, "probe");
    let mut probe_env =
        ProcessorInstance::new(&runtime, &probe, "env", &config(&[("mode", "env")])).unwrap();
    let out = probe_env
        .process("in", vec![event("1", "t", "{}")])
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(out[0].event.data.as_deref().unwrap_or_default()).unwrap();
    assert_eq!(
        report["env"],
        serde_json::json!(["GREETING=hello"]),
        "{report}"
    );
}
