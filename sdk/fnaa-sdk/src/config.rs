//! The key/value configuration an operator gives a plugin instance.

use std::fmt::Display;
use std::str::FromStr;

use crate::InitError;

/// Key/value configuration given to `init` (the WIT `config`), with typed
/// getters whose errors name the offending key.
///
/// When a key is given more than once, the last value wins, as with options
/// repeated on a command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// A configuration made of `entries`, in the order the operator gave them.
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Config { entries }
    }

    /// A configuration from borrowed pairs, handy in tests:
    /// `Config::from_pairs([("dedup", "true")])`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Config {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// Every entry, in the order given (duplicates included).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The value of `key` (the last one when repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or [`InitError::MissingKey`].
    pub fn require(&self, key: &str) -> Result<&str, InitError> {
        self.get(key)
            .ok_or_else(|| InitError::MissingKey(key.to_owned()))
    }

    /// The value of `key` parsed with [`FromStr`], `None` when absent.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, InitError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(key)
            .map(|value| {
                value
                    .trim()
                    .parse::<T>()
                    .map_err(|e| InitError::invalid_value(key, e))
            })
            .transpose()
    }

    /// The value of `key` parsed with [`FromStr`], or `default` when absent.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, InitError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// The value of `key` as a boolean (`true`/`false`, `yes`/`no`, `on`/`off`,
    /// `1`/`0`, any case), or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, InitError> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(InitError::invalid_value(
                key,
                format!("`{value}` is not a boolean (true or false)"),
            )),
        }
    }

    /// The value of `key` as a comma-separated list: items trimmed, empty
    /// items dropped, an absent key giving an empty list.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.get(key).map(split_list).unwrap_or_default()
    }

    /// The keys that start with `prefix`, as `(rest of the key, value)` in
    /// the order given: with `set.source=/a`, `with_prefix("set.")` yields
    /// `("source", "/a")`. Keys equal to the prefix are left out.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.entries.iter().filter_map(move |(k, v)| {
            k.strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
                .map(|rest| (rest, v.as_str()))
        })
    }

    /// Refuses keys not in `known` with [`InitError::UnknownKey`] naming the
    /// first such key. A known entry ending in `*` stands for every key that
    /// starts with what precedes the `*` and goes on: `"set.*"` accepts
    /// `set.source` but not `set.`.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), InitError> {
        let is_known = |key: &str| {
            known.iter().any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => key.len() > prefix.len() && key.starts_with(prefix),
                None => *pattern == key,
            })
        };
        match self.entries.iter().find(|(key, _)| !is_known(key)) {
            Some((key, _)) => Err(InitError::UnknownKey(key.clone())),
            None => Ok(()),
        }
    }
}

/// Splits a comma-separated list: items trimmed, empty items dropped.
pub(crate) fn split_list(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

impl From<Vec<(String, String)>> for Config {
    fn from(entries: Vec<(String, String)>) -> Self {
        Config::new(entries)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Config::new(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_name_the_key() {
        let config = Config::from_pairs([
            ("window", "10"),
            ("dedup", "YES"),
            ("bad", "x"),
            ("flag", "maybe"),
        ]);
        assert_eq!(config.parse::<u32>("window"), Ok(Some(10)));
        assert_eq!(config.parse::<u32>("absent"), Ok(None));
        assert_eq!(config.parse_or::<u32>("absent", 7), Ok(7));
        assert_eq!(config.bool_or("dedup", false), Ok(true));
        assert_eq!(config.bool_or("absent", true), Ok(true));
        assert!(
            matches!(config.parse::<u32>("bad"), Err(InitError::InvalidValue { key, .. }) if key == "bad")
        );
        assert!(
            matches!(config.bool_or("flag", false), Err(InitError::InvalidValue { key, .. }) if key == "flag")
        );
        assert_eq!(
            config.require("absent"),
            Err(InitError::MissingKey("absent".into()))
        );
    }

    #[test]
    fn last_value_wins_and_lists_split() {
        let config = Config::from_pairs([("ports", "a"), ("ports", " b, ,c ,")]);
        assert_eq!(config.get("ports"), Some(" b, ,c ,"));
        assert_eq!(config.list("ports"), vec!["b", "c"]);
        assert!(config.list("absent").is_empty());
    }

    #[test]
    fn prefixed_keys() {
        let config = Config::from_pairs([
            ("set.source", "/a"),
            ("set.", "x"),
            ("remove", "b"),
            ("set.subject", "s"),
        ]);
        let set: Vec<_> = config.with_prefix("set.").collect();
        assert_eq!(set, vec![("source", "/a"), ("subject", "s")]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let config = Config::from_pairs([("set.source", "/a"), ("remove", "x")]);
        assert_eq!(config.reject_unknown(&["set.*", "remove"]), Ok(()));
        assert_eq!(
            config.reject_unknown(&["set.*"]),
            Err(InitError::UnknownKey("remove".into()))
        );
        let config = Config::from_pairs([("set.", "x")]);
        assert_eq!(
            config.reject_unknown(&["set.*"]),
            Err(InitError::UnknownKey("set.".into()))
        );
        assert_eq!(Config::default().reject_unknown(&[]), Ok(()));
    }
}
