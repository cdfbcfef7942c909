//! Eviction and re-creation keep state; stateless plugins share instances;
//! compiled components are cached on disk.
#![allow(clippy::unwrap_used)]

mod support;

use fnaa_runtime::{InstancePool, ProcessorInstance, RedbStateStore, Runtime, RuntimeConfig};
use std::sync::Arc;
use support::{config, event, plugin, runtime_with};

fn count_of(out: &[fnaa_runtime::Emitted]) -> Vec<String> {
    out.iter()
        .map(|e| String::from_utf8(e.event.data.clone().unwrap_or_default()).unwrap())
        .collect()
}

#[test]
fn evicted_instances_come_back_with_their_state() {
    let runtime = runtime_with(|c| c.max_live_instances = 2);
    let pool = InstancePool::new(&runtime);
    let counter = plugin(&runtime, "probe");
    for name in ["a", "b", "c"] {
        pool.register(name, &counter, &config(&[("mode", "counter")]))
            .unwrap();
    }
    assert_eq!(pool.stats().live, 0, "registering instantiates nothing");
    for round in 1..=3 {
        for name in ["a", "b", "c"] {
            let out = pool
                .process(
                    name,
                    "in",
                    vec![event("1", "t", "{}"), event("2", "t", "{}")],
                )
                .unwrap();
            assert_eq!(
                count_of(&out),
                [(round * 2 - 1).to_string(), (round * 2).to_string()],
                "{name} round {round}"
            );
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.registered, 3);
    assert_eq!(stats.live, 2, "never more than max_live_instances");
    assert!(stats.evicted >= 7, "every round evicts: {stats:?}");
}

#[test]
fn idle_instances_are_evicted() {
    let runtime = runtime_with(|_| {});
    let pool = InstancePool::new(&runtime);
    let counter = plugin(&runtime, "probe");
    pool.register("a", &counter, &config(&[("mode", "counter")]))
        .unwrap();
    pool.process("a", "in", vec![event("1", "t", "{}")])
        .unwrap();
    assert_eq!(pool.evict_idle(std::time::Duration::ZERO), 1);
    assert_eq!(pool.stats().live, 0);
    let out = pool
        .process("a", "in", vec![event("2", "t", "{}")])
        .unwrap();
    assert_eq!(count_of(&out), ["2"]);
}

#[test]
fn stateless_instances_with_equal_config_are_shared() {
    let runtime = runtime_with(|_| {});
    let pool = InstancePool::new(&runtime);
    let bridge = plugin(&runtime, "bridge");
    for i in 0..100 {
        pool.register(
            &format!("sub-{i}"),
            &bridge,
            &config(&[("set.source", "/copy")]),
        )
        .unwrap();
    }
    pool.register("other", &bridge, &config(&[("set.source", "/elsewhere")]))
        .unwrap();
    for i in 0..100 {
        let out = pool
            .process(&format!("sub-{i}"), "in", vec![event("1", "t", "{}")])
            .unwrap();
        assert_eq!(out[0].event.source, "/copy");
    }
    assert_eq!(
        pool.stats().live,
        1,
        "one shared instance for 100 subscriptions"
    );
    let out = pool
        .process("other", "in", vec![event("1", "t", "{}")])
        .unwrap();
    assert_eq!(out[0].event.source, "/elsewhere");
    assert_eq!(pool.stats().live, 2);
    assert!(pool.unregister("sub-0", false).unwrap());
    assert!(
        pool.process("sub-0", "in", vec![]).is_err(),
        "unregistered instances are gone"
    );
}

#[test]
fn state_survives_a_host_restart_with_a_durable_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    for expected in [["1", "2"], ["3", "4"]] {
        let store = Arc::new(RedbStateStore::open(&path).unwrap());
        let runtime = Runtime::with_state_store(
            RuntimeConfig {
                cache_dir: None,
                ..RuntimeConfig::default()
            },
            store,
        )
        .unwrap();
        let counter = plugin(&runtime, "probe");
        let mut instance = ProcessorInstance::new(
            &runtime,
            &counter,
            "durable",
            &config(&[("mode", "counter")]),
        )
        .unwrap();
        let out = instance
            .process("in", vec![event("1", "t", "{}"), event("2", "t", "{}")])
            .unwrap();
        assert_eq!(count_of(&out), expected);
    }
}

#[test]
fn failed_batches_leave_state_untouched() {
    let runtime = runtime_with(|c| c.max_outputs_per_call = 3);
    let counter = plugin(&runtime, "probe");
    let mut instance = ProcessorInstance::new(
        &runtime,
        &counter,
        "rollback",
        &config(&[("mode", "counter")]),
    )
    .unwrap();
    instance.process("in", vec![event("1", "t", "{}")]).unwrap();
    // Four outputs exceed the limit: the batch fails and its four increments are rolled back.
    let batch: Vec<_> = (0..4).map(|i| event(&i.to_string(), "t", "{}")).collect();
    instance.process("in", batch).unwrap_err();
    let out = instance.process("in", vec![event("9", "t", "{}")]).unwrap();
    assert_eq!(count_of(&out), ["2"]);
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let bridge = fnaa_plugins::find("bridge").unwrap();
    Runtime::new(config())
        .unwrap()
        .load("bridge", bridge.wasm)
        .unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(cached.len(), 1, "one compiled artifact");
    let plugin = Runtime::new(config())
        .unwrap()
        .load("bridge", bridge.wasm)
        .unwrap();
    assert_eq!(plugin.info().name, "bridge");
    // A corrupt cache entry is ignored and replaced, not fatal.
    std::fs::write(cached[0].path(), b"garbage").unwrap();
    Runtime::new(config())
        .unwrap()
        .load("bridge", bridge.wasm)
        .unwrap();
}

#[test]
fn plugins_that_are_not_components_are_refused_clearly() {
    let runtime = runtime_with(|_| {});
    let error = runtime
        .load("junk", b"\0asm\x01\0\0\0")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("junk") && error.contains("not a valid WebAssembly component"),
        "{error}"
    );
}
