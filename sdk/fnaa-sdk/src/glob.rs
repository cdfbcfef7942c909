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
            Matcher::Exact => bytes_eq(text.as_bytes(), self.text.as_bytes()),
            Matcher::Prefix(prefix) => starts_with(text, prefix),
            Matcher::Suffix(suffix) => ends_with(text, suffix),
            Matcher::PrefixSuffix(prefix, suffix) => {
                text.len() >= prefix.len() + suffix.len()
                    && starts_with(text, prefix)
                    && ends_with(text, suffix)
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

#[inline]
fn starts_with(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && bytes_eq(&text.as_bytes()[..prefix.len()], prefix.as_bytes())
}

#[inline]
fn ends_with(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && bytes_eq(
            &text.as_bytes()[text.len() - suffix.len()..],
            suffix.as_bytes(),
        )
}

/// `a == b`, eight bytes at a time. On wasm32, `==` on slices calls
/// wasi-libc's `memcmp`, a loop of one byte per iteration that made up most
/// of the cost of matching an event `type` against `prefix*`.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    fn word(bytes: &[u8]) -> u64 {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[..8]);
        u64::from_ne_bytes(word)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    // Whole words, then the last eight bytes (overlapping the last word).
    a.chunks_exact(8)
        .zip(b.chunks_exact(8))
        .all(|(x, y)| word(x) == word(y))
        && word(&a[n - 8..]) == word(&b[n - 8..])
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
    fn word_wise_comparison_agrees_with_eq() {
        let text = "kytos/topology.link_up/0123456789";
        for a in 0..text.len() {
            for b in a..=text.len() {
                let slice = &text.as_bytes()[a..b];
                for (c, d) in [(0, b - a), (1, b - a + 1)] {
                    if let Some(other) = text.as_bytes().get(c..d) {
                        assert_eq!(bytes_eq(slice, other), slice == other);
                    }
                }
                let mut changed = slice.to_vec();
                if let Some(last) = changed.last_mut() {
                    *last ^= 1;
                    assert!(!bytes_eq(slice, &changed));
                }
            }
        }
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
