//! An example Flow Processor, written to be copied.
//!
//! It watches a numeric field of each event's JSON data (say the
//! temperature in `{"temperature": 31.5}`) and:
//!
//! * forwards every event, unchanged, to the default output port `out`;
//! * emits a new *alert* event to the port `alerts` when the value of one
//!   source crosses the threshold upwards, once per crossing: the source
//!   must drop back to the threshold or below before it alerts again.
//!
//! Remembering "this source is above" between batches is state. It lives in
//! the host's `state` interface, not in a field of the processor, because
//! the host may drop this instance at any time (idle eviction, a trap in
//! another call, a restart) and create a fresh one with `init`.
//!
//! Configuration (keys and values are strings given by the operator):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `field` | required | JSON Pointer of the number to watch, e.g. `/temperature` |
//! | `above` | required | the threshold, a number |
//! | `alert-type` | `com.example.threshold.exceeded` | the `type` of alert events |

// Everything a processor needs comes from the SDK; a plugin crate never uses
// wit-bindgen directly.
use fnaa_sdk::json::{self, DataError, Pointer, serde_json};
use fnaa_sdk::state::Staged;
use fnaa_sdk::{
    Config, DEFAULT_OUTPUT, Event, InitError, Outputs, PluginInfo, ProcessError, Processor, clock,
    log,
};

/// The output port of alert events. Port names are free-form; the operator
/// connects each one to a flow.
const ALERTS_PORT: &str = "alerts";

/// The configuration keys this processor understands. Anything else is
/// refused at init, so that a typo (`abov=30`) fails loudly instead of
/// being ignored.
const KEYS: &[&str] = &["field", "above", "alert-type"];

/// One configured instance. It holds only configuration: anything that
/// must outlive the instance goes to `state`.
pub struct Threshold {
    field: Pointer,
    above: f64,
    alert_type: String,
}

impl Processor for Threshold {
    /// Describes the plugin to the host. `stateless: false` because we keep
    /// per-source state; a plugin that keeps none says `true`, and the host
    /// may then share one instance between subscriptions.
    fn info() -> PluginInfo {
        PluginInfo::new(
            // Keep it equal to the crate name without any `fnaa-plugin-`
            // prefix: that is the name the host knows the component by.
            "processor-template",
            env!("CARGO_PKG_VERSION"),
            "forwards events and emits an alert when a JSON field crosses a threshold",
            false,
        )
    }

    /// Called once per instance, before any `process`. Validate everything
    /// here: an error reaches the operator when they create the
    /// subscription, not at the first event.
    fn init(config: Config) -> Result<Self, InitError> {
        config.reject_unknown(KEYS)?;

        // `require` answers `InitError::MissingKey("field")` when absent.
        let field = Pointer::parse(config.require("field")?)
            // Errors name the key, so the operator knows what to fix.
            .map_err(|e| InitError::invalid_value("field", e))?;

        // Typed getters parse with `FromStr` and name the key on error.
        let above: f64 = config
            .parse("above")?
            .ok_or_else(|| InitError::MissingKey("above".into()))?;
        if !above.is_finite() {
            return Err(InitError::invalid_value("above", "must be a finite number"));
        }

        let alert_type = config
            .get("alert-type")
            .unwrap_or("com.example.threshold.exceeded")
            .to_owned();

        Ok(Threshold {
            field,
            above,
            alert_type,
        })
    }

    /// Called with each batch of events that arrived on input `port` (`in`
    /// unless the operator named more inputs). Push outputs to `out` in the
    /// order they should be published.
    fn process(
        &mut self,
        _port: &str,
        batch: Vec<Event>,
        out: &mut Outputs,
    ) -> Result<(), ProcessError> {
        // A batch-local view of the state: each key is read from the host
        // once, and writes are sent when the batch is done. The host commits
        // them only if `process` succeeds, so a failed batch leaves the
        // state as it was and can be retried.
        let mut state = Staged::new();

        for (index, event) in batch.iter().enumerate() {
            // Forward, don't emit, events you pass on unchanged: the host
            // kept its own copy, so only the index crosses back.
            out.forward(index, DEFAULT_OUTPUT);

            let value = match self.value_of(event) {
                Ok(Some(value)) => value,
                // No such field: nothing to watch in this event.
                Ok(None) => continue,
                // Data that is not JSON, or a field that is not a number:
                // report the event as invalid. The host dead-letters it and
                // processes the rest of the batch again. Never panic on bad
                // input: a panic is a trap, and the host discards the
                // instance.
                Err(reason) => return Err(ProcessError::invalid_event(index, reason)),
            };

            // State keys are strings private to this instance.
            let key = format!("above/{}", event.source);
            let was_above = state.get(&key).is_some();
            let is_above = value > self.above;
            match (was_above, is_above) {
                (false, true) => {
                    state.set(&key, Vec::new());
                    out.emit(self.alert(event, value), ALERTS_PORT);
                }
                (true, false) => state.delete(&key),
                _ => {}
            }
        }

        // Send the staged writes. If the host refuses one (quota), fail the
        // batch: the host rolls back and may retry.
        state
            .commit()
            .map_err(|e| ProcessError::failed(format!("cannot store state: {e}")))
    }
}

impl Threshold {
    /// The watched number in `event`, `None` if the field is absent.
    fn value_of(&self, event: &Event) -> Result<Option<f64>, String> {
        let data = match json::parse_data(event) {
            Ok(data) => data,
            Err(DataError::NoData) => return Ok(None),
            Err(other) => return Err(other.to_string()),
        };
        match self.field.resolve(&data) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("`{}` is not a number: {value}", self.field)),
        }
    }

    /// A new alert event about `cause`.
    fn alert(&self, cause: &Event, value: f64) -> Event {
        // Logs go to the host's log, tagged with the plugin and instance.
        log::info!("{} crossed {} with {}", cause.source, self.above, value);

        // A new event needs an id unique within its source: derive it from
        // the cause, so that a retried batch produces the same alert id and
        // consumers can drop the duplicate.
        let mut alert = Event::new(
            format!("{}.alert", cause.id),
            cause.source.clone(),
            self.alert_type.clone(),
        )
        .with_data(
            "application/json",
            serde_json::json!({
                "field": self.field.as_str(),
                "value": value,
                "above": self.above,
                "cause": cause.id,
            })
            .to_string(),
        );
        alert.subject = cause.subject.clone();
        // Read time from the host's clock (not `std::time`), so that the
        // host can run the plugin against a fixed clock in tests.
        alert.time = Some(clock::now().to_rfc3339());
        alert
    }
}

// Exactly one export per crate: this generates the component's entry points
// (`info`, `init`, `process`) and keeps the instance between calls.
fnaa_sdk::export_processor!(Threshold);

// The logic can be unit-tested on your machine's target: off wasm32 the SDK
// replaces the host's log, state and clock with in-process test doubles.
//
//   cargo test --target x86_64-unknown-linux-gnu
#[cfg(test)]
mod tests {
    use fnaa_sdk::Output;

    use super::*;

    fn reading(id: &str, source: &str, temperature: f64) -> Event {
        Event::new(id, source, "com.example.temperature").with_data(
            "application/json",
            format!(r#"{{"temperature":{temperature}}}"#),
        )
    }

    fn alerts(processor: &mut Threshold, batch: Vec<Event>) -> Vec<String> {
        let mut out = Outputs::new();
        processor
            .process("in", batch, &mut out)
            .expect("batch succeeds");
        out.iter()
            .filter_map(|emitted| match &emitted.output {
                Output::Emit(alert) if emitted.port == ALERTS_PORT => Some(alert.id.clone()),
                _ => None,
            })
            .collect()
    }

    fn threshold() -> Threshold {
        Threshold::init(Config::from_pairs([
            ("field", "/temperature"),
            ("above", "30"),
        ]))
        .expect("valid config")
    }

    #[test]
    fn alerts_once_per_crossing() {
        let mut p = threshold();
        let batch = vec![
            reading("1", "/room-1", 25.0),
            reading("2", "/room-1", 31.0),
            reading("3", "/room-1", 32.0),
            reading("4", "/room-2", 35.0),
            reading("5", "/room-1", 29.0),
            reading("6", "/room-1", 33.0),
        ];
        assert_eq!(alerts(&mut p, batch), vec!["2.alert", "4.alert", "6.alert"]);
        // A fresh instance remembers that room 1 is still above.
        assert!(alerts(&mut threshold(), vec![reading("7", "/room-1", 34.0)]).is_empty());
    }

    #[test]
    fn refuses_typos_and_bad_values() {
        let init = |pairs: &[(&str, &str)]| {
            Threshold::init(Config::from_pairs(pairs.iter().copied())).err()
        };
        assert_eq!(
            init(&[("field", "/t"), ("abov", "30")]),
            Some(InitError::UnknownKey("abov".into()))
        );
        assert_eq!(
            init(&[("field", "/t")]),
            Some(InitError::MissingKey("above".into()))
        );
        assert!(
            matches!(init(&[("field", "t"), ("above", "1")]), Some(InitError::InvalidValue { key, .. }) if key == "field")
        );
    }

    #[test]
    fn non_numeric_values_are_invalid_events() {
        let mut p = threshold();
        let bad = Event::new("1", "/room-1", "t")
            .with_data("application/json", r#"{"temperature":"hot"}"#);
        let mut out = Outputs::new();
        assert!(matches!(
            p.process("in", vec![bad], &mut out),
            Err(ProcessError::InvalidEvent { index: 0, .. })
        ));
    }
}
