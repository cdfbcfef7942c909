//! TXT attributes: writing them as Annex B does, reading both the Annex B
//! and the RFC 6763 forms.

use hickory_proto::rr::rdata::TXT;

use super::RecordError;

pub(super) fn flag(key: &str, on: bool) -> Option<String> {
    on.then(|| key.to_owned())
}

pub(super) fn txt_value<'a>(key: &'static str, value: &'a str) -> Result<&'a str, RecordError> {
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=');
    if valid {
        Ok(value)
    } else {
        Err(RecordError::InvalidTxtValue {
            key,
            value: value.to_owned(),
        })
    }
}

/// One TXT character-string of space-separated attributes, as in Annex B
/// (`"broker-type=kafka tls"`); a single empty string when there are none
/// (RFC 6763 §6.1).
pub(super) fn txt(attributes: &[Option<String>]) -> TXT {
    let text = attributes
        .iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    TXT::new(vec![text])
}

/// Attributes read from a TXT record: `key` or `key=value` tokens, from one
/// or several character-strings. Both the Annex B form (one string,
/// space-separated) and the RFC 6763 form (one string per attribute) parse.
/// Keys are case-insensitive (RFC 6763 §6.4); the first occurrence wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxtAttributes {
    entries: Vec<(String, Option<String>)>,
}

impl TxtAttributes {
    /// Parses the character-strings of one or more TXT records.
    pub fn parse<'a>(strings: impl IntoIterator<Item = &'a [u8]>) -> TxtAttributes {
        let mut entries: Vec<(String, Option<String>)> = Vec::new();
        for string in strings {
            let text = String::from_utf8_lossy(string);
            for token in text.split_whitespace() {
                let (key, value) = match token.split_once('=') {
                    Some((key, value)) => (key, Some(value.to_owned())),
                    None => (token, None),
                };
                let key = key.to_ascii_lowercase();
                if !key.is_empty() && !entries.iter().any(|(known, _)| *known == key) {
                    entries.push((key, value));
                }
            }
        }
        TxtAttributes { entries }
    }

    /// The value of `key`: `None` if absent, `Some(None)` for a bare flag.
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(known, _)| *known == key)
            .map(|(_, value)| value.as_deref())
    }

    /// Whether the boolean attribute `key` is on: present bare, or with a
    /// value other than `0`, `false`, `no` or `off`.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(None) => true,
            Some(Some(value)) => !matches!(
                value.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            ),
        }
    }

    /// The attributes, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
    }
}
