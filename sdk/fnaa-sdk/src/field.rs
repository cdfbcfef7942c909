//! References to a value of an event, as configuration names them: an
//! attribute (`subject`, `type`, an extension name), a JSON field of the data
//! (`/link/status`), or the whole data (`data`).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use fnaa_event::is_valid_attribute_name;

use crate::Event;
use crate::json::{self, DataError, Pointer, PointerError, Value};

/// Where to read a value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A CloudEvents attribute by name (extensions in their canonical text).
    Attribute(String),
    /// A field of the JSON data (a JSON Pointer).
    DataPointer(Pointer),
    /// The whole data, as bytes.
    Data,
}

/// Why a field reference is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Neither `data`, a JSON Pointer, nor a CloudEvents attribute name.
    #[error("`{0}` is neither `data`, a JSON pointer (`/a/b`) nor an attribute name (a-z, 0-9)")]
    Invalid(String),
    /// A JSON Pointer that does not parse.
    #[error(transparent)]
    Pointer(#[from] PointerError),
}

impl Field {
    /// Parses a reference: `data`, a JSON Pointer starting with `/`, or an
    /// attribute name.
    pub fn parse(reference: &str) -> Result<Self, FieldError> {
        if reference == "data" {
            Ok(Field::Data)
        } else if reference.starts_with('/') {
            Ok(Field::DataPointer(Pointer::parse(reference)?))
        } else if is_valid_attribute_name(reference) {
            Ok(Field::Attribute(reference.to_owned()))
        } else {
            Err(FieldError::Invalid(reference.to_owned()))
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute(name) => f.write_str(name),
            Field::DataPointer(pointer) => f.write_str(pointer.as_str()),
            Field::Data => f.write_str("data"),
        }
    }
}

/// Reads fields of one event, parsing its JSON data at most once however
/// many pointers are read.
#[derive(Debug)]
pub struct FieldReader<'e> {
    event: &'e Event,
    json: OnceCell<Result<Value, DataError>>,
}

impl<'e> FieldReader<'e> {
    /// A reader of `event`.
    pub fn new(event: &'e Event) -> Self {
        FieldReader {
            event,
            json: OnceCell::new(),
        }
    }

    /// The value of `field` as bytes (text for attributes and JSON fields: a
    /// JSON string's contents, or the compact JSON of any other value), or
    /// `None` when the event does not have it (absent attribute, no data,
    /// pointer designating nothing).
    ///
    /// Fails when a pointer is read from data that is not JSON.
    pub fn read(&self, field: &Field) -> Result<Option<Cow<'_, [u8]>>, DataError> {
        Ok(match field {
            Field::Attribute(name) => self.event.attribute(name).map(|text| match text {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }),
            Field::Data => self.event.data.as_deref().map(Cow::Borrowed),
            Field::DataPointer(pointer) => {
                if self.event.data.is_none() {
                    return Ok(None);
                }
                let document = self
                    .json
                    .get_or_init(|| json::parse_data(self.event))
                    .as_ref()
                    .map_err(Clone::clone)?;
                pointer
                    .resolve(document)
                    .map(|value| match json::text_of(value) {
                        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
                    })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(Field::parse("data"), Ok(Field::Data));
        assert_eq!(
            Field::parse("subject"),
            Ok(Field::Attribute("subject".into()))
        );
        assert!(matches!(
            Field::parse("/link/status"),
            Ok(Field::DataPointer(_))
        ));
        assert_eq!(
            Field::parse("Sub-ject"),
            Err(FieldError::Invalid("Sub-ject".into()))
        );
        assert!(matches!(Field::parse("/a~9"), Err(FieldError::Pointer(_))));
    }

    #[test]
    fn reads_attributes_pointers_and_data() {
        let mut event = Event::new("1", "/kytos", "kytos/topology.link_up").with_data(
            "application/json",
            br#"{"link":{"id":"l1","status":"up","speed":10}}"#.to_vec(),
        );
        event.subject = Some("l1".into());
        let reader = FieldReader::new(&event);
        let read = |r: &str| {
            reader
                .read(&Field::parse(r).unwrap())
                .unwrap()
                .map(|v| v.into_owned())
        };
        assert_eq!(read("subject"), Some(b"l1".to_vec()));
        assert_eq!(read("time"), None);
        assert_eq!(read("/link/status"), Some(b"up".to_vec()));
        assert_eq!(read("/link/speed"), Some(b"10".to_vec()));
        assert_eq!(read("/link/missing"), None);
        assert_eq!(
            read("data").map(|d| d.len()),
            event.data.as_ref().map(Vec::len)
        );

        let text = Event::new("1", "/s", "t").with_data("text/plain", b"x".to_vec());
        let reader = FieldReader::new(&text);
        assert!(reader.read(&Field::parse("/a").unwrap()).is_err());
        let empty = Event::new("1", "/s", "t");
        assert_eq!(
            FieldReader::new(&empty).read(&Field::parse("/a").unwrap()),
            Ok(None)
        );
    }
}
