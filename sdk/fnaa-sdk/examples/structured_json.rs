//! A minimal broker connector: CloudEvents JSON in structured mode, every
//! event to one configured destination. It shows the shape of a connector;
//! the real protocol bindings live in `plugins/`.
//!
//! Configuration: `destination=<topic or exchange>` (required).

use fnaa_sdk::{Config, Connector, Destination, Event, InitError, Message, PluginInfo};

/// Encodes events as `application/cloudevents+json` messages.
struct StructuredJson {
    destination: String,
}

const CONTENT_TYPE: &str = "application/cloudevents+json";

impl Connector for StructuredJson {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "structured-json",
            env!("CARGO_PKG_VERSION"),
            "CloudEvents JSON, structured mode",
            true,
        )
    }

    fn init(config: Config) -> Result<Self, InitError> {
        config.reject_unknown(&["destination"])?;
        Ok(StructuredJson {
            destination: config.require("destination")?.to_owned(),
        })
    }

    fn encode(&mut self, batch: Vec<Event>) -> Vec<Result<Message, String>> {
        batch
            .iter()
            .map(|event| {
                Ok(Message {
                    destination: Destination {
                        name: self.destination.clone(),
                        routing_key: None,
                    },
                    key: Some(event.id.clone().into_bytes()),
                    content_type: Some(CONTENT_TYPE.to_owned()),
                    headers: Vec::new(),
                    payload: fnaa_sdk::event::to_json(event),
                })
            })
            .collect()
    }

    fn decode(&mut self, batch: Vec<Message>) -> Vec<Result<Event, String>> {
        batch
            .iter()
            .map(|message| fnaa_sdk::event::from_json(&message.payload).map_err(|e| e.to_string()))
            .collect()
    }
}

fnaa_sdk::export_connector!(StructuredJson);
