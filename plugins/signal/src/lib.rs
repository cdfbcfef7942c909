//! Signal processor (thesis §4.1.4): consumes events from N input ports and
//! produces events to N output ports, keeping only the relevant ones
//! (Kytos: "filtering KytosEvents before publishing them", e.g.
//! `kytos/topology.*`), optionally rewriting attributes and cutting the JSON
//! data down to the fields consumers need. Stateless; for "publish only when
//! the status changed" chain it with the `changes` processor.
//!
//! Configuration (every key optional; unknown keys are refused):
//!
//! | key | meaning |
//! | --- | --- |
//! | `types=<glob>,...` | keep only events whose `type` matches one of these (default: every type) |
//! | `exclude-types=<glob>,...` | drop events whose `type` matches one of these |
//! | `subjects=<glob>,...` | keep only events whose `subject` matches one of these; events without a subject are dropped (default: no subject filter) |
//! | `exclude-subjects=<glob>,...` | drop events whose `subject` matches one of these |
//! | `set.<attribute>=<value>` | set an attribute on the events kept |
//! | `remove=<attribute>,...` | remove attributes from the events kept |
//! | `pick=<pointer>,...` | replace JSON data by an object holding only these fields (JSON Pointers, paths kept: `/link/id,/link/status`) and set `datacontenttype` to `application/json` |
//! | `output=<port>` | send every event kept to this port (default: the port mirroring its input: `in` -> `out`, any other port keeps its name) |
//!
//! Globs: `*` any run of characters (including `/` and `.`), `?` one
//! character. An event must pass every filter that is configured. Then
//! `pick` applies, then `set.*`/`remove` (so `set.datacontenttype` wins).
//!
//! An event kept unchanged is forwarded by index. With `pick`, an event
//! whose data is missing or not JSON fails the batch with `invalid-event`
//! (the host dead-letters it).

use fnaa_sdk::glob::PatternSet;
use fnaa_sdk::json::Picker;
use fnaa_sdk::rewrite::{self, Rewrite};
use fnaa_sdk::{
    Config, Event, InitError, Outputs, PluginInfo, ProcessError, Processor, mirror_port,
};

/// Which events to keep, by `type` and `subject` globs.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    types: PatternSet,
    exclude_types: PatternSet,
    subjects: PatternSet,
    exclude_subjects: PatternSet,
}

impl Filter {
    /// Reads `types`, `exclude-types`, `subjects` and `exclude-subjects`.
    pub fn from_config(config: &Config) -> Self {
        let set = |key: &str| config.get(key).map(PatternSet::parse).unwrap_or_default();
        Filter {
            types: set("types"),
            exclude_types: set("exclude-types"),
            subjects: set("subjects"),
            exclude_subjects: set("exclude-subjects"),
        }
    }

    /// True when `event` passes every configured filter.
    #[inline]
    pub fn accepts(&self, event: &Event) -> bool {
        let ty = event.ty.as_str();
        if (!self.types.is_empty() && !self.types.matches(ty)) || self.exclude_types.matches(ty) {
            return false;
        }
        match event.subject.as_deref() {
            Some(subject) => {
                (self.subjects.is_empty() || self.subjects.matches(subject))
                    && !self.exclude_subjects.matches(subject)
            }
            None => self.subjects.is_empty(),
        }
    }
}

/// The signal processor.
#[derive(Debug)]
pub struct Signal {
    filter: Filter,
    picker: Picker,
    rewrite: Rewrite,
    output: Option<String>,
}

const KEYS: [&str; 8] = [
    "types",
    "exclude-types",
    "subjects",
    "exclude-subjects",
    "pick",
    "output",
    rewrite::KEYS[0],
    rewrite::KEYS[1],
];

impl Processor for Signal {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "signal",
            env!("CARGO_PKG_VERSION"),
            "N -> N filter by type/subject globs, with attribute rewrites and JSON field picking",
            true,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        config.reject_unknown(&KEYS)?;
        let picker = Picker::parse(config.get("pick").unwrap_or_default())
            .map_err(|e| InitError::invalid_value("pick", e))?;
        let output = match config.get("output").map(str::trim) {
            Some("") => {
                return Err(InitError::invalid_value(
                    "output",
                    "a port name cannot be empty",
                ));
            }
            other => other.map(str::to_owned),
        };
        Ok(Signal {
            filter: Filter::from_config(&config),
            picker,
            rewrite: Rewrite::from_config(&config)?,
            output,
        })
    }

    fn process(
        &mut self,
        port: &str,
        batch: Vec<Event>,
        out: &mut Outputs,
    ) -> Result<(), ProcessError> {
        let output = self.output.as_deref().unwrap_or_else(|| mirror_port(port));
        for (index, mut event) in batch.into_iter().enumerate() {
            if !self.filter.accepts(&event) {
                continue;
            }
            if self.picker.is_empty() && !self.rewrite.changes(&event) {
                out.forward(index, output);
                continue;
            }
            if !self.picker.is_empty() {
                let data = self
                    .picker
                    .pick_data(&event)
                    .map_err(|e| ProcessError::invalid_event(index, e))?;
                event.data = Some(data);
                event.data_content_type = Some("application/json".to_owned());
            }
            self.rewrite.apply(&mut event);
            out.emit(event, output);
        }
        Ok(())
    }
}

fnaa_sdk::export_processor!(Signal);

#[cfg(test)]
mod tests {
    use fnaa_sdk::Output;

    use super::*;

    fn signal(pairs: &[(&str, &str)]) -> Result<Signal, InitError> {
        Signal::init(Config::from_pairs(pairs.iter().copied()))
    }

    fn event(id: &str, ty: &str, subject: Option<&str>) -> Event {
        let mut e = Event::new(id, "/kytos", ty);
        e.subject = subject.map(str::to_owned);
        e
    }

    fn run(
        signal: &mut Signal,
        port: &str,
        batch: Vec<Event>,
    ) -> Result<Vec<(String, Output)>, ProcessError> {
        let mut out = Outputs::new();
        signal.process(port, batch, &mut out)?;
        Ok(out
            .into_vec()
            .into_iter()
            .map(|e| (e.port, e.output))
            .collect())
    }

    #[test]
    fn filters_kytos_topology_and_forwards_by_index() {
        let mut s = signal(&[
            ("types", "kytos/topology.*"),
            ("exclude-types", "*.link_flap"),
        ])
        .unwrap();
        let batch = vec![
            event("1", "kytos/topology.link_up", None),
            event("2", "kytos/of_core.switch.new", None),
            event("3", "kytos/topology.link_flap", None),
            event("4", "kytos/topology.link_down", Some("l1")),
        ];
        assert_eq!(
            run(&mut s, "in", batch).unwrap(),
            vec![
                ("out".into(), Output::Forward(0)),
                ("out".into(), Output::Forward(3))
            ]
        );
    }

    #[test]
    fn subject_filters_and_port_mirroring() {
        let mut s = signal(&[("subjects", "link-*"), ("exclude-subjects", "link-9*")]).unwrap();
        let batch = vec![
            event("1", "t", Some("link-1")),
            event("2", "t", None),
            event("3", "t", Some("link-90")),
            event("4", "t", Some("switch-1")),
        ];
        assert_eq!(
            run(&mut s, "links", batch).unwrap(),
            vec![("links".into(), Output::Forward(0))]
        );

        let mut s = signal(&[("output", "alerts")]).unwrap();
        assert_eq!(
            run(&mut s, "links", vec![event("1", "t", None)]).unwrap(),
            vec![("alerts".into(), Output::Forward(0))]
        );
    }

    #[test]
    fn picks_json_fields_and_rewrites() {
        let mut s = signal(&[("pick", "/link/id,/link/status"), ("set.source", "/sdx")]).unwrap();
        let e = event("1", "kytos/topology.link_down", None).with_data(
            "application/json",
            br#"{"link":{"id":"l1","status":"down","metadata":{"big":[1,2,3]}},"ts":7}"#.to_vec(),
        );
        let outputs = run(&mut s, "in", vec![e]).unwrap();
        let [(port, Output::Emit(emitted))] = outputs.as_slice() else {
            panic!("expected one emitted event, got {outputs:?}");
        };
        assert_eq!(port, "out");
        assert_eq!(emitted.source, "/sdx");
        assert_eq!(
            emitted.data.as_deref(),
            Some(&br#"{"link":{"id":"l1","status":"down"}}"#[..])
        );
        assert_eq!(
            emitted.data_content_type.as_deref(),
            Some("application/json")
        );
    }

    #[test]
    fn non_json_data_is_an_invalid_event_when_picking() {
        let mut s = signal(&[("pick", "/a")]).unwrap();
        let batch = vec![
            event("1", "t", None).with_data("application/json", b"{}".to_vec()),
            event("2", "t", None).with_data("text/plain", b"hello".to_vec()),
        ];
        assert!(matches!(
            run(&mut s, "in", batch),
            Err(ProcessError::InvalidEvent { index: 1, .. })
        ));
    }

    #[test]
    fn refuses_bad_configuration() {
        assert_eq!(
            signal(&[("type", "x")]).err(),
            Some(InitError::UnknownKey("type".into()))
        );
        assert!(
            matches!(signal(&[("pick", "a/b")]), Err(InitError::InvalidValue { key, .. }) if key == "pick")
        );
        assert!(
            matches!(signal(&[("output", " ")]), Err(InitError::InvalidValue { key, .. }) if key == "output")
        );
        assert!(Signal::info().stateless);
    }
}
