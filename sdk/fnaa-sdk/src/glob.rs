//! Glob patterns for event types, subjects and other attribute values:
//! `kytos/topology.*`, `*.link_down`, `sensor-??`.
//!
//! `*` matches any run of characters, including none and including `/` and
//! `.`; `?` matches exactly one character; every other character matches
//! itself, case-sensitively. There is no escape character.
//!
//! Matching takes `&str` and never allocates. The common shapes (exact text,
//! `prefix*`, `*suffix`, `prefix*suffix`, `*infix*`, `*`) are recognised when
//! the pattern is parsed and matched with plain string comparisons; other
//! patterns use [`wildmatch`].

use std::fmt;

use wildmatch::WildMatch;

/// One glob pattern, parsed once and matched many times.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Only `*`s: matches everything.
    Any,
    /// No wildcard at all.
    Exact,
    Prefix(String),
    Suffix(String),
    PrefixSuffix(String, String),
    Contains(String),
    General(WildMatch),
}

impl Pattern {
    /// Parses `pattern`. Every string is a valid pattern.
    pub fn new(pattern: &str) -> Self {
        let matcher = if pattern.contains('?') {
            Matcher::General(WildMatch::new(pattern))
        } else {
            let stars = pattern.matches('*').count();
            let literal = |s: &str| s.to_owned();
            if stars == 0 {
                Matcher::Exact
            } else if stars == pattern.len() {
                Matcher::Any
            } else if stars == 1 {
                match pattern.split_once('*') {
                    Some(("", suffix)) => Matcher::Suffix(literal(suffix)),
                    Some((prefix, "")) => Matcher::Prefix(literal(prefix)),
                    Some((prefix, suffix)) => {
                        Matcher::PrefixSuffix(literal(prefix), literal(suffix))
                    }
                    None => Matcher::Exact,
                }
            } else if stars == 2
                && pattern.len() > 2
                && pattern.starts_with('*')
                && pattern.ends_with('*')
            {
                Matcher::Contains(literal(&pattern[1..pattern.len() - 1]))
            } else {
                Matcher::General(WildMatch::new(pattern))
            }
        };
        Pattern {
            text: pattern.to_owned(),
            matcher,
        }
    }

    /// True when `text` matches the whole pattern.
    #[inline]
    pub fn matches(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::Any => true,
            Matcher::Exact => text == self.text,
            Matcher::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => text.ends_with(suffix.as_str()),
            Matcher::PrefixSuffix(prefix, suffix) => {
                text.len() >= prefix.len() + suffix.len()
                    && text.starts_with(prefix.as_str())
                    && text.ends_with(suffix.as_str())
            }
            Matcher::Contains(infix) => text.contains(infix.as_str()),
            Matcher::General(wild) => wild.matches(text),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Any of several patterns, e.g. from a comma-separated configuration value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
}

impl PatternSet {
    /// Parses a comma-separated list of patterns (items trimmed, empty items
    /// dropped): `kytos/topology.*, kytos/of_core.*`.
    pub fn parse(list: &str) -> Self {
        Self::from_patterns(crate::config::split_list(list))
    }

    /// A set of the given patterns.
    pub fn from_patterns<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        PatternSet {
            patterns: patterns.into_iter().map(Pattern::new).collect(),
        }
    }

    /// True when the set holds no pattern (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when `text` matches at least one pattern.
    #[inline]
    pub fn matches(&self, text: &str) -> bool {
        self.patterns.iter().any(|pattern| pattern.matches(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        let fast = Pattern::new(pattern).matches(text);
        // Every fast path must agree with the general matcher.
        assert_eq!(
            fast,
            WildMatch::new(pattern).matches(text),
            "pattern {pattern:?} on {text:?}"
        );
        fast
    }

    #[test]
    fn kytos_topology_patterns() {
        assert!(m("kytos/topology.*", "kytos/topology.link_up"));
        assert!(m("kytos/topology.*", "kytos/topology."));
        assert!(!m("kytos/topology.*", "kytos/of_core.switch.port.created"));
        assert!(!m("kytos/topology.*", "kytos/topology"));
        assert!(m("kytos/*.link_*", "kytos/topology.link_down"));
        assert!(m("*link_up", "kytos/topology.link_up"));
        assert!(m("*topology*", "kytos/topology.link_up"));
        assert!(!m("*topology*", "kytos/of_core"));
    }

    #[test]
    fn literal_question_and_star_shapes() {
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "a.bc"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", ""));
        assert!(m("**", "anything/at.all"));
        assert!(m("a*c", "ac"));
        assert!(m("a*c", "abbc"));
        assert!(!m("a*c", "abcb"));
        assert!(!m("aa*aa", "aaa"));
        assert!(m("aa*aa", "aaaa"));
        assert!(m("sensor-??", "sensor-01"));
        assert!(!m("sensor-??", "sensor-1"));
        assert!(m("s?n*-*", "sensor-01"));
        assert!(m("ä?", "äö"));
        assert!(!m("A*", "a"));
    }

    #[test]
    fn sets_match_any() {
        let set = PatternSet::parse(" kytos/topology.* , ,kytos/of_core.switch.*");
        assert_eq!(set.patterns().len(), 2);
        assert!(set.matches("kytos/of_core.switch.new"));
        assert!(set.matches("kytos/topology.link_up"));
        assert!(!set.matches("kytos/mef_eline.created"));
        assert!(!PatternSet::parse("").matches("x"));
    }
}
