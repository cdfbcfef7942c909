//! What a flow says about itself (docs/fnap.md 5.8): its schema, expected
//! rate, retention, terms of use and a contact, set by its owner with SET
//! FLOW and shown by DESCRIBE FLOW after the connection details.

use serde::{Deserialize, Serialize};

/// The self-description of a flow. Every field is optional; records
/// written before it existed load with none set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowDescription {
    /// The schema of its events' data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// Expected event rate, `<number>/<s|min|h|d>` (`10/s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// How long the broker keeps events, `<number><s|min|h|d>` (`7d`) or
    /// `forever`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// Terms of use, free text on one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms: Option<String>,
    /// Whom to ask about the flow: a `mailto:`, `https:` or `http:` URI or
    /// an e-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl FlowDescription {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &FlowDescription::default()
    }

    /// The `key=value` lines of DESCRIBE FLOW, in a fixed order.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.schema {
            Some(Schema::Uri(uri)) => lines.push(format!("dataschema={uri}")),
            Some(Schema::Inline(json)) => lines.push(format!("schema={json}")),
            None => {}
        }
        for (key, value) in [
            ("rate", &self.rate),
            ("retention", &self.retention),
            ("terms", &self.terms),
            ("contact", &self.contact),
        ] {
            if let Some(value) = value {
                lines.push(format!("{key}={value}"));
            }
        }
        lines
    }
}

/// A schema: by reference (the CloudEvents `dataschema` attribute) or
/// inline (a JSON Schema, kept as compact JSON on one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum Schema {
    Uri(String),
    Inline(String),
}
