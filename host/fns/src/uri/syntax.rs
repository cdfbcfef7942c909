//! The syntax of flow URIs and DNS names: scheme and authority, labels,
//! lengths.

use super::{FLOW_SCHEME, FlowUriError, MAX_LABEL_LEN};

/// The authority of a `flow://` URI, or the whole input in the bare form.
pub(super) fn authority(input: &str) -> Result<&str, FlowUriError> {
    let rest = match input.split_once("://") {
        Some((scheme, rest)) => {
            if !scheme.eq_ignore_ascii_case(FLOW_SCHEME) {
                return Err(FlowUriError::Scheme {
                    input: input.to_owned(),
                    scheme: scheme.to_owned(),
                });
            }
            rest
        }
        None => input,
    };
    // A single trailing slash (an empty path) is harmless and common when
    // URIs are pasted from browsers.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let unexpected = [
        ('@', "user"),
        ('/', "path"),
        ('?', "query"),
        ('#', "fragment"),
        (':', "port"),
    ];
    for (separator, component) in unexpected {
        if rest.contains(separator) {
            return Err(FlowUriError::UnexpectedComponent {
                input: input.to_owned(),
                component,
            });
        }
    }
    Ok(rest)
}

/// Splits `name` into validated, lower-cased labels (a trailing dot allowed).
pub(super) fn split_labels(input: &str, name: &str) -> Result<Vec<String>, FlowUriError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(FlowUriError::Empty);
    }
    name.split('.')
        .map(|label| validate_label(input, label))
        .collect()
}

fn validate_label(input: &str, label: &str) -> Result<String, FlowUriError> {
    if label.is_empty() {
        return Err(FlowUriError::EmptyLabel {
            input: input.to_owned(),
        });
    }
    if let Some(character) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(FlowUriError::InvalidCharacter {
            input: input.to_owned(),
            label: label.to_owned(),
            character,
        });
    }
    // Only ASCII is left, so characters are octets.
    if label.len() > MAX_LABEL_LEN {
        return Err(FlowUriError::LabelTooLong {
            input: input.to_owned(),
            label: label.to_owned(),
            len: label.len(),
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(FlowUriError::HyphenAtEdge {
            input: input.to_owned(),
            label: label.to_owned(),
        });
    }
    Ok(label.to_ascii_lowercase())
}

pub(super) fn check_length(input: &str, fqdn: &str, max: usize) -> Result<(), FlowUriError> {
    if fqdn.len() > max {
        return Err(FlowUriError::TooLong {
            input: input.to_owned(),
            len: fqdn.len(),
            max,
        });
    }
    Ok(())
}
