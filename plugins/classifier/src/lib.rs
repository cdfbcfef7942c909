//! Kytos EP038's classifier: sorts a controller's events into
//! `administrative` and `operational`, drops the rest (the pipeline counts
//! them as filtered), and names the exchange each class goes to.
//!
//! EP038's rules (`listen_event`, `generate_routing_key`,
//! `generate_topic_exchange`), with the event names real Kytos
//! controllers emit:
//!
//! * a name in `admin_events` that is also in `switch_events` is
//!   `administrative`, and its `dpid` (read at `dpid`, a JSON Pointer into
//!   the data) becomes the `dpid` extension attribute;
//! * a name in `operational_events` whose event has a `time` is
//!   `operational`;
//! * everything else is dropped. That includes the metadata events that
//!   EP038 lists in `ADMIN_EVENTS` but its code never classifies; set
//!   `classify_metadata=true` to classify every admin event.
//!
//! Each event that passes gets the extension attributes `category` (its
//! class) and `exchange` (`admin_exchange` or `operational_exchange`), so
//! an AMQP sink with `destination = "{exchange}"` and
//! `routing_key = "{category}.{type}"` publishes it as EP038 does (routing
//! key `operational.kytos/topology.link_up`).
//!
//! Configuration (lists are comma-separated; unknown keys are refused):
//!
//! | key | default |
//! | --- | --- |
//! | `admin_events` | `version/control.initialize`, `kytos/topology.switch.enabled`, `kytos/topology.switch.disabled`, `kytos/topology.{switches,interfaces,links}.metadata.{added,removed}` |
//! | `switch_events` | `version/control.initialize`, `kytos/topology.switch.enabled`, `kytos/topology.switch.disabled` |
//! | `operational_events` | `kytos/topology.topology_loaded`, `kytos/topology.link_up`, `kytos/topology.link_down` |
//! | `classify_metadata` | `false` |
//! | `dpid` | `/dpid` |
//! | `admin_exchange` | `admin_events` |
//! | `operational_exchange` | `operational_events` |
//! | `output` | mirror of the input port |
//!
//! EP038 names `topology_loaded` without its namespace and the metadata
//! events in the singular (`kytos/topology.switch.metadata.added`); the
//! topology NApp emits `kytos/topology.topology_loaded` and
//! `kytos/topology.switches.metadata.added`. The defaults are the real
//! names; EP038's spellings can be configured as they are.

use fnaa_sdk::field::{Field, FieldReader};
use fnaa_sdk::{
    AttributeValue, Config, Event, InitError, Outputs, PluginInfo, ProcessError, Processor,
    mirror_port,
};

const DEFAULT_ADMIN_EVENTS: &[&str] = &[
    "version/control.initialize",
    "kytos/topology.switch.enabled",
    "kytos/topology.switch.disabled",
    "kytos/topology.switches.metadata.added",
    "kytos/topology.interfaces.metadata.added",
    "kytos/topology.links.metadata.added",
    "kytos/topology.switches.metadata.removed",
    "kytos/topology.interfaces.metadata.removed",
    "kytos/topology.links.metadata.removed",
];

const DEFAULT_SWITCH_EVENTS: &[&str] = &[
    "version/control.initialize",
    "kytos/topology.switch.enabled",
    "kytos/topology.switch.disabled",
];

const DEFAULT_OPERATIONAL_EVENTS: &[&str] = &[
    "kytos/topology.topology_loaded",
    "kytos/topology.link_up",
    "kytos/topology.link_down",
];

/// An event's class, EP038's `event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A switch (or controller) was enabled, disabled or initialised.
    Administrative,
    /// A link went up or down, or the topology was loaded.
    Operational,
}

impl Class {
    /// The name EP038 uses in routing keys.
    pub fn name(self) -> &'static str {
        match self {
            Class::Administrative => "administrative",
            Class::Operational => "operational",
        }
    }
}

/// The classifier.
#[derive(Debug)]
pub struct Classifier {
    admin_events: Vec<String>,
    switch_events: Vec<String>,
    operational_events: Vec<String>,
    classify_metadata: bool,
    dpid: Field,
    admin_exchange: String,
    operational_exchange: String,
    output: Option<String>,
}

fn list(config: &Config, key: &str, default: &[&str]) -> Vec<String> {
    if config.contains(key) {
        config.list(key).into_iter().map(str::to_owned).collect()
    } else {
        default.iter().map(|s| (*s).to_owned()).collect()
    }
}

fn name(config: &Config, key: &str, default: &str) -> Result<String, InitError> {
    match config.get(key).map(str::trim) {
        Some("") => Err(InitError::invalid_value(key, "cannot be empty")),
        Some(value) => Ok(value.to_owned()),
        None => Ok(default.to_owned()),
    }
}

impl Classifier {
    /// EP038's class of `event`, `None` for events it drops.
    pub fn classify(&self, event: &Event) -> Option<Class> {
        let name = event.ty.as_str();
        let listed = |names: &[String]| names.iter().any(|n| n == name);
        if listed(&self.admin_events) {
            (self.classify_metadata || listed(&self.switch_events)).then_some(Class::Administrative)
        } else if listed(&self.operational_events) && event.time.is_some() {
            Some(Class::Operational)
        } else {
            None
        }
    }
}

impl Processor for Classifier {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "classifier",
            env!("CARGO_PKG_VERSION"),
            "Kytos EP038 classification: administrative and operational events with their exchange, the rest dropped",
            true,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        config.reject_unknown(&[
            "admin_events",
            "switch_events",
            "operational_events",
            "classify_metadata",
            "dpid",
            "admin_exchange",
            "operational_exchange",
            "output",
        ])?;
        let dpid = Field::parse(config.get("dpid").unwrap_or("/dpid").trim())
            .map_err(|e| InitError::invalid_value("dpid", e))?;
        let output = match config.get("output").map(str::trim) {
            Some("") => return Err(InitError::invalid_value("output", "cannot be empty")),
            other => other.map(str::to_owned),
        };
        Ok(Classifier {
            admin_events: list(&config, "admin_events", DEFAULT_ADMIN_EVENTS),
            switch_events: list(&config, "switch_events", DEFAULT_SWITCH_EVENTS),
            operational_events: list(&config, "operational_events", DEFAULT_OPERATIONAL_EVENTS),
            classify_metadata: config.bool_or("classify_metadata", false)?,
            dpid,
            admin_exchange: name(&config, "admin_exchange", "admin_events")?,
            operational_exchange: name(&config, "operational_exchange", "operational_events")?,
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
            let Some(class) = self.classify(&event) else {
                continue;
            };
            let exchange = match class {
                Class::Administrative => {
                    // EP038 reads the dpid of switch events only; an event
                    // without one (version/control.initialize) keeps none.
                    let dpid = FieldReader::new(&event)
                        .read(&self.dpid)
                        .map_err(|e| ProcessError::invalid_event(index, e))?
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
                    if let Some(dpid) = dpid {
                        event.set_extension("dpid", AttributeValue::String(dpid));
                    }
                    &self.admin_exchange
                }
                Class::Operational => &self.operational_exchange,
            };
            event.set_extension("category", AttributeValue::String(class.name().to_owned()));
            event.set_extension("exchange", AttributeValue::String(exchange.clone()));
            out.emit(event, output);
        }
        Ok(())
    }
}

fnaa_sdk::export_processor!(Classifier);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use fnaa_sdk::Output;

    use super::*;

    fn classifier(pairs: &[(&str, &str)]) -> Classifier {
        Classifier::init(Config::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn event(ty: &str, data: &str, time: bool) -> Event {
        let mut e = Event::new("1", "kytos://ctl", ty).with_data("application/json", data);
        if time {
            e.time = Some("2026-12-03T10:00:00Z".into());
        }
        e
    }

    fn run(c: &mut Classifier, batch: Vec<Event>) -> Vec<Event> {
        let mut out = Outputs::new();
        c.process("in", batch, &mut out).unwrap();
        out.into_vec()
            .into_iter()
            .map(|e| match e.output {
                Output::Emit(event) => event,
                Output::Forward(_) => panic!("the classifier emits"),
            })
            .collect()
    }

    fn ext<'e>(e: &'e Event, name: &str) -> Option<&'e str> {
        match e.extension(name) {
            Some(AttributeValue::String(s)) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn ep038_rules_with_real_event_names() {
        let mut c = classifier(&[]);
        let out = run(
            &mut c,
            vec![
                event("kytos/topology.switch.enabled", r#"{"dpid":"00:01"}"#, true),
                event("kytos/topology.link_up", r#"{"link":{}}"#, true),
                event("kytos/topology.link_down", r#"{}"#, false),
                event("kytos/topology.switches.metadata.added", r#"{}"#, true),
                event("kytos/of_core.handshake.completed", r#"{}"#, true),
                event("version/control.initialize", r#"{}"#, true),
                event("kytos/topology.topology_loaded", r#"{}"#, true),
            ],
        );
        // (type, category, exchange, dpid)
        type Seen<'e> = (&'e str, Option<&'e str>, Option<&'e str>, Option<&'e str>);
        let seen: Vec<Seen> = out
            .iter()
            .map(|e| {
                (
                    e.ty.as_str(),
                    ext(e, "category"),
                    ext(e, "exchange"),
                    ext(e, "dpid"),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "kytos/topology.switch.enabled",
                    Some("administrative"),
                    Some("admin_events"),
                    Some("00:01")
                ),
                (
                    "kytos/topology.link_up",
                    Some("operational"),
                    Some("operational_events"),
                    None
                ),
                (
                    "version/control.initialize",
                    Some("administrative"),
                    Some("admin_events"),
                    None
                ),
                (
                    "kytos/topology.topology_loaded",
                    Some("operational"),
                    Some("operational_events"),
                    None
                ),
            ]
        );
    }

    #[test]
    fn metadata_events_can_be_classified_too() {
        let mut c = classifier(&[("classify_metadata", "true")]);
        let out = run(
            &mut c,
            vec![event(
                "kytos/topology.links.metadata.added",
                r#"{}"#,
                true,
            )],
        );
        assert_eq!(ext(&out[0], "category"), Some("administrative"));
    }

    #[test]
    fn lists_and_exchanges_are_configurable() {
        let mut c = classifier(&[
            ("operational_events", "topology_loaded, x/y"),
            ("operational_exchange", "ops"),
        ]);
        let out = run(
            &mut c,
            vec![
                event("topology_loaded", "{}", true),
                event("kytos/topology.link_up", "{}", true),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(ext(&out[0], "exchange"), Some("ops"));
    }

    #[test]
    fn bad_configuration_is_refused_by_name() {
        for (pairs, needle) in [
            (vec![("exchange", "x")], "exchange"),
            (vec![("admin_exchange", " ")], "admin_exchange"),
            (vec![("classify_metadata", "maybe")], "classify_metadata"),
        ] {
            let error = Classifier::init(Config::from_pairs(pairs)).unwrap_err();
            assert!(error.to_string().contains(needle), "{error}");
        }
    }

    #[test]
    fn a_dpid_read_from_data_that_is_not_json_fails_the_batch() {
        let mut c = classifier(&[]);
        let mut out = Outputs::new();
        let error = c
            .process(
                "in",
                vec![event("kytos/topology.switch.enabled", "not json", true)],
                &mut out,
            )
            .unwrap_err();
        assert!(error.to_string().contains('0'), "{error}");
    }
}
