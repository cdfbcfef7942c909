//! Reading and writing attributes by their CloudEvents names (`id`, `type`,
//! `subject`, an extension name, ...), as configuration and templates name
//! them.

use std::borrow::Cow;

use crate::{AttributeValue, Event};

/// Why an attribute could not be set or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("attribute `{0}` is required by CloudEvents and cannot be removed")]
    Required(String),
    #[error("`{0}` is not a valid CloudEvents attribute name (only a-z and 0-9 are allowed)")]
    InvalidName(String),
    #[error("attribute `data` is not an attribute; it cannot be set or removed by name")]
    NotAnAttribute,
}

/// True for a valid CloudEvents attribute name: lower-case ASCII letters and
/// digits, at least one character.
pub fn is_valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl Event {
    /// The attribute `name` as text (extensions in their canonical string
    /// form), or `None` when the event does not have it.
    pub fn attribute(&self, name: &str) -> Option<Cow<'_, str>> {
        let core = match name {
            "id" => Some(&self.id),
            "source" => Some(&self.source),
            "specversion" => Some(&self.spec_version),
            "type" => Some(&self.ty),
            "subject" => self.subject.as_ref(),
            "time" => self.time.as_ref(),
            "datacontenttype" => self.data_content_type.as_ref(),
            "dataschema" => self.data_schema.as_ref(),
            _ => {
                return self
                    .extension(name)
                    .map(|v| Cow::Owned(v.to_canonical_string()));
            }
        };
        core.map(|s| Cow::Borrowed(s.as_str()))
    }

    /// Sets attribute `name` to a string value. Core attributes keep their
    /// meaning; any other valid name becomes a string extension.
    pub fn set_attribute(
        &mut self,
        name: &str,
        value: impl Into<String>,
    ) -> Result<(), AttributeError> {
        let value = value.into();
        match name {
            "id" => self.id = value,
            "source" => self.source = value,
            "specversion" => self.spec_version = value,
            "type" => self.ty = value,
            "subject" => self.subject = Some(value),
            "time" => self.time = Some(value),
            "datacontenttype" => self.data_content_type = Some(value),
            "dataschema" => self.data_schema = Some(value),
            "data" => return Err(AttributeError::NotAnAttribute),
            _ if is_valid_attribute_name(name) => {
                self.set_extension(name, AttributeValue::String(value));
            }
            _ => return Err(AttributeError::InvalidName(name.to_owned())),
        }
        Ok(())
    }

    /// Removes attribute `name`; returns whether it was present. Required
    /// attributes cannot be removed.
    pub fn remove_attribute(&mut self, name: &str) -> Result<bool, AttributeError> {
        let slot = match name {
            "id" | "source" | "specversion" | "type" => {
                return Err(AttributeError::Required(name.to_owned()));
            }
            "data" => return Err(AttributeError::NotAnAttribute),
            "subject" => &mut self.subject,
            "time" => &mut self.time,
            "datacontenttype" => &mut self.data_content_type,
            "dataschema" => &mut self.data_schema,
            _ => {
                let before = self.extensions.len();
                self.extensions.retain(|(n, _)| n != name);
                return Ok(self.extensions.len() != before);
            }
        };
        Ok(slot.take().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_extension_attributes_by_name() {
        let mut e = Event::new("1", "/kytos", "kytos/topology.link_up");
        e.set_attribute("subject", "link-7").unwrap();
        e.set_attribute("category", "topology").unwrap();
        e.set_extension("hops", AttributeValue::Integer(3));
        assert_eq!(
            e.attribute("type").as_deref(),
            Some("kytos/topology.link_up")
        );
        assert_eq!(e.attribute("subject").as_deref(), Some("link-7"));
        assert_eq!(e.attribute("category").as_deref(), Some("topology"));
        assert_eq!(e.attribute("hops").as_deref(), Some("3"));
        assert_eq!(e.attribute("missing"), None);
        assert_eq!(e.remove_attribute("category"), Ok(true));
        assert_eq!(e.remove_attribute("category"), Ok(false));
        assert_eq!(e.remove_attribute("subject"), Ok(true));
        assert_eq!(e.subject, None);
    }

    #[test]
    fn refuses_invalid_names_and_required_removals() {
        let mut e = Event::new("1", "/s", "t");
        assert_eq!(
            e.set_attribute("Bad-Name", "x"),
            Err(AttributeError::InvalidName("Bad-Name".into()))
        );
        assert_eq!(
            e.remove_attribute("id"),
            Err(AttributeError::Required("id".into()))
        );
        assert_eq!(
            e.set_attribute("data", "x"),
            Err(AttributeError::NotAnAttribute)
        );
    }
}
