//! Attribute rewrites configured as `set.<attribute>=<value>` and
//! `remove=<attribute>,<attribute>`, shared by the bridge and signal
//! processors.

use std::fmt::Write as _;

use fnaa_event::is_valid_attribute_name;

use crate::{AttributeValue, Config, Event, InitError};

/// The configuration keys a [`Rewrite`] reads, for
/// [`Config::reject_unknown`].
pub const KEYS: [&str; 2] = ["set.*", "remove"];

/// Attributes to set (as strings) and to remove, validated at init so that
/// applying them cannot fail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    set: Vec<(String, String)>,
    remove: Vec<String>,
}

impl Rewrite {
    /// Reads `set.<attribute>=<value>` and `remove=<attribute>,...`.
    ///
    /// Refuses invalid attribute names, `data`, setting `specversion`,
    /// removing a required attribute (`id`, `source`, `specversion`, `type`),
    /// and an attribute both set and removed.
    pub fn from_config(config: &Config) -> Result<Self, InitError> {
        let mut set: Vec<(String, String)> = Vec::new();
        for (name, value) in config.with_prefix("set.") {
            let key = format!("set.{name}");
            match name {
                "data" => return Err(InitError::invalid_value(key, "`data` is not an attribute")),
                "specversion" => {
                    return Err(InitError::invalid_value(
                        key,
                        "`specversion` cannot be changed",
                    ));
                }
                _ if !is_valid_attribute_name(name) => {
                    return Err(InitError::invalid_value(
                        key,
                        "attribute names are lower-case letters and digits",
                    ));
                }
                _ => {}
            }
            // A repeated key: the last value wins, as everywhere in Config.
            set.retain(|(n, _)| n != name);
            set.push((name.to_owned(), value.to_owned()));
        }
        let mut remove: Vec<String> = Vec::new();
        for name in config.list("remove") {
            let reason = match name {
                "id" | "source" | "specversion" | "type" => {
                    Some(format!("`{name}` is required by CloudEvents"))
                }
                "data" => Some("`data` is not an attribute".to_owned()),
                _ if !is_valid_attribute_name(name) => {
                    Some(format!("`{name}` is not an attribute name (a-z, 0-9)"))
                }
                _ if set.iter().any(|(n, _)| n == name) => {
                    Some(format!("`{name}` is also set with `set.{name}`"))
                }
                _ => None,
            };
            if let Some(reason) = reason {
                return Err(InitError::invalid_value("remove", reason));
            }
            if !remove.iter().any(|n| n == name) {
                remove.push(name.to_owned());
            }
        }
        Ok(Rewrite { set, remove })
    }

    /// True when the rewrite does nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// True when applying the rewrite would change `event`. Allocates
    /// nothing, so that unchanged events can be forwarded cheaply.
    pub fn changes(&self, event: &Event) -> bool {
        self.set
            .iter()
            .any(|(name, value)| !has_string_attribute(event, name, value))
            || self.remove.iter().any(|name| has_attribute(event, name))
    }

    /// Applies the rewrite to `event`.
    pub fn apply(&self, event: &mut Event) {
        for (name, value) in &self.set {
            // Names were validated in `from_config`, so this cannot fail.
            let _ = event.set_attribute(name, value.as_str());
        }
        for name in &self.remove {
            let _ = event.remove_attribute(name);
        }
    }

    /// A one-line description for logs: `set source=/a; remove x,y`.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.set {
            let _ = write!(text, "set {name}={value}; ");
        }
        if !self.remove.is_empty() {
            let _ = write!(text, "remove {}", self.remove.join(","));
        }
        text.trim_end_matches("; ").to_owned()
    }
}

/// True when attribute `name` is present with exactly this string value (a
/// string extension, or a core attribute).
fn has_string_attribute(event: &Event, name: &str, value: &str) -> bool {
    match core_attribute(event, name) {
        Some(core) => core == Some(value),
        None => matches!(event.extension(name), Some(AttributeValue::String(s)) if s == value),
    }
}

fn has_attribute(event: &Event, name: &str) -> bool {
    match core_attribute(event, name) {
        Some(core) => core.is_some(),
        None => event.extension(name).is_some(),
    }
}

/// `Some(value)` for a core attribute name, `None` for an extension name.
fn core_attribute<'e>(event: &'e Event, name: &str) -> Option<Option<&'e str>> {
    Some(match name {
        "id" => Some(event.id.as_str()),
        "source" => Some(event.source.as_str()),
        "specversion" => Some(event.spec_version.as_str()),
        "type" => Some(event.ty.as_str()),
        "subject" => event.subject.as_deref(),
        "time" => event.time.as_deref(),
        "datacontenttype" => event.data_content_type.as_deref(),
        "dataschema" => event.data_schema.as_deref(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(pairs: &[(&str, &str)]) -> Result<Rewrite, InitError> {
        Rewrite::from_config(&Config::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn sets_and_removes() {
        let r = rewrite(&[
            ("set.source", "/bridge"),
            ("set.region", "eu"),
            ("remove", "subject, traceparent"),
        ])
        .unwrap();
        let mut event = Event::new("1", "/kytos", "t");
        event.subject = Some("s".into());
        event.set_extension("traceparent", AttributeValue::String("00-x".into()));
        assert!(r.changes(&event));
        r.apply(&mut event);
        assert_eq!(event.source, "/bridge");
        assert_eq!(
            event.extension("region"),
            Some(&AttributeValue::String("eu".into()))
        );
        assert_eq!(event.subject, None);
        assert_eq!(event.extension("traceparent"), None);
        assert!(!r.changes(&event), "applying twice changes nothing");
        assert_eq!(
            r.describe(),
            "set source=/bridge; set region=eu; remove subject,traceparent"
        );
    }

    #[test]
    fn a_value_of_another_type_is_a_change() {
        let r = rewrite(&[("set.hops", "3")]).unwrap();
        let mut event = Event::new("1", "/s", "t");
        event.set_extension("hops", AttributeValue::Integer(3));
        assert!(r.changes(&event));
    }

    #[test]
    fn refuses_bad_rewrites_at_init() {
        let invalid = |pairs: &[(&str, &str)], key: &str| {
            assert!(
                matches!(rewrite(pairs), Err(InitError::InvalidValue { key: k, .. }) if k == key),
                "{pairs:?}"
            );
        };
        invalid(&[("set.data", "x")], "set.data");
        invalid(&[("set.specversion", "2")], "set.specversion");
        invalid(&[("set.Bad", "x")], "set.Bad");
        invalid(&[("remove", "id")], "remove");
        invalid(&[("remove", "data")], "remove");
        invalid(&[("remove", "x-y")], "remove");
        invalid(&[("set.a", "1"), ("remove", "a")], "remove");
        assert!(rewrite(&[]).unwrap().is_empty());
    }
}
