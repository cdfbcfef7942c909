//! Collector processor (thesis §4.1.4): consumes events from N input ports
//! and merges them into one output port, optionally dropping duplicates.
//!
//! Configuration (every key optional; unknown keys are refused):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `dedup=true\|false` | `false` | drop an event whose (`source`, `id`) was seen among the last `window` distinct events |
//! | `window=<n>` | `1000` | how many distinct (`source`, `id`) pairs are remembered, 1 to 1,000,000; only with `dedup=true` |
//! | `output=<port>` | `out` | the output port |
//!
//! Events arrive on any input ports and are forwarded by index, in order,
//! to the output port.
//!
//! Declared not stateless: with `dedup=true` the window lives in the host's
//! `state` (not in guest memory), so deduplication survives eviction and
//! re-creation of the instance, and a failed batch leaves it untouched.
//! Without dedup the collector touches no state, but `info` cannot depend
//! on configuration.
//!
//! State layout (dedup): `dedup/window` (u32 LE, the window the ring was
//! built for), `dedup/next` (u32 LE, the ring slot to fill next),
//! `dedup/slot/<n>` (the 8-byte hash held by slot n) and
//! `dedup/seen/<hash>` (present while the hash is in the window). The hash
//! is a 64-bit FNV-1a of `source` and `id`. When the configured window
//! shrinks, the slots past it are evicted at the next batch.

use fnaa_sdk::hash::fnv1a64_parts;
use fnaa_sdk::state::{Staged, StateError};
use fnaa_sdk::{
    Config, DEFAULT_OUTPUT, Event, InitError, Outputs, PluginInfo, ProcessError, Processor,
};

/// Largest accepted `window`.
pub const MAX_WINDOW: u32 = 1_000_000;
/// `window` when not configured.
pub const DEFAULT_WINDOW: u32 = 1000;

/// The collector processor.
#[derive(Debug)]
pub struct Collector {
    /// The dedup window size, when dedup is on.
    window: Option<u32>,
    output: String,
}

impl Processor for Collector {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "collector",
            env!("CARGO_PKG_VERSION"),
            "N -> 1 merge of every input port into `out`, with optional dedup by (source, id) kept in state",
            false,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        config.reject_unknown(&["dedup", "window", "output"])?;
        let dedup = config.bool_or("dedup", false)?;
        let window = config.parse::<u32>("window")?;
        let window = match (dedup, window) {
            (false, Some(_)) => {
                return Err(InitError::invalid_value(
                    "window",
                    "only used with dedup=true",
                ));
            }
            (false, None) => None,
            (true, window) => {
                let window = window.unwrap_or(DEFAULT_WINDOW);
                if !(1..=MAX_WINDOW).contains(&window) {
                    return Err(InitError::invalid_value(
                        "window",
                        format!("must be between 1 and {MAX_WINDOW}"),
                    ));
                }
                Some(window)
            }
        };
        let output = config
            .get("output")
            .map(str::trim)
            .unwrap_or(DEFAULT_OUTPUT);
        if output.is_empty() {
            return Err(InitError::invalid_value(
                "output",
                "a port name cannot be empty",
            ));
        }
        Ok(Collector {
            window,
            output: output.to_owned(),
        })
    }

    fn process(
        &mut self,
        _port: &str,
        batch: Vec<Event>,
        out: &mut Outputs,
    ) -> Result<(), ProcessError> {
        let Some(window) = self.window else {
            for index in 0..batch.len() {
                out.forward(index, &self.output);
            }
            return Ok(());
        };
        let mut ring = Ring::open(window);
        for (index, event) in batch.iter().enumerate() {
            if ring.insert(event_hash(event)) {
                out.forward(index, &self.output);
            }
        }
        ring.commit()
            .map_err(|e| ProcessError::failed(format!("cannot store the dedup window: {e}")))
    }
}

/// The identity of an event for dedup: its (`source`, `id`) pair.
pub fn event_hash(event: &Event) -> u64 {
    fnv1a64_parts(&[event.source.as_bytes(), event.id.as_bytes()])
}

/// The dedup window: a ring of the last `window` distinct hashes, in state.
#[derive(Debug)]
pub struct Ring {
    state: Staged,
    window: u32,
    next: u32,
}

const WINDOW_KEY: &str = "dedup/window";
const NEXT_KEY: &str = "dedup/next";

fn slot_key(slot: u32) -> String {
    format!("dedup/slot/{slot}")
}

fn seen_key(hash: u64) -> String {
    format!("dedup/seen/{hash:016x}")
}

fn read_u32(bytes: Option<&[u8]>) -> Option<u32> {
    bytes
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
}

impl Ring {
    /// Opens the ring kept in state, resizing it to `window` if it was built
    /// for another size.
    pub fn open(window: u32) -> Self {
        let mut state = Staged::new();
        let stored_window = read_u32(state.get(WINDOW_KEY));
        let mut next = read_u32(state.get(NEXT_KEY)).unwrap_or(0);
        if stored_window != Some(window) {
            // Evict what lies past the new end so that nothing stays "seen"
            // forever.
            for slot in window..stored_window.unwrap_or(0) {
                evict(&mut state, slot);
            }
            state.set(WINDOW_KEY, window.to_le_bytes().to_vec());
        }
        if next >= window {
            next = 0;
        }
        Ring {
            state,
            window,
            next,
        }
    }

    /// Records `hash`; false when it is already in the window (a duplicate).
    pub fn insert(&mut self, hash: u64) -> bool {
        let seen = seen_key(hash);
        if self.state.get(&seen).is_some() {
            return false;
        }
        let slot = self.next;
        evict(&mut self.state, slot);
        self.state.set(&slot_key(slot), hash.to_le_bytes().to_vec());
        self.state.set(&seen, slot.to_le_bytes().to_vec());
        self.next = (slot + 1) % self.window;
        true
    }

    /// Writes the ring back to state.
    pub fn commit(mut self) -> Result<(), StateError> {
        self.state.set(NEXT_KEY, self.next.to_le_bytes().to_vec());
        self.state.commit()
    }
}

/// Empties ring slot `slot`, forgetting the hash it held.
fn evict(state: &mut Staged, slot: u32) {
    let key = slot_key(slot);
    let old = state
        .get(&key)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes);
    if let Some(old) = old {
        state.delete(&seen_key(old));
        state.delete(&key);
    }
}

fnaa_sdk::export_processor!(Collector);

#[cfg(test)]
mod tests {
    use fnaa_sdk::{Output, state};

    use super::*;

    fn collector(pairs: &[(&str, &str)]) -> Result<Collector, InitError> {
        Collector::init(Config::from_pairs(pairs.iter().copied()))
    }

    fn forwarded(c: &mut Collector, port: &str, ids: &[&str]) -> Vec<u32> {
        let batch = ids.iter().map(|id| Event::new(*id, "/s", "t")).collect();
        let mut out = Outputs::new();
        c.process(port, batch, &mut out).unwrap();
        out.iter()
            .map(|e| {
                assert_eq!(e.port, "out");
                match e.output {
                    Output::Forward(i) => i,
                    Output::Emit(_) => panic!("collector only forwards"),
                }
            })
            .collect()
    }

    #[test]
    fn merges_every_port_without_dedup() {
        let mut c = collector(&[]).unwrap();
        assert_eq!(forwarded(&mut c, "a", &["1", "1"]), vec![0, 1]);
        assert_eq!(forwarded(&mut c, "b", &["1"]), vec![0]);
        assert!(state::get(NEXT_KEY).is_none(), "no state without dedup");
    }

    #[test]
    fn drops_duplicates_within_and_across_batches_and_instances() {
        let mut c = collector(&[("dedup", "true")]).unwrap();
        assert_eq!(forwarded(&mut c, "a", &["1", "2", "1"]), vec![0, 1]);
        assert_eq!(forwarded(&mut c, "b", &["2", "3"]), vec![1]);
        // A re-created instance finds the window in state.
        let mut c = collector(&[("dedup", "true")]).unwrap();
        assert_eq!(forwarded(&mut c, "a", &["3", "4"]), vec![1]);
        // Same id, other source: not a duplicate.
        let mut out = Outputs::new();
        c.process("a", vec![Event::new("1", "/other", "t")], &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut c = collector(&[("dedup", "yes"), ("window", "2")]).unwrap();
        assert_eq!(forwarded(&mut c, "in", &["1", "2", "3"]), vec![0, 1, 2]);
        // "1" fell out of the window; "3" is still in it.
        assert_eq!(forwarded(&mut c, "in", &["1", "3"]), vec![0]);
        assert_eq!(
            state::get(&seen_key(event_hash(&Event::new("2", "/s", "t")))),
            None
        );
    }

    #[test]
    fn shrinking_the_window_evicts_the_excess() {
        let mut c = collector(&[("dedup", "true"), ("window", "4")]).unwrap();
        assert_eq!(
            forwarded(&mut c, "in", &["1", "2", "3", "4"]),
            vec![0, 1, 2, 3]
        );
        let mut c = collector(&[("dedup", "true"), ("window", "2")]).unwrap();
        // Slots 2 and 3 ("3" and "4") were evicted; "1" and "2" remain.
        assert_eq!(forwarded(&mut c, "in", &["1", "2", "3", "4"]), vec![2, 3]);
        assert_eq!(state::get(&slot_key(3)), None);
    }

    #[test]
    fn configuration() {
        assert_eq!(
            collector(&[("dedupe", "true")]).err(),
            Some(InitError::UnknownKey("dedupe".into()))
        );
        assert!(
            matches!(collector(&[("window", "5")]), Err(InitError::InvalidValue { key, .. }) if key == "window")
        );
        assert!(matches!(
            collector(&[("dedup", "true"), ("window", "0")]),
            Err(InitError::InvalidValue { .. })
        ));
        assert!(
            matches!(collector(&[("dedup", "maybe")]), Err(InitError::InvalidValue { key, .. }) if key == "dedup")
        );
        assert!(!Collector::info().stateless);
    }
}
