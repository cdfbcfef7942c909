//! Why a flow URI, flow name or namespace was rejected.

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
