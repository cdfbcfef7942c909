//! Bridge processor (thesis §4.1.4): consumes the events of one flow and
//! passes them on, one for one, to output port `out`, optionally rewriting
//! attributes on the way. Stateless.
//!
//! Configuration (every key optional; unknown keys are refused):
//!
//! | key | meaning |
//! | --- | --- |
//! | `set.<attribute>=<value>` | set a CloudEvents attribute (core or extension) to a string value, e.g. `set.source=/fnaa/bridge` |
//! | `remove=<attribute>,...` | remove optional attributes or extensions (not `id`, `source`, `specversion`, `type`) |
//!
//! Events arrive on any input port (`in` by default) and leave on `out`.
//! An event the rewrite does not change (or every event, without a rewrite)
//! is forwarded by index, so it never crosses back over the boundary.

use fnaa_sdk::rewrite::{self, Rewrite};
use fnaa_sdk::{
    Config, DEFAULT_OUTPUT, Event, InitError, Outputs, PluginInfo, ProcessError, Processor,
};

/// The bridge processor.
#[derive(Debug)]
pub struct Bridge {
    rewrite: Rewrite,
}

impl Processor for Bridge {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "bridge",
            env!("CARGO_PKG_VERSION"),
            "1 -> 1 pass-through to `out`, with optional attribute rewrites (set.<attr>, remove)",
            true,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        config.reject_unknown(&rewrite::KEYS)?;
        Ok(Bridge {
            rewrite: Rewrite::from_config(&config)?,
        })
    }

    fn process(
        &mut self,
        _port: &str,
        batch: Vec<Event>,
        out: &mut Outputs,
    ) -> Result<(), ProcessError> {
        for (index, mut event) in batch.into_iter().enumerate() {
            if self.rewrite.changes(&event) {
                self.rewrite.apply(&mut event);
                out.emit(event, DEFAULT_OUTPUT);
            } else {
                out.forward(index, DEFAULT_OUTPUT);
            }
        }
        Ok(())
    }
}

fnaa_sdk::export_processor!(Bridge);

#[cfg(test)]
mod tests {
    use fnaa_sdk::Output;

    use super::*;

    fn bridge(pairs: &[(&str, &str)]) -> Result<Bridge, InitError> {
        Bridge::init(Config::from_pairs(pairs.iter().copied()))
    }

    fn run(bridge: &mut Bridge, batch: Vec<Event>) -> Vec<(String, Output)> {
        let mut out = Outputs::new();
        bridge.process("in", batch, &mut out).unwrap();
        out.into_vec()
            .into_iter()
            .map(|e| (e.port, e.output))
            .collect()
    }

    #[test]
    fn forwards_everything_without_a_rewrite() {
        let mut b = bridge(&[]).unwrap();
        let batch = vec![Event::new("1", "/a", "t"), Event::new("2", "/a", "t")];
        assert_eq!(
            run(&mut b, batch),
            vec![
                ("out".into(), Output::Forward(0)),
                ("out".into(), Output::Forward(1))
            ]
        );
        assert!(Bridge::info().stateless);
    }

    #[test]
    fn rewrites_and_forwards_what_is_already_right() {
        let mut b = bridge(&[("set.source", "/bridge"), ("remove", "subject")]).unwrap();
        let mut changed = Event::new("1", "/a", "t");
        changed.subject = Some("s".into());
        let unchanged = Event::new("2", "/bridge", "t");
        let outputs = run(&mut b, vec![changed, unchanged]);
        let mut expected = Event::new("1", "/bridge", "t");
        expected.subject = None;
        assert_eq!(
            outputs,
            vec![
                ("out".into(), Output::Emit(expected)),
                ("out".into(), Output::Forward(1))
            ]
        );
    }

    #[test]
    fn refuses_unknown_keys_by_name() {
        assert_eq!(
            bridge(&[("sett.source", "x")]).err(),
            Some(InitError::UnknownKey("sett.source".into()))
        );
        assert!(matches!(
            bridge(&[("remove", "id")]),
            Err(InitError::InvalidValue { .. })
        ));
    }
}
