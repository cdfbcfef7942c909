//! The CloudEvents JSON event format (structured mode), version 1.0.
//!
//! Decoding keeps JSON `data` byte for byte (no re-serialisation), keeps the
//! order of extension attributes and names the offending attribute in every
//! error.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::attributes::is_valid_attribute_name;
use crate::{AttributeValue, Event};

/// Why a JSON document is not a valid CloudEvents event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a JSON object: {0}")]
    Syntax(String),
    #[error("required attribute `{0}` is missing")]
    Missing(&'static str),
    #[error("attribute `{name}` must be {expected}")]
    WrongType {
        name: String,
        expected: &'static str,
    },
    #[error("attribute `{0}` appears more than once")]
    Duplicate(String),
    #[error("`{0}` is not a valid attribute name (only a-z and 0-9 are allowed)")]
    InvalidName(String),
    #[error("an event may carry `data` or `data_base64`, not both")]
    BothDataFields,
    #[error("`data_base64` is not valid base64: {0}")]
    Base64(String),
    #[error("unsupported specversion `{0}` (expected 1.0)")]
    SpecVersion(String),
}

/// The top-level members of a JSON object, in order, values left unparsed.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

fn string_of(name: &str, raw: &RawValue) -> Result<String, FormatError> {
    serde_json::from_str::<String>(raw.get()).map_err(|_| FormatError::WrongType {
        name: name.to_owned(),
        expected: "a string",
    })
}

fn extension_of(name: &str, raw: &RawValue) -> Result<AttributeValue, FormatError> {
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::String(s)) => Ok(AttributeValue::String(s)),
        Ok(serde_json::Value::Bool(b)) => Ok(AttributeValue::Boolean(b)),
        Ok(serde_json::Value::Number(n)) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .map(AttributeValue::Integer)
            .ok_or_else(|| FormatError::WrongType {
                name: name.to_owned(),
                expected: "a 32-bit integer when numeric",
            }),
        _ => Err(FormatError::WrongType {
            name: name.to_owned(),
            expected: "a string, a boolean or an integer",
        }),
    }
}

/// Decodes one event from the CloudEvents JSON format.
pub fn from_json(bytes: &[u8]) -> Result<Event, FormatError> {
    let Members(members) =
        serde_json::from_slice(bytes).map_err(|e| FormatError::Syntax(e.to_string()))?;
    let mut event = Event::new(String::new(), String::new(), String::new());
    event.spec_version.clear();
    let (mut id, mut source, mut ty, mut spec) = (false, false, false, false);
    let mut data: Option<&RawValue> = None;
    let mut data_base64: Option<&RawValue> = None;
    let mut seen: Vec<&str> = Vec::with_capacity(members.len());
    for (name, raw) in &members {
        if seen.contains(&name.as_ref()) {
            return Err(FormatError::Duplicate(name.to_string()));
        }
        seen.push(name);
        match name.as_ref() {
            "id" => (event.id, id) = (string_of(name, raw)?, true),
            "source" => (event.source, source) = (string_of(name, raw)?, true),
            "type" => (event.ty, ty) = (string_of(name, raw)?, true),
            "specversion" => (event.spec_version, spec) = (string_of(name, raw)?, true),
            "subject" => event.subject = Some(string_of(name, raw)?),
            "time" => event.time = Some(string_of(name, raw)?),
            "datacontenttype" => event.data_content_type = Some(string_of(name, raw)?),
            "dataschema" => event.data_schema = Some(string_of(name, raw)?),
            "data" => data = Some(raw),
            "data_base64" => data_base64 = Some(raw),
            other if is_valid_attribute_name(other) => {
                // `null` means "absent" in the JSON format.
                if raw.get() != "null" {
                    event
                        .extensions
                        .push((other.to_owned(), extension_of(other, raw)?));
                }
            }
            other => return Err(FormatError::InvalidName(other.to_owned())),
        }
    }
    for (present, attr) in [
        (spec, "specversion"),
        (id, "id"),
        (source, "source"),
        (ty, "type"),
    ] {
        if !present {
            return Err(FormatError::Missing(attr));
        }
    }
    if !event.spec_version.starts_with("1.") {
        return Err(FormatError::SpecVersion(event.spec_version));
    }
    event.data = match (data, data_base64) {
        (Some(_), Some(_)) => return Err(FormatError::BothDataFields),
        (None, Some(raw)) => {
            let text = string_of("data_base64", raw)?;
            Some(
                BASE64
                    .decode(text.as_bytes())
                    .map_err(|e| FormatError::Base64(e.to_string()))?,
            )
        }
        (Some(raw), None) if raw.get() == "null" => None,
        // Non-JSON content carried as a JSON string: the data is the string.
        (Some(raw), None) if !event.data_is_json() && raw.get().starts_with('"') => {
            Some(string_of("data", raw)?.into_bytes())
        }
        (Some(raw), None) => Some(raw.get().as_bytes().to_vec()),
        (None, None) => None,
    };
    Ok(event)
}

/// True for media types whose data the JSON format carries as a string.
fn is_text_media_type(media_type: &str) -> bool {
    let lower = media_type.to_ascii_lowercase();
    lower.starts_with("text/") || lower.contains("charset=") || lower.contains("xml")
}

/// Encodes one event in the CloudEvents JSON format.
pub fn to_json(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + event.data.as_ref().map_or(0, |d| d.len() * 4 / 3));
    let mut ser = serde_json::Serializer::new(&mut out);
    // Writing into a Vec cannot fail, and every value is a plain string,
    // number, bool or validated raw JSON.
    let _ = write_event(event, &mut ser);
    out
}

fn write_event<S: Serializer>(event: &Event, ser: S) -> Result<S::Ok, S::Error> {
    let mut map = ser.serialize_map(None)?;
    map.serialize_entry("specversion", &event.spec_version)?;
    map.serialize_entry("id", &event.id)?;
    map.serialize_entry("source", &event.source)?;
    map.serialize_entry("type", &event.ty)?;
    for (name, value) in [
        ("subject", &event.subject),
        ("time", &event.time),
        ("datacontenttype", &event.data_content_type),
        ("dataschema", &event.data_schema),
    ] {
        if let Some(value) = value {
            map.serialize_entry(name, value)?;
        }
    }
    for (name, value) in &event.extensions {
        match value {
            AttributeValue::Boolean(b) => map.serialize_entry(name, b)?,
            AttributeValue::Integer(i) => map.serialize_entry(name, i)?,
            other => map.serialize_entry(name, &other.to_canonical_string())?,
        }
    }
    if let Some(data) = &event.data {
        match data_encoding(event, data) {
            DataEncoding::Json(raw) => map.serialize_entry("data", raw)?,
            DataEncoding::Text(text) => map.serialize_entry("data", text)?,
            DataEncoding::Base64 => map.serialize_entry("data_base64", &BASE64.encode(data))?,
        }
    }
    map.end()
}

enum DataEncoding<'a> {
    Json(&'a RawValue),
    Text(&'a str),
    Base64,
}

fn data_encoding<'a>(event: &Event, data: &'a [u8]) -> DataEncoding<'a> {
    if event.data_is_json() {
        // Only data that is exactly one JSON value (no surrounding
        // whitespace) goes out as-is; anything else would not come back
        // byte for byte.
        if let Ok(raw) = serde_json::from_slice::<&RawValue>(data)
            && raw.get().len() == data.len()
        {
            return DataEncoding::Json(raw);
        }
        return DataEncoding::Base64;
    }
    match (
        event.data_content_type.as_deref(),
        std::str::from_utf8(data),
    ) {
        (Some(ct), Ok(text)) if is_text_media_type(ct) => DataEncoding::Text(text),
        _ => DataEncoding::Base64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_event() -> Event {
        let mut e = Event::new("a-1", "/kytos/topology", "kytos/topology.link_up").with_data(
            "application/json",
            br#"{"link":"7","status":"up"}"#.to_vec(),
        );
        e.subject = Some("link/7".into());
        e.time = Some("2026-11-22T10:00:00.123456789+01:00".into());
        e.data_schema = Some("https://example.org/link.json".into());
        e.extensions = vec![
            ("category".into(), AttributeValue::String("topology".into())),
            ("hops".into(), AttributeValue::Integer(-3)),
            ("urgent".into(), AttributeValue::Boolean(true)),
        ];
        e
    }

    #[test]
    fn round_trips_every_attribute() {
        let e = full_event();
        let back = from_json(&to_json(&e)).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn keeps_json_data_byte_for_byte() {
        let raw = br#"{"b": [1, 2.50, "x"],   "a":null}"#;
        let doc = format!(
            r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{}}}"#,
            std::str::from_utf8(raw).unwrap()
        );
        let e = from_json(doc.as_bytes()).unwrap();
        assert_eq!(e.data.as_deref(), Some(&raw[..]));
    }

    #[test]
    fn binary_and_text_data() {
        let bin =
            Event::new("1", "/s", "t").with_data("application/octet-stream", vec![0u8, 255, 10]);
        let json = String::from_utf8(to_json(&bin)).unwrap();
        assert!(json.contains(r#""data_base64":"AP8K""#), "{json}");
        assert_eq!(from_json(json.as_bytes()).unwrap(), bin);

        let text = Event::new("1", "/s", "t").with_data("text/plain", b"hello \"world\"".to_vec());
        let json = String::from_utf8(to_json(&text)).unwrap();
        assert!(json.contains(r#""data":"hello \"world\"""#), "{json}");
        assert_eq!(from_json(json.as_bytes()).unwrap(), text);

        let empty = Event::new("1", "/s", "t").with_data("application/octet-stream", Vec::new());
        assert_eq!(from_json(&to_json(&empty)).unwrap(), empty);
        let none = Event::new("1", "/s", "t");
        assert_eq!(from_json(&to_json(&none)).unwrap(), none);
    }

    #[test]
    fn json_content_type_with_invalid_json_goes_base64() {
        let e = Event::new("1", "/s", "t").with_data("application/json", b" {\"a\":1} ".to_vec());
        assert_eq!(from_json(&to_json(&e)).unwrap(), e);
    }

    #[test]
    fn binary_extension_becomes_base64_string() {
        let mut e = Event::new("1", "/s", "t");
        e.set_extension("sig", AttributeValue::Binary(vec![1, 2, 3]));
        let json = String::from_utf8(to_json(&e)).unwrap();
        assert!(json.contains(r#""sig":"AQID""#), "{json}");
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&str, FormatError)] = &[
            (
                r#"{"specversion":"1.0","source":"/s","type":"t"}"#,
                FormatError::Missing("id"),
            ),
            (
                r#"{"specversion":"1.0","id":7,"source":"/s","type":"t"}"#,
                FormatError::WrongType {
                    name: "id".into(),
                    expected: "a string",
                },
            ),
            (
                r#"{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}"#,
                FormatError::Duplicate("id".into()),
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad":1}"#,
                FormatError::InvalidName("Bad".into()),
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}"#,
                FormatError::BothDataFields,
            ),
            (
                r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
                FormatError::SpecVersion("0.3".into()),
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","n":1.5}"#,
                FormatError::WrongType {
                    name: "n".into(),
                    expected: "a 32-bit integer when numeric",
                },
            ),
        ];
        for (doc, expected) in cases {
            assert_eq!(from_json(doc.as_bytes()).as_ref(), Err(expected), "{doc}");
        }
        assert!(matches!(from_json(b"[1,2]"), Err(FormatError::Syntax(_))));
        assert!(matches!(
            from_json(b"\xff\xfe"),
            Err(FormatError::Syntax(_))
        ));
    }
}
