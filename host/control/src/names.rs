//! Names of namespaces, flows and processor instances.
//!
//! A flow is named by a DNS name (thesis 4.1.2.2, annex C): the flow name
//! proper followed by the flow namespace, e.g. `time.flows.unix.ar` is the
//! flow `time` of the namespace `flows.unix.ar`. Namespaces and processor
//! instances use the same syntax, so every name the protocol accepts can be
//! published in DNS as it is.
//!
//! [`DnsName`] is the syntax every command argument must have; a flow
//! about to be created is also checked against fnaa-fns's `FlowUri`
//! ([`check_flow_uri`]), which is what its DNS records must satisfy.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest name of a flow, copy flow or processor, in octets without
/// the trailing dot: what a DNS name (253) can hold once the longest labels
/// published for a flow, `_queue._flow._tcp.`, are prepended (docs/fnap.md
/// 1.1, docs/fns.md 1). 235.
pub const MAX_NAME_LENGTH: usize = fnaa_fns::uri::MAX_FLOW_FQDN_LEN;
/// The longest namespace: room for `_services._dns-sd._udp.` (DNS-SD). 230.
pub const MAX_NAMESPACE_LENGTH: usize = fnaa_fns::uri::MAX_NAMESPACE_LEN;
/// The longest DNS label.
pub const MAX_LABEL_LENGTH: usize = 63;

/// Why a text is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_NAME_LENGTH} octets")]
    TooLong,
    #[error("a namespace is at most {MAX_NAMESPACE_LENGTH} octets long")]
    NamespaceTooLong,
    /// The copy flow `<tag>.<source>` of a subscription would be too long.
    #[error(
        "the copy flow of {0} would be longer than {MAX_NAME_LENGTH} octets; flows of more than {max} octets cannot be subscribed to",
        max = MAX_NAME_LENGTH - COPY_TAG_LENGTH - 1
    )]
    NoRoomForCopy(String),
    #[error("the name has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("the label `{0}` is longer than {MAX_LABEL_LENGTH} characters")]
    LabelTooLong(String),
    #[error("the label `{0}` starts or ends with a hyphen")]
    HyphenAtEdge(String),
    #[error("the name contains `{0}`; only letters, digits, hyphens and dots are allowed")]
    BadCharacter(char),
    #[error("the name needs at least {0} labels")]
    TooFewLabels(usize),
    /// Refused by the flow URI rules of fnaa-fns (the DNS side).
    #[error("{0}")]
    NotAFlowUri(String),
}

/// Checks with fnaa-fns that `flow` is a flow URI of `namespace`, so its
/// DNS records can be published (names there are a little shorter: room
/// is kept for `_queue._flow._tcp.`).
pub fn check_flow_uri(flow: &DnsName, namespace: &DnsName) -> Result<(), NameError> {
    let namespace = fnaa_fns::Namespace::parse(namespace.as_str())
        .map_err(|e| NameError::NotAFlowUri(e.to_string()))?;
    fnaa_fns::FlowUri::parse_in(flow.as_str(), &namespace)
        .map_err(|e| NameError::NotAFlowUri(e.to_string()))?;
    Ok(())
}

/// Octets of the random label of a copy flow (`ksdj898` in thesis 7.4.3).
pub const COPY_TAG_LENGTH: usize = 7;

/// Checks that `name` fits as a namespace (at most
/// [`MAX_NAMESPACE_LENGTH`] octets, at least two labels).
pub fn check_namespace(name: &DnsName) -> Result<(), NameError> {
    if name.label_count() < 2 {
        return Err(NameError::TooFewLabels(2));
    }
    if name.as_str().len() > MAX_NAMESPACE_LENGTH {
        return Err(NameError::NamespaceTooLong);
    }
    Ok(())
}

/// A valid, lower-cased DNS name without trailing dot (`time.flows.unix.ar`).
#[derive(
    Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct DnsName(String);

impl DnsName {
    /// Checks and normalises `text`: ASCII letters are lower-cased and one
    /// trailing dot (the DNS root) is dropped.
    pub fn parse(text: &str) -> Result<DnsName, NameError> {
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text.len() > MAX_NAME_LENGTH {
            return Err(NameError::TooLong);
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return Err(NameError::BadCharacter(bad));
        }
        for label in text.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LENGTH {
                return Err(NameError::LabelTooLong(label.to_owned()));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(NameError::HyphenAtEdge(label.to_owned()));
            }
        }
        Ok(DnsName(text.to_ascii_lowercase()))
    }

    /// Like [`DnsName::parse`], and requires at least `labels` labels.
    pub fn parse_with_labels(text: &str, labels: usize) -> Result<DnsName, NameError> {
        let name = DnsName::parse(text)?;
        if name.label_count() < labels {
            return Err(NameError::TooFewLabels(labels));
        }
        Ok(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many labels the name has.
    pub fn label_count(&self) -> usize {
        self.0.split('.').count()
    }

    /// The name without its first label, if it has more than one.
    pub fn parent(&self) -> Option<DnsName> {
        self.0
            .split_once('.')
            .map(|(_, rest)| DnsName(rest.to_owned()))
    }

    /// The proper ancestors of the name, nearest first
    /// (`a.b.c` gives `b.c`, then `c`).
    pub fn ancestors(&self) -> impl Iterator<Item = DnsName> + '_ {
        std::iter::successors(self.parent(), DnsName::parent)
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &DnsName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(other.as_str())
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }

    /// Prepends one label (`prefix` is checked like any label).
    pub fn child(&self, label: &str) -> Result<DnsName, NameError> {
        DnsName::parse(&format!("{label}.{}", self.0))
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl TryFrom<String> for DnsName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        DnsName::parse(&value)
    }
}

impl From<DnsName> for String {
    fn from(value: DnsName) -> String {
        value.0
    }
}

impl std::str::FromStr for DnsName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DnsName::parse(s)
    }
}

/// Checks an account name: 1 to 64 characters among letters, digits and
/// `.`, `_`, `-`, `@`, so it never needs quoting in the protocol or logs.
pub fn check_user_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 64 {
        return Err(NameError::TooLong);
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        Some(bad) => Err(NameError::BadCharacter(bad)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_thesis_names() {
        for name in [
            "time.flows.unix.ar",
            "emiliano.ar-time.flows.unix.ar",
            "ksdj898.time.flows.unix.ar",
        ] {
            assert_eq!(
                DnsName::parse(name).map(|n| n.to_string()),
                Ok(name.to_owned())
            );
        }
        assert_eq!(
            DnsName::parse("Time.Flows.Unix.AR.").map(String::from),
            Ok("time.flows.unix.ar".to_owned())
        );
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(DnsName::parse(""), Err(NameError::Empty));
        assert_eq!(DnsName::parse("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(
            DnsName::parse("-a.b"),
            Err(NameError::HyphenAtEdge("-a".into()))
        );
        assert_eq!(DnsName::parse("a b"), Err(NameError::BadCharacter(' ')));
        assert_eq!(DnsName::parse("a_b.c"), Err(NameError::BadCharacter('_')));
        assert!(matches!(
            DnsName::parse(&"a".repeat(64)),
            Err(NameError::LabelTooLong(_))
        ));
        assert_eq!(DnsName::parse(&"a.".repeat(128)), Err(NameError::TooLong));
    }

    #[test]
    fn the_limits_are_the_dns_ones() {
        assert_eq!((MAX_NAME_LENGTH, MAX_NAMESPACE_LENGTH), (235, 230));
        let labels = |len: usize| {
            let mut text = "c".repeat(len % 64);
            for _ in 0..len / 64 {
                text = format!("{}.{text}", "d".repeat(63));
            }
            text
        };
        let ok = labels(MAX_NAME_LENGTH);
        assert_eq!(ok.len(), MAX_NAME_LENGTH);
        assert!(DnsName::parse(&ok).is_ok(), "{ok}");
        let over = labels(MAX_NAME_LENGTH + 1);
        assert_eq!(DnsName::parse(&over), Err(NameError::TooLong));
        let namespace =
            DnsName::parse(&labels(MAX_NAMESPACE_LENGTH)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(check_namespace(&namespace), Ok(()));
        let namespace =
            DnsName::parse(&labels(MAX_NAMESPACE_LENGTH + 1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            check_namespace(&namespace),
            Err(NameError::NamespaceTooLong)
        );
    }

    #[test]
    fn hierarchy() {
        let flow = DnsName::parse("time.flows.unix.ar").unwrap_or_else(|e| panic!("{e}"));
        let ns = DnsName::parse("flows.unix.ar").unwrap_or_else(|e| panic!("{e}"));
        assert!(flow.is_within(&ns));
        assert!(!ns.is_within(&flow));
        assert!(!DnsName::parse("xflows.unix.ar").is_ok_and(|n| n.is_within(&ns)));
        let ancestors: Vec<String> = flow.ancestors().map(String::from).collect();
        assert_eq!(ancestors, ["flows.unix.ar", "unix.ar", "ar"]);
    }
}
