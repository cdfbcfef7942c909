//! The CloudEvents 1.0 event model shared by the fnaa host, its SDK and its
//! plugins, so that every side agrees on one representation and one JSON
//! format.
//!
//! [`Event`] mirrors the `event` record of the WIT contract field for field:
//! converting between the two moves fields and copies nothing.

mod attributes;
pub mod binding;
mod json;

pub use attributes::AttributeError;
pub use attributes::is_valid_attribute_name;
pub use json::{FormatError, from_json, to_json};

/// The CloudEvents spec version this crate produces.
pub const SPEC_VERSION: &str = "1.0";

/// The value of an extension attribute, tagged with its CloudEvents type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Boolean(bool),
    Integer(i32),
    String(String),
    Binary(Vec<u8>),
    Uri(String),
    UriReference(String),
    Timestamp(String),
}

/// One CloudEvents event. See `wit/types.wit` for the meaning of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub source: String,
    pub spec_version: String,
    pub ty: String,
    pub subject: Option<String>,
    pub time: Option<String>,
    pub data_content_type: Option<String>,
    pub data_schema: Option<String>,
    /// Extension attributes in the order received.
    pub extensions: Vec<(String, AttributeValue)>,
    /// `None` (no data) differs from `Some(vec![])` (empty data).
    pub data: Option<Vec<u8>>,
}

impl Event {
    /// A CloudEvents 1.0 event with the required attributes and nothing else.
    pub fn new(id: impl Into<String>, source: impl Into<String>, ty: impl Into<String>) -> Self {
        Event {
            id: id.into(),
            source: source.into(),
            spec_version: SPEC_VERSION.to_owned(),
            ty: ty.into(),
            subject: None,
            time: None,
            data_content_type: None,
            data_schema: None,
            extensions: Vec::new(),
            data: None,
        }
    }

    /// Sets `data` and `datacontenttype`.
    pub fn with_data(mut self, content_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.data_content_type = Some(content_type.into());
        self.data = Some(data.into());
        self
    }

    /// The extension attribute `name`, if present.
    pub fn extension(&self, name: &str) -> Option<&AttributeValue> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Sets extension `name`, replacing an earlier value in place.
    pub fn set_extension(&mut self, name: impl Into<String>, value: AttributeValue) {
        let name = name.into();
        match self.extensions.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.extensions.push((name, value)),
        }
    }

    /// True when the data is JSON according to `datacontenttype` (absent
    /// means JSON, as in the CloudEvents JSON format).
    pub fn data_is_json(&self) -> bool {
        self.data_content_type
            .as_deref()
            .is_none_or(is_json_media_type)
    }
}

/// `application/json`, `text/json` and any `+json` suffix, parameters ignored.
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

impl AttributeValue {
    /// The canonical string encoding CloudEvents uses for this value in
    /// headers and other text-only places (binary is base64).
    pub fn to_canonical_string(&self) -> String {
        use base64::Engine as _;
        match self {
            AttributeValue::Boolean(b) => b.to_string(),
            AttributeValue::Integer(i) => i.to_string(),
            AttributeValue::Binary(bytes) => {
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }
            AttributeValue::String(s)
            | AttributeValue::Uri(s)
            | AttributeValue::UriReference(s)
            | AttributeValue::Timestamp(s) => s.clone(),
        }
    }
}
