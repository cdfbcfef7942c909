//! Raw mode: messages from producers that know nothing of CloudEvents (a
//! sensor publishing `21.5` or `{"t":21.5}`) become events, and events go
//! out as their bare data for consumers that want nothing else.
//!
//! Wrapping: `source` and `type` come from configuration, `subject` from an
//! optional template over the message (`{destination}`, `{routing_key}`,
//! `{key}`), `time` is the arrival time, `id` is unique per instance
//! (`<arrival time in ns>-<sequence>`), `datacontenttype` is the message's
//! content type, else the configured one, else `application/json` when the
//! payload is JSON and `application/octet-stream` otherwise.

use std::borrow::Cow;

use super::template::{Template, TemplateError};
use super::{BindingError, ConfigError, EncodeMode, Message, Mode, rfc3339_utc};
use crate::{AttributeValue, Event};

/// How raw messages are wrapped into events.
#[derive(Debug, Clone)]
pub struct Wrapper {
    pub source: String,
    pub ty: String,
    pub subject: Option<Template>,
    pub data_content_type: Option<String>,
    sequence: u64,
}

impl Wrapper {
    pub fn new(
        source: String,
        ty: String,
        subject: Option<Template>,
        data_content_type: Option<String>,
    ) -> Self {
        Wrapper {
            source,
            ty,
            subject,
            data_content_type,
            sequence: 0,
        }
    }

    /// Wraps `message`, which arrived at `now` (seconds, nanoseconds since
    /// the Unix epoch).
    pub fn wrap(&mut self, message: &Message, now: (u64, u32)) -> Result<Event, TemplateError> {
        self.sequence += 1;
        let id = format!("{}{:09}-{}", now.0, now.1, self.sequence);
        let mut event = Event::new(id, self.source.clone(), self.ty.clone());
        event.time = Some(rfc3339_utc(now.0, now.1));
        if let Some(subject) = &self.subject {
            let key = message.key.as_deref().map(String::from_utf8_lossy);
            event.subject = Some(subject.render_with(
                |name| {
                    match name {
                        "destination" => Some(Cow::Borrowed(message.destination.name.as_str())),
                        "routing_key" => message
                            .destination
                            .routing_key
                            .as_deref()
                            .map(Cow::Borrowed),
                        "key" => key.clone(),
                        _ => None,
                    }
                },
                &[],
            )?);
        }
        let content_type = message
            .content_type
            .clone()
            .or_else(|| self.data_content_type.clone())
            .unwrap_or_else(|| {
                if serde_json::from_slice::<serde::de::IgnoredAny>(&message.payload).is_ok() {
                    "application/json".to_owned()
                } else {
                    "application/octet-stream".to_owned()
                }
            });
        event.data_content_type = Some(content_type);
        event.data = Some(message.payload.clone());
        Ok(event)
    }
}

/// Unwraps `event` into a message carrying only its data, with its
/// `datacontenttype` as content type and `partitionkey` as key.
pub fn unwrap(event: &Event) -> Message {
    Message {
        content_type: event.data_content_type.clone(),
        payload: event.data.clone().unwrap_or_default(),
        key: match event.extension("partitionkey") {
            Some(AttributeValue::String(k)) => Some(k.clone().into_bytes()),
            _ => None,
        },
        ..Message::default()
    }
}

/// The raw binding for [`Codec`](super::Codec): only mode `raw`, with the
/// `routing_key` and `key` templates.
#[derive(Debug, Clone, Copy)]
pub struct Wire;

impl super::Wire for Wire {
    fn takes(&self, key: &str) -> bool {
        key == "routing_key" || key == "key"
    }

    fn default_mode(&self) -> EncodeMode {
        EncodeMode::Raw
    }

    fn check_mode(&self, mode: EncodeMode) -> Result<(), ConfigError> {
        if mode == EncodeMode::Raw {
            Ok(())
        } else {
            Err(ConfigError::invalid(
                "mode",
                "the raw connector only has mode `raw`",
            ))
        }
    }

    /// Not reached: the raw binding always has mode `raw` (checked when the
    /// codec is configured), which never asks the binding to encode.
    fn encode(&self, event: &Event, _mode: Mode) -> Message {
        unwrap(event)
    }

    /// Not reached, as for `encode`.
    fn decode(&self, _message: &Message) -> Result<Event, BindingError> {
        Err(BindingError::Template(
            "the raw connector only has mode `raw`".into(),
        ))
    }

    fn clone_box(&self) -> Box<dyn super::Wire> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::Destination;

    #[test]
    fn wraps_json_and_bytes() {
        let mut w = Wrapper::new(
            "/sensors".into(),
            "org.example.reading".into(),
            Some(Template::parse("{destination}").unwrap()),
            None,
        );
        let m = Message {
            destination: Destination {
                name: "sensors/7/temp".into(),
                routing_key: None,
            },
            payload: br#"{"t":21.5}"#.to_vec(),
            ..Message::default()
        };
        let e = w.wrap(&m, (1_795_341_600, 42)).unwrap();
        assert_eq!(e.source, "/sensors");
        assert_eq!(e.ty, "org.example.reading");
        assert_eq!(e.subject.as_deref(), Some("sensors/7/temp"));
        assert_eq!(e.time.as_deref(), Some("2026-11-22T10:00:00.000000042Z"));
        assert_eq!(e.data_content_type.as_deref(), Some("application/json"));
        assert_eq!(e.data.as_deref(), Some(&br#"{"t":21.5}"#[..]));
        let e2 = w
            .wrap(
                &Message {
                    payload: vec![0xff, 0],
                    ..m.clone()
                },
                (1_795_341_600, 42),
            )
            .unwrap();
        assert_ne!(e.id, e2.id);
        assert_eq!(
            e2.data_content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(unwrap(&e).payload, m.payload);
        assert_eq!(unwrap(&e).content_type.as_deref(), Some("application/json"));
    }
}
