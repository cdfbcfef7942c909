//! JSON helpers for event data: JSON Pointers (RFC 6901) and picking fields
//! into a smaller document.
//!
//! [`serde_json`] is re-exported as `fnaa_sdk::json::serde_json`, so plugins
//! need not depend on it themselves.

use std::borrow::Cow;
use std::fmt;

pub use serde_json;
pub use serde_json::{Map, Value};

use crate::Event;

/// Why a JSON Pointer is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// A pointer is empty or starts with `/`.
    #[error("JSON pointer `{0}` must start with `/`")]
    NoLeadingSlash(String),
    /// `~` must be followed by `0` (for `~`) or `1` (for `/`).
    #[error("JSON pointer `{0}` has an invalid escape (only ~0 and ~1 are allowed)")]
    BadEscape(String),
}

/// Why an event's data cannot be read as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The event carries no data.
    #[error("the event has no data")]
    NoData,
    /// `datacontenttype` names a media type that is not JSON.
    #[error("the data is not JSON (datacontenttype is `{0}`)")]
    NotJson(String),
    /// The data does not parse as JSON.
    #[error("the data is not valid JSON: {0}")]
    Syntax(String),
}

/// The event's data parsed as JSON. Absent `datacontenttype` means JSON, as
/// in the CloudEvents JSON format.
pub fn parse_data(event: &Event) -> Result<Value, DataError> {
    let data = event.data.as_deref().ok_or(DataError::NoData)?;
    if !event.data_is_json() {
        return Err(DataError::NotJson(
            event.data_content_type.clone().unwrap_or_default(),
        ));
    }
    serde_json::from_slice(data).map_err(|e| DataError::Syntax(e.to_string()))
}

/// A value as text: a JSON string is its contents, anything else its compact
/// JSON text (`42`, `true`, `{"a":1}`).
pub fn text_of(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// A JSON Pointer (RFC 6901) such as `/link/status` or `/items/0`, parsed
/// once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    /// Parses `pointer`, which must start with `/`. (RFC 6901's empty
    /// pointer, the whole document, is refused: no plugin needs it as a
    /// field.)
    pub fn parse(pointer: &str) -> Result<Self, PointerError> {
        let Some(rest) = pointer.strip_prefix('/') else {
            return Err(PointerError::NoLeadingSlash(pointer.to_owned()));
        };
        let tokens = rest
            .split('/')
            .map(|token| unescape(token).ok_or_else(|| PointerError::BadEscape(pointer.to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(Pointer {
            text: pointer.to_owned(),
            tokens,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The unescaped reference tokens (`/a~1b/c` gives `a/b`, `c`).
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The value the pointer designates in `document`, if any.
    pub fn resolve<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.tokens
            .iter()
            .try_fold(document, |value, token| match value {
                Value::Object(map) => map.get(token),
                Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
                _ => None,
            })
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn unescape(token: &str) -> Option<String> {
    if !token.contains('~') {
        return Some(token.to_owned());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index as RFC 6901 writes it: `0` or digits without a leading
/// zero.
fn array_index(token: &str) -> Option<usize> {
    let canonical =
        token == "0" || (!token.starts_with('0') && token.bytes().all(|b| b.is_ascii_digit()));
    if canonical { token.parse().ok() } else { None }
}

/// Picks fields out of JSON documents into a smaller object that keeps their
/// paths: picking `/link/id,/link/status` from
/// `{"link":{"id":"l1","status":"up","metadata":{...}},"ts":1}` gives
/// `{"link":{"id":"l1","status":"up"}}`.
///
/// Pointers that designate nothing are left out. An array index on the way
/// becomes an object key (`/items/0` gives `{"items":{"0":...}}`), so the
/// result is always an object. A pointer that goes through a field picked
/// whole by another pointer adds nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picker {
    pointers: Vec<Pointer>,
}

impl Picker {
    /// Parses a comma-separated list of pointers (items trimmed, empty items
    /// dropped): `/link/id, /link/status`. A key containing a comma cannot
    /// be written here.
    pub fn parse(list: &str) -> Result<Self, PointerError> {
        let pointers = crate::config::split_list(list)
            .into_iter()
            .map(Pointer::parse)
            .collect::<Result<_, _>>()?;
        Ok(Picker { pointers })
    }

    /// True when there is nothing to pick.
    pub fn is_empty(&self) -> bool {
        self.pointers.is_empty()
    }

    /// The pointers in order.
    pub fn pointers(&self) -> &[Pointer] {
        &self.pointers
    }

    /// The picked fields of `document` as a new object.
    pub fn pick(&self, document: &Value) -> Value {
        let mut picked = Map::new();
        for pointer in &self.pointers {
            let Some(value) = pointer.resolve(document) else {
                continue;
            };
            insert_at(&mut picked, pointer.tokens(), value);
        }
        Value::Object(picked)
    }

    /// Picks from an event's JSON data and returns the new data as bytes.
    pub fn pick_data(&self, event: &Event) -> Result<Vec<u8>, DataError> {
        let document = parse_data(event)?;
        // Serialising a `Value` cannot fail (its map keys are strings).
        Ok(serde_json::to_vec(&self.pick(&document)).unwrap_or_default())
    }
}

fn insert_at(map: &mut Map<String, Value>, tokens: &[String], value: &Value) {
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut current = map;
    for token in parents {
        let slot = current
            .entry(token.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(inner) => current = inner,
            // An ancestor was picked whole and already holds this value.
            _ => return,
        }
    }
    current.insert(last.clone(), value.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_resolve_and_unescape() {
        let doc = json!({"a": {"b/c": [10, {"~k": true}]}, "": 1});
        let p = |s: &str| Pointer::parse(s).unwrap();
        assert_eq!(p("/a/b~1c/0").resolve(&doc), Some(&json!(10)));
        assert_eq!(p("/a/b~1c/1/~0k").resolve(&doc), Some(&json!(true)));
        assert_eq!(p("/").resolve(&doc), Some(&json!(1)));
        assert_eq!(p("/a/b~1c/01").resolve(&doc), None);
        assert_eq!(p("/a/b~1c/2").resolve(&doc), None);
        assert_eq!(p("/a/x").resolve(&doc), None);
        assert_eq!(
            Pointer::parse("a"),
            Err(PointerError::NoLeadingSlash("a".into()))
        );
        assert_eq!(
            Pointer::parse(""),
            Err(PointerError::NoLeadingSlash("".into()))
        );
        assert_eq!(
            Pointer::parse("/a~2"),
            Err(PointerError::BadEscape("/a~2".into()))
        );
    }

    #[test]
    fn picks_a_smaller_object_keeping_paths() {
        let doc = json!({"link": {"id": "l1", "status": "up", "metadata": {"x": 1}}, "ts": 1, "items": [5, 6]});
        let picker = Picker::parse("/link/id, /link/status,/missing/field,/items/1").unwrap();
        assert_eq!(
            picker.pick(&doc),
            json!({"link": {"id": "l1", "status": "up"}, "items": {"1": 6}})
        );
        // An ancestor picked whole wins over a descendant, in either order.
        let whole = json!({"link": {"id": "l1", "status": "up", "metadata": {"x": 1}}});
        assert_eq!(Picker::parse("/link,/link/id").unwrap().pick(&doc), whole);
        assert_eq!(Picker::parse("/link/id,/link").unwrap().pick(&doc), whole);
        assert_eq!(Picker::parse("/ts/x").unwrap().pick(&doc), json!({}));
    }

    #[test]
    fn event_data_must_be_json() {
        let picker = Picker::parse("/a").unwrap();
        let event =
            Event::new("1", "/s", "t").with_data("application/json", br#"{"a":1,"b":2}"#.to_vec());
        assert_eq!(picker.pick_data(&event).unwrap(), br#"{"a":1}"#.to_vec());
        let event = Event::new("1", "/s", "t").with_data("text/plain", b"a".to_vec());
        assert_eq!(
            picker.pick_data(&event),
            Err(DataError::NotJson("text/plain".into()))
        );
        let event = Event::new("1", "/s", "t").with_data("application/json", b"{".to_vec());
        assert!(matches!(
            picker.pick_data(&event),
            Err(DataError::Syntax(_))
        ));
        assert_eq!(
            picker.pick_data(&Event::new("1", "/s", "t")),
            Err(DataError::NoData)
        );
    }

    #[test]
    fn text_of_values() {
        assert_eq!(text_of(&json!("up")), "up");
        assert_eq!(text_of(&json!(3)), "3");
        assert_eq!(text_of(&json!({"a": [1]})), r#"{"a":[1]}"#);
    }
}
