//! Distributor processor (thesis §4.1.4): consumes the events of one flow
//! and sends them to N output ports, either all of them to every port
//! (broadcast) or each to the ports whose patterns match it (routing).
//! Stateless.
//!
//! Configuration: exactly one of `ports` or `route.<port>` (unknown keys are
//! refused):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `ports=<port>,...` | | broadcast: every event goes to each of these ports |
//! | `route.<port>=<glob>,...` | | routing: events whose routed attribute matches one of the globs go to `<port>` |
//! | `route-by=<attribute>` | `type` | the attribute matched by the routes (`type`, `subject`, `source`, an extension, ...) |
//! | `match=all\|first` | `all` | `all`: an event goes to every port with a matching route; `first`: only to the first, in the order the routes were configured |
//! | `default=<port>` | none | where events no route matches go; without it they are dropped |
//!
//! `route-by`, `match` and `default` apply to routing only. Events arrive on
//! any input port and are forwarded by index, so a broadcast to N ports
//! sends back N small references, never N copies.
//!
//! `match=all` is the default because it does not depend on the order of the
//! configuration entries, which some ways of writing configuration lose.

use fnaa_sdk::glob::PatternSet;
use fnaa_sdk::{
    Config, Event, InitError, Outputs, PluginInfo, ProcessError, Processor,
    event::is_valid_attribute_name,
};

/// How a distributor picks the ports of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distribution {
    /// Every event to each of these ports.
    Broadcast(Vec<String>),
    /// Each event to the ports whose patterns match its routed attribute.
    Routes {
        /// The attribute matched.
        attribute: String,
        /// `(port, patterns)` in configuration order.
        routes: Vec<(String, PatternSet)>,
        /// Only the first matching route.
        first_only: bool,
        /// The port of events no route matches; dropped when `None`.
        default: Option<String>,
    },
}

impl Distribution {
    /// Reads the configuration described in the crate documentation.
    pub fn from_config(config: &Config) -> Result<Self, InitError> {
        config.reject_unknown(&["ports", "route.*", "route-by", "match", "default"])?;
        let routes: Vec<(&str, &str)> = config.with_prefix("route.").collect();
        if config.contains("ports") {
            if !routes.is_empty() {
                return Err(InitError::invalid_value(
                    "ports",
                    "cannot be combined with route.<port>",
                ));
            }
            if let Some(key) = ["route-by", "match", "default"]
                .into_iter()
                .find(|k| config.contains(k))
            {
                return Err(InitError::invalid_value(key, "only used with route.<port>"));
            }
            let ports = config.list("ports");
            if ports.is_empty() {
                return Err(InitError::invalid_value("ports", "lists no port"));
            }
            let mut unique: Vec<String> = Vec::with_capacity(ports.len());
            for port in ports {
                if unique.iter().any(|p| p == port) {
                    return Err(InitError::invalid_value(
                        "ports",
                        format!("port `{port}` is listed twice"),
                    ));
                }
                unique.push(port.to_owned());
            }
            return Ok(Distribution::Broadcast(unique));
        }
        if routes.is_empty() {
            return Err(InitError::Other(
                "set either `ports` (broadcast) or at least one `route.<port>` (routing)".into(),
            ));
        }
        let mut parsed: Vec<(String, PatternSet)> = Vec::with_capacity(routes.len());
        for (port, patterns) in routes {
            let set = PatternSet::parse(patterns);
            if set.is_empty() {
                return Err(InitError::invalid_value(
                    format!("route.{port}"),
                    "lists no pattern",
                ));
            }
            // A repeated key: the last value wins, as everywhere in Config.
            parsed.retain(|(p, _)| p != port);
            parsed.push((port.to_owned(), set));
        }
        let attribute = config.get("route-by").map(str::trim).unwrap_or("type");
        if !is_valid_attribute_name(attribute) {
            return Err(InitError::invalid_value(
                "route-by",
                "not an attribute name (a-z, 0-9)",
            ));
        }
        let first_only = match config.get("match").map(str::trim) {
            None | Some("all") => false,
            Some("first") => true,
            Some(other) => {
                return Err(InitError::invalid_value(
                    "match",
                    format!("`{other}` is neither `all` nor `first`"),
                ));
            }
        };
        let default = match config.get("default").map(str::trim) {
            Some("") => {
                return Err(InitError::invalid_value(
                    "default",
                    "a port name cannot be empty",
                ));
            }
            other => other.map(str::to_owned),
        };
        Ok(Distribution::Routes {
            attribute: attribute.to_owned(),
            routes: parsed,
            first_only,
            default,
        })
    }

    /// Calls `to_port` for each port `event` goes to, in order.
    pub fn ports_of<'a>(&'a self, event: &Event, mut to_port: impl FnMut(&'a str)) {
        match self {
            Distribution::Broadcast(ports) => ports.iter().for_each(|port| to_port(port)),
            Distribution::Routes {
                attribute,
                routes,
                first_only,
                default,
            } => {
                let value = event.attribute(attribute);
                let mut matched = false;
                if let Some(value) = value.as_deref() {
                    for (port, patterns) in routes {
                        if patterns.matches(value) {
                            matched = true;
                            to_port(port);
                            if *first_only {
                                break;
                            }
                        }
                    }
                }
                if !matched && let Some(port) = default {
                    to_port(port);
                }
            }
        }
    }
}

/// The distributor processor.
#[derive(Debug)]
pub struct Distributor {
    distribution: Distribution,
}

impl Processor for Distributor {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "distributor",
            env!("CARGO_PKG_VERSION"),
            "1 -> N broadcast (ports) or routing by attribute globs (route.<port>), with an optional default port",
            true,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        Ok(Distributor {
            distribution: Distribution::from_config(&config)?,
        })
    }

    fn process(
        &mut self,
        _port: &str,
        batch: Vec<Event>,
        out: &mut Outputs,
    ) -> Result<(), ProcessError> {
        for (index, event) in batch.iter().enumerate() {
            self.distribution
                .ports_of(event, |port| out.forward(index, port));
        }
        Ok(())
    }
}

fnaa_sdk::export_processor!(Distributor);

#[cfg(test)]
mod tests {
    use fnaa_sdk::Output;

    use super::*;

    fn distributor(pairs: &[(&str, &str)]) -> Result<Distributor, InitError> {
        Distributor::init(Config::from_pairs(pairs.iter().copied()))
    }

    fn run(d: &mut Distributor, types: &[&str]) -> Vec<(String, u32)> {
        let batch = types
            .iter()
            .enumerate()
            .map(|(i, ty)| Event::new(i.to_string(), "/s", *ty))
            .collect();
        let mut out = Outputs::new();
        d.process("in", batch, &mut out).unwrap();
        out.into_vec()
            .into_iter()
            .map(|e| match e.output {
                Output::Forward(i) => (e.port, i),
                Output::Emit(_) => panic!("distributor only forwards"),
            })
            .collect()
    }

    fn pairs(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
        expected
            .iter()
            .map(|(p, i)| ((*p).to_owned(), *i))
            .collect()
    }

    #[test]
    fn broadcasts_to_every_port() {
        let mut d = distributor(&[("ports", "a, b")]).unwrap();
        assert_eq!(
            run(&mut d, &["x", "y"]),
            pairs(&[("a", 0), ("b", 0), ("a", 1), ("b", 1)])
        );
    }

    #[test]
    fn routes_all_matches_with_a_default() {
        let mut d = distributor(&[
            ("route.links", "kytos/topology.link_*"),
            ("route.topology", "kytos/topology.*"),
            ("default", "rest"),
        ])
        .unwrap();
        assert_eq!(
            run(
                &mut d,
                &[
                    "kytos/topology.link_up",
                    "kytos/topology.switch.new",
                    "kytos/of_core.x"
                ]
            ),
            pairs(&[("links", 0), ("topology", 0), ("topology", 1), ("rest", 2)])
        );
    }

    #[test]
    fn routes_first_match_and_drops_unmatched() {
        let mut d = distributor(&[
            ("route.links", "kytos/topology.link_*"),
            ("route.topology", "kytos/topology.*"),
            ("match", "first"),
        ])
        .unwrap();
        assert_eq!(
            run(
                &mut d,
                &[
                    "kytos/topology.link_up",
                    "kytos/topology.switch.new",
                    "kytos/of_core.x"
                ]
            ),
            pairs(&[("links", 0), ("topology", 1)])
        );
    }

    #[test]
    fn routes_by_another_attribute() {
        let mut d = distributor(&[("route.l1", "link-1"), ("route-by", "subject")]).unwrap();
        let mut with_subject = Event::new("1", "/s", "t");
        with_subject.subject = Some("link-1".into());
        let mut out = Outputs::new();
        d.process(
            "in",
            vec![Event::new("0", "/s", "t"), with_subject],
            &mut out,
        )
        .unwrap();
        assert_eq!(out.as_slice().len(), 1);
        assert_eq!(out.as_slice()[0].output, Output::Forward(1));
    }

    #[test]
    fn configuration() {
        assert!(matches!(distributor(&[]), Err(InitError::Other(_))));
        assert_eq!(
            distributor(&[("port", "a")]).err(),
            Some(InitError::UnknownKey("port".into()))
        );
        let invalid = |pairs: &[(&str, &str)], key: &str| {
            assert!(
                matches!(distributor(pairs), Err(InitError::InvalidValue { key: k, .. }) if k == key),
                "{pairs:?}"
            );
        };
        invalid(&[("ports", "a"), ("route.b", "*")], "ports");
        invalid(&[("ports", "a"), ("default", "b")], "default");
        invalid(&[("ports", " , ")], "ports");
        invalid(&[("ports", "a,a")], "ports");
        invalid(&[("route.a", "")], "route.a");
        invalid(&[("route.a", "*"), ("match", "any")], "match");
        invalid(&[("route.a", "*"), ("route-by", "Type")], "route-by");
        assert!(Distributor::info().stateless);
    }
}
