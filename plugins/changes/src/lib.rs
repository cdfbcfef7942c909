//! Change-detection processor: passes an event on only when the value it
//! tracks differs from the last value seen for the same key. This is
//! Kytos' "publish only if the link status changed": with `key=subject`
//! and `value=/link/status`, a second `down` for link `l1` is dropped and the
//! next `up` passes.
//!
//! Stateful: the last value per key is kept in the host's `state`, so it
//! survives eviction and re-creation of the instance, and a failed batch
//! leaves it as it was. (That is why this is a plugin of its own: `signal`
//! stays stateless and shareable.)
//!
//! Configuration (unknown keys are refused):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `value=<field>` | required | the tracked value |
//! | `key=<field>` | `subject` | what the value belongs to (one entry per distinct key) |
//! | `output=<port>` | mirror of the input port (`in` -> `out`) | where events that pass go |
//!
//! A field is an attribute name (`subject`, `type`, an extension), a JSON
//! Pointer into the data (`/link/status`), or `data` (the whole payload).
//!
//! The first event for a key passes. Events lacking the key or the value
//! pass (there is nothing to compare). A pointer read from data that is not
//! JSON fails the batch with `invalid-event`. Events that pass are forwarded
//! by index. If the host refuses to store a value (quota), the event still
//! passes and a warning is logged: a repeated publication is better than a
//! lost change.
//!
//! State layout: one entry per key, `last=<key>` (keys up to 128 bytes of
//! UTF-8) or `last#<hash>` (longer keys); the value is `=<value>` (up to 128
//! bytes) or `#<hash>` (longer values: a 64-bit FNV-1a fingerprint).

use fnaa_sdk::field::{Field, FieldReader};
use fnaa_sdk::hash::fnv1a64;
use fnaa_sdk::state::Staged;
use fnaa_sdk::{
    Config, Event, InitError, Outputs, PluginInfo, ProcessError, Processor, log, mirror_port,
};

/// Keys and values up to this many bytes are stored as they are, longer ones
/// as a hash.
const INLINE_LIMIT: usize = 128;

/// The change-detection processor.
#[derive(Debug)]
pub struct Changes {
    key: Field,
    value: Field,
    output: Option<String>,
}

/// The state key under which the last value for `key` is kept.
pub fn state_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if text.len() <= INLINE_LIMIT => format!("last={text}"),
        _ => format!("last#{:016x}", fnv1a64(key)),
    }
}

/// What is stored for a value: the value itself when short, else its hash.
pub fn fingerprint(value: &[u8]) -> Vec<u8> {
    if value.len() <= INLINE_LIMIT {
        let mut stored = Vec::with_capacity(value.len() + 1);
        stored.push(b'=');
        stored.extend_from_slice(value);
        stored
    } else {
        format!("#{:016x}", fnv1a64(value)).into_bytes()
    }
}

fn field(config: &Config, key: &str, default: Option<&str>) -> Result<Field, InitError> {
    let reference = match (config.get(key), default) {
        (Some(reference), _) | (None, Some(reference)) => reference.trim(),
        (None, None) => return Err(InitError::MissingKey(key.to_owned())),
    };
    Field::parse(reference).map_err(|e| InitError::invalid_value(key, e))
}

impl Processor for Changes {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "changes",
            env!("CARGO_PKG_VERSION"),
            "passes an event on only when its tracked value changed for its key (state kept by the host)",
            false,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        config.reject_unknown(&["key", "value", "output"])?;
        let output = match config.get("output").map(str::trim) {
            Some("") => {
                return Err(InitError::invalid_value(
                    "output",
                    "a port name cannot be empty",
                ));
            }
            other => other.map(str::to_owned),
        };
        Ok(Changes {
            key: field(&config, "key", Some("subject"))?,
            value: field(&config, "value", None)?,
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
        // Reads go to the host once per key; writes are made at the end, and
        // later events of the batch see the values of earlier ones.
        let mut state = Staged::new();
        for (index, event) in batch.iter().enumerate() {
            let reader = FieldReader::new(event);
            let invalid = |e| ProcessError::invalid_event(index, e);
            let (Some(key), Some(value)) = (
                reader.read(&self.key).map_err(invalid)?,
                reader.read(&self.value).map_err(invalid)?,
            ) else {
                out.forward(index, output);
                continue;
            };
            let state_key = state_key(&key);
            let fingerprint = fingerprint(&value);
            if state.get(&state_key) == Some(fingerprint.as_slice()) {
                continue;
            }
            state.set(&state_key, fingerprint);
            out.forward(index, output);
        }
        if let Err(error) = state.commit() {
            log::log(
                log::Level::Warn,
                "could not store the last values; later repeats may pass",
                &[("error", &error.to_string())],
            );
        }
        Ok(())
    }
}

fnaa_sdk::export_processor!(Changes);

#[cfg(test)]
mod tests {
    use fnaa_sdk::Output;

    use super::*;

    fn changes(pairs: &[(&str, &str)]) -> Result<Changes, InitError> {
        Changes::init(Config::from_pairs(pairs.iter().copied()))
    }

    fn link(id: &str, link: &str, status: &str) -> Event {
        let mut e = Event::new(id, "/kytos", "kytos/topology.link_status").with_data(
            "application/json",
            format!(r#"{{"link":{{"id":"{link}","status":"{status}"}}}}"#),
        );
        e.subject = Some(link.to_owned());
        e
    }

    fn forwarded(processor: &mut Changes, batch: Vec<Event>) -> Vec<u32> {
        let mut out = Outputs::new();
        processor.process("in", batch, &mut out).unwrap();
        out.iter()
            .map(|e| match e.output {
                Output::Forward(i) => i,
                Output::Emit(_) => panic!("changes only forwards"),
            })
            .collect()
    }

    #[test]
    fn passes_only_status_changes_per_link() {
        let mut p = changes(&[("value", "/link/status")]).unwrap();
        let batch = vec![
            link("1", "l1", "up"),
            link("2", "l1", "up"),
            link("3", "l2", "up"),
            link("4", "l1", "down"),
            link("5", "l1", "down"),
        ];
        assert_eq!(forwarded(&mut p, batch), vec![0, 2, 3]);
        // The state outlives the instance: a new one remembers l1 is down.
        let mut p = changes(&[("value", "/link/status")]).unwrap();
        assert_eq!(
            forwarded(&mut p, vec![link("6", "l1", "down"), link("7", "l1", "up")]),
            vec![1]
        );
    }

    #[test]
    fn events_without_key_or_value_pass() {
        let mut p = changes(&[("key", "/link/id"), ("value", "linkstatus")]).unwrap();
        assert_eq!(
            forwarded(&mut p, vec![link("1", "l1", "up"), link("2", "l1", "up")]),
            vec![0, 1]
        );
    }

    #[test]
    fn long_values_are_fingerprinted() {
        let long = "x".repeat(500);
        assert_eq!(fingerprint(b"up"), b"=up".to_vec());
        assert!(fingerprint(long.as_bytes()).starts_with(b"#"));
        assert_ne!(
            fingerprint(long.as_bytes()),
            fingerprint(format!("{long}y").as_bytes())
        );
        assert_eq!(state_key(b"l1"), "last=l1");
        assert!(state_key(long.as_bytes()).starts_with("last#"));
        assert!(state_key(&[0xff, 0xfe]).starts_with("last#"));
    }

    #[test]
    fn non_json_data_is_invalid() {
        let mut p = changes(&[("value", "/status")]).unwrap();
        let event = Event::new("1", "/s", "t").with_data("text/plain", b"up".to_vec());
        let mut out = Outputs::new();
        assert!(matches!(
            p.process("in", vec![Event::new("0", "/s", "t"), event], &mut out),
            Err(ProcessError::InvalidEvent { index: 1, .. })
        ));
    }

    #[test]
    fn configuration() {
        assert_eq!(
            changes(&[]).err(),
            Some(InitError::MissingKey("value".into()))
        );
        assert_eq!(
            changes(&[("value", "x"), ("keys", "y")]).err(),
            Some(InitError::UnknownKey("keys".into()))
        );
        assert!(
            matches!(changes(&[("value", "Bad Name")]), Err(InitError::InvalidValue { key, .. }) if key == "value")
        );
        assert!(!Changes::info().stateless);
    }
}
