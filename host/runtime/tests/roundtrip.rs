//! Every CloudEvents attribute and binary data cross the WIT boundary in
//! both directions exactly.

mod support;

use fnaa_runtime::{Event, ProcessorInstance};
use support::{config, full_event, plugin, runtime};

#[test]
fn every_attribute_and_every_byte_survives_the_boundary() {
    let runtime = runtime();
    let probe = plugin(&runtime, "probe");
    let mut echo =
        ProcessorInstance::new(&runtime, &probe, "echo", &config(&[("mode", "echo")])).unwrap();
    let minimal = Event::new("", "", "");
    let mut empty_data = Event::new("e", "/s", "t");
    empty_data.data = Some(Vec::new());
    let batch = vec![full_event(), minimal, empty_data];
    let out = echo.process("in", batch.clone()).unwrap();
    let events: Vec<Event> = out.into_iter().map(|e| e.event).collect();
    assert_eq!(events, batch);
}

#[test]
fn large_batches_round_trip() {
    let runtime = runtime();
    let probe = plugin(&runtime, "probe");
    let mut echo =
        ProcessorInstance::new(&runtime, &probe, "echo", &config(&[("mode", "echo")])).unwrap();
    let batch: Vec<Event> = (0..512)
        .map(|i| {
            Event::new(i.to_string(), "/s", "t")
                .with_data("application/octet-stream", vec![(i % 251) as u8; 1024 + i])
        })
        .collect();
    let out = echo.process("in", batch.clone()).unwrap();
    assert_eq!(out.into_iter().map(|e| e.event).collect::<Vec<_>>(), batch);
}
