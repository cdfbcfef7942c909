//! Flow URIs (thesis Annex C): `flow://<flow name>.<namespace>.<domain>`.
//!
//! A flow URI names a flow the way an e-mail address names a mailbox. Its
//! authority is the *flow FQDN*; the *namespace FQDN* is the DNS zone
//! (usually delegated to the FNAA) that holds the flow, and the *flow name*
//! is whatever precedes it, dots included:
//!
//! ```
//! use fnaa_fns::FlowUri;
//!
//! let uri = FlowUri::parse("flow://notifications.calendar.people.syndeno.com")?;
//! assert_eq!(uri.flow_name(), "notifications.calendar");
//! assert_eq!(uri.namespace().as_str(), "people.syndeno.com");
//! assert_eq!(uri.fqdn(), "notifications.calendar.people.syndeno.com");
//! assert_eq!(uri.to_string(), "flow://notifications.calendar.people.syndeno.com");
//! # Ok::<(), fnaa_fns::FlowUriError>(())
//! ```
//!
//! The URI alone cannot say where the namespace begins; Annex C fixes it to
//! the last three labels (`myNameSpace.domain.tld`), which [`FlowUri::parse`]
//! follows. When the namespace is known (the FNAA knows the namespaces it
//! hosts), [`FlowUri::parse_in`] and [`FlowUri::new`] split at it instead, so
//! namespaces under `co.uk`-like domains work too.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The URI scheme of flows.
pub const FLOW_SCHEME: &str = "flow";

/// Longest flow FQDN, in characters (without the trailing dot). DNS names are
/// at most 253 characters; the longest name published for a flow,
/// `_queue._flow._tcp.<flow fqdn>`, adds 18.
pub const MAX_FLOW_FQDN_LEN: usize = 253 - "_queue._flow._tcp.".len();

/// Longest namespace FQDN: room is left for at least a one-label flow name.
pub const MAX_NAMESPACE_LEN: usize = MAX_FLOW_FQDN_LEN - 2;

/// Longest DNS label, in octets (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Labels of the namespace FQDN when the URI does not say (Annex C:
/// `myNameSpace.domain.tld`).
pub const ANNEX_C_NAMESPACE_LABELS: usize = 3;

/// Why a flow URI, flow name or namespace was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowUriError {
    /// Nothing to parse.
    #[error("empty flow URI or name")]
    Empty,
    /// A URI with another scheme than `flow`.
    #[error(
        "`{input}` has the scheme `{scheme}`; flow URIs are written flow://<flow name>.<namespace>.<domain>"
    )]
    Scheme {
        /// The rejected input.
        input: String,
        /// The scheme found.
        scheme: String,
    },
    /// A port, path, query, fragment or user part, which flow URIs do not have.
    #[error(
        "`{input}` has a {component}; a flow URI is only flow://<flow name>.<namespace>.<domain>"
    )]
    UnexpectedComponent {
        /// The rejected input.
        input: String,
        /// What was found: "port", "path", "query", "fragment" or "user".
        component: &'static str,
    },
    /// Fewer labels than a flow name, a namespace and a domain need.
    #[error(
        "`{input}` has {found} labels; a flow URI needs at least {required}: a flow name and a namespace of {namespace_labels} labels (flow://<flow name>.<namespace>.<domain>)"
    )]
    TooFewLabels {
        /// The rejected input.
        input: String,
        /// Labels found.
        found: usize,
        /// Labels needed.
        required: usize,
        /// Labels of the namespace.
        namespace_labels: usize,
    },
    /// Two dots in a row, or a leading dot.
    #[error("`{input}` has an empty label (a leading dot or two dots in a row)")]
    EmptyLabel {
        /// The rejected input.
        input: String,
    },
    /// A label longer than DNS allows.
    #[error("label `{label}` of `{input}` is {len} characters long; DNS labels are at most 63")]
    LabelTooLong {
        /// The rejected input.
        input: String,
        /// The offending label.
        label: String,
        /// Its length.
        len: usize,
    },
    /// A character that is not a letter, digit or hyphen.
    #[error(
        "label `{label}` of `{input}` contains {character:?}; labels are letters, digits and inner hyphens (write internationalised names in their xn-- form)"
    )]
    InvalidCharacter {
        /// The rejected input.
        input: String,
        /// The offending label.
        label: String,
        /// The offending character.
        character: char,
    },
    /// A label starting or ending with a hyphen.
    #[error("label `{label}` of `{input}` starts or ends with a hyphen")]
    HyphenAtEdge {
        /// The rejected input.
        input: String,
        /// The offending label.
        label: String,
    },
    /// A name too long for the DNS records that publish it.
    #[error("`{input}` is {len} characters long; at most {max} fit in the DNS names of a flow")]
    TooLong {
        /// The rejected input.
        input: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A namespace of a single label (a top-level domain).
    #[error(
        "namespace `{input}` has a single label; a namespace is a subdomain of a registered domain, such as people.syndeno.com"
    )]
    NamespaceTooShort {
        /// The rejected input.
        input: String,
    },
    /// A flow URI outside the namespace it was expected in.
    #[error("`{input}` is not a flow of namespace `{namespace}`")]
    NotInNamespace {
        /// The rejected input.
        input: String,
        /// The namespace expected.
        namespace: String,
    },
}

/// A flow namespace: the FQDN of the DNS zone that holds flows, such as
/// `people.syndeno.com`. Lower case, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    fqdn: String,
}

impl Namespace {
    /// Parses a namespace FQDN (`people.syndeno.com`, a trailing dot allowed).
    pub fn parse(input: &str) -> Result<Namespace, FlowUriError> {
        let labels = split_labels(input, input)?;
        if labels.len() < 2 {
            return Err(FlowUriError::NamespaceTooShort {
                input: input.to_owned(),
            });
        }
        let fqdn = labels.join(".");
        check_length(input, &fqdn, MAX_NAMESPACE_LEN)?;
        Ok(Namespace { fqdn })
    }

    /// The namespace FQDN, lower case, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.fqdn
    }

    /// Whether `uri` is a flow of this namespace.
    pub fn contains(&self, uri: &FlowUri) -> bool {
        uri.namespace == *self
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fqdn)
    }
}

impl FromStr for Namespace {
    type Err = FlowUriError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Namespace::parse(input)
    }
}

impl Serialize for Namespace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.fqdn)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Namespace::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A flow URI: `flow://<flow name>.<namespace>`.
///
/// Stored normalised (lower case, no trailing dot), so two URIs that name the
/// same flow compare equal. Parsing accepts the `flow://` form and the bare
/// FQDN that the `flow` CLI takes (`notifications.calendar.people.syndeno.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowUri {
    flow_name: String,
    namespace: Namespace,
    fqdn: String,
}

impl FlowUri {
    /// Parses a flow URI or bare flow FQDN, taking the last three labels as
    /// the namespace (Annex C).
    pub fn parse(input: &str) -> Result<FlowUri, FlowUriError> {
        let authority = authority(input)?;
        let labels = split_labels(input, authority)?;
        let required = ANNEX_C_NAMESPACE_LABELS + 1;
        if labels.len() < required {
            return Err(FlowUriError::TooFewLabels {
                input: input.to_owned(),
                found: labels.len(),
                required,
                namespace_labels: ANNEX_C_NAMESPACE_LABELS,
            });
        }
        let split = labels.len() - ANNEX_C_NAMESPACE_LABELS;
        let namespace = Namespace {
            fqdn: labels[split..].join("."),
        };
        FlowUri::from_parts(input, labels[..split].join("."), namespace)
    }

    /// Parses a flow URI or bare flow FQDN of a known namespace: the flow
    /// name is everything before `namespace`.
    pub fn parse_in(input: &str, namespace: &Namespace) -> Result<FlowUri, FlowUriError> {
        let authority = authority(input)?;
        let fqdn = split_labels(input, authority)?.join(".");
        let flow_name = fqdn
            .strip_suffix(namespace.as_str())
            .and_then(|prefix| prefix.strip_suffix('.'))
            .filter(|name| !name.is_empty())
            .ok_or_else(|| FlowUriError::NotInNamespace {
                input: input.to_owned(),
                namespace: namespace.to_string(),
            })?;
        FlowUri::from_parts(input, flow_name.to_owned(), namespace.clone())
    }

    /// The URI of flow `flow_name` (one or more labels, such as
    /// `notifications.calendar`) in `namespace`.
    pub fn new(flow_name: &str, namespace: &Namespace) -> Result<FlowUri, FlowUriError> {
        let flow_name = split_labels(flow_name, flow_name)?.join(".");
        FlowUri::from_parts(&flow_name, flow_name.clone(), namespace.clone())
    }

    fn from_parts(
        input: &str,
        flow_name: String,
        namespace: Namespace,
    ) -> Result<FlowUri, FlowUriError> {
        let fqdn = format!("{flow_name}.{namespace}");
        check_length(input, &fqdn, MAX_FLOW_FQDN_LEN)?;
        Ok(FlowUri {
            flow_name,
            namespace,
            fqdn,
        })
    }

    /// The flow name: the labels before the namespace (`notifications.calendar`).
    pub fn flow_name(&self) -> &str {
        &self.flow_name
    }

    /// The namespace of the flow (`people.syndeno.com`).
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The flow FQDN, without the trailing dot
    /// (`notifications.calendar.people.syndeno.com`).
    pub fn fqdn(&self) -> &str {
        &self.fqdn
    }
}

impl fmt::Display for FlowUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{FLOW_SCHEME}://{}", self.fqdn)
    }
}

impl FromStr for FlowUri {
    type Err = FlowUriError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        FlowUri::parse(input)
    }
}

impl Serialize for FlowUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FlowUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        FlowUri::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The authority of a `flow://` URI, or the whole input in the bare form.
fn authority(input: &str) -> Result<&str, FlowUriError> {
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
fn split_labels(input: &str, name: &str) -> Result<Vec<String>, FlowUriError> {
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

fn check_length(input: &str, fqdn: &str, max: usize) -> Result<(), FlowUriError> {
    if fqdn.len() > max {
        return Err(FlowUriError::TooLong {
            input: input.to_owned(),
            len: fqdn.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> FlowUri {
        match FlowUri::parse(input) {
            Ok(uri) => uri,
            Err(error) => panic!("{input}: {error}"),
        }
    }

    #[test]
    fn annex_c_examples() {
        let uri = parse("flow://notifications.calendar.people.syndeno.com");
        assert_eq!(uri.flow_name(), "notifications.calendar");
        assert_eq!(uri.namespace().as_str(), "people.syndeno.com");
        assert_eq!(uri.fqdn(), "notifications.calendar.people.syndeno.com");

        let uri = parse("flow://created.invoice.finance.syndeno.com");
        assert_eq!(uri.flow_name(), "created.invoice");
        assert_eq!(uri.namespace().as_str(), "finance.syndeno.com");
        assert_eq!(uri.fqdn(), "created.invoice.finance.syndeno.com");

        let uri = parse("flow://flowName.flowCategory.myNameSpace.domain.tld");
        assert_eq!(uri.flow_name(), "flowname.flowcategory");
        assert_eq!(uri.namespace().as_str(), "mynamespace.domain.tld");
    }

    #[test]
    fn section_4_1_2_2_examples() {
        for (input, name, namespace) in [
            (
                "flow://entrances.building.company.com",
                "entrances",
                "building.company.com",
            ),
            (
                "flow://temperature.house.mydomain.com",
                "temperature",
                "house.mydomain.com",
            ),
            (
                "flow://pressure.room1.office.mydomain.com",
                "pressure.room1",
                "office.mydomain.com",
            ),
            (
                "flow://airline.arrivals.flow.airport.com",
                "airline.arrivals",
                "flow.airport.com",
            ),
        ] {
            let uri = parse(input);
            assert_eq!(uri.flow_name(), name, "{input}");
            assert_eq!(uri.namespace().as_str(), namespace, "{input}");
        }
    }

    #[test]
    fn bare_form_of_the_cli_and_normalisation() {
        let bare = parse("time.flows.unix.ar");
        assert_eq!(bare.flow_name(), "time");
        assert_eq!(bare.namespace().as_str(), "flows.unix.ar");
        assert_eq!(bare.to_string(), "flow://time.flows.unix.ar");
        assert_eq!(bare, parse("FLOW://Time.Flows.Unix.AR."));
        assert_eq!(bare, parse("flow://time.flows.unix.ar/"));
        // The per-subscriber copy flow of chapter 7.
        let copy = parse("ksdj898.time.flows.unix.ar");
        assert_eq!(copy.flow_name(), "ksdj898.time");
        let round_trip = parse(&copy.to_string());
        assert_eq!(round_trip, copy);
    }

    #[test]
    fn explicit_namespace() {
        let namespace = Namespace::parse("flows.example.co.uk").unwrap_or_else(|e| panic!("{e}"));
        let uri = FlowUri::parse_in("flow://a.b.flows.example.co.uk", &namespace)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(uri.flow_name(), "a.b");
        assert_eq!(uri.namespace(), &namespace);
        assert!(namespace.contains(&uri));
        assert!(matches!(
            FlowUri::parse_in("flow://a.other.co.uk", &namespace),
            Err(FlowUriError::NotInNamespace { .. })
        ));
        assert!(matches!(
            FlowUri::parse_in("flows.example.co.uk", &namespace),
            Err(FlowUriError::NotInNamespace { .. })
        ));
        let built = FlowUri::new("Orders.Created", &namespace).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(built.fqdn(), "orders.created.flows.example.co.uk");
    }

    #[test]
    fn rejections_name_the_problem() {
        type Check = fn(&FlowUriError) -> bool;
        let cases: [(&str, Check); 11] = [
            ("", |e| matches!(e, FlowUriError::Empty)),
            ("http://a.b.c.d", |e| {
                matches!(e, FlowUriError::Scheme { .. })
            }),
            ("flow://a.b.c.d:9092", |e| {
                matches!(
                    e,
                    FlowUriError::UnexpectedComponent {
                        component: "port",
                        ..
                    }
                )
            }),
            ("flow://a.b.c.d/x", |e| {
                matches!(
                    e,
                    FlowUriError::UnexpectedComponent {
                        component: "path",
                        ..
                    }
                )
            }),
            ("flow://u@a.b.c.d", |e| {
                matches!(
                    e,
                    FlowUriError::UnexpectedComponent {
                        component: "user",
                        ..
                    }
                )
            }),
            ("flow://people.syndeno.com", |e| {
                matches!(
                    e,
                    FlowUriError::TooFewLabels {
                        found: 3,
                        required: 4,
                        ..
                    }
                )
            }),
            ("flow://a..b.c.d", |e| {
                matches!(e, FlowUriError::EmptyLabel { .. })
            }),
            ("flow://a_b.c.d.e", |e| {
                matches!(e, FlowUriError::InvalidCharacter { character: '_', .. })
            }),
            ("flow://ñu.c.d.e", |e| {
                matches!(
                    e,
                    FlowUriError::InvalidCharacter {
                        character: 'ñ', ..
                    }
                )
            }),
            ("flow://-a.c.d.e", |e| {
                matches!(e, FlowUriError::HyphenAtEdge { .. })
            }),
            ("flow://a b.c.d.e", |e| {
                matches!(e, FlowUriError::InvalidCharacter { .. })
            }),
        ];
        for (input, expected) in cases {
            match FlowUri::parse(input) {
                Ok(uri) => panic!("{input:?} parsed as {uri}"),
                Err(error) => assert!(expected(&error), "{input:?}: unexpected {error:?}"),
            }
        }
        let long_label = format!("flow://{}.b.c.d", "x".repeat(64));
        assert!(matches!(
            FlowUri::parse(&long_label),
            Err(FlowUriError::LabelTooLong { len: 64, .. })
        ));
        let long_name = format!("flow://{}b.c.d", "x.".repeat(120));
        assert!(matches!(
            FlowUri::parse(&long_name),
            Err(FlowUriError::TooLong {
                max: MAX_FLOW_FQDN_LEN,
                ..
            })
        ));
        assert!(matches!(
            Namespace::parse("com"),
            Err(FlowUriError::NamespaceTooShort { .. })
        ));
    }

    #[test]
    fn errors_read_well() {
        let error = FlowUri::parse("flow://people.syndeno.com").err();
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("people.syndeno.com"), "{text}");
        assert!(text.contains("flow name"), "{text}");
    }

    #[test]
    fn serde_as_strings() {
        #[derive(Deserialize, Serialize)]
        struct Holder {
            uri: FlowUri,
            namespace: Namespace,
        }
        let holder: Holder = toml::from_str(
            "uri = \"flow://a.people.syndeno.com\"\nnamespace = \"people.syndeno.com\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(holder.uri.flow_name(), "a");
        assert_eq!(holder.namespace.as_str(), "people.syndeno.com");
        let bad: Result<Holder, _> = toml::from_str("uri = \"a.b\"\nnamespace = \"x.y\"");
        assert!(bad.is_err());
    }
}
